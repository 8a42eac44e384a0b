"""The use cases, one call per command. Each returns a frozen dataclass; nothing here prints or prompts.

Submodules are imported on first use, so a command loads only what it needs; mypy follows the
TYPE_CHECKING imports below, which name the same objects as the table (a test checks they agree)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees: the real names, so every call from kb.cli is typed
    from kb.service.check import CheckResult as CheckResult
    from kb.service.check import check as check
    from kb.service.core import LIST_PLAIN as LIST_PLAIN
    from kb.service.core import ChangeResult as ChangeResult
    from kb.service.core import Draft as Draft
    from kb.service.core import EditorFn as EditorFn
    from kb.service.core import InitResult as InitResult
    from kb.service.core import ListResult as ListResult
    from kb.service.core import MadeList as MadeList
    from kb.service.core import ShowResult as ShowResult
    from kb.service.core import TagCount as TagCount
    from kb.service.core import TagsResult as TagsResult
    from kb.service.core import add as add
    from kb.service.core import add_with_editor as add_with_editor
    from kb.service.core import edit as edit
    from kb.service.core import edit_with_editor as edit_with_editor
    from kb.service.core import init as init
    from kb.service.core import list_notes as list_notes
    from kb.service.core import move as move
    from kb.service.core import prepare_listing as prepare_listing
    from kb.service.core import remove as remove
    from kb.service.core import show as show
    from kb.service.core import tags as tags
    from kb.service.core import update_listing as update_listing
    from kb.service.history_search import HistoryHit as HistoryHit
    from kb.service.history_search import HistorySearchResult as HistorySearchResult
    from kb.service.history_search import search_as_of as search_as_of
    from kb.service.history_search import search_history as search_history
    from kb.service.importing import ImportItem as ImportItem
    from kb.service.importing import ImportResult as ImportResult
    from kb.service.importing import import_notes as import_notes
    from kb.service.links import LinkRow as LinkRow
    from kb.service.links import LinksResult as LinksResult
    from kb.service.links import backlinks as backlinks
    from kb.service.links import link_filter as link_filter
    from kb.service.links import outgoing as outgoing
    from kb.service.lookup import NoteInfo as NoteInfo
    from kb.service.revisions import DiffResult as DiffResult
    from kb.service.revisions import NoteLog as NoteLog
    from kb.service.revisions import RecentLog as RecentLog
    from kb.service.revisions import Revision as Revision
    from kb.service.revisions import deleted_note as deleted_note
    from kb.service.revisions import diff as diff
    from kb.service.revisions import note_log as note_log
    from kb.service.revisions import recent as recent
    from kb.service.revisions import restore as restore
    from kb.service.revisions import show_revision as show_revision
    from kb.service.search import ReindexResult as ReindexResult
    from kb.service.search import reindex as reindex
    from kb.service.search import search as search
    from kb.service.sync import Conflict as Conflict
    from kb.service.sync import SyncResult as SyncResult
    from kb.service.sync import sync as sync
    from kb.service.timeline import BlameLine as BlameLine
    from kb.service.timeline import BlameResult as BlameResult
    from kb.service.timeline import ChangesResult as ChangesResult
    from kb.service.timeline import NoteChange as NoteChange
    from kb.service.timeline import blame as blame
    from kb.service.timeline import changes as changes
    from kb.service.timeline import links_as_of as links_as_of

# At run time each name is imported from its module on first use (a command loads only what it needs).
_WHERE = {
    "BlameLine": "timeline",
    "BlameResult": "timeline",
    "ChangesResult": "timeline",
    "NoteChange": "timeline",
    "blame": "timeline",
    "changes": "timeline",
    "links_as_of": "timeline",
    "ChangeResult": "core",
    "CheckResult": "check",
    "Conflict": "sync",
    "DiffResult": "revisions",
    "Draft": "core",
    "EditorFn": "core",
    "HistoryHit": "history_search",
    "HistorySearchResult": "history_search",
    "ImportItem": "importing",
    "ImportResult": "importing",
    "InitResult": "core",
    "LinkRow": "links",
    "LinksResult": "links",
    "ListResult": "core",
    "MadeList": "core",
    "NoteInfo": "lookup",
    "NoteLog": "revisions",
    "RecentLog": "revisions",
    "ReindexResult": "search",
    "Revision": "revisions",
    "LIST_PLAIN": "core",
    "ShowResult": "core",
    "SyncResult": "sync",
    "TagCount": "core",
    "TagsResult": "core",
    "add": "core",
    "add_with_editor": "core",
    "backlinks": "links",
    "check": "check",
    "deleted_note": "revisions",
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
    "prepare_listing": "core",
    "update_listing": "core",
    "recent": "revisions",
    "reindex": "search",
    "remove": "core",
    "restore": "revisions",
    "search": "search",
    "search_as_of": "history_search",
    "search_history": "history_search",
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
    # Bind every name of that module now: importing kb.service.search (or .sync) the first time sets the
    # package's attribute `search` to the submodule, which would hide the function of that name.
    for other, where in _WHERE.items():
        if where == module:
            globals()[other] = getattr(loaded, other)
    return globals()[name]
