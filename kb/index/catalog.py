"""The catalog in index/: one SQLite row per indexed note with the (mtime_ns, size, inode) it was indexed at
and the fields commands list by (title, tags, dates, problems), and the links in each note (kb.links), so
"who links here" is a query, never a scan of the notes.

Comparing the rows' signatures with one lstat per file tells what changed outside kb without reading any
unchanged file; a title is found through an index on its case-folded key; a change rewrites only its own
rows. Like the Whoosh index beside it, the catalog is derived data: missing, damaged or of another version,
it is rebuilt from notes/.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from kb.notes import title_key

if TYPE_CHECKING:
    from kb.links import Link

CATALOG = "kb-catalog.sqlite3"
VERSION = 11  # bumped with the Whoosh schema (kb.index.document.schema) too: another version means a rebuild
# Versions read as this one, and marked as this one when opened: 10 is 11 without the postings blocks split
# in two (kb.index.postings), which a kb of version 10 cannot read (it rebuilds an index marked 11).
READ_AS_VERSION = ("10",)
SEP = "\x1f"

Signature = tuple[int, int, int]  # mtime_ns, size, inode
BUSY_TIMEOUT = 10.0  # seconds a change waits for another process's write
SHORTCUT_WAIT = 0.05  # seconds a search waits to record the scan that agreed (see remember_scan)
NO_CHANGE_YET = "0"  # the generation of a catalog whose rows have not changed since it was made
CHANGES_KEPT = 256  # generations whose changed rows are kept (Catalog.changed_since)
CHANGES_NAMED = 1000  # rows a change names at most; more is logged as "any row"
_CHANGES = "changes (generation INTEGER, path TEXT)"
# What was indexed of each note, hashed (kb.index.NoteIndex._apply), with the signature its row had then:
# a note touched, copied or restored with new times but the same bytes needs no indexing again. A digest
# holds only while its row keeps that signature (an earlier kb rewrites rows, never this table); a
# catalog made before it lacks the table until its first change.
_CONTENTS = "contents (path TEXT PRIMARY KEY, digest BLOB, mtime_ns INTEGER, size INTEGER, ino INTEGER)"
_HELD = (
    "contents c JOIN notes n ON n.path = c.path AND n.mtime_ns = c.mtime_ns AND n.size = c.size"
    " AND n.ino = c.ino"
)


def _chunks(values: Iterable[str]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The values, sorted and without repeats, 500 at a time (SQLite's limit on parameters), each chunk
    with the placeholders of its `IN (...)`."""
    wanted = sorted(set(values))
    for start in range(0, len(wanted), 500):
        chunk = tuple(wanted[start : start + 500])
        yield ",".join("?" * len(chunk)), chunk


def next_generation(generation: str) -> str:
    """The generation one change after `generation` (see Catalog.generation)."""
    made, _, count = generation.rpartition("/")
    return f"{made}/{int(count) + 1}" if count.isdigit() else ""


class Entry(NamedTuple):
    """What the catalog records of one note: its signature when indexed, and its listed fields.
    (A named tuple: tens of thousands are made per listing, and it is the fastest to make.)"""

    sig: Signature
    title: str
    tags: tuple[str, ...]
    created: str | None
    modified: str | None
    problem: str | None
    warnings: tuple[str, ...]
    links: tuple[Link, ...] = ()  # written with the row; read back only by the link queries


def _pack(items: Iterable[str]) -> str:
    items = tuple(items)
    if any(SEP in item for item in items):
        return json.dumps(list(items))
    return "".join(SEP + item for item in items)


def _unpack(text: str) -> tuple[str, ...]:
    if not text:
        return ()
    if text[0] == "[":
        return tuple(str(item) for item in json.loads(text))
    return tuple(text[1:].split(SEP))


_COLUMNS = "path, mtime_ns, size, ino, title, tkey, tags, created, modified, problem, warnings"
_READ = "path, mtime_ns, size, ino, title, tags, created, modified, problem, warnings"


def _row(path: str, e: Entry) -> tuple[object, ...]:
    return (path, *e.sig, e.title, title_key(e.title), _pack(e.tags), e.created, e.modified, e.problem,
            _pack(e.warnings))  # fmt: skip


def _entry(row: tuple[Any, ...], shared: dict[str, tuple[str, ...]]) -> tuple[str, Entry]:
    """A row as read back; SQLite gives back the types written (a damaged value fails here or later).
    `shared`: the tags already read, by their column's text: notes with the same tags share one tuple
    (at 100,000 notes, 13 MiB less in a warm server, which keeps every note's record)."""
    path, mtime, size, ino, title, tags, created, modified, problem, warnings = row
    if not isinstance(title, str) or not isinstance(mtime, int):
        raise TypeError(f"unexpected values in the row of {path!r}")
    sig = (mtime, size, ino)
    unpacked = shared.get(tags)
    if unpacked is None:
        unpacked = shared[tags] = _unpack(tags)
    return path, Entry(sig, title, unpacked, created, modified, problem, _unpack(warnings))


_LINK_COLUMNS = "src, line, kind, target, fragment, alias, embed, start, end_, key"


def _link_rows(path: str, links: Iterable[Link]) -> Iterator[tuple[object, ...]]:
    from kb.links import name_key

    for link in links:
        yield (path, link.line, link.kind, link.target, link.fragment, link.alias, int(link.embed),
               link.start, link.end, name_key(link.target))  # fmt: skip


def _link(row: tuple[Any, ...], make: type[Link]) -> tuple[str, Link]:
    src, line, kind, target, fragment, alias, embed, start, end = row
    if not isinstance(target, str) or not isinstance(line, int):
        raise TypeError(f"unexpected values in a link row of {src!r}")
    return src, make(kind, target, fragment, alias, bool(embed), line, start, end)


class CatalogError(Exception):
    """The catalog cannot be read or written (damaged, locked too long, read-only, another version)."""


class Catalog:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    # ------------------------------------------------------------ opening

    @classmethod
    def open(cls, folder: Path) -> Catalog | None:
        """The catalog in `folder`, or None when it is missing, damaged or of another version."""
        path = folder / CATALOG
        if not path.is_file():
            return None
        try:
            db = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=BUSY_TIMEOUT,
                                 isolation_level=None, check_same_thread=False)  # fmt: skip
        except sqlite3.Error:
            return None
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            if row is not None and row[0] in READ_AS_VERSION:
                with contextlib.suppress(sqlite3.Error):  # (read-only: no index is written either)
                    db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(VERSION),))
            elif row is None or row[0] != str(VERSION):
                raise sqlite3.DatabaseError("another version")
        except sqlite3.Error:
            db.close()
            return None
        catalog = cls(db)
        try:
            catalog._follow_copy(folder.parent)
        except (sqlite3.Error, OSError):
            catalog.close()
            return None
        return catalog

    def _follow_copy(self, root: Path) -> None:
        """A knowledge base copied (`cp -a`) or restored elsewhere has new inodes but the same files: when
        the root folder is not the one this catalog was written in, the inode of every note whose mtime and
        size are unchanged is taken over (one lstat each, nothing parsed), so the copy is not re-indexed.
        In place, a different inode still means a changed file (one renamed over another of the same size
        and mtime)."""
        st = os.stat(root)
        here = f"{st.st_dev}:{st.st_ino}"
        row = self.db.execute("SELECT value FROM meta WHERE key = 'folder'").fetchone()
        if row is not None and row[0] == here:
            return
        updates = []
        if row is not None:
            for path, mtime, size in self.db.execute("SELECT path, mtime_ns, size FROM notes").fetchall():
                try:
                    now = os.lstat(root / path)
                except OSError:
                    continue
                if now.st_mtime_ns == mtime and now.st_size == size:
                    updates.append((now.st_ino, path))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("UPDATE notes SET ino = ? WHERE path = ?", updates)
            with contextlib.suppress(sqlite3.OperationalError):  # no such table: an earlier kb's catalog
                self.db.executemany("UPDATE contents SET ino = ? WHERE path = ?", updates)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('folder', ?)", (here,))
            self._changed(None)
            self.db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise

    @classmethod
    def create(cls, folder: Path, entries: dict[str, Entry], digests: dict[str, bytes]) -> None:
        """Write a new catalog with these entries and the digests of what was indexed of each note (see
        _CONTENTS): built in a temp file, then renamed into place."""
        from kb.store import TEMP_PREFIX

        tmp = folder / f"{TEMP_PREFIX}{os.getpid()}-{CATALOG}"
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            db.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                "CREATE TABLE notes (path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, ino INTEGER,"
                " title TEXT, tkey TEXT, tags TEXT, created TEXT, modified TEXT, problem TEXT,"
                " warnings TEXT) WITHOUT ROWID;"
                "CREATE INDEX notes_tkey ON notes (tkey);"
                f"CREATE TABLE links ({_LINK_COLUMNS});"
                "CREATE INDEX links_src ON links (src);"
                "CREATE INDEX links_key ON links (key);"
                f"CREATE TABLE {_CONTENTS} WITHOUT ROWID;"
            )
            db.execute("BEGIN")
            db.execute("INSERT INTO meta VALUES ('version', ?)", (str(VERSION),))
            root = os.stat(folder.parent)
            db.execute("INSERT INTO meta VALUES ('folder', ?)", (f"{root.st_dev}:{root.st_ino}",))
            db.execute("INSERT INTO meta VALUES ('made', ?)", (os.urandom(8).hex(),))
            db.execute("INSERT INTO meta VALUES ('contents', 'all')")
            db.executemany(
                f"INSERT INTO notes ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (_row(path, entry) for path, entry in entries.items()),
            )
            db.executemany(
                f"INSERT INTO links ({_LINK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (row for path, entry in entries.items() for row in _link_rows(path, entry.links)),
            )
            db.executemany(
                "INSERT INTO contents VALUES (?,?,?,?,?)",
                ((path, digest, *entries[path].sig) for path, digest in digests.items()),
            )
            db.execute("COMMIT")
            db.close()
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, folder / CATALOG)
        except BaseException:
            db.close()
            tmp.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading

    def signatures(self) -> dict[str, Signature]:
        try:
            rows = self.db.execute("SELECT path, mtime_ns, size, ino FROM notes").fetchall()
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None
        return {path: (mtime, size, ino) for path, mtime, size, ino in rows}

    def _signatures_of(self, paths: Iterable[str]) -> dict[str, Signature]:
        found: dict[str, Signature] = {}
        for marks, chunk in _chunks(paths):
            sql = f"SELECT path, mtime_ns, size, ino FROM notes WHERE path IN ({marks})"
            for path, mtime, size, ino in self.db.execute(sql, chunk):
                found[path] = (mtime, size, ino)
        return found

    def generation(self) -> str:
        """The catalog's generation: it moves by one with every change to the rows; "MADE/N", MADE naming
        this catalog among those built before and after it (a rebuild starts again from 0)."""
        try:
            return self._generation()
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None

    def _generation(self) -> str:
        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'made')"))
        return f"{rows.get('made', '')}/{rows.get('generation', NO_CHANGE_YET)}"

    # ------------------------------------------------------------ the scan that agreed

    def agreed(self) -> tuple[str | None, str | None, str]:
        """In one snapshot: the digest (kb.store.scan_digest) of the last scan found equal to every row,
        unless a row changed since (equal to the digest of a new scan, the catalog is in step without its
        rows being read); the witness kept with it (kb.gitwitness: while it holds, the notes are as they
        were at that scan but for those it names; forgotten with the digest when a row changes, kept
        again by keep_witness); the generation."""
        try:
            self.db.execute("BEGIN")
            try:
                rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('scan', 'witness')"))
                generation = self._generation()
            finally:
                self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None
        digest, witness = rows.get("scan"), rows.get("witness")
        return (
            digest if isinstance(digest, str) else None,
            witness if isinstance(witness, str) else None,
            generation,
        )

    def keep_witness(self, witness: str, generation: str | None) -> None:
        """Keep `witness` again after a change that made the rows agree with the notes it names (see
        kb.index.NoteIndex.refresh), if no row changed since `generation`. Like remember_scan, only a
        shortcut: when the catalog is busy, nothing is kept."""

        def write() -> None:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('witness', ?)", (witness,))

        if generation is not None:
            self._shortcut(generation, write)

    def _shortcut(self, generation: str | None, write: Callable[[], None]) -> None:
        """Run `write` in a short transaction of its own if no row changed since `generation`; when the
        catalog is busy (SHORTCUT_WAIT) or read-only, nothing is written: what it keeps is only a shortcut."""
        try:
            self.db.execute(f"PRAGMA busy_timeout = {int(SHORTCUT_WAIT * 1000)}")
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if self._generation() == generation:
                    write()
                self.db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error:
            pass
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

    def signatures_at(self, paths: Collection[str] | None = None) -> tuple[dict[str, Signature], str]:
        """signatures() (of `paths` only, when given) with the catalog's generation (it moves with every
        change to the rows), read in one snapshot: what remember_scan needs to know that nothing changed in
        between."""
        try:
            self.db.execute("BEGIN")
            try:
                generation = self._generation()
                found = self.signatures() if paths is None else self._signatures_of(paths)
            finally:
                self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None
        return found, generation

    def remember_scan(self, digest: str, generation: str | None, witness: str | None = None) -> None:
        """Record that a scan of this digest equals every row, if no row changed since `generation` was
        read, with git's word on it (`witness`, see agreed). Only a shortcut for the next check:
        when the catalog is busy or read-only, nothing is kept."""

        def write() -> None:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'scan'").fetchone()
            if row is None or row[0] != digest:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('scan', ?)", (digest,))
                self.db.execute("DELETE FROM meta WHERE key = 'witness'")  # said of another scan
            if witness is not None:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('witness', ?)", (witness,))

        self._shortcut(generation, write)

    def _changed(self, paths: Iterable[str] | None) -> None:
        """Inside a write transaction that changes rows: the agreed scan no longer holds, a new generation,
        and which rows it changed (None: any of them), kept for the last CHANGES_KEPT generations."""
        self.db.execute("DELETE FROM meta WHERE key IN ('scan', 'witness')")
        self.db.execute(
            "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT (key)"
            " DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
        )
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        number = int(row[0])
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {_CHANGES}")
        self.db.execute("CREATE INDEX IF NOT EXISTS changes_generation ON changes (generation)")
        self.db.execute("DELETE FROM changes WHERE generation <= ?", (number - CHANGES_KEPT,))
        named = list(paths) if paths is not None else []
        if paths is None or len(named) > CHANGES_NAMED:
            named = []  # "any row" (an import's thousands are not worth keeping: a check compares them all)
        rows: list[tuple[int, str | None]] = [(number, p) for p in named]
        self.db.executemany("INSERT INTO changes VALUES (?, ?)", rows or [(number, None)])

    def changed_since(self, generation: str) -> tuple[set[str] | None, str]:
        """The paths of the rows changed since `generation` (one of this catalog's), with the generation now;
        None when that is not known (another catalog, changes older than the ones kept, or a change that
        did not say which rows, such as one made by an earlier kb)."""
        made, _, count = generation.rpartition("/")
        try:
            self.db.execute("BEGIN")
            try:
                now = self._generation()
                try:
                    rows = self.db.execute(
                        "SELECT generation, path FROM changes WHERE generation > ?", (int(count),)
                    ).fetchall()
                except sqlite3.OperationalError:  # no such table: a catalog no change was logged in yet
                    rows = None
            finally:
                self.db.execute("COMMIT")
        except (sqlite3.Error, ValueError) as exc:
            raise CatalogError(str(exc)) from None
        now_made, _, now_count = now.rpartition("/")
        if rows is None or now_made != made or not count.isdigit() or not now_count.isdigit():
            return None, now
        if int(now_count) <= int(count):
            return None, now  # the same generation, or an earlier one (an index/ put back from a copy)
        numbers = {number for number, _ in rows}
        if numbers != set(range(int(count) + 1, int(now_count) + 1)) or any(path is None for _, path in rows):
            return None, now
        return {path for _, path in rows}, now

    def count(self) -> int:
        try:
            return int(self.db.execute("SELECT count(*) FROM notes").fetchone()[0])
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None

    def entries(self) -> dict[str, Entry]:
        return dict(self._select("", ()))

    def get(self, paths: Iterable[str]) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        for marks, chunk in _chunks(paths):
            found.update(self._select(f"WHERE path IN ({marks})", chunk))
        return found

    def digests(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The digest of what was indexed of each of these notes that has one still held (see _CONTENTS)."""
        found: dict[str, bytes] = {}
        try:
            for marks, chunk in _chunks(paths):
                sql = f"SELECT c.path, c.digest FROM {_HELD} WHERE c.path IN ({marks})"
                found.update((path, digest) for path, digest in self.db.execute(sql, chunk))
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise CatalogError(str(exc)) from None
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None
        return found

    def with_key(self, key: str) -> dict[str, Entry]:
        """Entries whose title has this case-folded key (notes.title_key)."""
        return dict(self._select("WHERE tkey = ?", (key,)))

    def links_from(self, path: str) -> list[Link]:
        """The links in one note, in order."""
        return [link for _, link in self._links("WHERE src = ?", (path,))]

    def links_named(self, keys: Iterable[str]) -> list[tuple[str, Link]]:
        """(source, link) of every link filed under one of these keys (kb.links.name_key): the links that
        may lead to a note of that file name or title."""
        found: list[tuple[str, Link]] = []
        for marks, chunk in _chunks(keys):
            found.extend(self._links(f"WHERE key IN ({marks})", chunk))
        return found

    def all_links(self) -> list[tuple[str, Link]]:
        return self._links("", ())

    def _links(self, where: str, args: tuple[object, ...]) -> list[tuple[str, Link]]:
        from kb.links import Link  # links are read and written by few commands: a search loads none

        try:
            rows = self.db.execute(
                f"SELECT src, line, kind, target, fragment, alias, embed, start, end_ FROM links {where}"
                " ORDER BY src, start",
                args,
            ).fetchall()
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None
        try:
            return [_link(row, Link) for row in rows]
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"a damaged link row: {exc}") from None

    def _select(self, where: str, args: tuple[object, ...]) -> Iterator[tuple[str, Entry]]:
        try:
            rows = self.db.execute(f"SELECT {_READ} FROM notes {where}", args).fetchall()
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None
        try:
            shared: dict[str, tuple[str, ...]] = {}
            return iter([_entry(row, shared) for row in rows])
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"a damaged row: {exc}") from None

    # ------------------------------------------------------------ writing

    def undigested(self, limit: int) -> dict[str, Signature]:
        """Up to `limit` rows without a digest held, with their signatures: a catalog made by an earlier kb
        has none (NoteIndex.refresh fills them in); {} once every row had one."""
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'contents'").fetchone()
            if row is not None and row[0] == "all":
                return {}
            table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'contents'"
            held = (
                f" WHERE path NOT IN (SELECT c.path FROM {_HELD})"
                if self.db.execute(table).fetchone()
                else ""
            )
            sql = f"SELECT path, mtime_ns, size, ino FROM notes{held} LIMIT ?"
            rows = self.db.execute(sql, (limit,)).fetchall()
            generation = self._generation()
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None
        if not rows:

            def write() -> None:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('contents', 'all')")

            self._shortcut(generation, write)
        return {path: (mtime, size, ino) for path, mtime, size, ino in rows}

    def add_digests(self, digests: dict[str, bytes], sigs: dict[str, Signature]) -> None:
        """Keep these digests, each only while its row still has the signature given (undigested)."""
        self._write(
            "INSERT OR REPLACE INTO contents SELECT path, ?, mtime_ns, size, ino FROM notes"
            " WHERE path = ? AND mtime_ns = ? AND size = ? AND ino = ?",
            [(digest, path, *sigs[path]) for path, digest in digests.items()],
        )

    def forget_digests(self, paths: Collection[str]) -> None:
        """Forget what was indexed of these notes, before the index is written for them: should their rows
        not follow (a failure, a kill), no digest says the index holds what a file holds."""
        self._write("DELETE FROM contents WHERE path = ?", [(path,) for path in paths])

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        """`sql` for each of `rows`, in one transaction, the contents table made first if need be."""
        if not rows:
            return
        with self._writing():
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {_CONTENTS}")
            self.db.executemany(sql, rows)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back when it raises; SQLite's
        errors raised as CatalogError."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise CatalogError(str(exc)) from None

    def resign(self, sigs: dict[str, Signature], digests: dict[str, bytes]) -> int:
        """Give these rows new signatures, nothing else changed, each only while the digest it holds is
        still the one given (another process may have indexed the note meanwhile): NoteIndex.retouch.
        How many rows did."""
        if not sigs:
            return 0
        done = 0
        with self._writing():
            for path, sig in sigs.items():
                held = self.db.execute(f"SELECT c.digest FROM {_HELD} WHERE c.path = ?", (path,)).fetchone()
                if held is None or held[0] != digests[path]:
                    continue
                self.db.execute(
                    "UPDATE notes SET mtime_ns = ?, size = ?, ino = ? WHERE path = ?", (*sig, path)
                )
                self.db.execute(
                    "UPDATE contents SET mtime_ns = ?, size = ?, ino = ? WHERE path = ?", (*sig, path)
                )
                done += 1
            if done:
                self._changed(list(sigs))
        return done

    def apply(self, put: dict[str, Entry], drop: Iterable[str], digests: dict[str, bytes]) -> None:
        """Replace and remove rows in one transaction; `digests`: those of the notes in `put` (see create)."""
        with self._writing():
            gone = [*drop, *put]
            self._changed(gone)
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {_CONTENTS}")
            self.db.executemany("DELETE FROM contents WHERE path = ?", ((p,) for p in gone))
            self.db.executemany(
                "INSERT INTO contents VALUES (?,?,?,?,?)",
                ((path, digest, *put[path].sig) for path, digest in digests.items()),
            )
            self.db.executemany("DELETE FROM notes WHERE path = ?", ((p,) for p in drop))
            self.db.executemany("DELETE FROM links WHERE src = ?", ((p,) for p in gone))
            self.db.executemany(
                f"INSERT OR REPLACE INTO notes ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (_row(path, entry) for path, entry in put.items()),
            )
            self.db.executemany(
                f"INSERT INTO links ({_LINK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (row for path, entry in put.items() for row in _link_rows(path, entry.links)),
            )
