"""The warm server's workers (kb.server): the process forked for each request, which runs the cold command
line (kb.cli.run) on the client's stdin, stdout and stderr (Worker), and the spare forked ahead of the next
request (Spare); what a worker is handed (receive, command_line) and takes with it: the server's word on
the notes for a write (vouch), nothing of the server's own (detach)."""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kb import client
from kb.watch import Shared

if TYPE_CHECKING:
    from kb.freshness import Freshness
    from kb.server import Server
    from kb.store import Names, Scan

_KEPT: list[object] = []  # the server's own streams: never closed (their descriptors are the client's now)


REQUEST_TIMEOUT = 2.0


def command_line(parts: list[bytes]) -> tuple[list[str], dict[str, str]]:
    """The argument list and the environment of a "run" request's fields (kb.client._converse)."""
    n = int(parts[5])
    argv = [os.fsdecode(a) for a in parts[6 : 6 + n]]
    env: dict[str, str] = {}
    for item in parts[6 + n : -1]:
        name, sep, value = item.partition(b"=")
        if sep:
            env[os.fsdecode(name)] = os.fsdecode(value)
    return argv, env


def receive(conn: socket.socket, most: int = 3) -> tuple[bytes, list[int]]:
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


class Worker:
    """A forked copy of the server running one command line on the client's descriptors."""

    def __init__(self, server: Server, conn: socket.socket, fds: list[int]) -> None:
        self.server = server
        self.conn = conn
        self.fds = fds

    def run(self, cwd: bytes, argv: list[str], env: dict[str, str]) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # A Ctrl-C the client passes on (only once it said "go") before the command runs is kept for it: it
        # then ends as the cold path does, on the client's stderr, whatever it was setting up.
        pending: list[int] = []
        signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
        conn = self.conn
        try:
            os.chdir(cwd)
        except OSError:
            conn.sendall(client.frame(b"C", b"cwd"))
            return
        conn.sendall(client.frame(b"R", str(os.getpid()).encode()))
        # Set up while the client answers (nothing is read or written here until it said "go").
        mask = env.pop(os.fsdecode(client.UMASK), "")
        with contextlib.suppress(ValueError):
            os.umask(int(mask, 8) & 0o777)
        _take_environment(env)
        for target, fd in enumerate(self.fds):
            os.dup2(fd, target)
            os.close(fd)
        _streams()
        kind, _ = client.recv_frame(conn)
        if kind != b"G":
            return  # the client gave up waiting and runs the command itself
        conn.settimeout(None)
        from kb import cli, quick, terminal
        from kb import index as kb_index
        from kb import store as kb_store

        terminal.SETTINGS.run_pager = self.page
        terminal.SETTINGS.before_terminal = self.hand_back
        sys.argv = ["kb", *argv]
        kb_index.merge_later()
        kb_store.defer_after_answer()
        kb_store.keep_what_is_forgotten()
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if pending:
                raise KeyboardInterrupt
            code = cli.run(argv)
        except KeyboardInterrupt:  # after the command's own handling (flushing its output, say): as cold
            code = 130
            with contextlib.suppress(KeyboardInterrupt):
                code = quick.failed(KeyboardInterrupt())
        # The status reaches the client whatever comes now: a Ctrl-C it passes on is too late to change it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        conn.sendall(client.frame(b"X", str(code).encode()))
        answered()
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


def git_settings(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What in an environment changes what git status says: GIT_* variables (but the prompt setting kb
    makes itself), HOME and XDG_CONFIG_HOME (where git's own settings and excludes file are)."""
    return tuple(
        sorted(
            (k, v)
            for k, v in env.items()
            if (k.startswith("GIT_") and k != "GIT_TERMINAL_PROMPT") or k in ("HOME", "XDG_CONFIG_HOME")
        )
    )


def vouch_in_worker(server: Server, stamp: tuple[object, ...], scan: Scan, names: Names) -> None:
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


def carry_to_server(freshness: Freshness, stamp: tuple[object, ...], fd: int) -> None:
    """In a worker writing on the server's word (given at `stamp`), or off it with the server's git settings
    (the request came at `stamp`; its own git status then looks): once it lets go of the write lock (its
    change and the index update it left done), tell the server through `fd` what the change wrote, whether
    it looked itself, and what git and the index look like (kb.freshness.Freshness.carry); nothing, when
    its change did not commit as it says or git's excludes or settings changed meanwhile. Before that, a
    byte once the client has its answer (answered): what is left is the index update. The descriptor is
    closed then, or when the process ends."""
    import json

    from kb import store as kb_store
    from kb.errors import KbError
    from kb.freshness import status_settings
    from kb.history import History
    from kb.service import transaction

    carried = transaction.Carried()
    transaction.carry_writes(carried)
    _TELLING.append(fd)

    def tell() -> None:
        transaction.carry_writes(None)
        _TELLING.clear()
        told = b""
        with transaction.signals_deferred():  # a Ctrl-C is the command's, after the lock is let go
            try:
                files = carried.record(History(freshness.root))
            except KbError:
                files = None
            now = freshness.stamp()
            if files is not None and status_settings(now) == status_settings(stamp):
                said = {"files": files, "end": freshness.end_digest(now), "looked": carried.looked}
                told = json.dumps(said).encode()
            if len(told) > CARRY_MOST:
                told = b""  # (a pipe's buffer: never wait here for the server, holding the lock)
            try:
                while told:
                    told = told[os.write(fd, told) :]
            except OSError:
                pass  # the server stopped waiting: its next write looks, as cold
            finally:
                os.close(fd)

    kb_store.before_release(tell)


def answered() -> None:
    """The client has its answer: a write on the server's word says so (carry_to_server)."""
    for fd in _TELLING:
        with contextlib.suppress(OSError):
            os.write(fd, b"a")


_TELLING: list[int] = []  # the descriptor a write on the server's word tells through, until it has
CARRY_MOST = 60000  # bytes told at most (a pipe holds 64 KiB)
# How long a write waits for the write before it, on the server's word, to tell what it did (carry), once
# that one answered its client: its index update, which the new write would wait for under the lock anyway.
CARRY_WAIT = 1.0


class Carrying:
    """The server's end of the pipe a write on its word tells through (carry_to_server), read without
    blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.got = bytearray()
        self.done = False  # the worker closed its end

    def fileno(self) -> int:
        return self.fd

    def take(self) -> None:
        """Read what is there."""
        try:
            while chunk := os.read(self.fd, 65536):
                self.got += chunk
            self.done = True
        except BlockingIOError:
            pass
        except OSError:
            self.done = True

    @property
    def answered(self) -> bool:
        """Whether its client has its answer (all that is left is its index update)."""
        return self.done or self.got[:1] == b"a"

    def wait(self, wait: float) -> None:
        """Read until the worker has told, for up to `wait` seconds."""
        deadline = time.monotonic() + wait
        while not self.done and (left := deadline - time.monotonic()) > 0:
            if select.select([self.fd], [], [], left)[0]:
                self.take()

    def told(self) -> bytes:
        """What it told (the record, without the byte that said it answered)."""
        return bytes(self.got.lstrip(b"a"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def detach(server: Server) -> None:
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
    if server.carrying is not None:
        server.carrying.close()


class Spare:
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
    def fork(cls, server: Server, generation: int) -> Spare | None:
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
                detach(server)
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
        from kb import index as kb_index

        server.rehearse(cli.run, server.light_rehearsal())
        kb_index.ready_kept_searcher()
        sock.sendall(b"r")
        try:
            data, fds = receive(sock, 4)
        except (OSError, EOFError, ValueError):
            return  # dropped: the server moved on
        if len(fds) != 4:
            return
        sock.close()
        conn_fd, client_fds = fds[0], fds[1:]
        conn = socket.socket(fileno=conn_fd)
        conn.settimeout(REQUEST_TIMEOUT)  # as the server had it (the descriptor is non-blocking)
        parts = data.split(b"\0")
        argv, env = command_line(parts)
        Worker(server, conn, client_fds).run(parts[4], argv, env)

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


def _take_environment(env: dict[str, str]) -> None:
    """os.environ made `env`: what differs from this process's set or removed (the client's environment is
    most often the server's: a call to putenv and unsetenv each for every variable costs 0.3 ms)."""
    environ = os.environ
    for name in [name for name in environ if name not in env]:
        del environ[name]
    for name, value in env.items():
        if environ.get(name) != value:
            environ[name] = value


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
