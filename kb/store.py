"""The files of a knowledge base: its layout (kb.layout), listing the notes at any depth, atomic writes, the
write lock, and paths that never leave the notes root."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kb.errors import FileAppeared, KbError, LockTimeout, RehearsalStopped, UsageError
from kb.layout import (
    ATTACHMENTS_DIR,
    INDEX_DIR,
    MARKDOWN_SUFFIXES,
    NOTABLE_NOTES,
    SKIPPED_FOLDERS,
    Layout,
    detect,
)

NOTES_DIR = NOTABLE_NOTES
NOTE_SUFFIXES = MARKDOWN_SUFFIXES
TEMP_PREFIX = ".kb-tmp-"
BUILDING_INDEX = f"{TEMP_PREFIX}index"  # a search index being built, beside index/ (NoteIndex.rebuild)
JOURNAL = "kb-journal"  # in .git/ while a change is under way (kb.service.transaction)
SYNC_MARKER = "kb-sync-merge"  # in .git/ while kb sync has a merge under way (kb.service.sync)
Scan = tuple[dict[str, tuple[int, int, int]], tuple[str, ...]]  # each note's signature, and warnings
__all__ = [
    "ATTACHMENTS_DIR",
    "INDEX_DIR",
    "NOTES_DIR",
    "NOTE_SUFFIXES",
    "Layout",
    "Listing",
    "Store",
    "file_times",
    "scan_digest",
]


@dataclass(frozen=True)
class Listing:
    """The notes a walk of the notes folder found, and what it says of the files it left out."""

    paths: tuple[str, ...]  # relative to the root, posix form: "notes/Title.md"
    warnings: tuple[str, ...]


def dead_run(root: Path) -> bool:
    """Whether a kb run died here mid-change (its journal is in .git) or mid-sync (its merge's marker):
    reading commands finish it first (kb.service.transaction.recover), which only then is imported."""
    git = root / ".git"
    return (git / JOURNAL).exists() or (git / SYNC_MARKER).exists()


def _stat_all(folder: str, names: list[str]) -> list[tuple[int, int, int] | None]:
    """(mtime_ns, size, inode) of each file in `folder`, None for one that is gone. Relative to the open
    folder: no path walk per file (a quarter faster than DirEntry.stat; a second thread was slower)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return [None] * len(names)
    out: list[tuple[int, int, int] | None] = []
    stat = os.stat
    try:
        for name in names:
            try:
                st = stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                out.append(None)
                continue
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    finally:
        os.close(fd)
    return out


def _utf8_name(name: str, base: str, warnings: list[str]) -> bool:
    """kb.notes.is_utf8(name); if not, a warning says that it is not read."""
    from kb.notes import is_utf8, shown_name

    if is_utf8(name):
        return True
    warnings.append(f"{shown_name(base + name)}: the name is not UTF-8; not read (rename it)")
    return False


def scan_digest(found: dict[str, tuple[int, int, int]]) -> str | None:
    """A digest of a scan (Store.scan's paths, in their order, and signatures): two scans with the same
    digest found the same notes with the same (mtime_ns, size, inode). None when a value does not fit
    64 bits (then there is no shortcut: the catalog's rows are compared)."""
    import hashlib
    from array import array
    from itertools import chain

    h = hashlib.blake2b(digest_size=20)
    h.update(b"%d\0" % len(found))
    h.update("\0".join(found).encode("utf-8", "surrogateescape"))
    try:
        h.update(array("q", chain.from_iterable(found.values())).tobytes())
    except OverflowError:
        return None
    return h.hexdigest()


# The warm server's promise (kb.server), per knowledge base folder (device, inode): nothing under it changed
# since this scan, and the index's catalog agrees with it. Never set on the cold path; anything that takes
# the write lock forgets it, so a process that writes always sees the disk.
_SETTLED: dict[tuple[int, int], Scan] = {}


def _folder_id(root: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    return st.st_dev, st.st_ino


# The settled scan with which the warm server found the search index usable (kb.freshness.Freshness.check:
# its catalog of this version, its segments there): a search's refresh then trusts it without opening them.
_INDEX_USABLE: dict[tuple[int, int], Scan] = {}


def vouch_index(root: Path) -> None:
    """For the warm server: the search index was found usable with the notes as settled now."""
    key = _folder_id(root)
    scan = _SETTLED.get(key) if key is not None else None
    _INDEX_USABLE.clear()
    if key is not None and scan is not None:
        _INDEX_USABLE[key] = scan


def index_vouched(root: Path) -> bool:
    """Whether the warm server found the search index usable with the notes as they are settled (the very
    scan settled: a later settle, or none, undoes it)."""
    if not _INDEX_USABLE:
        return False
    key = _folder_id(root)
    if key is None:
        return False
    scan = _SETTLED.get(key)
    return scan is not None and _INDEX_USABLE.get(key) is scan


def settle(root: Path, scan: Scan | None) -> None:
    """For the warm server: `scan` is what Store(root).scan() would find (None: forget it)."""
    key = _folder_id(root)
    _forget_settled()
    if key is not None and scan is not None:
        _SETTLED[key] = scan


_SETTLED_VALUES: dict[str, object] = {}
# Set in a warm server's worker (keep_what_is_forgotten): what it forgets is kept, never freed. A worker is
# a fork of the server and ends with os._exit; freeing the server's scan and listings (every note's record)
# there would write to each page that holds them, copying it: 8-13 ms of a write at 10,000 notes.
_KEEPING: list[bool] = []
_FORGOTTEN: list[object] = []


def keep_what_is_forgotten() -> None:
    """From now on, the scan and values this process forgets are kept alive, not freed (see _KEEPING)."""
    _KEEPING.append(True)


def _forget_settled() -> None:
    if _KEEPING:
        _FORGOTTEN.append((_SETTLED.copy(), _SETTLED_VALUES.copy()))
    _SETTLED.clear()
    _SETTLED_VALUES.clear()


def settled_value(root: Path, name: str) -> object | None:
    """What was worked out from the settled notes of `root` under `name` (lookup.all_notes keeps every
    note's record here), or None."""
    return _SETTLED_VALUES.get(name) if settled(root) is not None else None


def settle_value(root: Path, name: str, value: object) -> None:
    """Keep `value`, worked out from the notes while they are settled, until they change."""
    if settled(root) is not None:
        _SETTLED_VALUES[name] = value


def settled_values(root: Path) -> dict[str, object]:
    """Everything kept with settle_value for the settled notes of `root` (empty when they are not)."""
    return dict(_SETTLED_VALUES) if settled(root) is not None else {}


def settled(root: Path) -> Scan | None:
    """The scan the warm server vouches for (see settle), or None: scan the disk."""
    if not _SETTLED:
        return None
    key = _folder_id(root)
    return _SETTLED.get(key) if key is not None else None


def name_keys(folder: str | Path) -> frozenset[str]:
    """The title key (NFC, case-folded: kb.notes.title_key) of every name in `folder`, whatever it names;
    empty when the folder cannot be read. Made in C: title_key called 100,000 times costs 0.1 s."""
    return frozenset(_name_keys(folder))


def _name_keys(folder: str | Path) -> Iterator[str]:
    import unicodedata
    from functools import partial

    try:
        names = os.listdir(folder)
    except OSError:
        return iter(())
    return map(str.casefold, map(partial(unicodedata.normalize, "NFC"), names))


def name_key(name: str) -> str:
    """One name's key, as name_keys makes them."""
    import unicodedata

    return unicodedata.normalize("NFC", name).casefold()


def folder_names(folder: str | Path) -> FolderNames:
    """name_keys(folder), kept as the warm server keeps them."""
    return FolderNames(_name_keys(folder))


class FolderNames:
    """A folder's name_keys as the warm server keeps them: a sorted array of their hashes, 8 bytes a name
    where a set of the keys takes about 100 (10 MB at 100,000 notes). `key in names` is True for every key
    that is there; for one that is not, only a collision of 64-bit hashes (about one lookup in 10^14 at
    100,000 names) would say it is there too, and that costs a new note's name a " (2)", never a file."""

    def __init__(self, keys: Iterable[str]) -> None:
        from array import array

        self._hashes = array("q", sorted(set(map(hash, keys))))

    def __contains__(self, key: object) -> bool:
        from bisect import bisect_left

        h = hash(key)
        i = bisect_left(self._hashes, h)
        return i < len(self._hashes) and self._hashes[i] == h

    def __len__(self) -> int:
        return len(self._hashes)

    def with_keys(self, keys: Iterable[str]) -> FolderNames:
        """These names and `keys` (a new object: workers forked earlier keep theirs)."""
        from bisect import bisect_left

        made = FolderNames(())
        made._hashes = hashes = self._hashes[:]  # copied in C: 0.1 ms at 100,000 names
        for h in map(hash, keys):
            i = bisect_left(hashes, h)
            if i == len(hashes) or hashes[i] != h:
                hashes.insert(i, h)
        return made


# Each folder's names, by its path relative to the notes root ("" for the root itself), as the warm server
# listed them after the scan it vouches for.
Names = dict[str, FolderNames]


class Store:
    def __init__(self, root: Path, layout: Layout | None = None) -> None:
        self.root = root
        self.layout = layout if layout is not None else detect(root)
        self.prefix = self.layout.prefix  # "notes/" or "": what every note path starts with
        self.notes = root / self.layout.notes if self.layout.notes else root
        self._kept: Scan | None = None
        self._adopted: Scan | None = None  # the kept scan, while it is the one adopt() took
        self._names: Names | None = None  # the folders' names with it, until this Store changes a file

    # ------------------------------------------------------------ paths

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def where(self) -> str:
        return f"{self.layout.notes}/" if self.layout.notes else "the knowledge base"

    def abs(self, rel: str) -> Path:
        """The absolute path of a file given relative to the root; refuses anything outside the notes root
        (but for Notable's attachments/ beside notes/), in a dot-folder or in kb's own index/."""
        candidate = (self.root / rel).absolute()
        notes = self.notes.absolute()
        if self.layout.notes and rel.startswith(ATTACHMENTS_DIR + "/"):
            notes = (self.root / ATTACHMENTS_DIR).absolute()
        try:
            inner = candidate.relative_to(notes)
        except ValueError:
            raise UsageError(f"{rel} is not inside {self.where()}") from None
        if any(part in ("..", "") for part in inner.parts) or not inner.parts:
            raise UsageError(f"{rel} is not inside {self.where()}")
        if any(part.startswith(".") for part in inner.parts[:-1]) or (
            not self.layout.notes and len(inner.parts) > 1 and inner.parts[0] in (INDEX_DIR, ".git")
        ):
            raise UsageError(f"{rel} is not a place for notes (a hidden folder or kb's index/)")
        return candidate

    def is_note_path(self, rel: str) -> bool:
        """Whether a root-relative path names a note under this knowledge base's layout."""
        return self.layout.is_note_path(rel)

    def is_safe_file(self, path: Path) -> bool:
        """A regular file, not a link, whose real location is inside the notes root (and the root)."""
        try:
            if path.is_symlink() or not path.is_file():
                return False
            real = path.resolve()
            return real.is_relative_to(self.notes.resolve()) and real.is_relative_to(self.root.resolve())
        except OSError:
            return False

    # ------------------------------------------------------------ listing

    def list_notes(self) -> Listing:
        """Every note file under notes/ (sub-folders too), sorted. Links and hidden files are skipped."""
        paths, _, warnings = self._walk(with_stat=False)
        return Listing(tuple(sorted(paths)), tuple(warnings))

    def scan(self, keep: bool = False) -> Scan:
        """Every note file with its (mtime_ns, size, inode), from one lstat each: what changed since a
        previous scan shows here without reading any file. `keep`: the next scan() answers from this one
        unless this Store writes or deletes a file first (used while holding the lock)."""
        if self._kept is not None:
            found = self._kept
        elif (known := settled(self.root)) is not None:
            found = known
        else:
            paths, stats, warnings = self._walk(with_stat=True)
            found = dict(zip(paths, stats, strict=True)), tuple(warnings)
        self._kept = found if keep else None
        return (dict(found[0]) if keep else found[0]), found[1]

    def adopt(self, scan: Scan, names: Names | None = None) -> None:
        """Keep `scan` (the warm server's, vouched for under the write lock) as scan(keep=True) would: the
        next scan() answers from it until this Store writes or deletes a file. `names`: the folders' names
        the server listed with it (name_keys answers from them until this Store writes or deletes a file)."""
        self._kept = self._adopted = scan  # not copied (13 ms at 100,000 notes): scan() hands it out as is
        self._names = names

    def name_keys(self, folder: str = "") -> Container[str]:
        """The title keys of every name in `folder` (relative to the notes root): what a new file's name
        must not be, in any case. From the warm server's listing, adopted with its scan, when it has that
        folder and this Store has changed no file since; otherwise read from the folder."""
        if self._names is not None and (known := self._names.get(folder)) is not None:
            return known
        return name_keys(self.notes / folder if folder else self.notes)

    @property
    def vouched(self) -> bool:
        """The kept scan is the warm server's, vouched for under the write lock, and the index's catalog
        agreed with it (kb.server's vouch): a title is looked up without comparing every row."""
        return self._kept is not None and self._kept is self._adopted

    def rescan(self, previous: Scan, layout: Layout, touched: Iterable[str]) -> tuple[Scan, set[str]] | None:
        """scan(keep=True) worked out from `previous` (an earlier scan of this store) and the files in
        `touched` (absolute paths: all the files that may have changed since, as the file system's change
        events name them), with one lstat each instead of a walk of every folder. None when one of them
        needs the walk: a link or anything but a file where a note may be, a file outside the notes, the
        settings or ignore files (they change what is a note); or when `layout`, the one `previous` was made
        with, is not this store's now. With the scan, the notes' paths among `touched`."""
        if layout != self.layout or previous[1]:
            return None  # another layout; or warnings (links, unreadable folders) only a walk keeps true
        found = dict(previous[0])
        looked: set[str] = set()
        notes = str(self.notes)
        layout = self.layout
        for path in touched:
            folder, _, name = path.rpartition("/")
            if folder == notes:
                sub = ""
            elif folder.startswith(notes + "/"):
                sub = folder[len(notes) + 1 :]
            else:
                return None  # beside the notes (kb.toml, .gitignore, a Markdown file next to notes/...)
            rel_folder = "/".join(x for x in (layout.notes, sub) if x)
            # each folder below the notes root as the walk looks at it (by its root-relative path)
            base = layout.notes
            skipped = False
            for part in sub.split("/") if sub else []:
                skipped = part[:1] == "." or part in SKIPPED_FOLDERS or (not base and part == INDEX_DIR)
                base = f"{base}/{part}" if base else part
                if skipped or (layout.ignore and layout.ignored(base)):
                    skipped = True
                    break
            if skipped:
                continue  # a folder the walk does not enter
            rel = f"{rel_folder}/{name}" if rel_folder else name
            if name.startswith(TEMP_PREFIX):
                continue  # kb's own file being written: not a note, and gone when the note is in place
            if name[:1] == "." or not name.endswith(NOTE_SUFFIXES):
                if not rel_folder:
                    return None  # the notes root is the knowledge base's: its settings, .gitignore
                if name[:1] != "." and os.path.islink(path):
                    return None  # a link to a folder, perhaps: the walk warns of it
                continue
            if not path.isascii() and not _utf8_name(path, "", []):
                return None  # the walk warns of it
            looked.add(rel)
            if layout.ignore and layout.ignored(rel):
                found.pop(rel, None)
                continue
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                found.pop(rel, None)
                continue
            except OSError:
                return None
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                # a link (the walk warns of it), a folder of that name; a file of several names, whose
                # other names change with it and no event names them
                return None
            found[rel] = (st.st_mtime_ns, st.st_size, st.st_ino)
        self._kept = (found, previous[1])
        return (dict(found), previous[1]), looked

    def settled(self) -> bool:
        """Whether the warm server vouches that nothing changed since its last scan (see settle)."""
        return self._kept is None and settled(self.root) is not None

    def _walk(self, with_stat: bool) -> tuple[list[str], list[tuple[int, int, int]], list[str]]:
        paths: list[str] = []
        stats: list[tuple[int, int, int]] = []
        warnings: list[str] = []
        if not self.notes.is_dir():
            return paths, stats, warnings
        layout = self.layout
        stack = [(str(self.notes), layout.notes)]
        ignore = bool(layout.ignore)
        while stack:
            folder, rel_folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                warnings.append(f"{rel_folder}: cannot be read ({exc.strerror})")
                continue
            # The common case (a regular .md file) costs one lstat and no other system call: DirEntry's
            # is_file/is_dir/is_symlink answer from the directory listing itself.
            names: list[str] = []
            base = f"{rel_folder}/" if rel_folder else ""
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                try:
                    if name.endswith(NOTE_SUFFIXES) and entry.is_file(follow_symlinks=False):
                        if not ignore or not layout.ignored(base + name):
                            names.append(name)
                    elif entry.is_dir(follow_symlinks=False):
                        if name in SKIPPED_FOLDERS or (not base and name == INDEX_DIR):
                            continue
                        if (not ignore or not layout.ignored(base + name)) and _utf8_name(
                            name, base, warnings
                        ):
                            stack.append((entry.path, base + name))
                    elif entry.is_symlink():
                        kind = "folder" if entry.is_dir() else "file"
                        if kind == "folder" or name.endswith(NOTE_SUFFIXES):
                            warnings.append(f"{base}{name}: a symbolic link to a {kind}; not followed")
                except OSError:
                    continue
            if not "".join(names).isascii():  # at C speed: the common case has nothing to look at
                names = [name for name in names if _utf8_name(name, base, warnings)]
            if with_stat:
                found = _stat_all(folder, names)
                names = [name for name, st in zip(names, found, strict=True) if st is not None]
                stats.extend(st for st in found if st is not None)
            paths.extend(base + name for name in names)
        return paths, stats, warnings

    def _folders(self) -> list[tuple[str, str]]:
        """Every folder that may hold notes: (absolute path, root-relative path)."""
        out: list[tuple[str, str]] = []
        stack = [(str(self.notes), self.layout.notes)]
        while stack:
            folder, rel = stack.pop()
            out.append((folder, rel))
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        sub = f"{rel}/{entry.name}" if rel else entry.name
                        if entry.is_dir(follow_symlinks=False) and not self.layout.skips_folder(
                            sub, entry.name
                        ):
                            stack.append((entry.path, sub))
            except OSError:
                continue
        return out

    def note_folders(self) -> list[str]:
        """Every folder where notes may be, root-relative ("notes", "notes/sub"; "" for the root itself)."""
        return [rel for _, rel in self._folders()]

    def folders(self) -> list[str]:
        """The folders under the notes root that hold notes or folders, relative to the notes root."""
        n = len(self.prefix)
        return sorted(rel[n:] for _, rel in self._folders() if rel[n:])

    def read(self, rel: str) -> bytes:
        path = self.abs(rel)
        if path.is_symlink():
            raise KbError(f"{rel} is a symbolic link; kb does not follow links")
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise KbError(f"{rel} does not exist") from None
        except OSError as exc:
            raise KbError(f"cannot read {rel}: {exc.strerror}") from None

    def read_head(self, rel: str, limit: int) -> bytes:
        """At most the first `limit` bytes of a note (a huge one is not read whole to list or index it)."""
        return self.read_head_signed(rel, limit)[0]

    def read_head_signed(self, rel: str, limit: int) -> tuple[bytes, tuple[int, int, int]]:
        """read_head(), with the signature (mtime_ns, size, inode) of the file it read, as a scan gives it."""
        from kb.notes import head_of

        path = self.abs(rel)
        if path.is_symlink():
            raise KbError(f"{rel} is a symbolic link; kb does not follow links")
        try:
            with open(path, "rb") as handle:
                data = handle.read(limit + 4)
                st = os.fstat(handle.fileno())  # after the read: a write meanwhile shows in the signature
                return head_of(data, limit), (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            raise KbError(f"{rel} does not exist") from None
        except OSError as exc:
            raise KbError(f"cannot read {rel}: {exc.strerror}") from None

    def exists(self, rel: str) -> bool:
        path = self.abs(rel)
        try:
            return path.exists() or path.is_symlink()
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # a name no file can have (a NOTE pasted with a path)
                return False
            raise

    # ------------------------------------------------------------ writing

    def write_atomic(self, rel: str, data: bytes, durable: bool = True, new: bool = False) -> None:
        """Temp file in the same folder, fsync, rename over the target, fsync the folder. Not `durable`:
        no fsync (the caller syncs many files at once). `new`: a file that must not exist; one that
        appeared meanwhile (made by another program) is left as it is, and KbError says so."""
        path = self.abs(rel)
        if path.is_symlink():
            raise KbError(f"{rel} is a symbolic link; kb does not write through links")
        self._kept = self._names = None
        try:
            write_atomic(path, data, durable, new)
        except FileExistsError:
            raise FileAppeared(rel) from None

    def remove(self, rel: str) -> None:
        self._kept = self._names = None
        path = self.abs(rel)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise KbError(f"cannot delete {rel}: {exc.strerror}") from None
        _fsync_dir(path.parent)

    def remove_temp_files(self, everywhere: bool = True) -> list[str]:
        """Temp files a killed kb process left behind. Only called while holding the lock. Without
        `everywhere`, the note folders and attachments/ (large folders) are not looked at."""
        removed: list[str] = []
        folders = [self.root, self.root / INDEX_DIR]
        if everywhere:
            folders += [Path(d) for d, _ in self._folders()] + [self.root / ATTACHMENTS_DIR]
        for folder in folders:
            try:
                names = [name for name in os.listdir(folder) if name.startswith(TEMP_PREFIX)]
            except OSError:
                continue
            for name in names:
                entry = folder / name
                if entry.is_symlink():
                    continue
                if name == BUILDING_INDEX and folder == self.root and entry.is_dir():
                    import shutil

                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(self.rel(entry))
                    continue
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(self.rel(entry))
        return removed


def file_times(path: Path) -> tuple[str, str]:
    """(created, modified) from a file's times: the earliest of them (birth where the system records it),
    and its modification time. Raises OSError when the file cannot be read."""
    from datetime import UTC, datetime

    from kb.notes import format_timestamp

    st = path.stat()
    born = getattr(st, "st_birthtime", None) or min(st.st_mtime, st.st_ctime)
    return (
        format_timestamp(datetime.fromtimestamp(born, UTC)),
        format_timestamp(datetime.fromtimestamp(st.st_mtime, UTC)),
    )


def write_atomic(path: Path, data: bytes, durable: bool = True, new: bool = False) -> None:
    """`path` written whole or not at all (a temp file renamed into place). `new`: never over a file of
    that name, even one made while this runs: FileExistsError then, and nothing written."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    except OSError as exc:
        raise KbError(f"cannot write {path.name}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            if not new and path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o7777)
            else:
                os.chmod(tmp, 0o666 & ~_umask())
        if new:
            _link_new(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, FileExistsError):
            raise
        if isinstance(exc, OSError):
            raise KbError(
                f"cannot write {path.name}: {exc.strerror or exc}; the old file is intact"
            ) from None
        raise
    if durable:
        _fsync_dir(folder)


def _link_new(tmp: str, path: Path) -> None:
    """The temp file `tmp` given the name `path` only if no file has it (a hard link, which never replaces
    one: FileExistsError), then its temp name removed. Where the file system has no hard links, a look
    first, then the rename (a file made between the two would be replaced)."""
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (
            errno.EPERM,
            errno.EACCES,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EMLINK,
            errno.ENOSYS,
        ):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_REHEARSING: list[bool] = []


@contextlib.contextmanager
def rehearsal() -> Iterator[None]:
    """For the warm server: the commands it runs to warm itself up (their output thrown away) change
    nothing. Whatever would take the write lock (a dead run's recovery, an index rebuild) stops them
    instead (RehearsalStopped): the user's next command does it, and says so, as a cold process would."""
    _REHEARSING.append(True)
    try:
        yield
    finally:
        _REHEARSING.pop()


# Work a change left for after its command has answered (a warm server's worker: see defer), and the
# write locks held until it is done.
_DEFERRED: list[Callable[[], object]] = []
_HELD: list[int] = []
_DEFERRING: list[bool] = []
_RUNNING: list[bool] = []
_RELEASING: list[Callable[[], None]] = []  # run once, as the write lock is let go (before_release)


def defer_after_answer() -> None:
    """From now on, defer() keeps work for run_deferred, and the write lock stays held until then."""
    _DEFERRING.append(True)


def deferring() -> bool:
    """Whether this process defers work to after its answer (defer_after_answer)."""
    return bool(_DEFERRING)


def deferring_work() -> bool:
    """Whether work waits for run_deferred."""
    return bool(_DEFERRED or _HELD)


def defer(work: Callable[[], object]) -> None:
    """Keep `work` for run_deferred (only where deferring() says this process defers)."""
    assert _DEFERRING, "defer() outside a process that defers"
    _DEFERRED.append(work)


def run_deferred() -> None:
    """Do the deferred work, in order, then let go of the write locks held for it. Any later lock, and any
    read of the search index, runs it first."""
    if _RUNNING or not (_DEFERRED or _HELD):
        return  # the work itself reads the index: it is what runs now
    _RUNNING.append(True)
    try:
        while _DEFERRED:
            _DEFERRED.pop(0)()
    finally:
        _RUNNING.clear()
        try:
            if _HELD:
                _released()
        finally:
            while _HELD:
                with contextlib.suppress(OSError):
                    os.close(_HELD.pop())


def before_release(work: Callable[[], None]) -> None:
    """Run `work` (which must not raise) once, the next time this process lets go of the write lock, just
    before: what it sees then, nothing else can have changed since this process's change (kb.worker's
    carry)."""
    _RELEASING.append(work)


def _released() -> None:
    while _RELEASING:
        _RELEASING.pop(0)()


@contextlib.contextmanager
def exclusive_lock(root: Path, timeout: float) -> Iterator[None]:
    """One writer at a time: an flock on the knowledge base folder itself (no lock file to leave behind;
    the kernel releases it when the process dies). Waits up to `timeout` seconds, then fails clearly."""
    if _REHEARSING:
        raise RehearsalStopped(f"a rehearsal does not change {root}")
    run_deferred()  # this process's earlier change first, and its lock let go
    _forget_settled()  # a writer reads the disk, not the warm server's last scan
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise KbError(f"cannot open {root} to lock it: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise KbError(f"cannot lock {root}: {exc.strerror}") from None
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another kb process is changing the knowledge base at {root} "
                        f"(waited {timeout:g} s); try again when it has finished"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        if _DEFERRED:
            _HELD.append(fd)  # held until run_deferred has done what the change left
        else:
            try:
                _released()
            finally:
                os.close(fd)
