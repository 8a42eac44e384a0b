"""Search use cases: keep the index in step with notes/, answer queries, rebuild on demand."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kb import config
from kb.errors import BadLimit, KbError, UsageError
from kb.notes import no_such_tag, validate_tag
from kb.store import Store, dead_run

if TYPE_CHECKING:
    from kb.index import Hit, RefreshReport, SearchResult


@dataclass(frozen=True)
class ReindexResult:
    notes: int
    seconds: float
    external: tuple[str, ...] = ()  # outside edits committed first


def search(
    root: Path,
    query: str,
    *,
    limit: int | None = 20,
    tag: str | None = None,
    sort: str = "relevance",
    snippets: bool = True,
    count: bool = False,
    progress: Callable[[int, int], None] | None = None,
    line_counts: bool = False,
    context: int | None = None,
) -> SearchResult:
    """Bring the index up to date with notes/ (outside edits included), then answer the query. With
    `line_counts` each hit counts its matching lines; with `context` it lists them with that many lines
    around each (grep -C)."""
    from kb.index import NoteIndex, SearchResult, parse_query
    from kb.index.query import bind_link_fields, link_fields

    parsed = parse_query(query, config.now())  # a bad query fails before any work
    fields = link_fields(query)
    if limit is not None and limit < 1:
        raise BadLimit()
    if context is not None and context < 0:
        raise UsageError("-C must be 0 or more")
    wanted_tag = validate_tag(tag) if tag is not None else None
    if not _has_notes_root(root):
        return SearchResult(query, 0, (), False)
    if dead_run(root):
        from kb.service.transaction import recover

        recover(root)
    index = NoteIndex(root)
    busy: list[str] = []
    if fields:
        busy = index.fresh_or_busy(progress)[1]  # the catalog's links must be current
        parsed = bind_link_fields(parsed, [_linked_paths(root, field, note) for field, note in fields])

    def run(tag: str | None) -> tuple[int | None, list[Hit], list[str], RefreshReport]:
        return index.fresh_search(
            parsed,
            limit=limit,
            tag=tag,
            sort=sort,
            snippets=snippets,
            count=count,
            progress=progress,
            lines=(line_counts, context),
        )

    total, hits, notices, report = run(wanted_tag)
    if not hits and wanted_tag is not None:
        known = index.tag_words()
        if wanted_tag.lower() not in known:
            bare = wanted_tag[1:] if wanted_tag.startswith("#") else ""  # as kb shows tags: #Ideas
            if bare and validate_tag(bare).lower() in known:
                wanted_tag = validate_tag(bare)
                total, hits, notices, report = run(wanted_tag)
            else:
                notices = [*notices, no_such_tag(wanted_tag, known)]
    suggestion = index.suggest(query) if not hits and not wanted_tag and not fields else None
    notices = [n for n in notices if n not in busy] if busy else notices  # said once
    return SearchResult(query, total, tuple(hits), report.rebuilt, tuple([*busy, *notices]), suggestion)


def _linked_paths(root: Path, field: str, note: str) -> frozenset[str]:
    """`links:NOTE`: the notes that link to NOTE; `linkedby:NOTE`: the notes NOTE links to."""
    from kb.service.links import link_filter

    if field == "links":
        return link_filter(root, links_to=note, busy_ok=True)
    return link_filter(root, linked_by=note, busy_ok=True)


def reindex(root: Path, progress: Callable[[int, int], None] | None = None) -> ReindexResult:
    """Rebuild the search index from the notes."""
    from kb.index import NoteIndex
    from kb.service.transaction import transaction

    if not _has_notes_root(root):
        raise KbError(f"there is no knowledge base at {root}")
    start = time.perf_counter()
    with transaction(root) as tx:
        count = NoteIndex(tx.root).rebuild(progress)
    return ReindexResult(count, round(time.perf_counter() - start, 2), tx.external)


def _has_notes_root(root: Path) -> bool:
    return root.is_dir() and Store(root).notes.is_dir()
