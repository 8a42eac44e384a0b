"""The warm server of one knowledge base: kb's modules already imported, the notes watched with inotify.

    python -m kb.server serve ROOT [--foreground]      (kb.client starts it; `kb server start` too)

One server per knowledge base, listening on a Unix socket in the user's runtime folder (kb.client.
runtime_dir: mode 0700, the socket 0600, the peer's uid checked on every connection; never TCP, never inside
the knowledge base), holding `<key>.lock` for as long as it lives (so ten clients starting it at once start
one). It exits after `$KB_SERVER_IDLE` seconds (default 900) without a request, when stopped, or when a
client of another build of kb connects.

A request is a command line of kb.client.WARM with the client's working folder, environment and its stdin,
stdout and stderr (file descriptors). Before each request the server drains the inotify events of every
folder of the knowledge base and compares a few files of git and the index (HEAD, its ref, the catalog, the
journal of a dead run); when anything moved, it runs the full freshness check of the cold path
(NoteIndex.refresh, outside edits indexed) and remembers that scan (kb.store.settle). It then forks a worker
that runs exactly the cold command line (kb.cli.run) on the client's descriptors; the worker inherits the
remembered scan, so an unchanged knowledge base is not scanned again. Nothing lives only in the server: the
notes, git and the index on disk are the state; the worker takes the same write lock, journal and commits
as any cold process.

On a file system without inotify semantics (NFS, SMB, FUSE, 9p...), without inotify, or when the watches
cannot be set, the server answers every request "run it yourself" and `kb server status` says why.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import io
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kb import client
from kb.freshness import SPARE_DELAY, Freshness
from kb.watch import Shared, Watcher, cold_reason
from kb.worker import (
    CARRY_WAIT,
    REQUEST_TIMEOUT,
    Carrying,
    Spare,
    Worker,
    carry_to_server,
    command_line,
    detach,
    git_settings,
    receive,
    vouch_in_worker,
)

if TYPE_CHECKING:
    from kb.store import Names, Scan

IDLE_SECONDS = 900.0
# Folders of notes at most whose trees the server keeps images of, all of them (Server._keep_trees); with
# more, those of the notes root and of kb's recent writes only.
KEEP_FOLDERS_MOST = 4096
# What a worker must have imported before it forks: everything a reading command imports.
PRELOAD = (
    "kb.cli", "kb.render", "kb.jsonshape", "kb.index",
    "kb.index.query", "kb.index.document", "kb.index.catalog", "kb.history", "kb.notes", "kb.links",
    "kb.service.links", "hashlib", "kb.diff", "kb.picker", "whoosh.qparser.dateparse", "encodings.ascii",
    "kb.when", "kb.display", "whoosh.index", "whoosh.query", "whoosh.searching", "whoosh.highlight",
    "whoosh.sorting", "whoosh.filedb.filestore", "whoosh.codec.whoosh3", "whoosh.qparser", "sqlite3",
    "difflib", "yaml", "frontmatter", "rich.console", "rich.text", "rich.table", "rich.markdown",
    "rich.markup", "rich.syntax", "rich.progress", "shlex", "subprocess", "json",
)  # fmt: skip


# What the server runs once at its start, output thrown away (Server.rehearse).
WARM_UP = [["search", "kb"], ["--color", "always", "search", "kb"], ["tags"], ["list", "-t", "kb"]]


def idle_seconds() -> float:
    raw = os.environ.get("KB_SERVER_IDLE")
    try:
        return float(raw) if raw else IDLE_SECONDS
    except ValueError:
        return IDLE_SECONDS


class _Selectable(Protocol):
    def fileno(self) -> int: ...


# Commands that read every note's record (kb.service.lookup.all_notes).
_LISTING = frozenset({"list", "tags", "show", "log", "links", "backlinks"})
# Commands that write (kb.client.WARM's others read).
_WRITES = frozenset({"add", "edit"})


# ------------------------------------------------------------------ serving


_IDENTITY_PREFIXES = ("LANG", "LC_", "PYTHON")
_NOT_IDENTITY = frozenset({"PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONHASHSEED"})


def identity(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The environment the interpreter reads when it starts (locale, PYTHON*): a worker forked from this
    server has the streams and flags a cold process would have only when these agree."""
    return tuple(
        sorted((k, v) for k, v in env.items() if k.startswith(_IDENTITY_PREFIXES) and k not in _NOT_IDENTITY)
    )


class Server:
    def __init__(self, root: Path, sock: socket.socket, lock_fd: int, reason: str | None) -> None:
        self.root = root
        self.real = os.path.realpath(root)
        self.sock = sock
        self.lock_fd = lock_fd
        self.reason = reason
        self.build = client.build_id()
        self.identity = identity(dict(os.environ))
        self.idle = idle_seconds()
        self.started = time.time()
        self.last = time.monotonic()
        self.requests = 0
        self.children: set[int] = set()
        self.spare: Spare | None = None
        self.probe = ("", "")  # what a spare rehearses (a rare word, a note's path)
        self.by_spare = 0
        self.busy = 0.0  # when a worker last ran
        self.listed = False  # whether a command that reads every note's record came
        self.listed_plain = False  # whether `kb list` came (its output is then made ahead: start_plain)
        self.stopping = False
        self.watcher: Watcher | None = None
        self.freshness: Freshness | None = None
        self.carrying: Carrying | None = None  # a write on the server's word, until its worker tells (carry)
        # What the images kept were read for (_keep_trees): the tree, the folders listed, the ones written in.
        self.trees: tuple[str, Names, tuple[str, ...]] | None = None
        if reason is None:
            try:
                self.watcher = Watcher(root)
            except OSError as exc:
                self.reason = f"the folders cannot be watched ({exc.strerror})"
            else:
                self.freshness = Freshness(root, self.watcher, os.path.dirname(sock.getsockname()))

    def warm_up(self) -> None:
        """Import what the commands import, check the notes once, and freeze what is shared with workers."""
        if self.reason is not None:
            return
        import importlib

        for name in PRELOAD:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        from kb import cli, render, service
        from kb import index as kb_index

        for name in service.__all__:
            # through the package's own loader: importing kb.service.search directly would hide the
            # function `search` behind the submodule of that name
            service.__getattr__(name)
        render.warm_up()
        cli.prepare()
        from kb.history import trees

        watcher = self.watcher
        if watcher is not None:
            trees.counted(lambda: watcher.counts.bump(Shared.TREES))
        assert self.freshness is not None
        if self.freshness.check():
            self.freshness.notes()
            self.rehearse(cli.run, WARM_UP)
            self.probe = self._probe()
            # and what a spare rehearses: a search whose hits have snippets (the warm-up's own searches may
            # find nothing in these notes), so that what they need is here for workers forked without one
            self.rehearse(cli.run, self.light_rehearsal())
            kb_index.close_kept_searcher()  # its files are this process's: a worker opens its own
        gc.collect()
        gc.freeze()
        self._new_spare()

    def rehearse(self, run: Callable[[list[str]], int], commands: list[list[str]]) -> None:
        """Run reading commands here once, their output thrown away: what they make on first use (compiled
        patterns, the libraries' caches, rich's styles) is then inherited by every worker forked after,
        and the pages they write are copied already."""
        from kb import store as kb_store

        saved = sys.stdout, sys.stderr
        with kb_store.rehearsal():  # it changes nothing (no recovery, no rebuild): the user's command does
            for args in commands:
                sys.stdout = sys.stderr = io.StringIO()
                try:
                    run(["--no-pager", "--kb", str(self.root), *args])
                finally:
                    sys.stdout, sys.stderr = saved

    def light_rehearsal(self) -> list[list[str]]:
        """What a spare runs before it waits: a search for a rare word of the index and a `kb show` (tens
        of milliseconds; enough to have copied the pages a command writes)."""
        word, path = self.probe
        return ([["search", word]] if word else []) + ([["show", path]] if path else [])

    def _probe(self) -> tuple[str, str]:
        """A word a few notes have (from the search index) and a note's path: what light_rehearsal runs."""
        from kb.errors import KbError
        from kb.index import NoteIndex, damage_errors
        from kb.store import Store

        word = path = ""
        try:
            store = Store(self.root)
            paths = store.scan()[0]
            path = min(paths) if paths else ""
            word = NoteIndex(self.root, store).rare_word() or ""
        except (KbError, *damage_errors()):  # type: ignore[misc]
            pass
        return word, path

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        watch: list[_Selectable] = [self.sock] + ([self.watcher] if self.watcher is not None else [])
        self.last = time.monotonic()  # idle from now, not from before the warm-up
        while True:
            self._reap()
            if self.stopping and not self.children:
                self._drop_spare()
                self._end_status()
                return
            idle = self.idle - (time.monotonic() - self.last)
            if idle <= 0 and not self.children:
                self._drop_spare()
                self._end_status()
                return
            if self.spare is not None and not self.spare.ready() and self.spare.dead:
                self.children.add(self.spare.pid)  # reaped; another is forked in its place
                self.spare.drop()
                self.spare = None
            if self.children:
                self.busy = time.monotonic()
            freshness = self.freshness
            quiet = not self.children and time.monotonic() - self.busy >= SPARE_DELAY
            if freshness is not None and quiet and not self.stopping:
                # A write's worker that has ended told all it had to (a long step of this loop, such as a
                # listing received, may have kept its pipe unread until now): taken before the git status,
                # which would start from a stamp that its word accounts for.
                self._carry()
                freshness.check_when_idle()  # then git status, so that the next write may be vouched for
                freshness.start_status()  # whether the notes are all committed (Freshness.vouchable)
                freshness.names_when_idle()  # after a word a write gave (carry), when it listed none
                self._keep_trees()  # before a spare is forked: the spare inherits them
                if self.listed_plain:
                    freshness.start_plain()  # before a spare is forked: the spare inherits what it makes
            fresh = freshness is not None and not freshness.stale
            generation = freshness.generation if freshness is not None else None
            if fresh and self.spare is not None and self.spare.generation != generation and not self.children:
                self.spare.drop()  # forked before a change (a write's): another, with the listing, next
                self.children.add(self.spare.pid)
                self.spare = None
            # Not while kb list's output is being made: a spare forked without it is dropped when it comes.
            wanted = self.spare is None and fresh and (freshness is None or freshness.plain is None)
            if wanted and quiet:
                # Here, where no request's descriptors are open (a spare must not hold the client's pipes),
                # and when no worker has run for a moment (its rehearsal would compete with commands run
                # back to back for the processor).
                self._new_spare()
                wanted = False
            status = freshness.status if freshness is not None else None
            plain = freshness.plain if freshness is not None else None
            try:
                # a worker's end is not an event, nor the moment a spare is due
                due = freshness is not None and freshness.idle_work()
                wait = 0.02 if self.children or wanted or due else max(0.05, min(idle, 1.0))
                listing = freshness.listing if freshness is not None else None
                carrying = self.carrying
                jobs: list[_Selectable] = [x for x in (status, listing, plain, carrying) if x is not None]
                ready, _, _ = select.select(([] if self.stopping else watch) + jobs, [], [], wait)
            except InterruptedError:
                continue
            if listing is not None and listing in ready and freshness is not None:
                freshness.listing_ready()
            if carrying is not None and carrying in ready:
                self._carry()
            kept = plain is not None and plain in ready and freshness is not None and freshness.plain_ready()
            if kept and self.spare is not None:  # forked without it: the next one inherits it
                self.spare.drop()
                self.children.add(self.spare.pid)
                self.spare = None
            if status is not None and status in ready and freshness is not None:
                try:
                    freshness.status_output()
                except OSError:
                    freshness.status = None
                    status.stop()
            if self.watcher is not None and self.watcher in ready and self.freshness is not None:
                self.freshness.read_events()
            if self.sock in ready:
                self._accept()
            if not self.stopping and not os.path.isdir(self.root):
                self.stopping = True  # the knowledge base was deleted (or moved): nothing left to serve

    def _carry(self, wait: float = 0.0) -> None:
        """What the worker of a write on the server's word told once it let go of the write lock
        (kb.worker.carry_to_server): the notes known all committed again without a git status
        (Freshness.carry). A write that comes meanwhile (`wait`) waits for it up to that long, if that
        worker has answered its client (what is left is its index update, which the new write would wait
        for under the lock anyway); otherwise, or when it does not tell in time, the word is not kept."""
        carrying = self.carrying
        if carrying is None or self.freshness is None:
            return
        carrying.take()
        if wait and carrying.answered:
            carrying.wait(wait)
        if not carrying.done and not wait:
            return  # still working: told when it is done
        self.carrying = None
        carrying.close()
        if carrying.done:
            if self.freshness.carry(carrying.told()):
                if self.trees is not None:
                    from kb.history import trees

                    # The write's trees made from the images kept, as its commit made them: keep finds them
                    # there (by their ids) when they are the new HEAD's, and reads none of them from git.
                    trees.advance(self.trees[0], self.freshness.staged)
                self._keep_trees()  # for the next write, which may come at once
        else:
            self.freshness.since = None  # git status, when idle, as before

    def _keep_trees(self) -> None:
        """Images of the trees a write's commit changes (kb.history.trees), for the workers forked from now
        on: of HEAD's tree when git's index is still exactly it as kb's last commit left it, and of the
        folder of the notes, every folder of notes the server has listed (up to KEEP_FOLDERS_MOST of them)
        and those kb's writes wrote in lately. Read again when either changes (only the trees that did)."""
        from kb.errors import KbError
        from kb.history import History
        from kb.store import Store

        freshness = self.freshness
        if freshness is None or freshness.layout is None:
            return
        try:
            history = History(self.root)
            left = history.index_as_left()
        except KbError:
            return
        if left is None:
            return  # (the images kept stay: a tree is used only when it is the one found in HEAD's)
        names, wrote = freshness.names, tuple(freshness.wrote)
        kept = self.trees
        if kept is not None and kept[0] == left[1] and kept[1] is names and kept[2] == wrote:
            return  # (the folders are worked out again only when one of those changed)
        prefix = Store(self.root, freshness.layout).prefix.rstrip("/")
        listed = names if len(names) <= KEEP_FOLDERS_MOST else {}
        every = ("/".join(p for p in (prefix, folder) if p) for folder in listed)
        with contextlib.suppress(KbError):
            history.keep_trees(left[1], sorted({prefix, *wrote, *every}))
            self.trees = (left[1], names, wrote)

    def _end_status(self) -> None:
        """Stop what runs in the background: the git status, the listing, the plain list."""
        listing = self.freshness.listing if self.freshness is not None else None
        if listing is not None and self.freshness is not None:
            self.freshness.listing = None
            listing.forked.cancel()
        plain = self.freshness.plain if self.freshness is not None else None
        if plain is not None and self.freshness is not None:
            self.freshness.plain = None
            plain.forked.cancel()
            if plain.file is not None:
                plain.file.close()
        status = self.freshness.status if self.freshness is not None else None
        if status is not None:
            status.stop()
        if self.carrying is not None:
            self.carrying.close()
            self.carrying = None

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            conn.settimeout(REQUEST_TIMEOUT)
            if client.peer_uid(conn) != os.getuid():
                return  # another user's process: refused
            data, fds = receive(conn)
            self._handle(conn, data, fds)
        except (OSError, EOFError, ValueError):
            pass
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            conn.close()

    def _handle(self, conn: socket.socket, data: bytes, fds: list[int]) -> None:
        parts = data.split(b"\0")
        if len(parts) < 2 or parts[0] != client.PROTOCOL:
            conn.sendall(client.frame(b"C", b"protocol"))
            return
        kind = parts[1]
        if kind == b"status":
            conn.sendall(client.frame(b"I", self.status().encode("utf-8", "surrogateescape")))
            return
        if kind == b"stop":
            self.stopping = True
            conn.sendall(client.frame(b"I", b"stopping"))
            return
        if kind != b"run" or len(parts) < 7:
            conn.sendall(client.frame(b"C", b"request"))
            return
        self.last = time.monotonic()
        build, root, cwd = parts[2], parts[3], parts[4]
        argv, env = command_line(parts)
        if build != self.build:
            self.stopping = True  # kb was changed: this server is out of date
            conn.sendall(client.frame(b"C", b"build"))
            return
        why = self.reason
        if why is None and os.path.realpath(os.fsdecode(root)) != self.real:
            why = "root"
        if why is None and identity(env) != self.identity:
            why = "environment"
        if why is None and len(fds) != 3:
            why = "descriptors"
        if why is not None:
            conn.sendall(client.frame(b"C", why.encode()))
            return
        assert self.freshness is not None
        command = client.command_of(argv)[0]
        self.listed = self.listed or command in _LISTING
        self.listed_plain = self.listed_plain or command == "list"
        writes = command in _WRITES
        # A write checks the notes itself, under the write lock, as the cold path does (the lock forgets
        # any remembered scan): checking here first would scan them twice. Unless the server can vouch
        # for them (Freshness.vouchable: no event since a git status found them all committed), which the
        # worker confirms once it holds the lock (vouch). What it changes makes the next request check
        # (the events name the files it wrote).
        vouch: tuple[tuple[object, ...], Scan, Names] | None = None
        same_git = False
        if writes:
            # The write before, on the server's word, may leave it standing (carry): its worker tells
            # once its index update is done, which this write would wait for under the lock anyway.
            self._carry(wait=CARRY_WAIT)
            self.freshness.read_events()
            same_git = git_settings(env) == git_settings(dict(os.environ))  # git status ran with ours
            if same_git:
                self.freshness.check_unnamed()
            kept = self.freshness.kept
            if same_git and self.freshness.vouchable() and kept is not None:
                vouch = (self.freshness.stamp(), kept, self.freshness.names)
            fresh = False
            self.freshness.due = True
        else:
            fresh = self.freshness.check()
        self.requests += 1
        spare = self.spare
        self.spare = None
        pid = None
        if writes and spare is not None:
            self.spare = spare  # still good for the next reading command, if nothing changes
        elif spare is not None and fresh and spare.generation == self.freshness.generation:
            if spare.ready():
                pid = spare.take(data, [conn.fileno(), *fds])
                if pid is None:  # it died: another is forked after this request
                    self.children.add(spare.pid)
                else:
                    self.by_spare += 1
            else:
                self.spare = spare  # still rehearsing: kept for the next request
        elif spare is not None:  # the notes changed since it was forked
            spare.drop()
            self.children.add(spare.pid)
        if pid is None:
            if fresh and command in _LISTING:
                self.freshness.notes()
            # A write tells what it did (carry) when on the word, or when its own git status looks with
            # the server's settings: either may leave the notes known all committed after it.
            told = os.pipe() if writes and (vouch is not None or same_git) else None
            stamp = vouch[0] if vouch is not None else self.freshness.stamp() if told is not None else ()
            try:
                pid = os.fork()
            except OSError:
                for fd in told or ():
                    os.close(fd)
                raise
            if pid == 0:
                code = 1
                try:
                    if writes and vouch is not None:
                        vouch_in_worker(self, *vouch)  # before detach: it keeps the watch's descriptor
                    if told is not None:
                        os.close(told[0])
                        carry_to_server(self.freshness, stamp, told[1])
                    detach(self)
                    if writes and vouch is None:
                        from kb import store as kb_store

                        kb_store.settle(self.root, None)  # exactly the cold path: it scans the disk
                    Worker(self, conn, fds).run(cwd, argv, env)
                    code = 0
                finally:
                    os._exit(code)
            if told is not None:
                os.close(told[1])
                self.carrying = Carrying(told[0])
                self.freshness.begin_carry(vouched=vouch is not None)
        self.children.add(pid)
        self.last = time.monotonic()

    def _new_spare(self) -> None:
        """Fork the worker of the next request now, while no one waits (kb.server.Spare). Only where no
        request's descriptors are open (the spare would hold the client's pipes)."""
        if self.stopping or self.reason is not None or self.freshness is None or self.spare is not None:
            return
        if self.listed and self.freshness.needs_listing():
            # What list, tags and NOTE lookups read, inherited by the spare (not worked out after every
            # change for someone who only searches: 1-2 s at 100k notes), in a child while the server goes
            # on answering; the spare is forked once it is here.
            self.freshness.start_listing()
            if self.freshness.listing is not None:
                return
        self.spare = Spare.fork(self, self.freshness.generation)

    def _drop_spare(self) -> None:
        if self.spare is not None:
            self.spare.drop()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.spare.pid, 0)
            self.spare = None

    def _plain(self) -> str:
        """Whether `kb list`'s output for the notes as they are is made (Freshness.start_plain)."""
        made = self.freshness.made_plain() if self.freshness is not None else None
        if made is not None:
            return f"yes ({made.size / 1024:.0f} kB)"
        return "being made" if self.freshness is not None and self.freshness.plain is not None else "no"

    def _committed(self) -> str:
        """Whether the last git status found the notes all committed (and nothing changed since)."""
        if self.freshness is None:
            return "unknown"
        if self.freshness.status is not None:
            return "checking (git status)"
        return "yes" if self.freshness.vouchable() else "not known"

    def status(self) -> str:
        rss = ""
        with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = f"{int(line.split()[1]) // 1024} MiB"
        rows = [
            ("pid", str(os.getpid())),
            ("knowledge base", self.real),
            ("mode", "warm" if self.reason is None else f"cold: {self.reason}"),
            ("started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))),
            ("requests", str(self.requests)),
            ("answered by a spare", str(self.by_spare)),
            (
                "spare",
                "none"
                if self.spare is None
                else f"pid {self.spare.pid}, " + ("ready" if self.spare.ready() else "rehearsing"),
            ),
            ("folders watched", str(self.watcher.watches if self.watcher else 0)),
            ("notes all committed", self._committed()),
            (
                "writes on the server's word (no git status, no walk)",
                str(self.watcher.counts.value(Shared.VOUCHED) if self.watcher else 0),
            ),
            (
                "writes that left the word standing (no git status after)",
                str(self.freshness.carried if self.freshness else 0),
            ),
            (
                "commits whose trees came from the images kept",
                str(self.watcher.counts.value(Shared.TREES) if self.watcher else 0),
            ),
            ("git statuses run when idle", str(self.freshness.statuses if self.freshness else 0)),
            (
                "listings brought up to date (changed files only)",
                str(self.freshness.updates if self.freshness else 0),
            ),
            ("kb list's output made ahead", self._plain()),
            ("full checks", str(self.freshness.checks if self.freshness else 0)),
            ("quick checks (changed files only)", str(self.freshness.quick if self.freshness else 0)),
            ("idle exit after", f"{self.idle:g} s"),
            ("memory (RSS)", rss),
        ]
        return "".join(f"{k}\t{v}\n" for k, v in rows)


# ------------------------------------------------------------------ starting, asking, stopping


def paths(root: Path) -> tuple[bytes, bytes, bytes] | None:
    """(runtime folder, socket, lock file) of the knowledge base at `root`; None when it does not exist."""
    env = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
    key = client.key_of(os.fsencode(root))
    if key is None:
        return None
    folder = client.runtime_dir(env)
    return folder, folder + b"/" + key + b".sock", folder + b"/" + key + b".lock"


def serve(
    root: Path,
    foreground: bool = False,
    announce: Callable[[str], None] | None = None,
    lock_fd: int | None = None,
) -> int:
    """Run the server of `root` until it is idle, stopped or out of date. 0; 1 when it cannot start.
    `lock_fd`: its lock file, locked already by the command that started it (client.spawn)."""
    where = paths(root)
    if where is None or not client.is_knowledge_base(os.fsencode(root)):
        return 1  # no folder to serve (a server on any other folder would watch all of it)
    folder, sock_path, lock_path = where
    with contextlib.suppress(OSError):  # there already; or it cannot be made: private_dir says no
        os.mkdir(folder, 0o700)
    if not client.private_dir(folder) or len(sock_path) > 100:
        return 1
    if lock_fd is not None and not _same_file(lock_fd, lock_path):
        os.close(lock_fd)  # not this knowledge base's lock file: taken as any server takes it
        lock_fd = None
    if lock_fd is None:
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.set_inheritable(lock_fd, False)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held already when it was handed over
    except OSError:
        os.close(lock_fd)
        return 0  # another server is starting or running
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock_path)  # a dead server's socket (a live one would hold the lock)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(sock_path)
    finally:
        os.umask(old)
    os.chmod(sock_path, 0o600)
    ours = os.stat(sock_path).st_ino
    server = Server(Path(os.path.realpath(root)), sock, lock_fd, cold_reason(root))
    try:
        server.warm_up()
        sock.listen(64)
        if announce is not None:
            announce(f"kb server for {server.real} on {os.fsdecode(sock_path)} (pid {os.getpid()})")
        server.serve()
    finally:
        with contextlib.suppress(OSError):
            if os.stat(sock_path).st_ino == ours:
                os.unlink(sock_path)
        sock.close()
        os.close(lock_fd)
    return 0


@dataclass(frozen=True)
class ServerStatus:
    root: str
    socket: str
    running: bool
    details: tuple[tuple[str, str], ...]
    note: str  # why there is none, or why it runs cold


def _ask(sock_path: bytes, what: bytes, timeout: float = 2.0) -> str | None:
    sock = client.connect(sock_path, timeout)
    if sock is None:
        return None
    try:
        sock.sendall(client.frame(b"Q", client.fields([client.PROTOCOL, what])))
        kind, payload = client.recv_frame(sock)
    except (OSError, EOFError):
        return None
    finally:
        sock.close()
    return payload.decode("utf-8", "surrogateescape") if kind == b"I" else None


def status(root: Path) -> ServerStatus:
    where = paths(root)
    if where is None:
        return ServerStatus(str(root), "", False, (), f"{root} does not exist")
    sock_path = where[1]
    disabled = os.environ.get("KB_SERVER", "") in ("0", "off", "no", "false")
    answer = _ask(sock_path, b"status")
    if answer is None:
        note = "KB_SERVER=0: every command runs cold" if disabled else "no server running"
        reason = cold_reason(root)
        if reason is not None:
            note += f"; commands run cold here: {reason}"
        return ServerStatus(str(root), os.fsdecode(sock_path), False, (), note)
    rows = tuple(tuple(line.split("\t", 1)) for line in answer.splitlines() if "\t" in line)
    details = tuple((k, v) for k, v in rows)
    note = "KB_SERVER=0 in this environment: commands run cold" if disabled else ""
    return ServerStatus(str(root), os.fsdecode(sock_path), True, details, note)


def stop(root: Path, wait: float = 5.0, starting: float = 10.0) -> bool:
    """Ask the server to stop; True when one was running (it is gone when this returns, or after `wait`).
    One that is starting (it holds its lock file, but does not answer yet: a command that ran cold has just
    started it) is waited for, up to `starting` seconds, then stopped; KbError if it still does not answer."""
    from kb.errors import KbError

    where = paths(root)
    if where is None:
        return False
    if _ask(where[1], b"stop") is None:
        deadline = time.monotonic() + starting
        while client.held(where[2]):
            if time.monotonic() > deadline:
                raise KbError(
                    "this knowledge base's server holds its lock but does not answer (still starting, or its "
                    f"socket {os.fsdecode(where[1])} is gone); try again, or end it with kill"
                )
            time.sleep(0.05)
            if _ask(where[1], b"stop") is not None:
                break
        else:
            return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        still = client.connect(where[1], 0.2)
        if still is None:
            break
        still.close()
        time.sleep(0.02)
    return True


def start(root: Path, wait: float = 10.0) -> ServerStatus:
    """Start the server in the background (unless one runs) and wait until it answers."""
    where = paths(root)
    if where is not None and _ask(where[1], b"status") is None:
        client.spawn(os.fsencode(root), where[0], os.path.basename(where[1])[:-5])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _ask(where[1], b"status", 0.5) is None:
            time.sleep(0.05)
    return status(root)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "serve":
        sys.stderr.write("usage: python -m kb.server serve ROOT [--foreground] [--lock-fd FD]\n")
        return 2
    foreground = "--foreground" in argv[2:]
    lock_fd = None
    if "--lock-fd" in argv[2:-1]:
        given = argv[argv.index("--lock-fd", 2) + 1]
        lock_fd = int(given) if given.isdigit() else None
    if not foreground:
        os.chdir("/")
    announce = (lambda line: print(line, file=sys.stderr, flush=True)) if foreground else None
    return serve(Path(argv[1]).absolute(), foreground, announce, lock_fd)


def _same_file(fd: int, path: bytes) -> bool:
    """Whether descriptor `fd` is open on the file at `path`."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
