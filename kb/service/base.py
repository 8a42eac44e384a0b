"""What every use case stands on: the write transaction (lock, repository checks, recovery of an
interrupted run, outside edits committed, all-or-nothing changes), the search index kept in step, and
the catalog of notes (listing, NOTE lookup, title checks, file names)."""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from kb import config
from kb.errors import (
    AmbiguousNote,
    KbError,
    NoteNotFound,
    UsageError,
)
from kb.notes import (
    ParsedNote,
    file_stem,
    format_timestamp,
    parse_note,
    title_from_stem,
    title_key,
)
from kb.store import ATTACHMENTS_DIR, INDEX_DIR, NOTES_DIR, Store, exclusive_lock, write_atomic

T = TypeVar("T")


@dataclass(frozen=True)
class NoteInfo:
    title: str
    path: str
    tags: tuple[str, ...]
    created: str | None
    modified: str | None
    problem: str | None = None
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------- opening and transactions


def _is_kb(root: Path) -> bool:
    return (root / NOTES_DIR).is_dir() or (root / ".git").exists()


def _prepare_root(root: Path, explicit: bool) -> None:
    """Create the knowledge base folder if needed; refuse to take over a folder that is something else."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is a file, not a knowledge base folder")
    if root.exists() and not explicit and not _is_kb(root) and any(root.iterdir()):
        raise KbError(f"{root} is not empty and not a knowledge base; run 'kb init {root}' to make it one")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KbError(f"cannot create {root}: {exc.strerror}") from None


@dataclass
class _Tx:
    root: Path
    store: Store
    history: Any  # kb.history.History, imported lazily
    now: datetime
    external: tuple[str, ...] = ()
    external_paths: tuple[str, ...] = ()

    @property
    def stamp(self) -> str:
        return format_timestamp(self.now)

    def change(
        self,
        writes: dict[str, bytes | None],
        message: str,
        author_date: datetime,
        meanwhile: Callable[[], None] | None = None,
        bulk: bool = False,
    ) -> str | None:
        """Write (bytes) or delete (None) these files and commit exactly them, all or nothing: if the
        writing or the commit fails or is interrupted, every file is put back as it was. `bulk`: many
        files, flushed to disk together before the commit instead of one by one."""
        journal = self.history.git_dir / JOURNAL
        journal.write_text(json.dumps({"pid": os.getpid(), "message": message, "paths": sorted(writes)}))
        old: dict[str, bytes | None] = {}
        for path in writes:
            old[path] = self.store.read(path) if self.store.exists(path) else None
        # A path whose name differs from a written one only by case goes first (case-insensitive disks).
        first = [p for p, d in writes.items() if d is None and any(
            title_key(p) == title_key(q) and p != q for q, e in writes.items() if e is not None)]  # fmt: skip
        try:
            for path in first:
                self.store.remove(path)
            for path, data in writes.items():
                if data is not None:
                    self.store.write_atomic(path, data, durable=not bulk)
            for path, data in writes.items():
                if data is None and path not in first:
                    self.store.remove(path)
            if bulk:
                os.sync()
            return self.history.commit(writes.keys(), message, author_date, self.now, meanwhile=meanwhile)
        except BaseException as exc:
            self._roll_back(old)
            if isinstance(exc, KbError):
                exc.message = f"{exc.message}; nothing was changed"
            raise

    def change_indexed(
        self, writes: dict[str, bytes | None], message: str, author_date: datetime, paths: Iterable[str]
    ) -> tuple[str | None, tuple[str, ...]]:
        """change(), with the search index updated for `paths` (and outside edits) while git writes the
        commit. Returns the commit and the index's warnings. Should the commit fail, the files are put
        back as always and the index, which then describes files that are not there, is corrected by
        the next search (their signatures differ)."""
        warnings: tuple[str, ...] | None = None
        stopped: list[BaseException] = []

        def index() -> None:
            nonlocal warnings
            try:
                warnings = _reindex_paths(self, paths)
            except BaseException as exc:  # Ctrl-C: raised once the commit has settled
                stopped.append(exc)

        commit = self.change(writes, message, author_date, meanwhile=index)
        if stopped:
            raise stopped[0]
        if warnings is None:  # nothing was committed, so nothing ran beside the commit
            warnings = _reindex_paths(self, paths)
        return commit, warnings

    def _roll_back(self, old: dict[str, bytes | None]) -> None:
        import contextlib

        for path, data in old.items():
            with contextlib.suppress(Exception):
                if data is None:
                    self.store.remove(path)
                else:
                    self.store.write_atomic(path, data)
        with contextlib.suppress(Exception):
            self.history._git("reset", "-q", "--", *old)


@contextlib.contextmanager
def _transaction(
    root: Path, explicit_init: bool = False, timeout: float | None = None, scan: bool = False
) -> Iterator[_Tx]:
    """The lock, then a repository kb may write in, with what an interrupted run left put right, and
    outside edits committed. A journal file in .git/ marks the run: if it dies, the next command knows.
    `scan`: the change will look notes up by title; notes/ is scanned while git looks for outside edits."""
    from kb.history import History, init_repository

    _prepare_root(root, explicit_init)
    with exclusive_lock(root, config.lock_timeout() if timeout is None else timeout):
        if not (root / ".git").exists():
            init_repository(root)
        history = History(root)
        _finish_interrupted_sync(history)
        history.check_writable_state(wait_for_index_lock=min(5.0, config.lock_timeout()))
        tx = _Tx(root, Store(root), history, config.now())
        journal = history.git_dir / JOURNAL
        dead_run = journal.exists()
        recovered = _recover_journal(tx, journal)
        # Temp files exist only while a change is being written: in notes/ only a run that died (and
        # left its journal) can have left one. The small folders are always looked at.
        tx.store.remove_temp_files(everywhere=dead_run)
        _ensure_layout(tx)
        pending = tx.history.pending_later([NOTES_DIR, ATTACHMENTS_DIR, ".gitignore"])
        if scan:
            tx.store.scan(keep=True)
        tx.external, tx.external_paths = _commit_external(tx, pending())
        tx.external_paths += recovered
        journal.write_text(json.dumps({"pid": os.getpid()}))
        try:
            yield tx
        finally:
            journal.unlink(missing_ok=True)


JOURNAL = "kb-journal"
# In a commit message: the commit holds many notes at once (an import), each revision dated by its own
# `modified` rather than by the commit's author date.
DATED_BY_MODIFIED = "Kb-Dated-By: modified"


def _recover_journal(tx: _Tx, journal: Path) -> tuple[str, ...]:
    """A kb run that died mid-change left its journal: commit what it had written, with its message."""
    if not journal.exists():
        return ()
    try:
        data = json.loads(journal.read_text())
    except (OSError, ValueError):
        data = {}
    paths = [p for p in data.get("paths", []) if isinstance(p, str)]
    message = data.get("message")
    _wait_for_git_processes(tx.root)
    if paths and isinstance(message, str):
        pending = {c.path for c in tx.history.pending(paths)}
        if pending:
            subject, _, rest = message.partition("\n")
            body = f"{rest.strip()}\n\n" if rest.strip() else ""
            tx.history.commit(pending, f"{subject}\n\n{body}Kb-Recovered: completed after an interrupted run",
                              tx.now, tx.now)  # fmt: skip
    journal.unlink(missing_ok=True)
    return tuple(p for p in paths if p.startswith(NOTES_DIR + "/"))


def _wait_for_git_processes(root: Path, timeout: float = 10.0) -> None:
    """git commands started by a run that was killed go on by themselves (a commit, an add): let them
    finish before finishing their work, so the two never race. Linux's /proc tells; elsewhere no wait."""
    import time

    proc = Path("/proc")
    if not proc.is_dir():
        return
    target = str(root.resolve())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for entry in proc.iterdir():
            if not entry.name.isdigit() or entry.name == str(os.getpid()):
                continue
            try:
                if (entry / "comm").read_text().strip() == "git" and os.readlink(entry / "cwd") == target:
                    busy = True
                    break
            except OSError:
                continue
        if not busy:
            return
        time.sleep(0.05)


def recover(root: Path) -> None:
    """Called by reading commands: if a kb run died mid-change, finish it now (commit what it wrote,
    clean its temp files, index it). Never waits for the lock and never fails a read."""
    git_dir = root / ".git"
    if not ((git_dir / JOURNAL).exists() or (git_dir / "kb-sync-merge").exists()):
        return
    try:
        with _transaction(root, timeout=0.0) as tx:
            _reindex_paths(tx, [])
    except (KbError, OSError):
        pass  # a read never fails for this; the journal stays and the next command tries again


def _finish_interrupted_sync(history: Any) -> None:
    """A merge that a killed `kb sync` left behind is kb's own: abort it (the state before it was fully
    committed), so the next sync starts again. A merge started by anyone else is left alone."""
    marker = history.git_dir / "kb-sync-merge"
    if not marker.exists():
        return
    if (history.git_dir / "MERGE_HEAD").exists():
        history.abort_merge()
    marker.unlink(missing_ok=True)


def _ensure_layout(tx: _Tx) -> str | None:
    """notes/ and a .gitignore with index/; a first commit of what is there. Idempotent."""
    (tx.root / NOTES_DIR).mkdir(exist_ok=True)
    ignore = tx.root / ".gitignore"
    current = ignore.read_bytes() if ignore.exists() else b""
    lines = current.decode("utf-8", "replace").splitlines()
    if not any(line.strip() in ("index/", "index", "/index/", "/index") for line in lines):
        sep = b"" if not current or current.endswith(b"\n") else b"\n"
        write_atomic(ignore, current + sep + f"{INDEX_DIR}/\n".encode())
    if tx.history.has_commits():
        if current == ignore.read_bytes():
            return None  # a change to .gitignore made outside kb is committed with the other outside edits
        return tx.history.commit([".gitignore"], "Ignore index/", tx.now, tx.now)
    count = len(tx.store.list_notes().paths)
    plural = "note" if count == 1 else "notes"
    message = (
        f"Initialize knowledge base with {count} existing {plural}" if count else "Initialize knowledge base"
    )
    paths = [".gitignore", NOTES_DIR] + ([ATTACHMENTS_DIR] if (tx.root / ATTACHMENTS_DIR).is_dir() else [])
    if not any((tx.root / p).exists() for p in paths[1:]) or not tx.history.pending(paths[1:]):
        paths = [".gitignore"]
    return tx.history.commit(paths, message, tx.now, tx.now)


def _commit_external(tx: _Tx, pending: list[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Changes made under notes/ and attachments/ (and to .gitignore) by anything but kb become their
    own revision first. Returns their labels and paths."""
    changes = sorted(pending, key=lambda c: c.path)
    if not changes:
        return (), ()
    labels = [title_from_stem(Path(change.path).stem) for change in changes]
    shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
    paths = [c.path for c in changes]
    tx.history.commit(paths, f"External edit: {shown}", tx.now, tx.now)
    return tuple(labels), tuple(p for p in paths if p.startswith(NOTES_DIR + "/"))


def _reindex_paths(tx: _Tx, paths: Iterable[str]) -> tuple[str, ...]:
    """Update the search index for exactly these notes (and any outside edits just committed).
    A failure leaves those notes marked as changed; the next search indexes them."""
    from kb.index import NoteIndex

    try:
        NoteIndex(tx.root).update({*paths, *tx.external_paths})
    except KbError as exc:
        return (f"the search index was not updated ({exc}); the next search will catch up",)
    except Exception as exc:
        return (f"the search index was not updated ({type(exc).__name__}); the next search will catch up",)
    return ()


# ---------------------------------------------------------------- reading notes


def _info(path: str, parsed: ParsedNote) -> NoteInfo:
    return NoteInfo(
        title=parsed.title or title_from_stem(Path(path).stem),
        path=path,
        tags=parsed.tags,
        created=parsed.created,
        modified=parsed.modified,
        problem=parsed.problem,
        warnings=parsed.warnings,
    )


def _load(store: Store, path: str, with_extra: bool = True) -> tuple[bytes, ParsedNote]:
    raw = store.read(path)
    return raw, parse_note(raw, with_extra)


def _all_notes(store: Store) -> tuple[list[NoteInfo], list[str]]:
    """Every note's catalog record. Notes unchanged since the search index last saw them come from the
    index's catalog (one stat each); only new or changed files are read and parsed."""
    sigs, scan_warnings = store.scan()
    known = _catalog_rows(store, lambda catalog: catalog.entries()) or {}
    warnings = list(scan_warnings)
    infos: list[NoteInfo] = []
    for path in sorted(sigs):
        entry = known.get(path)
        if entry is not None and entry.sig == sigs[path]:
            info = _from_entry(path, entry)
        else:
            found = _parse_info(store, path, warnings)
            if found is None:
                continue
            info = found
        infos.append(info)
        warnings.extend(f"{path}: {w}" for w in ((info.problem,) if info.problem else ()) + info.warnings)
    return infos, warnings


def _catalog_rows(store: Store, read: Callable[[Any], T]) -> T | None:
    """What `read` takes from the index's catalog; None when there is no usable catalog."""
    from kb.catalog import CatalogError
    from kb.index import NoteIndex

    catalog = NoteIndex(store.root).catalog()
    if catalog is None:
        return None
    with catalog:
        try:
            return read(catalog)
        except CatalogError:
            return None


def _from_entry(path: str, entry: Any) -> NoteInfo:
    return NoteInfo(
        entry.title, path, entry.tags, entry.created, entry.modified, entry.problem, entry.warnings
    )


def _parse_info(store: Store, path: str, warnings: list[str]) -> NoteInfo | None:
    try:
        _, parsed = _load(store, path, with_extra=False)
    except KbError as exc:
        warnings.append(str(exc))
        return None
    if parsed.problem and parsed.problem.startswith("binary"):
        warnings.append(f"{path}: skipped, {parsed.problem}")
        return None
    return _info(path, parsed)


def _resolve(store: Store, ref: str) -> str:
    """NOTE is a path, a file name, an exact title, or a unique case-insensitive prefix of a title."""
    if not ref.strip():
        raise UsageError("NOTE is empty")
    if "\0" in ref:
        raise UsageError("NOTE contains a NUL byte")
    if ref.endswith(".md") or "/" in ref:
        for candidate in (ref, f"{NOTES_DIR}/{ref}", ref.removeprefix("./")):
            try:
                if store.exists(candidate) and store.is_safe_file(store.abs(candidate)):
                    return store.rel(store.abs(candidate))
            except UsageError:
                continue
    key = title_key(ref)
    direct = f"{NOTES_DIR}/{file_stem(ref)}.md"
    # The file named for this title, if it holds exactly this title, is the answer without a scan.
    if (
        store.exists(direct)
        and store.is_safe_file(store.abs(direct))
        and _info(direct, _load(store, direct, with_extra=False)[1]).title == ref
    ):
        return direct
    infos, _ = _all_notes(store)
    for matcher in (
        lambda i: i.title == ref,
        lambda i: title_key(i.title) == key,
        lambda i: title_key(i.title).startswith(key),
    ):
        found = [i for i in infos if matcher(i)]
        if len(found) == 1:
            return found[0].path
        if len(found) > 1:
            names = ", ".join(f"'{i.title}' ({i.path})" for i in found[:10])
            more = f" and {len(found) - 10} more" if len(found) > 10 else ""
            raise AmbiguousNote(f"'{ref}' matches {len(found)} notes: {names}{more}")
    close = difflib.get_close_matches(ref, [i.title for i in infos], n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    raise NoteNotFound(f"no note matches '{ref}'{hint}")


def _find_title(store: Store, title: str, except_path: str | None = None) -> NoteInfo | None:
    """A note with this title (ignoring case), if any. The catalog answers through its title index for
    notes unchanged since it saw them; only notes changed since are read."""
    key = title_key(title)
    sigs, _ = store.scan()
    rows = _catalog_rows(store, lambda catalog: (catalog.signatures(), catalog.with_key(key)))
    if rows is None:
        infos, _ = _all_notes(store)
        return next((i for i in infos if i.path != except_path and title_key(i.title) == key), None)
    known, same = rows
    for path, entry in sorted(same.items()):
        if path != except_path and sigs.get(path) == entry.sig:
            return _from_entry(path, entry)
    changed = [] if sigs == known else [p for p, sig in sigs.items() if known.get(p) != sig]
    for path in sorted(p for p in changed if p != except_path):
        info = _parse_info(store, path, [])
        if info is not None and title_key(info.title) == key:
            return info
    return None


def _free_path(
    store: Store, title: str, except_path: str | None = None, taken: set[str] | None = None
) -> str:
    """notes/<stem>.md, or `<stem> (2).md`... when a file of that name (ignoring case) is taken.
    `taken`: the title keys of the names in notes/, kept by the caller across many calls (the chosen
    name is added to it)."""
    stem = file_stem(title)
    keep = taken
    if taken is None:
        try:
            # title_key of every name, in C: `title_key` called 100,000 times costs 0.1 s
            nfc = functools.partial(unicodedata.normalize, "NFC")
            taken = set(map(str.casefold, map(nfc, os.listdir(store.notes))))
        except OSError:
            taken = set()
    else:
        taken = set(taken) if except_path else taken
    if except_path:
        taken.discard(title_key(Path(except_path).name))
    n = 1
    while True:
        name = f"{stem}.md" if n == 1 else f"{stem} ({n}).md"
        if title_key(name) not in taken:
            if keep is not None:
                keep.add(title_key(name))
            return f"{NOTES_DIR}/{name}"
        n += 1
