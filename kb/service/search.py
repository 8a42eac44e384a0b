"""Search use cases: keep the index in step with notes/, answer queries, rebuild on demand."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb import config
from kb.errors import BadLimit, KbError, UsageError
from kb.notes import validate_tag
from kb.service.transaction import recover, transaction
from kb.store import Store

if TYPE_CHECKING:
    from kb.index import SearchResult


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

    rest, link_fields = split_link_fields(query)
    if link_fields and not rest.strip():
        from whoosh import query as wq

        parsed: Any = wq.Every()
    else:
        parsed = parse_query(
            rest if link_fields else query, config.now()
        )  # a bad query fails before any work
    if limit is not None and limit < 1:
        raise BadLimit()
    if context is not None and context < 0:
        raise UsageError("-C must be 0 or more")
    wanted_tag = validate_tag(tag) if tag else None
    if not _has_notes_root(root):
        return SearchResult(query, 0, (), False)
    recover(root)
    index = NoteIndex(root)
    paths = None
    if link_fields:
        report = index.ensure_fresh(progress)  # the catalog's links must be current
        paths = _linked_paths(root, link_fields)
        if not paths:
            return SearchResult(query, 0, (), report.rebuilt)
    total, hits, notices, report = index.fresh_search(
        parsed,
        limit=limit,
        tag=wanted_tag,
        sort=sort,
        snippets=snippets,
        count=count,
        progress=progress,
        paths=paths,
        lines=(line_counts, context),
    )
    suggestion = index.suggest(query) if not hits and not wanted_tag and not link_fields else None
    return SearchResult(query, total, tuple(hits), report.rebuilt, tuple(notices), suggestion)


_LINK_FIELD = re.compile(r'(?<![\w:])(-|NOT\s+)?(links|linkedby):(?:"([^"]*)"|([^\s()"]+))')


def split_link_fields(query: str) -> tuple[str, list[tuple[str, str]]]:
    """The query without its `links:NOTE` and `linkedby:NOTE` terms, and those terms as (field, NOTE). They
    narrow the search to the notes that link to NOTE, or that NOTE links to; they combine with the rest of
    the query by AND only."""
    found: list[tuple[str, str]] = []

    def take(match: re.Match[str]) -> str:
        if match.group(1):
            raise UsageError(f"'{match.group(2)}:' cannot be negated; it narrows the search to linked notes")
        value = match.group(3) if match.group(3) is not None else match.group(4)
        if not value.strip():
            raise UsageError(f"'{match.group(2)}:' needs a note")
        found.append((match.group(2), value))
        return " "

    rest = _LINK_FIELD.sub(take, query)
    if found and re.search(r"(^|\s)OR(\s|$)", rest):
        raise UsageError("links: and linkedby: combine with the rest of the query by AND only (no OR)")
    return rest, found


def _linked_paths(root: Path, fields: list[tuple[str, str]]) -> frozenset[str]:
    from kb.service.links import link_filter

    paths: frozenset[str] | None = None
    for field, note in fields:
        found = link_filter(root, links_to=note) if field == "links" else link_filter(root, linked_by=note)
        paths = found if paths is None else paths & found
    return paths or frozenset()


def reindex(root: Path, progress: Callable[[int, int], None] | None = None) -> ReindexResult:
    """Rebuild the search index from the notes."""
    from kb.index import NoteIndex

    if not _has_notes_root(root):
        raise KbError(f"there is no knowledge base at {root}")
    start = time.perf_counter()
    with transaction(root) as tx:
        count = NoteIndex(tx.root).rebuild(progress)
    return ReindexResult(count, round(time.perf_counter() - start, 2), tx.external)


def _has_notes_root(root: Path) -> bool:
    return root.is_dir() and Store(root).notes.is_dir()
