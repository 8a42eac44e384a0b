"""The Whoosh index in index/: building, incremental updates, freshness, search. The schema and a note's
fields are in kb.index.document, the query language in kb.index.query.

The index is derived data: it can always be rebuilt from the notes. Next to Whoosh's files the catalog
(kb.index.catalog) records, for every indexed note, the (mtime_ns, size, inode) it was indexed at;
comparing that with the notes tells what changed outside kb without reading unchanged files. A catalog
row is written only after the index commit that covers it, so a failed or interrupted update simply
leaves the note "changed" for next time.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb import gitwitness
from kb.errors import KbError, UsageError
from kb.index.catalog import CATALOG, Catalog, CatalogError, Entry, Signature, next_generation
from kb.index.document import (
    MAX_INDEXED_CHARS,
    WORD_PATTERN,
    DatesFallback,
    Line,
    Snippet,
    dated,
    document,
    indexed_body,
    matching_lines,
    normal_word,
    plain_body,
    schema,
    snippets_of,
    writable,
)
from kb.index.postings import fast_postings
from kb.index.query import QueryError, body_terms, bound_notices, parse_query, without_longer_words
from kb.index.top import top_hits
from kb.layout import beyond_link
from kb.notes import HEAD_BYTES, parse_note
from kb.store import BUILDING_INDEX, INDEX_DIR, Store, index_vouched, run_deferred, scan_digest


def _defer_word_variations() -> None:
    """whoosh.query.terms imports whoosh.lang.morph_en for its Variations query, which kb never builds;
    making that module's tables of English word forms takes ~10 ms, a tenth of a cold search. Until its
    `variations` is called, a stand-in module holds the name; the first call loads the real module."""
    import sys
    import types

    name = "whoosh.lang.morph_en"
    if name in sys.modules:
        return
    stand_in = types.ModuleType(name, "Stands in for whoosh.lang.morph_en until its first use.")

    def variations(word: str) -> Iterable[str]:
        import importlib

        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        real = importlib.import_module(name)
        stand_in.variations = real.variations  # type: ignore[attr-defined]
        found: Iterable[str] = real.variations(word)
        return found

    stand_in.variations = variations  # type: ignore[attr-defined]
    sys.modules[name] = stand_in


_defer_word_variations()


def _digest(raw: bytes) -> bytes:
    """What the catalog keeps of the bytes of a note that were indexed (its table `contents`). hashlib is
    loaded on first use: its start (OpenSSL's) is 2-3 ms of a listing that makes no digest (a search loads
    it anyway: Whoosh does)."""
    from hashlib import blake2b

    return blake2b(raw, digest_size=16).digest()


__all__ = [
    "DatesLookup",
    "Hit",
    "NeedsRebuild",
    "NoteIndex",
    "QueryError",
    "RefreshReport",
    "SearchResult",
    "close_kept_searcher",
    "damage_errors",
    "merge_deferred",
    "merge_later",
    "merges_deferred",
    "parse_query",
]

WRITER_TIMEOUT = 10.0
# Segments are written as separate files, not one compound file: whoosh3 reads a compound segment's term
# dictionary into memory on every open (a copy of tens of MB at 10k notes: ~60 ms and ~100 MB per segment
# for every search and every change); separate files are read where needed.
COMPOUND = False
MERGE_AFTER_SEGMENTS = 8
# Times a search is asked again when the index changed under it: a commit deletes the files of the segments
# it merged, and Whoosh opens a segment's columns (stored fields, lengths) when they are first read.
CHANGED_UNDER_SEARCH = 3
BULK = 2000  # notes; from here a build uses two processes
# Seconds a search waits for another process that keeps the index's writer, WRITER_TIMEOUT at a time, before
# it answers from the index as it is (with a notice).
BUSY_WAIT = 300.0
DIGESTS_AT_ONCE = 5000  # notes of an earlier kb's catalog given a digest per check (NoteIndex._fill_digests)

Progress = Callable[[int, int], None]  # (done, total)


def _entry(sig: Signature, doc: dict[str, Any]) -> Entry:
    created, modified = doc["dates"]
    return Entry(
        sig,
        doc["title"],
        tuple(doc["tag_list"]),
        created,
        modified,
        doc["_problem"],
        doc["_warnings"],
        doc["_links"],
    )


class DatesLookup:
    """Dates of a note whose front matter has none: its first and last commit, else the file's times.
    The history is read once, on the first note that needs it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._history: dict[str, tuple[str, str]] | None = None

    def __call__(self, path: str) -> tuple[str | None, str | None]:
        if self._history is None:
            self._history = history_dates(self.root)
        found = self._history.get(path)
        return found if found is not None else file_dates(self.root / path)


def history_dates(root: Path) -> dict[str, tuple[str, str]]:
    """Every committed path's first and last commit dates, normalised; empty outside a repository."""
    from kb.history import History
    from kb.notes import format_timestamp, parse_timestamp

    if not (root / ".git").exists():
        return {}
    try:
        found = History(root).path_dates()
    except KbError:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for path, (first, last) in found.items():
        a, b = parse_timestamp(first), parse_timestamp(last)
        if a is not None and b is not None:
            out[path] = (format_timestamp(a), format_timestamp(b))
    return out


def file_dates(path: Path) -> tuple[str | None, str | None]:
    """(created, modified) from a file's times; (None, None) when it cannot be read."""
    from kb.store import file_times

    try:
        return file_times(path)
    except OSError:
        return None, None


_WORDS = re.compile(WORD_PATTERN, re.UNICODE)  # kb.index.document's flags: compiled once for both


class NeedsRebuild(Exception):
    """The index must be built anew."""


# The searcher of this process's last search, with its index folder and table of contents (see _searcher).
_KEPT: list[tuple[str, tuple[str, int, int] | None, Any]] = []


# A warm server's worker merges the index's small segments after it has answered (merge_later):
# merging them rewrites their postings in pure Python, 0.3 s at 10,000 notes, every few changes.
_MERGE_LATER = False
_MERGE_DUE: list[Path] = []


def merge_later() -> None:
    """From now on, changes leave the merge of the index's small segments to merge_deferred."""
    global _MERGE_LATER
    _MERGE_LATER = True


def merges_deferred() -> bool:
    """Whether a change left a merge for merge_deferred."""
    return bool(_MERGE_DUE)


def merge_deferred() -> None:
    """Merge the small segments of the indexes whose changes left it (Whoosh's policy, as a change
    would have), unless another writer holds the index: its commit merges them then. Damage is left
    for the next search to find and repair."""
    from whoosh import index
    from whoosh.index import LockError

    while _MERGE_DUE:
        folder = _MERGE_DUE.pop()
        fast_postings()
        try:
            ix = index.open_dir(str(folder))
            if len(ix._segments()) <= MERGE_AFTER_SEGMENTS:
                continue
            writer = ix.writer(compound=COMPOUND)
        except (LockError, *damage_errors()):  # type: ignore[misc]
            continue
        try:
            writer.commit()
        except damage_errors():
            with contextlib.suppress(Exception):
                writer.cancel()


def close_kept_searcher() -> None:
    """Close the searcher this process's last search kept open (see NoteIndex._searcher)."""
    while _KEPT:
        with contextlib.suppress(*damage_errors()):
            _KEPT.pop()[2].close()


class _Lengths:
    """A segment's column of one field's lengths (a byte per document), read into memory: what Whoosh's
    column reader answers, without its seek and read per document."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __getitem__(self, docnum: int) -> int:
        return self.data[docnum] if docnum < len(self.data) else 0

    def __iter__(self) -> Iterator[int]:
        return iter(self.data)


def lengths_in_memory(searcher: Any) -> None:
    """Read the scored fields' length columns of every segment of `searcher` into memory (a byte per note
    and field; a column shorter than the segment, whose last notes lack the field, is padded with the
    zeros Whoosh answers for them). Scoring a note reads its length in each field it matched: through
    Whoosh's column reader a seek and a read each, 1-3 ms of a common word's search at 10,000 notes; this
    costs one read per column. A column of another shape, or one that cannot be read, is left to Whoosh."""
    from whoosh.codec import whoosh3
    from whoosh.columns import NumericColumn

    scored = [name for name, field in searcher.schema.items() if field.scorable]
    for leaf, _base in searcher.reader().leaf_readers():
        per = getattr(leaf, "_perdoc", None)
        if not isinstance(per, whoosh3.W3PerDocReader):
            continue
        for name in scored:
            column = whoosh3._lenfield(name)
            with contextlib.suppress(*damage_errors()):
                reader = per._cached_reader(column, whoosh3.LENGTHS_COLUMN)
                if type(reader) is not NumericColumn.Reader or reader._fixedlen != 1:
                    continue
                count = min(reader._count, per._doccount)
                data = reader._dbfile.get(reader._basepos, count) if count else b""
                if len(data) == count:
                    per._readers[column] = _Lengths(data + bytes(per._doccount - count))


def ready_kept_searcher() -> None:
    """Read, in every segment of the searcher this process's last search kept (see NoteIndex._searcher),
    what a search reads there on first use: the table of the stored fields' offsets (the lengths of the
    scored fields are read when the searcher opens: lengths_in_memory). A search whose hits lie in
    segments the search before did not read would build them (2-3 ms at 10,000 notes). A warm server's
    spare calls it after its rehearsal."""
    for _folder, _toc, searcher in _KEPT:
        with contextlib.suppress(*damage_errors()):
            for leaf, _base in searcher.reader().leaf_readers():
                if leaf.doc_count_all():
                    leaf.stored_fields(0)


def _contents_file(folder: str) -> tuple[str, int, int] | None:
    """The name, inode and modification time of the index's newest table of contents: a commit writes a
    new one, a rebuild a new folder of them. None when it cannot be read."""
    newest: tuple[int, str, int, int] | None = None
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".toc") and name.startswith("_"):
                    generation = name[:-4].rpartition("_")[2]
                    if generation.isdigit():
                        st = entry.stat(follow_symlinks=False)
                        found = (int(generation), name, st.st_ino, st.st_mtime_ns)
                        if newest is None or found > newest:
                            newest = found
    except OSError:
        return None
    return None if newest is None else newest[1:]


def damage_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean the index on disk is missing, damaged or of another version (a file truncated,
    deleted or overwritten, another process's half-written segment): the index is rebuilt. Anything else
    is a bug and is raised."""
    import pickle
    import struct
    import zlib

    from whoosh.index import IndexError as WhooshIndexError
    from whoosh.reading import CorruptIndexError

    return (NeedsRebuild, CatalogError, WhooshIndexError, CorruptIndexError, OSError, EOFError, struct.error,
            pickle.UnpicklingError, zlib.error, UnicodeDecodeError)  # fmt: skip


@dataclass(frozen=True)
class Hit:
    """One note a search found, as shown: its rank, what the index stores of it, and its passages."""

    rank: int
    title: str
    path: str
    tags: tuple[str, ...]
    created: str | None
    modified: str | None
    score: float | None  # None when sorted by something other than relevance
    snippets: tuple[Snippet, ...]  # passages with the offsets of the matched words
    # kb search -C N and --count (text only): the lines around the matching ones, the matching lines' count
    lines: tuple[Line, ...] = field(default=(), metadata={"json": False})
    matching: int | None = field(default=None, metadata={"json": False})


@dataclass(frozen=True)
class SearchResult:
    """What a search found: the hits shown, how many matched, and what to read them with."""

    query: str
    total: int | None  # None: more than shown match, not counted
    hits: tuple[Hit, ...]
    rebuilt: bool
    warnings: tuple[str, ...] = ()
    suggestion: str | None = None  # when nothing matched: the query with its unknown words corrected


def _one_edit_away(word: str, reader: Any) -> str | None:
    """The word one letter deleted or two neighbours swapped (`postgress` -> `postgres`, `javascirpt` ->
    `javascript`) that the most notes hold, or None. Tried before the index's corrector, which compares
    stems (`postgres` is stored as `postgr`, further from `postgress` than `postgresql` is) and, to stay
    quick, only with words of the same first letter."""
    typed = word.lower()
    variants = {typed[:i] + typed[i + 1 :] for i in range(len(typed))}
    variants |= {typed[:i] + typed[i + 1] + typed[i] + typed[i + 2 :] for i in range(len(typed) - 1)}
    best: tuple[int, str] | None = None
    for variant in sorted(variants - {typed, ""}):
        stem = normal_word(variant)
        frequency = reader.doc_frequency("body", stem) + reader.doc_frequency("title", stem)
        if frequency and (best is None or frequency > best[0]) and _held(reader, stem):
            best = (frequency, variant)
    return best[1] if best else None


def _held(reader: Any, stem: str) -> bool:
    """Whether a note in the index holds `stem` now: Whoosh keeps the words of a deleted note (and counts
    them) until its segment is merged."""
    if not reader.has_deletions():
        return True
    for name in ("body", "title"):
        if reader.frequency(name, stem):
            postings = reader.postings(name, stem)
            if any(not reader.is_deleted(doc) for doc in postings.all_ids()):
                return True
    return False


_WRITERS_FORKING: list[bool] = []  # set while Whoosh's writer forks its sub-writers (rebuild)


def _quiet_sub_writer() -> None:
    """In a child forked while Whoosh's writer starts its sub-writers: Ctrl-C (sent to the whole terminal's
    process group) ends it without a traceback; the parent says "interrupted" and cancels the writer."""
    if _WRITERS_FORKING:
        import signal

        signal.signal(signal.SIGINT, lambda number, frame: os._exit(130))


os.register_at_fork(after_in_child=_quiet_sub_writer)


def _report(
    changed: set[str],
    current: dict[str, Signature],
    known: dict[str, Signature],
    agreed: str | None,
    compared: frozenset[str] | None = None,
) -> RefreshReport:
    """What an update of the `changed` rows did: notes added (on disk, no row), removed (a row, not on
    disk) and updated (the rest)."""
    added = sum(1 for p in changed if p in current and p not in known)
    removed = sum(1 for p in changed if p not in current)
    return RefreshReport(added, len(changed) - added - removed, removed, False, agreed, compared)


def _after_ours(catalog: Catalog, before: str | None) -> str | None:
    """The catalog's generation after one change of ours made from `before`, if no one else's came
    between (each change moves it by one); None when that is not known."""
    try:
        after = catalog.generation()
    except CatalogError:
        return None
    return after if before is not None and after == next_generation(before) else None


def _agreed_since(
    catalog: Catalog, generation: str, current: dict[str, Signature], compared: frozenset[str]
) -> tuple[str | None, frozenset[str]]:
    """After a change of ours made from `generation` that another came with: the catalog's generation now
    and the rows compared with it, when the rows changed since `generation` that are not ours all agree with
    the scan `current`; (None, `compared`) when that is not known."""
    try:
        since, now = catalog.changed_since(generation)
        if since is None:
            return None, compared
        theirs = since - compared
        known, at = catalog.signatures_at(theirs)
    except CatalogError:
        return None, compared
    if at != now or any(current.get(p) != known.get(p) for p in theirs):
        return None, compared
    return now, compared | theirs


@dataclass(frozen=True)
class RefreshReport:
    """What bringing the index up to date with the notes did."""

    added: int
    updated: int
    removed: int
    rebuilt: bool
    agreed: str | None = None  # the catalog's generation at which it agreed with the scan, when known
    # refresh_changed's: the paths whose rows it compared (the files named, and the rows changed since)
    compared: frozenset[str] | None = None


class NoteIndex:
    def __init__(self, root: Path, store: Store | None = None) -> None:
        run_deferred()  # a change of this process's that left the index for later: done first
        self.root = root
        self.store = store if store is not None else Store(root)
        self.folder = root / INDEX_DIR
        self._dates_of = DatesLookup(root)

    # ------------------------------------------------------------ state

    def exists(self) -> bool:
        return (self.folder / CATALOG).is_file()

    def catalog(self) -> Catalog | None:
        """The catalog of every indexed note (None when there is no usable index)."""
        return Catalog.open(self.folder)

    def _open(self) -> Any:
        from whoosh import index

        fast_postings()
        return index.open_dir(str(self.folder))

    @contextlib.contextmanager
    def _searcher(self) -> Iterator[Any]:
        """A searcher of the index: the one this process's last search used when the index is the same
        (the same table of contents file), else a new one. A warm server's spare runs a search before it
        takes a command: the command's search then finds the segments open and their tables read."""
        folder = str(self.folder)
        searcher: Any = None
        if _KEPT:
            where, toc, kept = _KEPT.pop()
            if where == folder and toc == _contents_file(folder):
                searcher = kept
            else:
                with contextlib.suppress(*damage_errors()):
                    kept.close()
        if searcher is None:
            toc = _contents_file(folder)
            searcher = self._open().searcher()
            fresh = True
        else:
            fresh = False
        try:
            if fresh:
                lengths_in_memory(searcher)
            yield searcher
        except BaseException:
            with contextlib.suppress(*damage_errors()):
                searcher.close()
            raise
        if toc is not None:
            _KEPT.append((folder, toc, searcher))
        else:
            searcher.close()

    # ------------------------------------------------------------ building

    def rebuild(self, progress: Progress | None = None, broken: bool = False) -> int:
        """Build a new index from notes/ beside the one there is (BUILDING_INDEX), then put it in its place;
        the one it replaces is removed, or, when it is `broken` (it failed to open or read), moved aside
        for inspection. Interrupted (Ctrl-C, a failure, a kill), the index there was stays as it was.
        Called under the write lock. Returns the note count."""
        from whoosh import index

        building = self.root / BUILDING_INDEX
        shutil.rmtree(building, ignore_errors=True)  # left by a build that was killed
        building.mkdir()
        try:
            count = self._build(index.create_in(str(building), schema()), building, progress)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        self._move_aside(building, broken)
        os.replace(building, self.folder)
        if not broken:
            shutil.rmtree(self._aside(False), ignore_errors=True)
        return count

    def _build(self, ix: Any, folder: Path, progress: Progress | None) -> int:
        sigs = self.store.scan()[0]
        paths = sorted(sigs)
        procs = 2 if len(paths) >= BULK and (os.cpu_count() or 1) >= 2 else 1
        options: dict[str, Any] = {"limitmb": 256, "compound": COMPOUND}
        if procs > 1:
            import multiprocessing

            options.update(procs=procs, multisegment=True)
            if "fork" in multiprocessing.get_all_start_methods():
                # Forked, the sub-writer has what this process set up (postings.fast_postings,
                # _quiet_sub_writer); Python's default is another way on some systems and versions.
                options["start_method"] = "fork"
        writer = ix.writer(timeout=WRITER_TIMEOUT, **options)
        indexed: dict[str, Entry] = {}
        digests: dict[str, bytes] = {}
        _WRITERS_FORKING.append(True)
        try:
            for done, path in enumerate(paths, 1):
                doc = self._read_document(path)
                if doc is not None:
                    indexed[path] = _entry(sigs[path], doc)
                    digests[path] = doc["_digest"]
                    writer.add_document(**writable(doc))
                if progress and (done % 50 == 0 or done == len(paths)):
                    progress(done, len(paths))
            writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.cancel()
            # Whoosh's sub-writers (other processes) stop before their files are removed: the signal may
            # have come to this process alone (kill -INT), and cancel() reaches only their copies here.
            for task in getattr(writer, "tasks", ()):
                if task.pid is None:
                    continue  # not started (the Ctrl-C came while it was)
                with contextlib.suppress(OSError, ValueError, AssertionError):
                    task.terminate()
                    task.join(5)
            raise
        finally:
            _WRITERS_FORKING.clear()
        Catalog.create(folder, indexed, digests)
        return len(indexed)

    def _read_document(self, path: str) -> dict[str, Any] | None:
        try:
            raw = self.store.read_head(path, HEAD_BYTES)
        except KbError:
            return None
        fallback: DatesFallback = self._dates_of
        doc = document(path, raw, fallback, self.store.layout.folder_of(path))
        if doc is not None:
            doc["_digest"] = _digest(raw)  # all of the note that is read
        return doc

    def _move_aside(self, replacement: Path, broken: bool) -> None:
        """The index there was goes aside: a `broken` one to .git/kb-index-broken (the last one is kept
        for inspection), else where rebuild removes it; the history index (kb.index.history) in its
        history/ goes into `replacement` first: it is built from git, not the notes."""
        if not self.folder.exists():
            return
        kept = self.folder / "history"
        if kept.is_dir():
            with contextlib.suppress(OSError):
                os.replace(kept, replacement / "history")
        target = self._aside(broken)
        shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(self.folder, target)
        except OSError:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _aside(self, broken: bool) -> Path:
        """Where the index a rebuild replaces goes: kept when `broken`, else removed at once."""
        if not broken:
            return self.root / f"{BUILDING_INDEX}-old"
        git_dir = self.root / ".git"
        return git_dir / "kb-index-broken" if git_dir.is_dir() else self.root / ".kb-index-broken"

    def update(self, paths: Iterable[str]) -> None:
        """Index exactly these notes (a missing file is removed from the index). No index yet: nothing."""
        wanted = set(paths)
        catalog = self.catalog()
        if catalog is None or not wanted:
            return
        with catalog:
            if len(wanted) >= BULK and len(wanted) > catalog.count():
                catalog.close()
                self.rebuild()  # more new than indexed (a large import): building anew is faster
                return
            self._apply(catalog, wanted)

    def _apply(self, catalog: Catalog, paths: set[str]) -> None:
        """Index these notes again (a missing one is removed). A note whose bytes, and dates where its
        front matter has none, are what was indexed (touched, copied with new times, written back as it
        was) is not: only its row takes the file's new signature. The rows are read under the index's
        writer (only its holder changes them but for their signatures), and the digests of the notes
        written are forgotten before the index is: a row that does not follow then holds none."""
        ix = self._open()
        writer = ix.writer(timeout=WRITER_TIMEOUT, compound=COMPOUND)
        put: dict[str, Entry] = {}
        drop: list[str] = []
        made: dict[str, bytes] = {}
        written: list[str] = []
        try:
            try:
                stored = catalog.get(paths)
                digests = catalog.digests(stored)
            except CatalogError:  # every note is indexed again (and its row written anew)
                stored, digests = {}, {}
            for path in sorted(paths):
                full = self.root / path
                # gone, a link, or no longer a note (kb.toml now ignores it): out of the index
                note = (
                    full.exists()
                    and not full.is_symlink()
                    and self.store.is_note_path(path)
                    and not beyond_link(self.root, path)
                )
                st = os.lstat(full) if note else None
                doc = self._read_document(path) if st is not None else None
                if doc is None:
                    writer.delete_by_term("path", path)
                    drop.append(path)
                    written.append(path)
                    continue
                assert st is not None
                entry = put[path] = _entry((st.st_mtime_ns, st.st_size, st.st_ino), doc)
                made[path] = doc["_digest"]
                was = stored.get(path)
                if was is None or digests.get(path) != made[path] or was[1:7] != entry[1:7]:
                    writer.update_document(**writable(doc))
                    written.append(path)
            if written:
                try:
                    catalog.forget_digests(written)
                except CatalogError as exc:
                    raise KbError(f"cannot write the search catalog: {exc}") from None
            if not written:
                writer.cancel()
            elif len(ix._segments()) <= MERGE_AFTER_SEGMENTS:
                writer.commit(merge=False)
            elif _MERGE_LATER:
                writer.commit(merge=False)
                if self.folder not in _MERGE_DUE:
                    _MERGE_DUE.append(self.folder)
            else:
                writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.cancel()
            raise
        try:
            catalog.apply(put, drop, made)
        except CatalogError as exc:
            raise KbError(f"cannot write the search catalog: {exc}") from None

    def _fill_digests(self, catalog: Catalog) -> None:
        """A catalog made by an earlier kb has no digests (see retouch): those of notes unchanged since they
        were indexed (the file's signature is its row's) are worked out from their files, DIGESTS_AT_ONCE
        a check. Only a shortcut: nothing is kept when the catalog is busy."""
        try:
            missing = catalog.undigested(DIGESTS_AT_ONCE)
        except CatalogError:
            return
        made: dict[str, bytes] = {}
        for path, sig in missing.items():
            try:
                raw, now = self.store.read_head_signed(path, HEAD_BYTES)
            except KbError:
                continue
            if now == sig:
                made[path] = _digest(raw)
        with contextlib.suppress(CatalogError):
            catalog.add_digests(made, missing)

    def retouch(self, paths: Collection[str]) -> int:
        """The rows of these notes whose files have new times but hold what was indexed, with the same
        dates (a note without dates in its front matter is dated by its commits, else by its file), take
        the files' signatures: nothing is parsed for them again, here or by the next command. No index
        writer is needed. How many rows did. (_apply does the same for each note it is given.)"""
        catalog = self.catalog()
        if catalog is None:
            return 0
        with catalog:
            try:
                digests = catalog.digests(paths)
                stored = catalog.get(digests)
            except CatalogError:
                return 0
            signed: dict[str, Signature] = {}
            for path in sorted(digests):
                try:
                    raw, sig = self.store.read_head_signed(path, HEAD_BYTES)
                except KbError:
                    continue
                entry = stored.get(path)
                if entry is None or _digest(raw) != digests[path]:
                    continue
                dates = dated(parse_note(raw, with_extra=False).dates, path, self._dates_of)
                if dates == (entry.created, entry.modified):
                    signed[path] = sig
            try:
                return catalog.resign(signed, digests)
            except CatalogError:
                return 0

    def refresh(self) -> RefreshReport:
        """Index what was added, changed or removed in notes/ since the last update. Raises NeedsRebuild
        when the index is missing, broken or of another schema version."""
        if self.store.settled() and index_vouched(self.root):
            return RefreshReport(0, 0, 0, False)  # the warm server found it usable, and nothing changed since
        catalog = self.catalog()
        if catalog is None or not self._has_toc():
            raise NeedsRebuild("the search index is missing, unreadable or of another version")
        if self.store.settled():  # the warm server saw nothing change since the catalog agreed with a scan
            catalog.close()
            return RefreshReport(0, 0, 0, False)
        with catalog:
            root, layout = str(self.root), self.store.layout
            try:
                agreed, kept, generation = catalog.agreed()
            except CatalogError:
                raise NeedsRebuild("the search catalog is damaged") from None
            self._fill_digests(catalog)
            named = gitwitness.holds(root, layout, kept)  # git's word, when this process asked it
            if named is not None:  # no scan needed: only the notes git names may have changed
                report = self._compare(catalog, named, generation, kept)
                if report is not None:
                    return report
            current = self.store.scan()[0]
            # The common case, nothing changed: this scan is the one that last agreed with every row (its
            # digest is forgotten whenever a row changes), so the rows need not be read.
            digest = scan_digest(current)
            if digest is not None and digest == agreed:
                vouched = gitwitness.vouch(root, layout, current, self.store.note_folders, kept)
                if vouched is not None:
                    catalog.remember_scan(digest, generation, vouched)
                return RefreshReport(0, 0, 0, False, generation)
            try:
                known, generation = catalog.signatures_at()
            except CatalogError:
                raise NeedsRebuild("the search catalog is damaged") from None
            if current == known:  # compared without a Python loop
                if digest is not None:
                    vouched = gitwitness.vouch(root, layout, current, self.store.note_folders, None)
                    catalog.remember_scan(digest, generation, vouched)
                return RefreshReport(0, 0, 0, False, generation)
            added = {p for p in current if p not in known}
            removed = {p for p in known if p not in current}
            updated = {p for p, sig in current.items() if p in known and known[p] != sig}
            self._apply(catalog, added | removed | updated)
            agreed = _after_ours(catalog, generation)
        return RefreshReport(len(added), len(updated), len(removed), False, agreed)

    def _compare(
        self, catalog: Catalog, paths: frozenset[str], generation: str, witness: str | None
    ) -> RefreshReport | None:
        """refresh() when only `paths` may differ from the rows (at `generation`), as `witness` says: each
        compared with its row, and indexed again if it changed (the witness then kept again: the rows agree
        with the notes as it has them). None when the rows moved meanwhile (then the scan decides)."""
        if not paths:
            return RefreshReport(0, 0, 0, False, generation)
        try:
            known, now = catalog.signatures_at(paths)
        except CatalogError:
            raise NeedsRebuild("the search catalog is damaged") from None
        if now != generation:
            return None
        current: dict[str, Signature] = {}
        for path in paths:
            try:
                st = os.lstat(self.root / path)
            except OSError:
                continue
            current[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        changed = {p for p in paths if current.get(p) != known.get(p)}
        if not changed:
            return RefreshReport(0, 0, 0, False, generation)
        self._apply(catalog, changed)
        after = _after_ours(catalog, now)
        if witness is not None:
            catalog.keep_witness(witness, after)
        return _report(changed, current, known, after)

    def refresh_changed(self, paths: Collection[str], agreed: str) -> RefreshReport | None:
        """refresh() for a store whose scan can differ only in `paths` from the one the catalog agreed with
        at its generation `agreed` (the warm server's watch says which files changed): only their rows are
        read, and those of the rows changed since `agreed` (another process's write, a warm server's
        worker's), as the catalog's log says (the report's `compared`). None when the catalog cannot say
        which rows changed (then refresh() compares them all)."""
        catalog = self.catalog()
        if catalog is None or not self._has_toc():
            raise NeedsRebuild("the search index is missing, unreadable or of another version")
        looked = set(paths)
        with catalog:
            current = self.store.scan(keep=True)[0]  # kept for refresh(), when it is needed
            try:
                known, generation = catalog.signatures_at(paths)
            except CatalogError:
                raise NeedsRebuild("the search catalog is damaged") from None
            if generation != agreed:
                try:
                    since, now = catalog.changed_since(agreed)
                    if since is None or now != generation:
                        return None
                    if since - looked:
                        more, now = catalog.signatures_at(since - looked)
                        if now != generation:
                            return None  # changed again meanwhile
                        known.update(more)
                        looked |= since
                except CatalogError:
                    return None
            compared = frozenset(looked)
            changed = {p for p in looked if current.get(p) != known.get(p)}
            if not changed:
                return RefreshReport(0, 0, 0, False, generation, compared)
            self._apply(catalog, changed)
            after = _after_ours(catalog, generation)
            if after is None:  # another process's change came with ours (a worker's, after its answer)
                after, compared = _agreed_since(catalog, generation, current, compared)
        return _report(changed, current, known, after, compared)

    def _has_toc(self) -> bool:
        """Whoosh's table of contents is there (a damaged index is found when it is read, and rebuilt)."""
        return _contents_file(str(self.folder)) is not None

    # ------------------------------------------------------------ the front door

    def ensure_fresh(
        self, progress: Progress | None = None, force: bool = False, lock_held: bool = False
    ) -> RefreshReport:
        """The index in step with the notes: outside edits indexed, or the whole index rebuilt when it is
        missing or damaged (`force`: rebuilt in any case). Catching up needs no lock; a rebuild takes the
        write lock (unless the caller holds it), so only one process builds and one that waited finds it
        built."""
        from kb import config
        from kb.store import exclusive_lock

        damage = damage_errors()
        if not force:
            try:
                return self.refresh()
            except damage:
                pass
        lock = contextlib.nullcontext() if lock_held else exclusive_lock(self.root, config.lock_timeout())
        with lock:
            if not force:
                try:
                    return self.refresh()
                except damage:
                    pass
            self.rebuild(progress, broken=self.folder.exists())
        return RefreshReport(0, 0, 0, True)

    def fresh_search(
        self,
        parsed: Any,
        *,
        limit: int | None,
        tag: str | None,
        sort: str,
        snippets: bool,
        count: bool = False,
        progress: Progress | None = None,
        paths: frozenset[str] | None = None,
        lines: tuple[bool, int | None] = (False, None),
    ) -> tuple[int | None, list[Hit], list[str], RefreshReport]:
        """The one way to search: make the index fresh (repair it if damaged), then answer. An index that
        opened but cannot be read (a truncated segment) is rebuilt once and asked again; one that another
        process committed to while the search read it is asked again as it is now."""

        def ask() -> tuple[int | None, list[Hit], list[str]]:
            return self.search(
                parsed,
                limit=limit,
                tag=tag,
                sort=sort,
                snippets=snippets,
                count=count,
                paths=paths,
                lines=lines,
            )

        report, busy = self.fresh_or_busy(progress)
        for _ in range(CHANGED_UNDER_SEARCH):
            contents = _contents_file(str(self.folder))
            try:
                total, hits, notices = ask()
                break
            except (TypeError, *damage_errors()) as exc:  # type: ignore[misc]
                if _contents_file(str(self.folder)) != contents:
                    continue  # another process committed meanwhile (and deleted the segments it merged)
                if not isinstance(exc, damage_errors()):
                    raise
                report = self.ensure_fresh(progress, force=True)
                total, hits, notices = ask()
                break
        else:
            total, hits, notices = ask()
        return total, hits, [*busy, *notices], report

    def fresh_or_busy(self, progress: Progress | None = None) -> tuple[RefreshReport, list[str]]:
        """ensure_fresh(), waiting for another process that keeps the index's writer (the warm server
        indexing thousands of notes a `git checkout` changed, say: what it indexes is then not indexed
        again here); or, when it keeps it longer than BUSY_WAIT, the index as it is, with a notice that
        says so: a search answers from it rather than fail."""
        from whoosh.index import LockError

        until = time.monotonic() + BUSY_WAIT
        while True:
            try:
                return self.ensure_fresh(progress), []
            except LockError:
                if time.monotonic() < until:
                    continue
            return RefreshReport(0, 0, 0, False), [
                "another kb process is bringing the search index up to date; "
                "notes changed outside kb lately may be missing from what follows"
            ]

    def update_or_warn(self, paths: Iterable[str]) -> tuple[str, ...]:
        """update(), for a change that is already committed: damage to the index is not the change's
        failure, so it is reported as a warning (the next search repairs it). A bug is raised."""
        from whoosh.index import LockError

        try:
            self.update(paths)
        except KbError as exc:
            return (f"the search index was not updated ({exc}); the next search will catch up",)
        except LockError:
            return (
                "the search index was not updated (another process kept it locked); "
                "the next search will catch up",
            )
        except damage_errors() as exc:
            return (
                f"the search index was not updated ({type(exc).__name__}); the next search will catch up",
            )
        return ()

    # ------------------------------------------------------------ searching

    def search(
        self,
        parsed: Any,
        *,
        limit: int | None,
        tag: str | None,
        sort: str,
        snippets: bool,
        count: bool = False,
        paths: frozenset[str] | None = None,
        lines: tuple[bool, int | None] = (False, None),
    ) -> tuple[int | None, list[Hit], list[str]]:
        """Run a query made by parse_query (among `paths` only, when given). Snippets come from the note
        files of the hits shown; `lines` (count them, the context around them or None) asks for each
        hit's matching lines too (kb.index.document.matching_lines). Returns
        the count (None: more than `limit`, not counted), the hits, and notices about the query."""
        from whoosh import query as wq

        with self._searcher() as searcher:
            filter_q: Any = wq.Term("tags", tag.lower()) if tag else None
            if paths is not None:
                among = wq.Or([wq.Term("path", p) for p in sorted(paths)])
                filter_q = among if filter_q is None else wq.And([filter_q, among])
            sortedby: Any = None
            reverse = False
            if sort in ("modified", "created"):
                sortedby, reverse = sort, True
            elif sort == "title":
                sortedby = "title_sort"
            elif sort != "relevance":
                raise UsageError(f"unknown sort order '{sort}' (relevance, modified, created or title)")
            # One more than asked tells whether there are more without counting them all (an exact count
            # costs a second pass over every match: slow for phrases and prefixes). `count` asks for it.
            wanted = None if limit is None else limit + 1
            results = None
            narrow = without_longer_words(parsed)
            if sortedby is None and wanted is not None and not count:
                if narrow is None:  # (one word is scored by kb.index.top)
                    results = top_hits(searcher, parsed, wanted, filter_q)
                else:
                    # The notes with the words themselves rank first: when they fill the page, the longer
                    # words (which would cost scoring every note that has one) cannot change it.
                    first = top_hits(searcher, narrow, wanted, filter_q)
                    if first.scored_length() >= wanted:
                        results = first
            if results is None:
                results = searcher.search(
                    parsed, limit=wanted, filter=filter_q, sortedby=sortedby, reverse=reverse
                )
            found = results.scored_length()
            if limit is None or found <= limit:
                total: int | None = found
            else:
                total = len(results) if count else None
            shown = min(found, limit) if limit is not None else found
            want_lines = lines[0] or lines[1] is not None
            terms = (
                body_terms(parsed, searcher.reader()) if (snippets or want_lines) and shown else frozenset()
            )
            hits = []
            checked = self._checked_entries([h["path"] for h in results[:shown]]) if snippets else {}
            for rank, hit in enumerate(results[:shown], 1):
                stored = hit.fields()
                created, modified = (stored.get("dates") or [None, None])[:2]
                matching, around = (
                    matching_lines(self._body_text(stored["path"]), terms, lines[1])
                    if want_lines
                    else (None, ())
                )
                hits.append(
                    Hit(
                        rank=rank,
                        path=stored["path"],
                        title=stored["title"],
                        tags=tuple(stored.get("tag_list") or ()),
                        created=created,
                        modified=modified,
                        score=round(float(hit.score or 0.0), 4) if sortedby is None else None,
                        snippets=self._snippets(stored["path"], terms, checked.get(stored["path"]))
                        if snippets
                        else (),
                        lines=around,
                        matching=matching,
                    )
                )
            notices = bound_notices(parsed)
        return total, hits, notices

    def rare_word(self, scan: int = 2000) -> str | None:
        """The word of the notes' text that the fewest notes (but at least 2) have, among the first `scan`
        words of four letters or more in the index; None when there is none."""
        ix = self._open()
        best: tuple[int, str] | None = None
        seen = 0
        with ix.searcher() as searcher:
            reader = searcher.reader()
            for term in reader.lexicon("body"):
                word = term.decode("utf-8", "replace") if isinstance(term, bytes) else str(term)
                if len(word) >= 4 and word.isalpha():
                    seen += 1
                    if seen > scan:
                        break
                    count = reader.doc_frequency("body", word)
                    if count >= 2 and (best is None or count < best[0]):
                        best = (count, word)
                        if count == 2:
                            break
        return best[1] if best else None

    def tag_words(self) -> frozenset[str]:
        """Every tag the index holds, in lower case, parents included (a tag of notes deleted since may
        stay until Whoosh merges the segment)."""
        ix = self._open()
        with ix.searcher() as searcher:
            words = searcher.reader().lexicon("tags")
            return frozenset(t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in words)

    def suggest(self, text: str) -> str | None:
        """For a query of plain words that matched nothing: the same words with each one the index does not
        hold replaced by the closest word it does (within two edits), or None."""
        words = text.split()
        if not words or len(words) > 8 or not all(w.isalnum() and len(w) <= 64 for w in words):
            return None  # (a word of over 64 letters is no word the index holds)
        from whoosh import query as wq

        from kb.index.document import analyzer

        analyze = analyzer()
        ix = self._open()
        changed = False
        out = []
        with ix.searcher() as searcher:
            reader = searcher.reader()
            corrector = searcher.corrector("body")
            for word in words:
                tokens = [t.text for t in analyze(word)]
                if tokens and all(
                    reader.frequency("body", t) or reader.frequency("title", t) for t in tokens
                ):
                    out.append(word)
                    continue
                near = _one_edit_away(word, reader)
                if near is not None:
                    out.append(near)
                    changed = True
                    continue
                # prefix=1: Whoosh compares every word of the index otherwise (seconds at 10,000 notes)
                found = corrector.suggest(normal_word(word), limit=1, maxdist=2, prefix=1)
                if not found:
                    out.append(word)
                    continue
                # The index holds stems ("postgr"): show the word as a note has it ("postgres").
                stem = found[0]
                hit = searcher.search(wq.Term("body", stem), limit=1)
                real = None  # held only by notes deleted since (Whoosh keeps their words until a merge): none
                if hit.scored_length():
                    body = self._body_text(hit[0]["path"])
                    real = next((w for w in _WORDS.findall(body) if normal_word(w) == stem), None)
                if real is None:  # never a bare stem ("résum"): only a word as a note has it
                    out.append(word)
                    continue
                out.append(real.lower())
                changed = True
        return " ".join(out) if changed else None

    def _body_text(self, path: str) -> str:
        try:
            raw = self.store.read_head(path, HEAD_BYTES)
        except KbError:
            return ""
        return raw.decode("utf-8", "replace")

    def _checked_entries(self, paths: list[str]) -> dict[str, Entry]:
        """The catalog's entries of `paths` (none when it cannot be read)."""
        try:
            catalog = self.catalog()
            if catalog is None:
                return {}
            with catalog:
                return catalog.get(paths)
        except CatalogError:
            return {}

    def _snippets(self, path: str, terms: frozenset[str], entry: Entry | None) -> tuple[Snippet, ...]:
        """Passages of the note's indexed body around the terms. When the catalog's entry was read from
        this very file (the same signature) and found nothing wrong with it, the body is the text after
        the front matter, without reading the YAML (nor importing its parser: a tenth of a cold search)."""
        try:
            raw, signature = self.store.read_head_signed(path, HEAD_BYTES)
        except KbError:
            return ()
        whole = None
        if entry is not None and entry.sig == signature and entry.problem is None:
            whole = plain_body(raw)
        if whole is None:
            whole = indexed_body(parse_note(raw, with_extra=False), raw)  # not document(): no links, tags
        if whole is None:
            return ()
        body = whole[:MAX_INDEXED_CHARS]
        found = snippets_of(body, terms) if terms else ()
        if found:
            return found
        lines = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
        return (Snippet(" ".join(lines[0].split())[:160], ()),) if lines else ()
