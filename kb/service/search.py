"""Search use cases: keep the index in step with notes/, answer queries, rebuild on demand."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb import config
from kb.errors import KbError, UsageError
from kb.notes import validate_tag
from kb.service.links import has_link_fields, link_query
from kb.service.transaction import recover, transaction
from kb.store import Store, exclusive_lock


@dataclass(frozen=True)
class ReindexResult:
    notes: int
    seconds: float


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
) -> Any:
    """Bring the index up to date with notes/ (outside edits included), then answer the query."""
    from kb.index import NoteIndex, QueryError, SearchResult, parse_query

    parsed = (  # a bad query is an error before any work
        link_query(root, query, config.now()) if has_link_fields(query) else parse_query(query, config.now())
    )
    if limit is not None and limit < 1:
        raise UsageError("-n must be at least 1")
    wanted_tag = validate_tag(tag) if tag else None
    if not _has_notes_root(root):
        return SearchResult(query, 0, (), 0, False)
    recover(root)
    index = NoteIndex(root)
    report = _refresh(index, root, progress)
    try:
        total, hits, notices = index.search(
            parsed, limit=limit, tag=wanted_tag, sort=sort, snippets=snippets, count=count
        )
    except (QueryError, UsageError):
        raise
    except Exception:
        # An index that opened but cannot be read (a truncated segment): rebuild once and answer.
        _refresh(index, root, progress, force=True)
        total, hits, notices = index.search(
            parsed, limit=limit, tag=wanted_tag, sort=sort, snippets=snippets, count=count
        )
        return SearchResult(query, total, tuple(hits), 0, True, tuple(notices))
    return SearchResult(query, total, tuple(hits), report.changed, report.rebuilt, tuple(notices))


def _refresh(index: Any, root: Path, progress: Callable[[int, int], None] | None, force: bool = False) -> Any:
    """Incremental catch-up needs no lock; a rebuild takes the write lock so only one process builds,
    and a process that waited for it finds the index already rebuilt."""
    from kb.index import RefreshReport

    if not force:
        try:
            return index.refresh()
        except KbError:
            raise
        except Exception:  # NeedsRebuild, or Whoosh failing on a damaged index
            pass
    with exclusive_lock(root, config.lock_timeout()):
        if not force:
            try:
                return index.refresh()
            except KbError:
                raise
            except Exception:
                pass
        index.rebuild(progress)
    return RefreshReport(0, 0, 0, True)


def reindex(root: Path, progress: Callable[[int, int], None] | None = None) -> ReindexResult:
    """Rebuild the search index from notes/."""
    from kb.index import NoteIndex

    if not _has_notes_root(root):
        raise KbError(f"there is no knowledge base at {root}")
    start = time.perf_counter()
    with transaction(root) as tx:
        count = NoteIndex(tx.root).rebuild(progress)
    return ReindexResult(count, round(time.perf_counter() - start, 2))


def _has_notes_root(root: Path) -> bool:
    return root.is_dir() and Store(root).notes.is_dir()
