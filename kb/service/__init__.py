"""The use cases, one call per command. Each returns a frozen dataclass; nothing here prints or prompts.

Submodules are imported on first use, so a command loads only what it needs."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ChangeResult": "core",
    "CheckResult": "check",
    "Conflict": "sync",
    "DiffResult": "revisions",
    "Draft": "core",
    "EditorFn": "core",
    "ImportItem": "importing",
    "ImportResult": "importing",
    "InitResult": "core",
    "LinkRow": "links",
    "LinksResult": "links",
    "ListResult": "core",
    "NoteInfo": "lookup",
    "NoteLog": "revisions",
    "RecentLog": "revisions",
    "ReindexResult": "search",
    "Revision": "revisions",
    "ShowResult": "core",
    "SyncResult": "sync",
    "TagCount": "core",
    "TagsResult": "core",
    "add": "core",
    "add_with_editor": "core",
    "backlinks": "links",
    "check": "check",
    "diff": "revisions",
    "edit": "core",
    "edit_with_editor": "core",
    "import_notes": "importing",
    "init": "core",
    "link_filter": "links",
    "list_notes": "core",
    "move": "core",
    "note_log": "revisions",
    "outgoing": "links",
    "recent": "revisions",
    "reindex": "search",
    "remove": "core",
    "restore": "revisions",
    "search": "search",
    "show": "core",
    "show_revision": "revisions",
    "sync": "sync",
    "tags": "core",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'kb.service' has no attribute {name!r}")
    loaded = importlib.import_module(f"kb.service.{module}")
    value = getattr(loaded, name)
    globals()[name] = value
    if _WHERE.get(module) == module:
        # Importing kb.service.search bound the submodule to the name of its use case `search`.
        globals()[module] = getattr(loaded, module)
    return value
