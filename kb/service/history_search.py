"""Search over every committed version of every note (`kb search --history`), and search of the notes as
they were at a moment (`kb search --as-of WHEN`), both answered from the history index (kb.index.history)
and the revision cache, without checking anything out.

`--history` gives one result per note, a note followed through renames and deletion as `kb log` follows
it: the versions that match are found by blob, each blob's commits and paths come from the revision cache,
a path's versions are carried forward through the renames that moved it to the note's last path, and that
note's revisions (kb.service.revisions.revisions_of) are numbered as `kb log` numbers them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb import config
from kb.errors import BadLimit, KbError, UsageError
from kb.notes import parse_note, title_from_path, validate_tag
from kb.service.transaction import recover
from kb.store import Store

if TYPE_CHECKING:
    from kb.history import History
    from kb.index import SearchResult
    from kb.index.document import Snippet
    from kb.index.history import BlobHit, HistoryIndex

MAX_RENAME_HOPS = 200
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class HistoryHit:
    rank: int
    title: str  # the note's title now (its last title, for a deleted note)
    path: str  # its path now (its last path, for a deleted note)
    revisions: tuple[int, ...]  # the revisions that match, numbered as `kb log` numbers them
    count: int  # the note's revisions in all
    current: bool  # the current version matches
    deleted: bool
    deleted_in: int | None  # the revision that deleted the note
    deleted_on: str | None
    first: str | None  # the date of the first matching revision
    last: str | None  # when the match last existed: the date of the revision that ended it; None: still
    best: int  # the best matching revision (its snippets are shown)
    title_then: str | None  # the title at the best matching revision, where it differs from `title`
    path_then: str  # the path at the best matching revision
    score: float
    snippets: tuple[Snippet, ...]


@dataclass(frozen=True)
class HistorySearchResult:
    query: str
    total: int  # matching notes
    hits: tuple[HistoryHit, ...]
    rebuilt: bool
    warnings: tuple[str, ...] = ()


def _check_sort(sort: str, option: str) -> None:
    if sort != "relevance":
        raise UsageError(f"{option} sorts by relevance only (no --sort {sort})")


def _parse(query: str) -> Any:
    import re

    from kb.index import parse_query

    # (kb.service.search is not imported here: importing it by name would hide kb.service's `search`.)
    if re.search(r"(?<![\w:])(-|NOT\s+)?(links|linkedby):", query):
        raise UsageError("links: and linkedby: search the current notes only (not with --history or --as-of)")
    return parse_query(query, config.now())


def _history(root: Path) -> History | None:
    from kb.history import History

    if not root.is_dir() or not Store(root).notes.is_dir() or not (root / ".git").exists():
        return None
    return History(root)


def _blob_hits(
    index: HistoryIndex, parsed: Any, tag: str | None, progress: Progress | None
) -> tuple[list[BlobHit], frozenset[str], bool]:
    """The index brought up to HEAD (rebuilt if damaged), then every matching blob, best first."""
    from kb.index import damage_errors

    update = index.ensure_fresh(progress)
    try:
        hits, terms = index.searcher_results(parsed, tag)
    except damage_errors():
        update = index.ensure_fresh(progress, force=True)
        hits, terms = index.searcher_results(parsed, tag)
    return hits, terms, update.rebuilt


def _cache_error(exc: Exception) -> KbError:
    return KbError(f"cannot read the revision cache in .git ({exc}); history cannot be searched")


# ---------------------------------------------------------------- kb search --history


def search_history(
    root: Path,
    query: str,
    *,
    limit: int | None = 10,
    tag: str | None = None,
    sort: str = "relevance",
    snippets: bool = True,
    progress: Progress | None = None,
) -> HistorySearchResult:
    """Every note any committed version of which matches the query, best match first."""
    from kb.history.revcache import CacheUnavailable
    from kb.index.history import HistoryIndex

    parsed = _parse(query)
    _check_sort(sort, "--history")
    if limit is not None and limit < 1:
        raise BadLimit()
    wanted_tag = validate_tag(tag) if tag else None
    from kb.index.query import NO_WORDS, bound_notices

    if NO_WORDS in bound_notices(parsed):  # nothing to search for: no index to bring up to date
        return HistorySearchResult(query, 0, (), False, (NO_WORDS,))
    history = _history(root)
    if history is None:
        return HistorySearchResult(query, 0, (), False)
    recover(root)
    head = history.head()
    if head is None:
        return HistorySearchResult(query, 0, (), False)
    index = HistoryIndex(root, history)
    blob_hits, terms, rebuilt = _blob_hits(index, parsed, wanted_tag, progress)
    if not blob_hits:
        return HistorySearchResult(query, 0, (), rebuilt)
    score = {hit.blob: hit.score for hit in blob_hits}
    try:
        holders = history.revision_cache().holders(head, list(score))
        notes = _Lineages(history, head, root).group(holders, score)
    except CacheUnavailable as exc:
        raise _cache_error(exc) from None
    ranked = sorted(notes.items(), key=lambda item: (-item[1][0], item[0]))
    shown = ranked if limit is None else ranked[:limit]
    pairs = {(sha, path): blob for blob, path, sha, _ in holders}
    found = [_NoteMatch(root, history, final, pairs, score) for final, _ in shown]
    found = [match for match in found if match.matching]
    # The versions to read (the best match of each note, the last version of a deleted one): one git call.
    wanted = sorted({blob for match in found for blob in match.blobs_wanted()})
    contents = dict(zip(wanted, history.read_blobs(wanted), strict=True))
    hits = tuple(
        match.hit(rank, contents, terms if snippets else None) for rank, match in enumerate(found, 1)
    )
    return HistorySearchResult(query, len(ranked), hits, rebuilt)


class _Lineages:
    """Which note (its last path) a path's version belongs to: a path deleted by a rename carries on at
    the path it was renamed to."""

    def __init__(self, history: History, head: str, root: Path) -> None:
        self.history = history
        self.head = head
        self.root = root
        self._changes: dict[str, list[tuple[int, str, str, str]]] = {}
        self._renamed: dict[tuple[str, int], str | None] = {}

    def _load(self, paths: list[str]) -> None:
        wanted = [p for p in paths if p not in self._changes]
        for p in wanted:
            self._changes[p] = []
        for path, n, status, sha, body in self.history.revision_cache().changes_of(self.head, wanted):
            self._changes[path].append((n, status, sha, body))

    def group(
        self, holders: list[tuple[str, str, str, int]], score: dict[str, float]
    ) -> dict[str, tuple[float, int]]:
        """The last path of each matching note, with its best score and how many matching versions."""
        self._load(sorted({path for _, path, _, _ in holders}))
        found: dict[str, tuple[float, int]] = {}
        for blob, path, _, n in holders:
            final = self.final(path, n)
            best, count = found.get(final, (0.0, 0))
            found[final] = (max(best, score[blob]), count + 1)
        return found

    def final(self, path: str, n: int) -> str:
        for _ in range(MAX_RENAME_HOPS):
            self._load([path])
            deletion = next(
                ((m, sha, body) for m, status, sha, body in self._changes[path] if m > n and status == "D"),
                None,
            )
            if deletion is None:
                return path
            target = self._renamed_to(path, *deletion)
            if target is None:
                return path
            path, n = target, deletion[0]
        return path

    def _renamed_to(self, path: str, n: int, sha: str, body: str) -> str | None:
        key = (path, n)
        if key not in self._renamed:
            self._renamed[key] = self._find_rename(path, n, sha, body)
        return self._renamed[key]

    def _find_rename(self, path: str, n: int, sha: str, body: str) -> str | None:
        from kb.history import CommitInfo

        added = self.history.revision_cache().added_in(self.head, n)
        if not added:
            return None
        if f"Kb-Renamed-From: {path}" in body.splitlines():
            return added[0] if len(added) == 1 else None
        if "Kb-Renamed-From:" in body:
            return None
        for candidate in added:
            commit = CommitInfo(sha, config.now(), "", body, candidate)
            if self.history.renamed_from(commit) == path:
                return candidate
        return None


class _NoteMatch:
    """One matching note: its revisions (numbered as `kb log` numbers them) and which of them match."""

    def __init__(
        self,
        root: Path,
        history: History,
        final: str,
        pairs: dict[tuple[str, str], str],
        score: dict[str, float],
    ) -> None:
        from kb.service.revisions import revisions_of

        self.root = root
        self.final = final
        self.revisions = revisions_of(root, final, history, counts=False)
        self.matching = [r for r in self.revisions if (r.commit, r.path) in pairs]
        self.blob_of = {(r.commit, r.path): pairs[(r.commit, r.path)] for r in self.matching}
        self.score = score
        if self.matching:
            self.best = max(self.matching, key=lambda r: (score[self.blob_of[(r.commit, r.path)]], r.number))
        content = [r for r in self.revisions if not r.deleted]
        self.deleted = bool(self.revisions) and self.revisions[-1].deleted
        self.last_content = content[-1] if self.deleted and content else None

    def blobs_wanted(self) -> list[str]:
        wanted = [self.blob_of[(self.best.commit, self.best.path)]]
        if self.last_content is not None and self.last_content.blob:
            wanted.append(self.last_content.blob)
        return wanted

    def hit(self, rank: int, contents: dict[str, bytes | None], terms: frozenset[str] | None) -> HistoryHit:
        revisions, matching, best = self.revisions, self.matching, self.best
        last_revision = revisions[-1]
        current = not self.deleted and matching[-1] is last_revision
        end = matching[-1].number  # revisions are numbered from 1: the next one is revisions[end]
        until = None if current or end >= len(revisions) else revisions[end].date
        title_now = self._title_now(contents)
        best_blob = self.blob_of[(best.commit, best.path)]
        title_then, found = _version(best.path, contents.get(best_blob) or b"", terms)
        return HistoryHit(
            rank=rank,
            title=title_now,
            path=self.final,
            revisions=tuple(r.number for r in matching),
            count=len(revisions),
            current=current,
            deleted=self.deleted,
            deleted_in=last_revision.number if self.deleted else None,
            deleted_on=last_revision.date if self.deleted else None,
            first=matching[0].date,
            last=until,
            best=best.number,
            title_then=title_then if title_then != title_now else None,
            path_then=best.path,
            score=round(self.score[best_blob], 4),
            snippets=found,
        )

    def _title_now(self, contents: dict[str, bytes | None]) -> str:
        """The note's title now, or in its last version (a deleted note)."""
        last = self.last_content
        if last is None:
            try:
                return parse_note(Store(self.root).read(self.final)).title_for(self.final)
            except KbError:
                return title_from_path(self.final)
        raw = contents.get(last.blob) if last.blob else None
        return parse_note(raw or b"").title_for(last.path) if raw is not None else title_from_path(last.path)


def _version(path: str, raw: bytes, terms: frozenset[str] | None) -> tuple[str, tuple[Snippet, ...]]:
    """The title and the snippets of one version of a note (the normal search's snippets)."""
    from kb.index.document import Snippet, document, snippets_of

    doc = document(path, raw)
    if doc is None:
        return title_from_path(path), ()
    title: str = doc["title"]
    if terms is None:
        return title, ()
    body: str = doc["body"]
    found = snippets_of(body, terms) if terms else ()
    if found:
        return title, found
    lines = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    return title, ((Snippet(" ".join(lines[0].split())[:160], ()),) if lines else ())


# ---------------------------------------------------------------- kb search --as-of WHEN


def search_as_of(
    root: Path,
    query: str,
    when: str,
    *,
    limit: int | None = 10,
    tag: str | None = None,
    sort: str = "relevance",
    snippets: bool = True,
    progress: Progress | None = None,
) -> SearchResult:
    """The notes as they were at the end of WHEN (or right after a commit), searched."""
    from kb.index import Hit, SearchResult
    from kb.index.history import HistoryIndex

    parsed = _parse(query)
    _check_sort(sort, "--as-of")
    if limit is not None and limit < 1:
        raise BadLimit()
    wanted_tag = validate_tag(tag) if tag else None
    from kb.service.timeline import as_of

    history = _history(root)
    if history is None or history.head() is None:
        raise UsageError(f"there is no history to search as of {when!r} yet (nothing is committed)")
    recover(root)
    # the same moment as kb list --as-of: the tree of the commit that was the knowledge base then
    state = history.tree(as_of(root, when).commit)
    store = Store(root)
    live: dict[str, list[str]] = {}
    for path, blob in state:
        if store.is_note_path(path):
            live.setdefault(blob, []).append(path)
    index = HistoryIndex(root, history, store)
    blob_hits, terms, rebuilt = _blob_hits(index, parsed, wanted_tag, progress)
    found = [(hit, path) for hit in blob_hits for path in sorted(live.get(hit.blob, ()))]
    shown = found if limit is None else found[:limit]
    contents = history.read_blobs([hit.blob for hit, _ in shown])
    hits = []
    for rank, ((hit, path), raw) in enumerate(zip(shown, contents, strict=True), 1):
        title, tags, created, modified = _fields(path, raw or b"")
        found_snippets = _version(path, raw or b"", terms)[1] if snippets else ()
        hits.append(Hit(rank, title, path, tags, created, modified, round(hit.score, 4), found_snippets))
    total = len(found) if limit is None or len(found) <= limit else None
    return SearchResult(query, total, tuple(hits), rebuilt)


def _fields(path: str, raw: bytes) -> tuple[str, tuple[str, ...], str | None, str | None]:
    parsed = parse_note(raw, with_extra=False)
    created, modified = parsed.dates
    return parsed.title_for(path), tuple(parsed.all_tags), created, modified
