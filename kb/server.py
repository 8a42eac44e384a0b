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
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from kb import client
from kb.freshness import SPARE_DELAY, Freshness
from kb.watch import Shared, Watcher, cold_reason

if TYPE_CHECKING:
    from kb.store import Names, Scan

IDLE_SECONDS = 900.0
REQUEST_TIMEOUT = 2.0
# What a worker must have imported before it forks: everything a reading command imports.
PRELOAD = (
    "kb.cli", "kb.render", "kb.jsonshape", "kb.index",
    "kb.index.query", "kb.index.document", "kb.index.catalog", "kb.history", "kb.notes", "kb.links",
    "kb.service.links", "hashlib",
    "kb.when", "whoosh.index", "whoosh.query", "whoosh.searching", "whoosh.highlight", "whoosh.sorting",
    "whoosh.filedb.filestore", "whoosh.codec.whoosh3", "whoosh.qparser", "sqlite3", "difflib", "yaml",
    "frontmatter", "rich.console", "rich.text", "rich.table", "rich.markdown", "rich.markup",
    "rich.syntax", "rich.progress", "shlex", "subprocess", "json",
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
        self.spare: _Spare | None = None
        self.probe = ("", "")  # what a spare rehearses (a rare word, a note's path)
        self.by_spare = 0
        self.busy = 0.0  # when a worker last ran
        self.listed = False  # whether a command that reads every note's record came
        self.listed_plain = False  # whether `kb list` came (its output is then made ahead: start_plain)
        self.stopping = False
        self.watcher: Watcher | None = None
        self.freshness: Freshness | None = None
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
        assert self.freshness is not None
        if self.freshness.check():
            self.freshness.notes()
            self.rehearse(cli.run, WARM_UP)
            self.probe = self._probe()
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
            fresh = self.freshness is not None and not self.freshness.stale
            generation = self.freshness.generation if self.freshness is not None else None
            if fresh and self.spare is not None and self.spare.generation != generation and not self.children:
                self.spare.drop()  # forked before a change (a write's): another, with the listing, next
                self.children.add(self.spare.pid)
                self.spare = None
            wanted = self.spare is None and fresh
            if wanted and not self.children and time.monotonic() - self.busy >= SPARE_DELAY:
                # Here, where no request's descriptors are open (a spare must not hold the client's pipes),
                # and when no worker has run for a moment (its rehearsal would compete with commands run
                # back to back for the processor).
                self._new_spare()
                wanted = False
            freshness = self.freshness
            quiet = not self.children and time.monotonic() - self.busy >= SPARE_DELAY
            if freshness is not None and quiet and not self.stopping:
                freshness.check_when_idle()  # then git status, so that the next write may be vouched for
                freshness.start_status()  # whether the notes are all committed (Freshness.vouchable)
                if self.listed_plain:
                    freshness.start_plain()
            status = freshness.status if freshness is not None else None
            plain = freshness.plain if freshness is not None else None
            try:
                # a worker's end is not an event, nor the moment a spare is due
                due = freshness is not None and freshness.idle_work()
                wait = 0.02 if self.children or wanted or due else max(0.05, min(idle, 1.0))
                listing = freshness.listing if freshness is not None else None
                jobs: list[_Selectable] = [x for x in (status, listing, plain) if x is not None]
                ready, _, _ = select.select(([] if self.stopping else watch) + jobs, [], [], wait)
            except InterruptedError:
                continue
            if listing is not None and listing in ready and freshness is not None:
                freshness.listing_ready()
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
            data, fds = _receive(conn)
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
        argv, env = _command_line(parts)
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
        # worker confirms once it holds the lock (_vouch). What it changes makes the next request check
        # (the events name the files it wrote).
        vouch: tuple[tuple[object, ...], Scan, Names] | None = None
        if writes:
            self.freshness.read_events()
            kept = self.freshness.kept
            same_git = _git_settings(env) == _git_settings(dict(os.environ))  # git status ran with ours
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
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    if writes and vouch is not None:
                        _vouch(self, *vouch)  # before _detach: it keeps the watch's descriptor
                    _detach(self)
                    if writes and vouch is None:
                        from kb import store as kb_store

                        kb_store.settle(self.root, None)  # exactly the cold path: it scans the disk
                    _Worker(self, conn, fds).run(cwd, argv, env)
                    code = 0
                finally:
                    os._exit(code)
        self.children.add(pid)
        self.last = time.monotonic()

    def _new_spare(self) -> None:
        """Fork the worker of the next request now, while no one waits (kb.server._Spare). Only where no
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
        self.spare = _Spare.fork(self, self.freshness.generation)

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


def _command_line(parts: list[bytes]) -> tuple[list[str], dict[str, str]]:
    """The argument list and the environment of a "run" request's fields (kb.client._converse)."""
    n = int(parts[5])
    argv = [os.fsdecode(a) for a in parts[6 : 6 + n]]
    env: dict[str, str] = {}
    for item in parts[6 + n : -1]:
        name, sep, value = item.partition(b"=")
        if sep:
            env[os.fsdecode(name)] = os.fsdecode(value)
    return argv, env


def _receive(conn: socket.socket, most: int = 3) -> tuple[bytes, list[int]]:
    """One request frame and the (at most `most`) descriptors sent with it."""
    fds: list[int] = []
    data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(most * 4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(
                int.from_bytes(payload[i : i + 4], sys.byteorder, signed=True) for i in range(0, usable, 4)
            )
    try:
        while len(data) < 5:
            more = conn.recv(65536)
            if not more:
                raise EOFError
            data += more
        if data[:1] != b"Q":
            raise ValueError("not a request")
        size = int.from_bytes(data[1:5], "big")
        while len(data) < 5 + size:
            more = conn.recv(65536)
            if not more:
                raise EOFError
            data += more
    except BaseException:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise
    return data[5 : 5 + size], fds


_KEPT: list[object] = []  # the server's own streams: never closed (their descriptors are the client's now)


class _Worker:
    """A forked copy of the server running one command line on the client's descriptors."""

    def __init__(self, server: Server, conn: socket.socket, fds: list[int]) -> None:
        self.server = server
        self.conn = conn
        self.fds = fds

    def run(self, cwd: bytes, argv: list[str], env: dict[str, str]) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        conn = self.conn
        try:
            os.chdir(cwd)
        except OSError:
            conn.sendall(client.frame(b"C", b"cwd"))
            return
        conn.sendall(client.frame(b"R", str(os.getpid()).encode()))
        kind, _ = client.recv_frame(conn)
        if kind != b"G":
            return  # the client gave up waiting and runs the command itself
        conn.settimeout(None)
        mask = env.pop(os.fsdecode(client.UMASK), "")
        with contextlib.suppress(ValueError):
            os.umask(int(mask, 8) & 0o777)
        os.environ.clear()
        os.environ.update(env)
        for target, fd in enumerate(self.fds):
            os.dup2(fd, target)
            os.close(fd)
        _streams()
        from kb import cli, terminal
        from kb import index as kb_index
        from kb import store as kb_store

        terminal.SETTINGS.run_pager = self.page
        terminal.SETTINGS.before_terminal = self.hand_back
        sys.argv = ["kb", *argv]
        kb_index.merge_later()
        kb_store.defer_after_answer()
        code = cli.run(argv)
        conn.sendall(client.frame(b"X", str(code).encode()))
        if kb_store.deferring_work() or kb_index.merges_deferred():
            # Answered: the client's descriptors are let go (a pipe it writes to ends), then what the
            # change left runs: the index update under the write lock still, then, at a lower priority
            # than the commands that may come meanwhile, the merge.
            _let_go()
            conn.close()
            kb_store.run_deferred()
            with contextlib.suppress(OSError):
                os.nice(10)
            kb_index.merge_deferred()

    def hand_back(self) -> None:
        """The command needs the user's terminal (the picker, $EDITOR): the client runs it cold. It is
        asked for before anything is printed or changed (and before piped stdin is read: the editor opens
        only when stdin is a terminal), so running it again there is the same command."""
        with contextlib.suppress(OSError):
            self.conn.sendall(client.frame(b"K"))
        os._exit(0)

    def page(self, argv: list[str], env: dict[str, str], data: bytes) -> bool:
        """The pager runs in the client, on its terminal (this process has none)."""
        head = f"{len(argv)}\0{len(env)}\0".encode()
        items = [os.fsencode(a) for a in argv] + [os.fsencode(f"{k}={v}") for k, v in env.items()]
        self.conn.sendall(client.frame(b"P", head + client.fields(items) + data))
        kind, payload = client.recv_frame(self.conn)
        return kind == b"D" and payload == b"1"


def _git_settings(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What in an environment changes what git status says: GIT_* variables (but the prompt setting kb
    makes itself), HOME and XDG_CONFIG_HOME (where git's own settings and excludes file are)."""
    return tuple(
        sorted(
            (k, v)
            for k, v in env.items()
            if (k.startswith("GIT_") and k != "GIT_TERMINAL_PROMPT") or k in ("HOME", "XDG_CONFIG_HOME")
        )
    )


def _vouch(server: Server, stamp: tuple[object, ...], scan: Scan, names: Names) -> None:
    """In a worker about to write on the server's word (Freshness.vouchable): its transaction, once it holds
    the write lock, takes `scan` as the notes (and `names` as the folders' names: a new note's free file
    name is found without listing its folder) and skips git status and the walk, if no event is waiting on
    the watch (this worker keeps the watch's descriptor to look, without reading it) and the stamp is still
    `stamp` (no event read by the server meanwhile, HEAD, git's index, the catalog and the rest as they
    were). Otherwise it does what a cold process does."""
    from kb.service import transaction

    watcher, freshness, real = server.watcher, server.freshness, server.real
    assert watcher is not None and freshness is not None
    fd = os.dup(watcher.fileno())

    def check(root: Path) -> tuple[Scan, Names] | None:
        transaction.vouch_for_writes(None)  # the first transaction only: its own writes come next
        try:
            waiting = select.select([fd], [], [], 0)[0]  # looked at first, the count second: see drain
        finally:
            os.close(fd)
        if waiting or os.path.realpath(root) != real or freshness.stamp() != stamp:
            return None
        watcher.counts.bump(Shared.VOUCHED)
        return scan, names

    transaction.vouch_for_writes(check)


def _detach(server: Server) -> None:
    """In a forked child: close what only the server may hold (its socket, lock and inotify watch)."""
    with contextlib.suppress(OSError):
        server.sock.close()
    with contextlib.suppress(OSError):
        os.close(server.lock_fd)
    if server.watcher is not None:
        with contextlib.suppress(OSError):
            server.watcher.close()
    if server.spare is not None:  # the spare's end of its pair is the server's only
        server.spare.drop()
    freshness = server.freshness
    if freshness is not None:  # the background git status's and listing's pipes are the server's
        if freshness.status is not None:
            freshness.status.close()
        for job in (freshness.listing, freshness.plain):
            if job is not None:
                with contextlib.suppress(OSError):
                    os.close(job.fileno())


class _Spare:
    """The worker of the next request, forked ahead of it. Forking a copy of the server and the first run
    of a command in that copy (each page it writes is copied then) cost a few milliseconds; the spare pays
    them while no one waits, by running the server's rehearsal, then says it is ready and waits for a
    request. The server hands it one (the request and the client's descriptors, over a socket pair) only
    when nothing changed since it was forked; otherwise it is dropped (it exits) and a worker is forked as
    before. One spare at a time."""

    def __init__(self, pid: int, sock: socket.socket, generation: int) -> None:
        self.pid = pid
        self.sock = sock
        self.generation = generation
        self.is_ready = False
        self.dead = False

    @classmethod
    def fork(cls, server: Server, generation: int) -> _Spare | None:
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:  # no memory or processes left: requests get a worker of their own
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            code = 1
            try:
                ours.close()
                _detach(server)
                cls._wait(server, theirs)
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        return cls(pid, ours, generation)

    @staticmethod
    def _wait(server: Server, sock: socket.socket) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the server's terminal is not for us
        from kb import cli

        server.rehearse(cli.run, server.light_rehearsal())
        sock.sendall(b"r")
        try:
            data, fds = _receive(sock, 4)
        except (OSError, EOFError, ValueError):
            return  # dropped: the server moved on
        if len(fds) != 4:
            return
        sock.close()
        conn_fd, client_fds = fds[0], fds[1:]
        conn = socket.socket(fileno=conn_fd)
        conn.settimeout(REQUEST_TIMEOUT)  # as the server had it (the descriptor is non-blocking)
        parts = data.split(b"\0")
        argv, env = _command_line(parts)
        _Worker(server, conn, client_fds).run(parts[4], argv, env)

    def ready(self) -> bool:
        """Whether it has rehearsed and waits (False while it rehearses, or when it died: see dead)."""
        if not self.is_ready and not self.dead:
            try:
                said = self.sock.recv(1, socket.MSG_DONTWAIT)
            except OSError:  # BlockingIOError: still rehearsing
                return False
            self.is_ready = said == b"r"
            self.dead = not self.is_ready  # the end of its socket: it died before it was ready
        return self.is_ready

    def take(self, request: bytes, fds: list[int]) -> int | None:
        """Hand it the request and the connection's and client's descriptors; its pid, None if it failed."""
        data = client.frame(b"Q", request)
        try:
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, client.descriptors(*fds))]
            sent = self.sock.sendmsg([data], rights)
            if sent < len(data):
                self.sock.sendall(data[sent:])
        except OSError:
            self.drop()
            return None
        self.sock.close()
        return self.pid

    def drop(self) -> None:
        """It reads the end of its socket and exits."""
        with contextlib.suppress(OSError):
            self.sock.close()


def _let_go() -> None:
    """Flush the output, then put /dev/null on descriptors 0, 1 and 2 in place of the client's."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _streams() -> None:
    """sys.stdin, stdout and stderr made anew on descriptors 0, 1 and 2 as the interpreter makes them at
    start (encoding and errors of this environment, line buffering on a terminal, stderr always)."""
    unbuffered = bool(getattr(sys.flags, "unbuffered", 0))
    made: list[TextIO] = []
    for fd, old in ((0, sys.stdin), (1, sys.stdout), (2, sys.stderr)):
        _KEPT.append(old)
        mode = "rb" if fd == 0 else "wb"
        buffered = fd == 0 or not unbuffered
        raw: Any = open(fd, mode, buffering=-1 if buffered else 0, closefd=False)  # noqa: SIM115
        tty = os.isatty(fd)
        stream = io.TextIOWrapper(
            raw,
            encoding=old.encoding if old is not None else "utf-8",
            errors=old.errors if old is not None else "strict",
            newline="\n",
            line_buffering=buffered and (tty or fd == 2),
            write_through=not buffered,
        )
        made.append(stream)
    sys.stdin, sys.stdout, sys.stderr = made
    for name, made_stream in zip(("__stdin__", "__stdout__", "__stderr__"), made, strict=True):
        setattr(sys, name, made_stream)


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
    if where is None:
        return 1
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
