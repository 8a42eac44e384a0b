"""The history index in index/history/: every distinct version of every note ever committed, one Whoosh
document per blob (a version shared by many revisions or paths is indexed once), with the same content
fields as the index of the current notes (kb.index.document).

A version's fields that come from its path (the title of a note that has none in its text, its
folder) are those of the first path that held it. Which commits, paths and revisions hold a blob is not
stored here: the revision cache
(kb.history.revcache) answers that. Beside Whoosh's files, `state.json` names the commit the index was
brought up to. Before each use the index takes in the blobs of the commits reachable from HEAD that it has
not seen (kb's own, other tools', a pull), read in bulk with `git cat-file --batch`; when HEAD no longer
descends from that commit (history rewritten), or the index is missing or damaged, it is built anew from
git alone. Writing happens under the knowledge base's write lock. Derived data: deleting it loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.errors import KbError
from kb.index import bulk
from kb.index.document import DATE_FIELDS, document, schema, writable
from kb.index.postings import fast_postings
from kb.store import INDEX_DIR, Store

if TYPE_CHECKING:
    from kb.history import History

HISTORY_DIR = "history"
STATE = "state.json"
VERSION = 8  # bumped with the Whoosh schema of the notes (kb.index.document.schema)
READ_AS_VERSION = (7,)  # 8 without the postings blocks split in two (see kb.index.catalog.READ_AS_VERSION)
WRITER_TIMEOUT = 10.0
BATCH = 1000  # blobs read from git at once
MERGE_AFTER_SEGMENTS = 8

Progress = Callable[[int, int], None]


class HistoryUnavailable(KbError):
    """History cannot be searched here (no revision cache, git failing)."""


UNUSED_FIELDS = ("title_sort", "tag_list", "dates")


def history_schema() -> Any:
    """The current notes' schema, with the version's blob id (raw bytes, a column: never searched); no
    stored fields (a hit's title and snippets come from its blob), no title to sort by (history is ranked
    by relevance only); dates in 2 tiers of terms instead of 8, the exact moment and its 71-minute span (a
    date range reads the same; most versions have a `modified` of their own, and each term written costs
    as much as a block of postings)."""
    from whoosh import columns, fields

    found = schema()
    for name in UNUSED_FIELDS:
        found.remove(name)
    for name in ("path", "title"):
        found[name].stored = False  # a hit's title and path come from git, its blob read again
    found.add("blob", fields.COLUMN(columns.VarBytesColumn()))
    for name in DATE_FIELDS:
        found[name].shift_step = 32
    return found


@dataclass(frozen=True)
class BlobHit:
    blob: str
    score: float


@dataclass(frozen=True)
class Update:
    commits: int  # new commits taken in
    blobs: int  # new blobs indexed
    rebuilt: bool


class HistoryIndex:
    def __init__(self, root: Path, history: History, store: Store | None = None) -> None:
        self.root = root
        self.history = history
        self.store = store if store is not None else Store(root)
        self.folder = root / INDEX_DIR / HISTORY_DIR

    # ------------------------------------------------------------ state

    def _state(self) -> str | None:
        """The commit the index was brought up to, or None when there is no usable index."""
        try:
            data = json.loads((self.folder / STATE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") not in (VERSION, *READ_AS_VERSION):
            return None
        head = data.get("head")
        has_toc = any(name.endswith(".toc") for name in _listing(self.folder))
        return head if isinstance(head, str) and has_toc else None

    def _write_state(self, head: str) -> None:
        tmp = self.folder / f".{STATE}.tmp"
        tmp.write_text(json.dumps({"version": VERSION, "head": head}))
        os.replace(tmp, self.folder / STATE)

    def head(self) -> str | None:
        return self.history.head()

    # ------------------------------------------------------------ the front door

    def ensure_fresh(self, progress: Progress | None = None, force: bool = False) -> Update:
        """The index holding every blob of every commit reachable from HEAD: the new commits' blobs added,
        or everything built anew when the index is missing, damaged, or HEAD was rewritten."""
        from kb import config
        from kb.index import damage_errors
        from kb.store import exclusive_lock

        head = self.head()
        if not force and self._state() == head:
            return Update(0, 0, False)
        with exclusive_lock(self.root, config.lock_timeout()):
            known = None if force else self._state()
            if known == head:
                return Update(0, 0, False)
            if head is None:
                self._clear()
                return Update(0, 0, False)
            if known is not None and self._descends(head, known):
                # the revision cache has just read exactly these commits when it was at `known` too
                added = self.history.revision_cache().added
                if added is not None and added[:2] == (known, head):
                    commits: list[str] | None = added[2]
                else:
                    commits = self.history.commits_since(known, head)
                if commits is not None:
                    try:
                        return self._extend(head, commits)
                    except damage_errors():
                        pass
            return self._build(head, progress)

    def _descends(self, head: str, known: str) -> bool:
        """Whether `head` descends from `known`: the revision cache, brought up to `head`, holds exactly the
        commits reachable from it."""
        from kb.history.revcache import CacheUnavailable

        try:
            return self.history.revision_cache().number_of(head, known) is not None
        except CacheUnavailable as exc:
            raise HistoryUnavailable(f"cannot read the revision cache ({exc})") from None

    def searcher_results(self, parsed: Any, tag: str | None) -> tuple[list[BlobHit], frozenset[str]]:
        """Every blob the query matches, best first, and the body terms it matches (for snippets)."""
        from whoosh import query as wq

        from kb.index import lengths_in_memory
        from kb.index.query import body_terms

        ix = self._open()
        with ix.searcher() as searcher:
            lengths_in_memory(searcher)  # every match is scored
            filter_q: Any = wq.Term("tags", tag.lower()) if tag else None
            results = searcher.search(parsed, limit=None, filter=filter_q)
            reader = searcher.reader()
            blobs = reader.column_reader("blob")
            found = [
                BlobHit(bytes(blobs[docnum]).hex(), float(score or 0.0)) for docnum, score in results.items()
            ]
            terms = body_terms(parsed, reader) if found else frozenset()
        return found, terms

    # ------------------------------------------------------------ building

    def _open(self) -> Any:
        from whoosh import index

        fast_postings()
        return index.open_dir(str(self.folder))

    def _clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        # what a build's second process left if the build was killed
        shutil.rmtree(self.folder.with_name(self.folder.name + ".part"), ignore_errors=True)

    def _build(self, head: str, progress: Progress | None) -> Update:
        from whoosh import index

        from kb.history.revcache import CacheUnavailable

        self._clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            rows = self.history.revision_cache().blobs(head)
        except CacheUnavailable as exc:
            raise HistoryUnavailable(f"cannot read the revision cache ({exc})") from None
        rows.sort(key=lambda row: (row[1], row[2]))  # a note's versions one after another, oldest first
        ix = index.create_in(str(self.folder), history_schema())
        from whoosh.codec.whoosh3 import W3Codec

        # Blocks of 512 postings instead of 128 (a quarter of the blocks to write for the many versions of
        # a common word), compressed at zlib's fastest level (a segment's codec is stored with it; readers
        # read blocks of any size and level).
        codec = W3Codec(blocklimit=512, compression=1)
        options = {"timeout": WRITER_TIMEOUT, "limitmb": 256, "compound": False, "codec": codec}
        try:
            count = bulk.write(ix, self.folder, rows, self._versions, self._sizes, progress, **options)
        except bulk.BulkError as exc:
            raise HistoryUnavailable(f"cannot build the history index ({exc})") from None
        self._write_state(head)
        return Update(-1, count, True)

    def _extend(self, head: str, commits: list[str]) -> Update:
        from kb.history.revcache import CacheUnavailable

        try:
            rows = self.history.revision_cache().blobs(head, commits) if commits else []
        except CacheUnavailable as exc:
            raise HistoryUnavailable(f"cannot read the revision cache ({exc})") from None
        count = 0
        if rows:  # blobs new in these commits (a revert or a move brings none)
            ix = self._open()
            writer = ix.writer(timeout=WRITER_TIMEOUT, compound=False)
            try:
                for doc in self._versions(rows):
                    if doc is not None:
                        writer.add_document(**doc)
                        count += 1
                writer.commit(merge=len(ix._segments()) > MERGE_AFTER_SEGMENTS)
            except BaseException:
                with contextlib.suppress(Exception):
                    writer.cancel()
                raise
        self._write_state(head)
        return Update(len(commits), count, False)

    def _sizes(self, rows: Sequence[tuple[str, str, str]]) -> list[int]:
        """The size of each (blob, path, date) row's blob (what a version costs to index)."""
        return self.history.blob_sizes([blob for blob, _, _ in rows])

    def _versions(self, rows: Sequence[tuple[str, str, str]]) -> Iterator[dict[str, Any] | None]:
        """The document of each (blob, path, date) row's version, or None where it is not a note's; blobs
        read from one `git cat-file` while the documents are made."""
        notes = [self.store.is_note_path(path) for _, path, _ in rows]
        folders: dict[str, str] = {}  # a note's versions share its path
        contents = self.history.stream_blobs([row[0] for row, note in zip(rows, notes, strict=True) if note])
        try:
            for (blob, path, date), note in zip(rows, notes, strict=True):
                raw = next(contents) if note else None
                if raw is None:
                    yield None
                    continue
                folder = folders.get(path)
                if folder is None:
                    folder = folders[path] = self.store.layout.folder_of(path)
                doc = document(path, raw, _dated(date), folder, links=False)
                if doc is None:
                    yield None
                    continue
                fields = writable(doc)
                for name in UNUSED_FIELDS:
                    del fields[name]
                fields["blob"] = bytes.fromhex(blob)
                yield fields
        finally:
            contents.close()


def _dated(date: str) -> Callable[[str], tuple[str | None, str | None]]:
    """Dates for a version whose front matter has none: the date of the commit that first held it."""

    def dates(_path: str) -> tuple[str | None, str | None]:
        return date, date

    return dates


def _listing(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []
