"""The all-or-nothing write: the lock, a repository kb may write in, recovery of an interrupted run (its
journal), outside edits committed first, files written and committed together or put back, signals held
while git commits, and the search index updated for exactly what changed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb import config
from kb.errors import (
    HeadMoved,
    InterruptedAfterCommit,
    KbError,
    UsageError,
)
from kb.layout import SETTINGS_FILE
from kb.notes import (
    format_timestamp,
    is_utf8,
    title_from_path,
    title_key,
)
from kb.store import (
    ATTACHMENTS_DIR,
    INDEX_DIR,
    JOURNAL,
    NOTES_DIR,
    SYNC_MARKER,
    TEMP_PREFIX,
    Store,
    dead_run,
    exclusive_lock,
    write_atomic,
)

# ---------------------------------------------------------------- opening and transactions

if TYPE_CHECKING:
    from types import FrameType

    from kb.history import Change, History
    from kb.store import Names, Scan


def _is_kb(root: Path) -> bool:
    return (root / NOTES_DIR).is_dir() or (root / ".git").exists() or (root / SETTINGS_FILE).is_file()


def _prepare_root(root: Path) -> None:
    """Create the knowledge base folder if needed (the lock is taken on it)."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is a file, not a knowledge base folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KbError(f"cannot create {root}: {exc.strerror}") from None


def _refuse_foreign(root: Path, explicit: bool) -> None:
    """Refuse to take over a folder that is something else. Asked under the lock: another kb process
    making this knowledge base (a first `kb add` at the same time) has finished then, not half-way."""
    if not explicit and not _is_kb(root) and any(root.iterdir()):
        raise KbError(f"{root} is not empty and not a knowledge base; run 'kb init {root}' to make it one")


DEFER_AT_MOST = 8  # notes a warm change may leave to index after its answer (kb.store.defer)


@dataclass
class Transaction:
    """One change to the knowledge base in progress, under the write lock (see transaction())."""

    root: Path
    store: Store
    history: History  # imported when a transaction starts
    now: datetime
    external: tuple[str, ...] = ()
    external_paths: tuple[str, ...] = ()
    carried: Carried | None = None  # what this change on the warm server's word tells the server (carry)

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
        files, flushed to disk together before the commit instead of one by one.

        The journal in .git/ covers the whole change: a run that dies while writing or committing is
        completed by the next command, one that dies while putting files back is put back by it. Signals
        (Ctrl-C, SIGTERM, SIGHUP) wait while git writes the commit and act once it has landed, so a
        commit is never followed by a roll-back that deletes what it recorded."""
        carried = self.carried
        spoiled = carried is not None and carried.spoiled
        if carried is not None:
            carried.spoiled = True  # until the commit has left everything as its record says
        journal = self.history.git_dir / JOURNAL
        journal.write_text(json.dumps({"pid": os.getpid(), "message": message, "paths": sorted(writes)}))
        old: dict[str, bytes | None] = {}
        for path in writes:
            old[path] = self.store.read(path) if self.store.exists(path) else None
        # A path whose name differs from a written one only by case goes first (case-insensitive disks).
        first = [p for p, d in writes.items() if d is None and any(
            title_key(p) == title_key(q) and p != q for q, e in writes.items() if e is not None)]  # fmt: skip
        done: list[str] = []  # the files changed so far: only they are put back
        try:
            for path in first:
                done.append(path)
                self.store.remove(path)
            for path, data in writes.items():
                if data is not None:
                    # A new file never replaces one another program made meanwhile (its name was free), and
                    # counts as changed only once it is there: until then that name is not kb's to delete.
                    new = old[path] is None
                    if not new:
                        done.append(path)
                    self.store.write_atomic(path, data, durable=not bulk, new=new)
                    if new:
                        done.append(path)
            for path, data in writes.items():
                if data is None and path not in first:
                    done.append(path)
                    self.store.remove(path)
            if bulk:
                os.sync()
        except BaseException as exc:
            self._roll_back({path: old[path] for path in done}, exc)
            raise
        head = self.history.head()
        modes = self._modes(writes) if carried is not None else {}  # as written: a chmod since is a change
        try:
            with signals_deferred():
                try:
                    commit = self.history.commit(
                        writes.keys(), message, author_date, self.now, meanwhile=meanwhile
                    )
                except BaseException as exc:
                    if not isinstance(exc, HeadMoved) and self.history.head() != head:
                        raise  # the commit landed (git failed after writing it): nothing to put back
                    self._roll_back(old, exc)
                    raise
        except KeyboardInterrupt:
            landed = self.history.head()
            if landed is not None and landed != head:  # Ctrl-C waited for the commit, which is kept
                raise InterruptedAfterCommit(landed) from None
            raise
        chained = carried is not None and commit is not None and self.history.left == (carried.head, commit)
        if carried is not None and modes is not None and chained:
            # made on the commit the word was given for (or this transaction's last), git's index left as
            # exactly its tree
            for path, data in writes.items():
                mode = modes.get(path)
                carried.files[path] = None if data is None or mode is None else (_sha256(data), mode)
            carried.head = commit
            carried.spoiled = spoiled
        return commit

    def _modes(self, writes: dict[str, bytes | None]) -> dict[str, int] | None:
        """Each written file's mode as it is now (None: one cannot be looked at)."""
        modes: dict[str, int] = {}
        for path, data in writes.items():
            if data is not None:
                try:
                    modes[path] = os.lstat(self.store.abs(path)).st_mode
                except OSError:
                    return None
        return modes

    def change_indexed(
        self, writes: dict[str, bytes | None], message: str, author_date: datetime, paths: Iterable[str]
    ) -> tuple[str | None, tuple[str, ...]]:
        """change(), with the search index updated for `paths` (and outside edits) while git writes the
        commit. Returns the commit and the index's warnings. Should the commit fail, the files are put
        back as always and the index, which then describes files that are not there, is corrected by
        the next search (their signatures differ)."""
        from kb import store as kb_store

        paths = list(paths)
        if kb_store.deferring() and len({*paths, *self.external_paths}) <= DEFER_AT_MOST:
            # A warm server's worker: the index is updated once the command has answered, under the
            # write lock still (kb.store.defer_after_answer); a read before then catches up as after an
            # outside edit. Its warnings are not shown: the next search repairs what it could not do.
            # A larger change is indexed before the answer: a read meanwhile would index it all again.
            commit = self.change(writes, message, author_date)
            kb_store.defer(lambda: reindex_paths(self, paths))
            return commit, ()
        warnings: tuple[str, ...] | None = None
        stopped: list[BaseException] = []

        def index() -> None:
            nonlocal warnings
            try:
                warnings = reindex_paths(self, paths)
            except BaseException as exc:  # Ctrl-C: raised once the commit has settled
                stopped.append(exc)

        commit = self.change(writes, message, author_date, meanwhile=index)
        if stopped:
            raise stopped[0]
        if warnings is None:  # nothing was committed, so nothing ran beside the commit
            warnings = reindex_paths(self, paths)
        return commit, warnings

    def _roll_back(self, old: dict[str, bytes | None], exc: BaseException) -> None:
        """Put the files back as they were (as committed at HEAD: outside edits were committed first).
        The journal says so first, so that a run killed meanwhile is put back, not completed."""
        with signals_deferred():
            journal = self.history.git_dir / JOURNAL
            with contextlib.suppress(OSError):
                journal.write_text(json.dumps({"pid": os.getpid(), "rollback": True, "paths": sorted(old)}))
            for path, data in old.items():
                with contextlib.suppress(KbError, OSError):
                    if data is None:
                        self.store.remove(path)
                    else:
                        self.store.write_atomic(path, data)
            with contextlib.suppress(KbError, OSError):
                if old:  # (with no path, git reset would unstage everything)
                    self.history._git("reset", "-q", "--", *old)
            with contextlib.suppress(OSError):
                journal.write_text(json.dumps({"pid": os.getpid()}))
        if isinstance(exc, KbError):
            exc.message = f"{exc.message}; nothing was changed"


_DEFERRED_SIGNALS = tuple(
    sig
    for sig in (getattr(signal, name, None) for name in ("SIGINT", "SIGTERM", "SIGHUP"))
    if sig is not None
)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done, then act as they would have (a child
    process such as git still gets them from a terminal). Only the main thread can hold signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    for sig in _DEFERRED_SIGNALS:
        previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


@contextlib.contextmanager
def transaction(
    root: Path,
    explicit_init: bool = False,
    timeout: float | None = None,
    scan: bool = False,
    settings: bytes | None = None,
) -> Iterator[Transaction]:
    """The lock, then a repository kb may write in, with what an interrupted run left put right, and
    outside edits committed. A journal file in .git/ marks the run: if it dies, the next command knows.
    `scan`: the change will look notes up by title; notes/ is scanned while git looks for outside edits."""
    from kb.history import History, init_repository

    _prepare_root(root)
    with exclusive_lock(root, config.lock_timeout() if timeout is None else timeout):
        _refuse_foreign(root, explicit_init)
        made = not (root / ".git").exists()
        if made:
            init_repository(root)
        history = History(root)
        _finish_interrupted_sync(history)
        history.check_writable_state(wait_for_index_lock=min(5.0, config.lock_timeout()))
        tx = Transaction(root, Store(root), history, config.now())
        journal = history.git_dir / JOURNAL
        dead_run = journal.exists()
        recovered = _recover_journal(tx, journal)
        # Temp files exist only while a change is being written: in notes/ only a run that died (and
        # left its journal) can have left one, or one that was interrupted (git status reports those,
        # see _commit_external). The small folders are always looked at.
        tx.store.remove_temp_files(everywhere=dead_run or not history.has_commits())
        _ensure_layout(tx, settings)
        if made and not explicit_init and not tx.store.list_notes().paths:
            # A knowledge base this change makes (a first `kb add`): its search index, empty, made now, so
            # that the change indexes its note and the first search finds the index there, as after kb init.
            from kb.index import NoteIndex

            NoteIndex(root, tx.store).rebuild()
        vouched = None if dead_run or recovered or not _VOUCH else _VOUCH[0](root)
        carrying, _CARRYING[:] = _CARRYING[:1], []  # the first transaction only, as the vouch
        if vouched is not None:
            # The warm server vouches that the notes are its last scan and all committed, and that
            # nothing moved since (kb.server: no change event since its `git status` found nothing to
            # commit, HEAD and git's index as they were then): neither git status nor the walk is needed.
            if scan:
                tx.store.adopt(*vouched)
            tx.external, tx.external_paths = (), ()
            if carrying:
                tx.carried = carrying[0]
                tx.carried.taken = True
                tx.carried.head = tx.history.head()
        else:
            pending = tx.history.pending_later(watched_paths(tx.store))
            if scan:
                tx.store.scan(keep=True)
            changes, temps = outside_changes(tx.store, pending())
            tx.external, tx.external_paths = _commit_external(tx, changes, temps)
            if carrying and not dead_run and not recovered and not temps:
                # Not on the word, but this git status, run under the lock, found every note committed
                # once the outside edits it reported were (and none of kb's temporary files, which the
                # server's own status would not give its word with): the server may take that as its
                # word after this write (kb.freshness.Freshness.carry), as after a write on it.
                tx.carried = carrying[0]
                tx.carried.taken = tx.carried.looked = True
                tx.carried.head = tx.history.head()
        tx.external_paths += recovered
        journal.write_text(json.dumps({"pid": os.getpid()}))
        try:
            yield tx
        finally:
            journal.unlink(missing_ok=True)


# The warm server's worker (kb.server) puts here, for a write, the function that answers under the write
# lock whether the server's last scan still stands for the notes, all of them committed: that scan with
# the folders' names (Store.adopt), or None (then git status and a walk of every folder, as always). Empty
# on the cold path.
_VOUCH: list[Callable[[Path], tuple[Scan, Names] | None]] = []


def vouch_for_writes(check: Callable[[Path], tuple[Scan, Names] | None] | None) -> None:
    """Set (or with None, clear) the warm server's vouch, asked once a transaction holds the lock."""
    _VOUCH.clear()
    if check is not None:
        _VOUCH.append(check)


class Carried:
    """What a change on the warm server's word did, for the server to keep its word after it (kb.freshness.
    Freshness.carry): every file it wrote (the SHA-256 of the bytes written; None: deleted), each commit
    having left git's index exactly the new HEAD's tree (Transaction.change), in the process's first
    transaction."""

    def __init__(self) -> None:
        # (a plain class: a Ctrl-C while a dataclass's field is set up at import would be a RuntimeError)
        self.files: dict[str, tuple[str, int] | None] = {}
        self.taken = False  # the transaction was on the word, or looked itself (looked)
        self.looked = False  # its own git status found the notes all committed, once it committed them
        self.head: str | None = None  # the commit the word was given for, then each change's own
        self.spoiled = False

    def record(self, history: History) -> dict[str, tuple[str, int] | None] | None:
        """The files (none: the transaction changed nothing, a title already taken, say), or None when the
        word cannot be kept: a change that committed nothing, failed, was not made on the commit before it or
        left something else staged; HEAD moved since, or git's index is no longer as the last commit left it.
        Asked under the write lock."""
        if not self.taken or self.spoiled:
            return None
        try:
            if history.head() != self.head:
                return None
            left = history.index_as_left()
        except KbError:
            return None
        if left is None or left[0] != self.head:
            return None  # git's index changed since (or was not kb's commit's to begin with)
        return dict(self.files)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The warm server's worker puts here, for a write on its word, the record the first transaction fills when
# its changes commit as they say (Transaction.change): what the server is told once the write lock is let go.
_CARRYING: list[Carried] = []


def carry_writes(carried: Carried | None) -> None:
    """Set (or with None, clear) the record the next transaction on the server's word fills."""
    _CARRYING[:] = [carried] if carried is not None else []


# In a commit message: the commit holds many notes at once (an import), each revision dated by its own
# `modified` rather than by the commit's author date.
DATED_BY_MODIFIED = "Kb-Dated-By: modified"
# In a commit message: the commit adopted files that existed before it (a first revision of a folder); its
# date is not theirs, so their dates come from the files' times.
DATED_BY_FILES = "Kb-Dated-By: files"


def _recover_journal(tx: Transaction, journal: Path) -> tuple[str, ...]:
    """A kb run that died mid-change left its journal: commit what it had written, with its message."""
    if not journal.exists():
        return ()
    try:
        data = json.loads(journal.read_text())
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    paths = [p for p in data.get("paths", []) if isinstance(p, str)]
    message = data.get("message")
    _wait_for_git_processes(tx.root)
    if paths and data.get("rollback") is True:
        _put_back(tx, paths)
        journal.unlink(missing_ok=True)
        return tuple(p for p in paths if p.startswith(NOTES_DIR + "/"))
    if paths and isinstance(message, str):
        pending = {c.path for c in tx.history.pending(paths)}
        if pending:
            subject, _, rest = message.partition("\n")
            body = f"{rest.strip()}\n\n" if rest.strip() else ""
            tx.history.commit(pending, f"{subject}\n\n{body}Kb-Recovered: completed after an interrupted run",
                              tx.now, tx.now)  # fmt: skip
    journal.unlink(missing_ok=True)
    return tuple(p for p in paths if tx.store.is_note_path(p))


def watched_paths(store: Store) -> list[str]:
    """What kb commits of changes made by anything else: the notes (with attachments/ in Notable's
    layout), .gitignore and kb.toml. In a folder used as it is, git is asked about the whole notes root and
    only the note files among its answers are taken (see _commit_external)."""
    if store.layout.in_place:
        return [store.layout.notes or ".", ".gitignore", SETTINGS_FILE]
    return [NOTES_DIR, ATTACHMENTS_DIR, ".gitignore", SETTINGS_FILE]


def _put_back(tx: Transaction, paths: list[str]) -> None:
    """Finish a roll-back that a killed run had begun: every path as it is at HEAD (absent if it is not
    there), staged as at HEAD."""
    committed = tx.history.read_blobs([f"HEAD:{p}" for p in paths]) if tx.history.has_commits() else []
    for path, data in zip(paths, committed or [None] * len(paths), strict=True):
        if data is None:
            tx.store.remove(path)
        elif not tx.store.exists(path) or tx.store.read(path) != data:
            tx.store.write_atomic(path, data)
    with contextlib.suppress(KbError):
        tx.history._git("reset", "-q", "--", *paths)


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
    if not dead_run(root):
        return
    try:
        with transaction(root, timeout=0.0) as tx:
            reindex_paths(tx, [])
    except (KbError, OSError):
        pass  # a read never fails for this; the journal stays and the next command tries again


def _finish_interrupted_sync(history: History) -> None:
    """A merge that a killed `kb sync` left behind is kb's own: abort it (the state before it was fully
    committed), so the next sync starts again. A merge started by anyone else is left alone."""
    marker = history.git_dir / SYNC_MARKER
    if not marker.exists():
        return
    if (history.git_dir / "MERGE_HEAD").exists():
        history.abort_merge()
    marker.unlink(missing_ok=True)


def _ensure_layout(tx: Transaction, settings: bytes | None = None) -> str | None:
    """The notes root (notes/ in Notable's layout), a .gitignore with /index/, kb.toml when `settings` is
    given; a first commit of what is there. Idempotent."""
    if not tx.store.layout.in_place:
        (tx.root / NOTES_DIR).mkdir(exist_ok=True)
    ignore = tx.root / ".gitignore"
    current = ignore.read_bytes() if ignore.exists() else b""
    lines = current.decode("utf-8", "replace").splitlines()
    changed = []
    if not any(line.strip() in ("index/", "/index/", "/index") for line in lines):
        sep = b"" if not current or current.endswith(b"\n") else b"\n"
        write_atomic(ignore, current + sep + f"/{INDEX_DIR}/\n".encode())
        changed.append(".gitignore")
    toml = tx.root / SETTINGS_FILE
    if settings is not None and not toml.exists():
        write_atomic(toml, settings)
        changed.append(SETTINGS_FILE)
    if tx.history.has_commits():
        if not changed:
            return None  # a change to .gitignore made outside kb is committed with the other outside edits
        what = " and ".join("kb's settings" if p == SETTINGS_FILE else "/index/ ignored" for p in changed)
        return tx.history.commit(changed, f"Initialize knowledge base: {what}", tx.now, tx.now)
    notes = tx.store.list_notes().paths
    count = len(notes)
    plural = "note" if count == 1 else "notes"
    message = (
        f"Initialize knowledge base with {count} existing {plural}\n\n{DATED_BY_FILES}"
        if count
        else "Initialize knowledge base"
    )
    base = [".gitignore"] + ([SETTINGS_FILE] if toml.exists() else [])
    if tx.store.layout.in_place:
        from kb.service.import_tree import scan_source

        # The notes and the files they link to (images, attachments): what a first revision must keep.
        found = scan_source(tx.root)
        return tx.history.commit([*base, *found.notes, *found.attachments], message, tx.now, tx.now)
    paths = [*base, NOTES_DIR] + ([ATTACHMENTS_DIR] if (tx.root / ATTACHMENTS_DIR).is_dir() else [])
    if not any((tx.root / p).exists() for p in paths[len(base) :]) or not tx.history.pending(
        paths[len(base) :]
    ):
        paths = base
    return tx.history.commit(paths, message, tx.now, tx.now)


def outside_changes(store: Store, pending: list[Change]) -> tuple[list[Change], list[Change]]:
    """Of what git status reports under watched_paths: the changes kb commits as outside edits (in order of
    path), and kb's own temp files among them (an interrupted run's, removed under the lock)."""
    own = (".gitignore", SETTINGS_FILE)
    changes: list[Change] = []
    temps: list[Change] = []
    for change in sorted(pending, key=lambda c: c.path):
        if Path(change.path).name.startswith(TEMP_PREFIX):
            temps.append(change)
            continue
        if store.layout.in_place and change.path not in own and not store.is_note_path(change.path):
            continue
        if os.path.islink(store.root / change.path):
            continue  # a link kb does not follow is not kb's to commit
        if not is_utf8(change.path):
            continue  # nor a name that is not UTF-8, which kb does not read (the walk warns of it)
        changes.append(change)
    return changes, temps


def _commit_external(
    tx: Transaction, changes: list[Change], temps: list[Change]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Changes made under notes/ and attachments/ (and to .gitignore) by anything but kb (outside_changes:
    `changes`) become their own revision first; kb's temp files among them (`temps`) are removed.
    Returns their labels and paths."""
    store = tx.store
    for change in temps:
        # A temp file of an interrupted kb run (we hold the lock, so none is being written): never
        # committed, removed.
        with contextlib.suppress(OSError):
            if change.status == "??" and not (tx.root / change.path).is_symlink():
                (tx.root / change.path).unlink()
    if not changes:
        return (), ()
    labels = [title_from_path(change.path) for change in changes]
    shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
    paths = [c.path for c in changes]
    tx.history.commit(paths, f"External edit: {shown}", tx.now, tx.now)
    return tuple(labels), tuple(p for p in paths if store.is_note_path(p))


def reindex_paths(tx: Transaction, paths: Iterable[str]) -> tuple[str, ...]:
    """Update the search index for exactly these notes (and any outside edits just committed).
    A failure leaves those notes marked as changed; the next search indexes them."""
    from kb.index import NoteIndex

    return NoteIndex(tx.root, tx.store).update_or_warn({*paths, *tx.external_paths})
