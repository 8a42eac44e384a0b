"""The one JSON convention of `--json`, made from the result dataclasses.

A command's JSON is one document, `{"version": 1, ...}`, built by `document(result)`. The records in it
(a note, a search hit, a revision, a tag count, an import item) are their dataclass's fields in order,
tuples as lists, with fields marked `metadata={"json": False}` left out; values JSON has no type for
(dates in front matter) become strings. docs/json.md documents every command's shape, and
tests/test_json_contract.py runs every command with --json against it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from kb.index import SearchResult
    from kb.service.check import CheckResult
    from kb.service.core import ListResult, ShowResult, TagsResult
    from kb.service.history_search import HistorySearchResult
    from kb.service.importing import ImportResult
    from kb.service.links import LinksResult
    from kb.service.revisions import DiffResult, NoteLog, RecentLog
    from kb.service.timeline import BlameResult, ChangesResult

    JsonResult: TypeAlias = (
        ShowResult
        | ListResult
        | TagsResult
        | SearchResult
        | HistorySearchResult
        | NoteLog
        | RecentLog
        | DiffResult
        | ImportResult
        | LinksResult
        | CheckResult
        | ChangesResult
        | BlameResult
    )

JSON_VERSION = 1

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None


def record(value: object) -> Json:
    """A dataclass (and what it holds) as JSON values."""
    if value is None or isinstance(value, str | bool | int | float):  # most values: first
        return value
    if isinstance(value, list | tuple):
        return [record(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: record(getattr(value, name)) for name in _json_fields(type(value))}
    if isinstance(value, dict):
        return {_key(k): record(v) for k, v in value.items()}
    return str(value)


@functools.cache
def _json_fields(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass that its JSON record holds, in order."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("json", True))


def _key(key: object) -> str:
    """A mapping key as json.dumps writes it (True -> "true", 1 -> "1")."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return str(key)


def document(result: JsonResult) -> dict[str, Json]:
    """The --json document of a command's result."""
    return {"version": JSON_VERSION, **_shape(result)}


def _shape(result: JsonResult) -> dict[str, Json]:
    # Each branch imports only the module the result's class comes from, which is loaded already.
    module = type(result).__module__
    if module == "kb.service.core":
        from kb.service.core import ListResult, ShowResult, TagsResult

        if isinstance(result, ShowResult):
            note = result.note
            body = result.body
            if note.problem and not body:  # front matter that cannot be read: the whole file is the body
                body = result.raw.decode("utf-8", "replace")
            return {**_object(note), "body": body, "extra": record(result.extra)}
        if isinstance(result, ListResult):
            return {"notes": record(result.notes)}
        if isinstance(result, TagsResult):
            return {"tags": record(result.tags)}
    elif module == "kb.index":
        from kb.index import SearchResult

        if isinstance(result, SearchResult):
            return {"query": result.query, "total": result.total, "hits": record(result.hits)}
    elif module == "kb.service.history_search":
        from kb.service.history_search import HistorySearchResult

        if isinstance(result, HistorySearchResult):
            return {"query": result.query, "total": result.total, "hits": record(result.hits)}
    elif module == "kb.service.revisions":
        from kb.service.revisions import DiffResult, NoteLog, RecentLog

        if isinstance(result, NoteLog):
            return _object(result)
        if isinstance(result, RecentLog):
            return {
                "changes": [
                    {
                        **_object(change),
                        "paths": [{"status": status, "path": path} for status, path in change.paths],
                    }
                    for change in result.changes
                ]
            }
        if isinstance(result, DiffResult):
            d = result.diff
            return {
                "title": result.title,
                "from": {"label": d.a_label, "path": d.a_path},
                "to": {"label": d.b_label, "path": d.b_path},
                "identical": d.identical,
                "fields": record(d.fields),
                "tags": {"added": list(d.tags_added), "removed": list(d.tags_removed)},
                "sections": record(d.sections),
                "lines": {"added": d.added, "removed": d.removed},
                "patch": d.patch,
            }
    elif module == "kb.service.importing":
        from kb.service.importing import ImportResult

        if isinstance(result, ImportResult):
            counts: dict[str, Json] = {
                s: result.count(s) for s in ("imported", "revised", "unchanged", "skipped")
            }
            return {
                "dry_run": result.dry_run,
                **counts,
                "attachments": result.attachments,
                "folders": result.folders,
                "history_revisions": result.revisions,
                "left_out": list(result.left_out),
                "warnings": list(result.warnings),
                "items": record(result.items),
            }
    elif module == "kb.service.links":
        from kb.service.links import LinksResult

        if isinstance(result, LinksResult):
            return {"note": result.note.path, "links": record(result.links)}
    elif module == "kb.service.check":
        from kb.service.check import CheckResult

        if isinstance(result, CheckResult):
            return {
                "notes": result.notes,
                "links": result.links,
                "fixed": list(result.fixed),
                "problems": record(result.findings),
            }
    elif module == "kb.service.timeline":
        from kb.service.timeline import BlameResult, ChangesResult

        if isinstance(result, ChangesResult):
            return {"since": result.since, "until": result.until, "changes": record(result.changes)}
        if isinstance(result, BlameResult):
            return _object(result)
    raise TypeError(f"no JSON shape for {type(result).__name__}")


def _object(value: object) -> dict[str, Json]:
    data = record(value)
    assert isinstance(data, dict)
    return data
