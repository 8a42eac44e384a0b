"""What the warm server (kb.server) knows of the notes between requests (Freshness): the scan it last
made, brought up to date from the files inotify names; whether git and the index moved; the notes all
committed, as its own idle `git status` found them or as its worker's write on its word left them (carry);
and the work it does in forked children while it goes
on answering (every note's record for listings, `kb list`'s output made ahead)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Generic, TypeVar

from kb.watch import Drained, Shared, Watcher

if TYPE_CHECKING:
    from kb.forked import Forked
    from kb.index import NoteIndex
    from kb.layout import Layout
    from kb.service import MadeList
    from kb.store import Names, Scan

SPARE_DELAY = 0.05  # seconds without a running worker before a spare is forked
# How much lower the priority of the work done ahead in forked children (every note's record, kb list's
# output) is: a command that comes meanwhile gets the processor first.
AHEAD_NICE = 10
WROTE_MOST = 8  # folders written in whose trees the server keeps images of (Server.keep_trees)


class Freshness:
    """What the server knows about the notes: whether anything may have changed since its last check."""

    def __init__(self, root: Path, watcher: Watcher, spool: str | None = None) -> None:
        from kb.index.catalog import CATALOG
        from kb.store import INDEX_DIR

        self.root = root
        self.watcher = watcher
        git, index = str(root / ".git"), str(root / INDEX_DIR)
        # What signature() reads and looks at: .git, its packed refs, the catalog, the index's folder, a
        # dead run's journal and sync merge.
        self.watched = (git, f"{git}/packed-refs", f"{index}/{CATALOG}", index, f"{git}/kb-journal",
                        f"{git}/kb-sync-merge")  # fmt: skip
        self.spool = spool  # the private folder `kb list`'s output made ahead is kept in (start_plain)
        self.dirty = True  # a check is due, and it walks every folder (events lost, a folder changed...)
        self.due = False  # a check is due; the files the events named are enough
        self.touched: set[str] = set()  # those files, since the last check
        self.kept: Scan | None = None  # the last scan
        self.layout: Layout | None = None  # the layout it was made with
        self.agreed: str | None = None  # the catalog's generation when it agreed with that scan
        self.outside: tuple[object, ...] | None = None
        self.checks = 0
        self.quick = 0
        self.generation = 0  # grows whenever what workers inherit (the remembered scan) changes
        # The notes all committed, as a `git status` the server ran when idle found them (nothing that
        # kb.service.transaction would commit as an outside edit): the stamp of the moment it started.
        self.clean: tuple[object, ...] | None = None
        self.names: Names = {}  # every watched notes folder's names, listed once the status found that
        self.named: tuple[object, ...] | None = None  # the word names_when_idle last listed them for
        self.status: _Status | None = None
        self.tried: tuple[object, ...] | None = None  # the stamp git status was last run at
        self.failed: tuple[object, ...] | None = None  # when check_when_idle last failed
        self.last_event = 0.0  # when events were last read
        self.listing: _Job[dict[str, object]] | None = None
        self.plain: _Job[tuple[int, bool]] | None = None
        self.unmade: int | None = None  # the generation whose plain list could not be made (start_plain)
        # After a quick check: what was worked out for the notes before it, the files that changed, and the
        # generation it is for (the listing is then brought up to date instead of worked out anew).
        self.increment: tuple[dict[str, object], set[str], int] | None = None
        # While a write on the server's word runs (carry): the files events named since it was vouched for,
        # and whether a folder changed or events were lost meanwhile.
        self.since: set[str] | None = None
        self.since_folders = False
        self.off_word = False  # that write was not on the word: its own git status looked (carry)
        self.carried = 0  # writes after which the notes were known all committed without a git status
        # The entries git staged for the files the last such write wrote (mode and blob id; None: gone).
        self.staged: dict[str, tuple[bytes, bytes] | None] = {}
        self.wrote: list[str] = []  # the folders kb's writes on the word wrote files in, the latest last
        self.statuses = 0  # git statuses run (start_status)
        self.updates = 0  # listings brought up to date that way

    @property
    def stale(self) -> bool:
        return self.dirty or self.due

    def read_events(self) -> None:
        """Read the waiting events (take); a watch that fails to read or to watch a new folder: a full
        check is due."""
        try:
            self.take(self.watcher.drain())
        except OSError:
            self.dirty = True

    def take(self, drained: Drained | None) -> None:
        """Events read from the watcher."""
        if drained is None:
            return
        self.last_event = time.monotonic()
        self.due = True
        if drained.folders:
            self.dirty = True
        self.touched |= drained.files
        if self.since is not None:
            self.since |= drained.files
            self.since_folders = self.since_folders or drained.folders

    def signature(self, segments: bool = True) -> tuple[object, ...]:
        """What git and the index look like: HEAD and its ref, packed refs, the catalog, the index's folder
        (its segments: not with `segments` False), a dead run."""
        git, packed, catalog, index, journal, merge = self.watched
        head = _read(f"{git}/HEAD")
        ref = head[5:].strip().decode("utf-8", "surrogateescape") if head.startswith(b"ref: ") else ""
        parts: list[object] = [head]
        for path in (f"{git}/{ref}" if ref else None, packed, catalog, index if segments else None, journal,
                     merge):  # fmt: skip
            parts.append(_stat(path) if path is not None else None)
        return tuple(parts)

    def stamp(self) -> tuple[object, ...]:
        """The moment as far as the notes and git go: how many times events were read, git and the index
        (signature: not the index's segments, which its merges change, after a write has let go of the
        lock), git's own index (what is staged), excludes and settings, and the remembered scan's
        generation. Equal stamps: nothing changed between them."""
        git = self.root / ".git"
        return (
            self.watcher.counts.value(Shared.READS),
            self.signature(segments=False),
            _stat(git / "index"),
            _stat(git / "info" / "exclude"),  # what git status leaves out
            _stat(git / "config"),  # and its settings (an excludes file, say)
            self.generation,
        )

    def end_digest(self, stamp: tuple[object, ...]) -> str:
        """The parts of `stamp` that git makes (HEAD, its ref, packed refs, a dead run, git's index, excludes
        and settings), as a digest: what a worker's write on the server's word left them, once it lets go
        of the lock. Not the catalog: the server's own check of the files writes it at times (a shortcut
        it keeps), and a check agrees with it (Freshness.carry)."""
        return hashlib.sha256(repr(_git_side(stamp)).encode("utf-8", "surrogateescape")).hexdigest()

    def begin_carry(self, vouched: bool = True) -> None:
        """A write that tells what it did starts, on the server's word (`vouched`) or off it: the events
        from now on are kept aside for carry."""
        self.since, self.since_folders = set(), False
        self.off_word = not vouched

    def carry(self, told: bytes) -> bool:
        """After a write on the server's word (vouchable), what its worker told as it let go of the lock
        (kb.worker.carry_to_server: every file it wrote, the SHA-256 of the bytes and the mode it had once
        written, each commit made on the one before and having left git's index exactly its tree, HEAD and
        git's index still so, and end_digest then): the notes are known all committed again, without a git
        status, when nothing else happened since the word was given. That is: the events named only the
        files it wrote (and its own temporary files, gone), no folder; each of those files holds exactly
        the bytes it wrote with that mode (or is gone, as it deleted it); git and the index are as it left
        them; and the check of the files the events named agrees. True when the word is kept.

        A write off the word (the server had no word, or it did not stand once the write held the lock)
        may give one the same way: its own git status, run under the lock after the events were set aside,
        found nothing to commit but the outside edits it then committed first (`looked`). Every other file
        changed since has an event, as above. The folders' names are listed again when the server is next
        idle (names_when_idle). Not when .git is a file: the stamp would not see git move."""
        from kb.store import TEMP_PREFIX, Store, name_key

        files = _told_files(told)
        for rel in files[0] if files is not None else ():
            folder = rel.rpartition("/")[0]
            if folder in self.wrote:
                self.wrote.remove(folder)
            self.wrote = [*self.wrote[-(WROTE_MOST - 1) :], folder]
        # (with .git a file, the stamp does not see git move: the server never gives a word then)
        looked = files is not None and files[2] and os.path.isdir(self.root / ".git")
        grounded = (looked and not self.dirty) or (not self.off_word and self.clean is not None)
        checked = self.since is not None and files is not None and grounded and self.check()
        since, folders = self.since, self.since_folders  # with the events the check read
        self.since, self.since_folders = None, False
        if not checked or since is None or folders or files is None or self.stale or self.layout is None:
            return False
        record, end, _ = files
        root = str(self.root)
        written = {os.path.join(root, rel): digest for rel, digest in record.items()}
        for path in since:
            if path not in written and not (
                os.path.basename(path).startswith(TEMP_PREFIX) and not os.path.lexists(path)
            ):
                return False  # a file it did not write, or a temporary file still there
        staged: dict[str, tuple[bytes, bytes] | None] = {}  # as git stages them (kb.history.trees.advance)
        for rel, digest in record.items():
            found = _file_digest(os.path.join(root, rel))
            if (found[:2] if isinstance(found, tuple) else found) != digest:
                return False
            if isinstance(found, tuple):
                staged[rel] = (b"100755" if found[1] & stat.S_IXUSR else b"100644", found[2])
            else:
                staged[rel] = None
        stamp = self.stamp()
        if end != self.end_digest(stamp):
            return False
        prefix = Store(self.root, self.layout).prefix
        names = dict(self.names) if not looked else {}
        for rel, digest in record.items():
            if not rel.startswith(prefix):
                return False
            folder, _, name = rel[len(prefix) :].rpartition("/")
            known = names.get(folder)
            if digest is None:
                names.pop(folder, None)  # a name gone: the folder is listed again when a name is needed
            elif known is not None:
                names[folder] = known.with_keys([name_key(name)])
        self.clean, self.names = stamp, names
        self.carried += 1
        self.staged = staged
        return True

    def vouchable(self) -> bool:
        """Whether the remembered scan is the notes on disk, all of them committed: nothing happened since
        a git status found nothing to commit (after the events are read)."""
        if self.stale or self.clean is None or self.kept is None or not self.watcher.complete:
            return False
        return self.clean == self.stamp()

    def _catalog_only(self, before: tuple[object, ...], now: tuple[object, ...]) -> bool:
        """Whether two stamps differ only in the catalog file, whose rows are still those the last check
        agreed with (its generation: kb's shortcuts, written beside the rows, leave it as it is). git status
        does not read the catalog; a write on the word only relies on those rows."""
        from kb.index import NoteIndex
        from kb.store import Store

        if before[0] != now[0] or before[5:] != now[5:] or _git_side(before) != _git_side(now):
            return False
        if self.agreed is None or self.layout is None:
            return False
        return _generation(NoteIndex(self.root, Store(self.root, self.layout))) == self.agreed

    def check_unnamed(self) -> None:
        """check(), when git or the index moved but no event named a file (a merge of the index's segments,
        say): it reads no file, and keeps the word if only that moved."""
        if self.kept is None or self.kept[1] or self.agreed is None:
            return  # a walk of every folder, or a refresh of every row: left to the worker, as before
        if not self.dirty and not self.touched and self.signature() != self.outside:
            self.check()

    def check_when_idle(self) -> None:
        """check(), with no request waiting, when events came: a failed check (a dead run's journal, a
        damaged index: the next command repairs them) is not tried again until something else changes."""
        if not self.idle_work() or time.monotonic() - self.last_event < SPARE_DELAY:
            return  # nothing to check, or events still coming (a folder being copied or deleted)
        if not os.path.exists(self.root / ".git"):
            return  # the knowledge base is going: nothing here may make files in it again
        self.failed = None
        if not self.check():
            self.failed = self._moment()

    def idle_work(self) -> bool:
        """Whether check_when_idle has a check to make."""
        return self.stale and (self.failed is None or self.failed != self._moment())

    def _moment(self) -> tuple[object, ...]:
        return self.watcher.counts.value(Shared.READS), self.signature()

    def start_status(self) -> _Status | None:
        """Run git status, when idle, to learn whether the notes are all committed (see vouchable); not
        again in the same state."""
        from kb.errors import KbError
        from kb.history import History
        from kb.service.transaction import watched_paths
        from kb.store import Store

        if self.stale or self.kept is None or self.status is not None or not self.watcher.complete:
            return None
        if self.since is not None:
            return None  # a write on the word has yet to tell what it did (carry): it may keep the word
        if not os.path.isdir(self.root / ".git"):
            return None  # a .git file (a worktree, a separate git folder): the stamp would not see git change
        if self.signature() != self.outside:
            self.due = True  # git or the index changed since the last check (no event says so): check first
            return None
        stamp = self.stamp()
        if stamp == self.tried or stamp == self.clean:
            return None
        self.clean, self.tried, self.names = None, stamp, {}
        try:
            proc = History(self.root).status_process(watched_paths(Store(self.root)))
        except KbError:
            return None
        self.statuses += 1
        self.status = _Status(proc, stamp, bytearray())
        return self.status

    def status_output(self) -> None:
        """The status's output is ready to read: read it; at its end, whether the notes are all committed."""
        from kb.errors import KbError
        from kb.history import status_changes
        from kb.service.transaction import outside_changes
        from kb.store import Store

        status = self.status
        if status is None:
            return
        chunk = os.read(status.fileno(), 1 << 16)
        if chunk:
            status.out += chunk
            return
        self.status = None
        status.close()
        if status.proc.wait() != 0:
            return
        try:
            changes, temps = outside_changes(Store(self.root), status_changes(bytes(status.out)))
        except KbError:
            return
        if not changes and not temps:
            # Listed after the status began: a name changed since then is an event, and the stamp (or a
            # waiting event) then says so, as for the scan. A new note's free name is looked up in these.
            names = self.folder_names()
            _give_back()  # the names listed, gone again: 8 MB at 100,000 notes
            if status.stamp == self.stamp():
                self.clean, self.names = status.stamp, names

    def names_when_idle(self) -> None:
        """After a word given by a write that looked itself (carry), the folders' names are not known: a
        new note's free name would be looked up in a listing of its folder on every write. Listed here,
        when idle, and kept while the word stands, as after the server's own git status: a name changed
        since is an event, and the stamp (or a waiting event) then says so."""
        if self.names or self.clean is None or self.status is not None or self.since is not None:
            return
        if self.named == self.clean or self.clean != self.stamp():
            return
        self.named = self.clean  # tried once for this word
        names = self.folder_names()
        _give_back()
        if self.clean == self.stamp():
            self.names = names

    def folder_names(self) -> Names:
        """Each watched folder under the notes root: its names (kb.store.folder_names), by its path
        relative to the notes root."""
        from kb.errors import KbError
        from kb.store import Store, folder_names

        try:
            notes = str(Store(self.root).notes)
        except KbError:
            return {}
        found: Names = {}
        for folder in self.watcher.folders.values():
            if folder == notes:
                found[""] = folder_names(folder)
            elif folder.startswith(notes + "/"):
                found[folder[len(notes) + 1 :]] = folder_names(folder)
        return found

    def check(self) -> bool:
        """Drain the events; after any, the cold path's check (outside edits indexed), with a walk of every
        folder only when the events do not say which files changed. True when the notes are known to be
        exactly the remembered scan, which the catalog agrees with."""
        from whoosh.index import LockError

        from kb import store as kb_store
        from kb.errors import KbError
        from kb.index import NeedsRebuild, NoteIndex, RefreshReport, damage_errors

        self.take(self.watcher.drain())
        signature = self.signature()
        if signature != self.outside:
            self.due = True
        if not self.stale:
            return True
        # No file named and nothing else moved since git status (or a write's word) found the notes all
        # committed (the index's segments changed, say: a merge): the word stands after the check.
        start = self.stamp()
        clean = self.clean
        standing = False
        if clean is not None and not self.touched and not self.dirty:
            standing = clean == start or self._catalog_only(clean, start)
        before = kb_store.settled_values(self.root)  # what was worked out for the notes as they were
        # The last quick check's listing not brought up to date yet (no quiet moment came between the two
        # checks: a write's index update after its answer, say): its files are carried over, from the
        # listing it started from, or this check would find none, and the next listing would be worked
        # out anew (seconds of a processor at 100,000 notes, beside the writes coming meanwhile).
        pending, self.increment = self.increment, None
        if pending is not None and pending[2] == self.generation:
            before, carried = pending[0], pending[1]
        else:
            carried = set()
        kb_store.settle(self.root, None)
        self.generation += 1
        self.outside = signature
        if kb_store.dead_run(self.root):
            return False  # a dead run: the worker recovers it, as the cold path does
        touched, self.touched = self.touched, set()
        previous = None if self.dirty else self.kept
        agreed, self.agreed = self.agreed, None
        self.dirty = self.due = False  # events from here on make it stale again
        self.kept = None
        usable = True  # the search index (see kb.store.vouch_index)
        try:
            notes = kb_store.Store(self.root)
            index = NoteIndex(self.root, notes)
            found = None
            if previous is not None and self.layout is not None:
                found = notes.rescan(previous, self.layout, touched)
            report = None
            if found is None:
                scan = notes.scan(keep=True)
                self.checks += 1
            else:
                scan, paths = found
                self.quick += 1
                if agreed is not None:  # only the rows of the files that changed are read
                    report = index.refresh_changed(paths, agreed)
                # nothing found that no event named (a full walk or refresh might: a file changed through
                # a hard link elsewhere, say, which the word then may not stand on)
                standing = standing and not paths and report is not None
                if report is not None and report.agreed is not None and report.compared is not None:
                    # The listing is brought up to date from the rows compared: the files the events
                    # named, and the rows changed since (a worker's change that committed an outside edit
                    # dated that note by its commit). Otherwise it is made anew.
                    self.increment = (before, carried | set(report.compared), self.generation)
            if report is None:
                standing = False
                try:
                    report = index.refresh()
                except NeedsRebuild:
                    # No usable index (deleted, or of another version after an upgrade): the first search
                    # builds it, as on the cold path. The notes are known all the same, so list, tags and
                    # NOTE lookups are worked out once here rather than by every worker (seconds each).
                    report = RefreshReport(0, 0, 0, False)
                    usable = False
        except (KbError, LockError, *damage_errors()):  # type: ignore[misc]
            # the worker repairs it the cold way (with its progress bar), or waits for the writer that
            # held the index
            self.dirty = True
            return False
        standing = standing and found is not None and not (report.added or report.updated or report.removed)
        self.kept, self.layout, self.agreed = scan, notes.layout, report.agreed
        self.outside = self.signature()
        if report.agreed is not None and _generation(index) != report.agreed:
            # A worker's change (its index update after its answer) came between the check and the look at
            # the catalog just now: checked again at the next request, as the rows it wrote may be others
            # than the files the events named.
            self.due = True
        kb_store.settle(self.root, scan)
        if usable:
            kb_store.vouch_index(self.root)
        now = self.stamp()
        if standing and not self.stale and now[0] == start[0] and _git_side(now) == _git_side(start):
            self.clean = now  # no event read, git as it was: only the generation (and the catalog) moved
        _give_back()
        return True

    def notes(self) -> None:
        """Every note's record, `kb list`'s order and `kb tags`' counts, worked out here once while the
        notes stay as they are (NOTE lookups, list and tags read them; the workers inherit them)."""
        from kb import service
        from kb import store as kb_store
        from kb.errors import KbError

        if not self.needs_listing() or self.updated():
            return  # nothing to vouch for, or done for this state
        listing = self.listing
        if listing is not None and listing.generation == self.generation:
            self.listing = None  # the one already being worked out: wait for it
            self._keep(listing.forked.result())
            if not self.needs_listing():
                return
        made = _in_child(
            lambda: service.prepare_listing(self.root), lambda: kb_store.settled_values(self.root)
        )
        if made is not None:
            self._keep(made)
        else:
            with contextlib.suppress(KbError):
                service.prepare_listing(self.root)
        _give_back()

    def needs_listing(self) -> bool:
        from kb import store as kb_store

        return kb_store.settled(self.root) is not None and kb_store.settled_value(self.root, "tags") is None

    def start_listing(self) -> None:
        """notes(), worked out in a forked child while the server goes on answering (at 100,000 notes it
        takes 1-2 s); its answer is read when it is ready (listing_ready)."""
        from kb import service
        from kb import store as kb_store
        from kb.forked import fork

        if not self.needs_listing() or self.listing is not None or self.updated():
            return
        root = self.root

        def work() -> dict[str, object]:
            service.prepare_listing(root)
            return kb_store.settled_values(root)

        forked = fork(work, nice=AHEAD_NICE)
        if forked is not None:
            self.listing = _Job(forked, self.generation)

    def updated(self) -> bool:
        """The listing brought up to date from the one before the last quick check, here (only the changed
        files' records are read: milliseconds where working it out anew takes seconds at 100,000 notes)."""
        from kb import service
        from kb.errors import KbError

        increment, self.increment = self.increment, None
        if increment is None or increment[2] != self.generation:
            return False
        before, changed, _ = increment
        try:
            done = service.update_listing(self.root, before, changed)
        except KbError:
            return False
        self.updates += done
        return done

    def listing_ready(self) -> None:
        """The background listing's answer: kept if the notes are still as they were when it began."""
        listing, self.listing = self.listing, None
        if listing is None:
            return
        made = listing.forked.result()
        if listing.generation == self.generation and self.needs_listing():
            self._keep(made)
        _give_back()

    def start_plain(self) -> None:
        """What `kb list` prints off a terminal (kb.render.write_plain_list), written by a forked child
        from the settled list into an unlinked file of the server's private folder while the server goes
        on answering, and kept with the list (kb.service.LIST_PLAIN, a kb.service.MadeList): a forked
        worker that prints it from the records copies every page they are on (130 ms at 100,000 notes);
        from the file, which it inherits, the kernel copies it to the client's stdout."""
        import tempfile

        from kb import render
        from kb import store as kb_store
        from kb.forked import fork

        if self.stale or self.plain is not None or self.listing is not None or self.made_plain() is not None:
            return
        listed = kb_store.settled_value(self.root, "list:modified")
        if self.spool is None or not isinstance(listed, tuple) or not isinstance(listed[0], tuple):
            return
        notes = listed[0]
        if self.unmade == self.generation:
            return  # it could not be written (a full disk, say): workers print it from the records
        try:
            file = tempfile.TemporaryFile(dir=self.spool)  # noqa: SIM115 (kept open by MadeList)
        except OSError:
            return  # workers print it from the records
        forked = fork(lambda: render.write_plain_list(notes, file.fileno()), nice=AHEAD_NICE)
        if forked is None:
            file.close()
            return
        self.plain = _Job(forked, self.generation, notes, file)

    def made_plain(self) -> MadeList | None:
        """`kb list`'s plain output made ahead for the settled list as it is now (start_plain), or None."""
        from kb import store as kb_store
        from kb.service import LIST_PLAIN, MadeList

        listed = kb_store.settled_value(self.root, "list:modified")
        kept = kb_store.settled_value(self.root, LIST_PLAIN)
        if isinstance(listed, tuple) and isinstance(kept, tuple) and kept[0] is listed[0]:
            return kept[1] if isinstance(kept[1], MadeList) else None
        return None

    def plain_ready(self) -> bool:
        """The background plain list's answer: kept (True) if the list is still the one it was made from."""
        from kb import store as kb_store
        from kb.service import LIST_PLAIN, MadeList

        plain, self.plain = self.plain, None
        if plain is None:
            return False
        made = plain.forked.result()
        assert plain.file is not None
        if made is None:
            self.unmade = plain.generation  # not tried again until the notes change
        listed = kb_store.settled_value(self.root, "list:modified")
        current = isinstance(listed, tuple) and listed[0] is plain.made_from
        if made is None or plain.generation != self.generation or self.stale or not current:
            plain.file.close()
            return False
        size, as_is = made
        kb_store.settle_value(self.root, LIST_PLAIN, (plain.made_from, MadeList(plain.file, size, as_is)))
        return True

    def _keep(self, made: object) -> None:
        from kb import store as kb_store

        if isinstance(made, dict):
            for name, value in made.items():
                kb_store.settle_value(self.root, name, value)


_T = TypeVar("_T")


@dataclass
class _Job(Generic[_T]):
    """Work done in a forked child while the server goes on answering, for the notes' `generation`: the
    listing (Freshness.start_listing), `kb list`'s plain output (Freshness.start_plain, `made_from` the
    list it prints, into `file`)."""

    forked: Forked[_T]
    generation: int
    made_from: object = None
    file: IO[bytes] | None = None

    def fileno(self) -> int:
        return self.forked.fileno()


@dataclass
class _Status:
    """A git status the server runs (Freshness.start_status): the process, the stamp of when it started,
    its output so far."""

    proc: subprocess.Popen[bytes]
    stamp: tuple[object, ...]
    out: bytearray

    def fileno(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> None:
        """Ended before its answer (the server stops, or its output cannot be read): killed and waited for."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.close()
        self.proc.wait()


def _give_back() -> None:
    """Return the C library's free memory to the system (glibc's malloc_trim; nothing elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")  # looked up once: it may run ldconfig
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def _generation(index: NoteIndex) -> str | None:
    """The catalog's generation now (kb.index.catalog.Catalog.generation); None when it cannot be read."""
    from kb.index.catalog import CatalogError

    catalog = index.catalog()
    if catalog is None:
        return None
    try:
        with catalog:
            return catalog.generation()
    except CatalogError:
        return None


def _in_child(work: Callable[[], None], result: Callable[[], dict[str, object]]) -> dict[str, object] | None:
    """`work` done in a forked child, and what `result` then gives, sent back pickled; None if it failed.
    Reading 100,000 notes' records makes a few hundred MB of short-lived objects among the kept ones: done
    here, the server's memory would stay that size (freed memory scattered among live objects is not given
    back); done in a child, the server holds only the unpickled records, side by side."""
    from kb.forked import fork

    def both() -> dict[str, object]:
        work()
        return result()

    child = fork(both)
    made = child.result() if child is not None else None
    return made if isinstance(made, dict) else None


def _git_side(stamp: tuple[object, ...]) -> tuple[object, ...]:
    """The parts of a stamp (Freshness.stamp) that git makes: HEAD, its ref, packed refs, a dead run (its
    signature but the catalog), git's index, excludes and settings."""
    signature = stamp[1]
    assert isinstance(signature, tuple)
    return (signature[:3] + signature[4:], *stamp[2:5])


def status_settings(stamp: tuple[object, ...]) -> tuple[object, ...]:
    """The parts of a stamp that change what git status says without a file changing: excludes, settings."""
    return stamp[3:5]


# Each file a write on the word wrote: (SHA-256, mode); None: deleted.
Told = dict[str, tuple[str, int] | None]


def _told_files(told: bytes) -> tuple[Told, str, bool] | None:
    """The files, the end digest and whether its own git status looked, as a worker told them
    (Freshness.carry), or None when it told nothing (or something else)."""
    try:
        said = json.loads(told) if told else None
    except ValueError:
        return None
    if not isinstance(said, dict):
        return None
    files, end, looked = said.get("files"), said.get("end"), said.get("looked", False)
    if not isinstance(files, dict) or not isinstance(end, str) or not isinstance(looked, bool):
        return None
    found: Told = {}
    for path, what in files.items():
        if what is None:
            found[path] = None
        elif (
            isinstance(what, list)
            and len(what) == 2
            and isinstance(what[0], str)
            and isinstance(what[1], int)
        ):
            found[path] = (what[0], what[1])
        else:
            return None
    return found, end, looked


def _file_digest(path: str) -> tuple[str, int, bytes] | str | None:
    """The SHA-256 of a regular file's bytes (never through a link), its mode, and its id as a git blob;
    None when there is no file; "" when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    try:
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                return ""
            data = f.read()
            blob = hashlib.sha1(b"blob %d\0" % len(data))
            blob.update(data)
            return hashlib.sha256(data).hexdigest(), mode, blob.digest()
    except OSError:
        return ""


def _read(path: Path | str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def _stat(path: Path | str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
