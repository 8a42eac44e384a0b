"""The `kb` program: a thin client of the knowledge base's warm server, else the whole command line.

This module imports nothing but built-in modules (sys, posix, _socket, _signal): it starts in a few
milliseconds.
For a command of WARM (the reading commands, `add` and `edit`) it finds the knowledge base (`--kb PATH`
before the command, `$KB_HOME`, `~/.kb`), connects to that knowledge base's server (kb.server) over a Unix
socket in the user's runtime folder, and hands it the argument list, the working folder, the environment,
its umask and its own stdin, stdout and stderr (passed as file descriptors: the server's worker writes to
the very same terminal or pipe, so it sees what the cold path would see). It then waits for the exit
status, runs the pager for the worker when asked (the pager needs this process's terminal), and exits
with that status.

Whenever anything is uncertain (no server, a refused or slow connection, another build of kb, a socket of
another user, `KB_SERVER=0`, another command, a worker that hands the command back because it needs the
terminal for the picker or $EDITOR) it runs the whole command line here (the cold path, exactly
`python -m kb`), and for a command of WARM starts a server in the background for the next time.
"""

import sys

if sys.platform != "win32":  # elsewhere main() runs the command line at once
    import _signal
    import _socket
    import posix

PROTOCOL = b"kb-warm-2"
# Reading commands, which never prompt or run an editor (the pager runs here, on the worker's request),
# and `add` and `edit`, which hand the command back to run here before they would start an editor.
WARM = frozenset(
    {"search", "list", "show", "log", "tags", "links", "backlinks", "changes", "blame", "add", "edit"}
)
# Global options before the command that take a value.
_VALUED = frozenset({"--kb", "--color"})
_FLAGS = frozenset({"--no-pager", "--debug"})
CONNECT_TIMEOUT = 1.0
READY_TIMEOUT = 5.0  # the server catches up with outside edits before it answers "ready"
_LEN = 4
UMASK = b"_KB_CLIENT_UMASK"


# ------------------------------------------------------------------ shared with kb.server


def runtime_dir(env: dict[bytes, bytes]) -> bytes:
    """The per-user folder of sockets and lock files: $XDG_RUNTIME_DIR/kb, else (unset, relative, or not a
    folder) /tmp/kb-UID."""
    base = env.get(b"XDG_RUNTIME_DIR", b"")
    if base.startswith(b"/"):
        try:
            folder = (posix.stat(base).st_mode & 0o170000) == 0o040000
        except OSError:
            folder = False
        if folder:
            return base.rstrip(b"/") + b"/kb"
    return b"/tmp/kb-%d" % posix.getuid()


def private_dir(path: bytes) -> bool:
    """A folder of this user's that no one else may enter: not a link, owned by us, mode 0700."""
    try:
        st = posix.lstat(path)
    except OSError:
        return False
    return (
        (st.st_mode & 0o170000) == 0o040000 and st.st_uid == posix.getuid() and (st.st_mode & 0o777) == 0o700
    )


def private_socket(path: bytes) -> bool:
    """A socket of this user's that no one else may open: owned by us, no access for group or others."""
    try:
        st = posix.lstat(path)
    except OSError:
        return False
    return (st.st_mode & 0o170000) == 0o140000 and st.st_uid == posix.getuid() and not st.st_mode & 0o077


def key_of(root: bytes) -> bytes | None:
    """The name of a knowledge base's socket and lock: from its folder's device and inode (the same folder
    however it is spelled); None when it does not exist."""
    try:
        st = posix.stat(root)
    except OSError:
        return None
    if (st.st_mode & 0o170000) != 0o040000:
        return None
    return b"%016x" % _fnv(b"%d:%d" % (st.st_dev, st.st_ino))


_MERSENNE_61 = (1 << 61) - 1


def _fnv(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def build_id() -> bytes:
    """This build of kb: its source files' names, sizes and times, the environment (sys.prefix, the same for
    python and python3) and the interpreter's version. A server of another build is not used (and exits)."""
    here = __file__.rpartition("/")[0]
    parts: list[bytes] = [sys.prefix.encode(), sys.version.encode()]
    stack = [here]
    while stack:
        folder = stack.pop()
        try:
            names = sorted(posix.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = f"{folder}/{name}"
            if name.endswith(".py"):
                try:
                    st = posix.stat(path)
                except OSError:
                    continue
                parts.append(b"%s:%d:%d" % (path.encode(), st.st_mtime_ns, st.st_size))
            elif "." not in name and name != "__pycache__":
                stack.append(path)
    # A checksum worked out in C (the FNV loop above, in Python, took 0.6 ms of every warm command here).
    return b"%016x" % (int.from_bytes(b"\0".join(parts), "big") % _MERSENNE_61)


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + len(payload).to_bytes(_LEN, "big") + payload


def fields(values: list[bytes]) -> bytes:
    """NUL-terminated fields (none of them may hold a NUL: argv, environment and paths cannot)."""
    return b"".join(v + b"\0" for v in values)


def recv_exact(sock: "_socket.socket", n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def recv_frame(sock: "_socket.socket") -> tuple[bytes, bytes]:
    head = recv_exact(sock, 1 + _LEN)
    size = int.from_bytes(head[1:], "big")
    return head[:1], recv_exact(sock, size) if size else b""


def peer_uid(sock: "_socket.socket") -> int:
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder)


def connect(path: bytes, timeout: float = CONNECT_TIMEOUT) -> "_socket.socket | None":
    """A connection to the server listening at `path`, checked to be ours; None if there is none."""
    if not private_socket(path):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        if peer_uid(sock) != posix.getuid():
            sock.close()
            return None
    except OSError:
        sock.close()
        return None
    return sock


# ------------------------------------------------------------------ the client


class _Cold(Exception):
    """Run the command here, the cold way."""


def command_of(argv: list[str]) -> tuple[str | None, str | None]:
    """(the command, the --kb value) from the arguments: global options come first."""
    kb: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUED:
            if i + 1 >= len(argv):
                return None, kb
            if arg == "--kb":
                kb = argv[i + 1]
            i += 2
        elif arg.startswith("--kb="):
            kb = arg[5:]
            i += 1
        elif arg.startswith("--color=") or arg in _FLAGS:
            i += 1
        else:
            return arg, kb
    return None, kb


def resolve_root(kb: str | None, env: dict[bytes, bytes], cwd: bytes) -> bytes | None:
    """The knowledge base folder as kb.config.resolve_root finds it; None when unsure (the cold path)."""
    raw = kb.encode("utf-8", "surrogateescape") if kb else env.get(b"KB_HOME") or b""
    if not raw:
        home = env.get(b"HOME")
        if not home:
            return None
        raw = home.rstrip(b"/") + b"/.kb"
    if raw.startswith(b"~"):
        if raw != b"~" and not raw.startswith(b"~/"):
            return None
        home = env.get(b"HOME")
        if not home:
            return None
        raw = home.rstrip(b"/") + raw[1:]
    if not raw.startswith(b"/"):
        raw = cwd.rstrip(b"/") + b"/" + raw
    return raw


def _warm(argv: list[str], env: dict[bytes, bytes]) -> int:
    """Run the command in the server; its exit status. Raises _Cold to run it here."""
    if sys.platform != "linux" or env.get(b"KB_SERVER", b"") in (b"0", b"off", b"no", b"false"):
        raise _Cold
    command, kb = command_of(argv)
    if command not in WARM or env.get(b"_KB_COMPLETE"):
        raise _Cold
    for fd in (0, 1, 2):
        try:
            posix.fstat(fd)
        except OSError:
            raise _Cold from None  # a standard stream closed (`>&-`): the command says so itself
    for arg in argv:
        if arg in ("-h", "--help", "--debug", "--version"):
            raise _Cold
    try:
        cwd = posix.getcwd().encode("utf-8", "surrogateescape")
    except OSError:
        raise _Cold from None
    root = resolve_root(kb, env, cwd)
    key = key_of(root) if root is not None else None
    if root is None or key is None:
        raise _Cold
    folder = runtime_dir(env)
    sock_path = folder + b"/" + key + b".sock"
    if not private_dir(folder) or len(sock_path) > 100:
        spawn(root, folder, key)
        raise _Cold
    sock = connect(sock_path)
    if sock is None:
        spawn(root, folder, key)
        raise _Cold
    try:
        return _converse(sock, argv, env, root, cwd)
    finally:
        sock.close()


def _converse(
    sock: "_socket.socket", argv: list[str], env: dict[bytes, bytes], root: bytes, cwd: bytes
) -> int:
    args = [a.encode("utf-8", "surrogateescape") for a in argv]
    mask = posix.umask(0o022)
    posix.umask(mask)
    request = fields(
        [PROTOCOL, b"run", build_id(), root, cwd, b"%d" % len(args), *args]
        + [k + b"=" + v for k, v in env.items() if k != UMASK]
        + [UMASK + b"=%o" % mask]  # files a write makes get this process's mode bits
    )
    data = frame(b"Q", request)
    try:
        sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, descriptors(0, 1, 2))])
        if sent < len(data):
            sock.sendall(data[sent:])
        sock.settimeout(READY_TIMEOUT)
        kind, payload = recv_frame(sock)
        if kind != b"R":
            raise _Cold  # "C": the server says run it here (another build, another locale...)
        pid = int(payload)
    except (OSError, EOFError, ValueError):
        raise _Cold from None
    # Once the worker is told "go" it runs the command on our stdin, stdout and stderr: never run it twice.
    # A Ctrl-C from now on is passed on to it (SIGINT: it stops as the cold path would, exit 130) by a
    # handler, not as a KeyboardInterrupt, which could come between reading one part of a frame and the
    # next; one before "go" ends this command here, and the worker, told nothing, ends too.
    forward: list[int] = []
    stopped: list[int] = []
    _signal.signal(
        _signal.SIGINT, lambda signum, frame: _kill(forward, signum) if forward else stopped.append(1)
    )
    try:
        if stopped:
            raise KeyboardInterrupt
        try:
            sock.sendall(frame(b"G"))
            sock.settimeout(None)
        except OSError:
            raise _Cold from None
        forward.append(pid)
        if stopped:  # between the test above and "go": the worker runs now, and is stopped
            _kill(forward, 2)
        while True:
            try:
                kind, payload = recv_frame(sock)
            except (OSError, EOFError):
                posix.write(2, b"Error: the kb server stopped while answering; run the command again\n")
                return 1
            if kind == b"X":
                return int(payload)
            if kind == b"K":  # it needs this terminal (the picker) and has done nothing: run it here
                raise _Cold
            if kind == b"P":
                forward.clear()  # a Ctrl-C belongs to the pager while it runs
                ok = _page(payload)
                forward.append(pid)
                try:  # noqa: SIM105 (contextlib is not built in)
                    sock.sendall(frame(b"D", b"1" if ok else b"0"))
                except OSError:
                    pass
    finally:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)


def descriptors(*fds: int) -> bytes:
    """File descriptors as SCM_RIGHTS carries them."""
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def _kill(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:  # noqa: SIM105
            posix.kill(pid, signum)
        except OSError:
            pass


def _page(payload: bytes) -> bool:
    """Run the pager the worker chose (argv, environment) on its text, on this process's terminal."""
    parts = payload.split(b"\0", 2)
    try:
        n_argv, n_env = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return False
    rest = parts[2]
    items = rest.split(b"\0", n_argv + n_env)
    argv, env_items, text = items[:n_argv], items[n_argv : n_argv + n_env], items[n_argv + n_env]
    env: dict[bytes, bytes] = {}
    for item in env_items:
        name, _, value = item.partition(b"=")
        env[name] = value
    try:
        r, w = posix.pipe()
        pid = posix.fork()
    except OSError:
        return False
    if pid == 0:  # the pager
        try:
            posix.close(w)
            posix.dup2(r, 0)
            posix.close(r)
            posix.execve(argv[0], argv, env)
        finally:
            posix._exit(127)
    posix.close(r)
    view = memoryview(text)
    try:
        while view:
            view = view[posix.write(w, view) :]
    except OSError:  # the user quit the pager early
        pass
    posix.close(w)
    # A Ctrl-C belongs to the pager while it runs: _converse's handler passes on none meanwhile.
    try:  # noqa: SIM105 (contextlib is not built in)
        posix.waitpid(pid, 0)
    except OSError:
        pass
    return True


def held(lock_path: bytes) -> bool:
    """Whether a server holds this lock file: it is starting or running."""
    import fcntl  # not built in; only `kb server` gets here

    try:
        fd = posix.open(lock_path, posix.O_RDWR | posix.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        posix.close(fd)
    return False


def is_knowledge_base(root: bytes) -> bool:
    """kb.layout.is_knowledge_base, with built-in modules only: a folder with notes/, a git repository or
    kb.toml. Any other folder (a mistyped --kb, say) gets no server: it would watch every folder in it."""

    def kind(name: bytes) -> int:  # the file type bits of its mode (S_IFMT); 0: there is none
        try:
            return posix.stat(root + b"/" + name).st_mode & 0o170000
        except (OSError, ValueError):
            return 0

    return kind(b"notes") == 0o040000 or kind(b".git") != 0 or kind(b"kb.toml") == 0o100000


def spawn(root: bytes, folder: bytes, key: bytes) -> None:
    """Start the server of this knowledge base in the background, unless one is starting or running (its
    lock file is held) or `root` is no knowledge base. Never waits for it. The lock is taken here and
    handed to the server (--lock-fd): from this moment on a server is starting, for `kb server stop` and
    for other commands alike."""
    if not is_knowledge_base(root):
        return
    try:
        import fcntl  # not built in; only the cold path gets here
        import subprocess

        try:  # noqa: SIM105
            posix.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        if not private_dir(folder):
            return
        fd = posix.open(folder + b"/" + key + b".lock", posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # a server holds it
            subprocess.Popen(
                [sys.executable, "-P", "-m", "kb.server", "serve", root.decode("utf-8", "surrogateescape"),
                 "--lock-fd", str(fd)],
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                pass_fds=(fd,),
            )  # fmt: skip
        finally:
            posix.close(fd)  # the server's copy keeps the lock
    except OSError:
        return


def _ask_git(argv: list[str], env: dict[bytes, bytes]) -> None:
    """A search run here: git checks whether any note changed (kb.gitwitness) while the command line is
    imported, so the search need not walk the notes."""
    command, kb = command_of(argv)
    if command != "search" or env.get(b"_KB_COMPLETE"):
        return
    try:
        cwd = posix.getcwd().encode("utf-8", "surrogateescape")
    except OSError:
        return
    root = resolve_root(kb, env, cwd)
    if root is not None:
        from kb import gitwitness

        gitwitness.start(root.decode("utf-8", "surrogateescape"))


def full_site() -> None:
    """Python's `site` (site-packages, .pth files, sitecustomize) when this process started without it (bin/kb
    runs `python -S`): before anything outside the standard library is imported. Where multiprocessing
    would start its children as new interpreters, which would inherit -S (a start method other than fork:
    Python 3.14's default, macOS), the command starts again with site instead."""
    if not sys.flags.no_site:
        return
    if sys.platform == "linux" and sys.version_info < (3, 14):
        # As at Python's start: sys.prefix is the base one until site finds the virtual environment (it
        # reads it when imported: a virtual environment with the system's packages gets those too).
        sys.prefix, sys.exec_prefix = sys.base_prefix, sys.base_exec_prefix
        import site

        site.main()
        return
    flags = ["-E"] if sys.flags.ignore_environment else []
    posix.execv(sys.executable, [sys.executable, *flags, sys.argv[0], *sys.argv[1:]])


def main() -> None:
    argv = sys.argv[1:]
    if sys.platform != "linux":
        full_site()
        from kb.cli import main as cold

        cold()
        return
    env = dict(posix.environ)
    try:
        code = _warm(argv, env)
    except _Cold:
        full_site()
        _ask_git(argv, env)
        from kb import quick

        handlers = quick.handlers_now()
        done = quick.run(argv)  # a plain search, without the command line's parser
        if done is not None:
            quick.leave(done, handlers)
        from kb.cli import main as cold

        cold()
        return
    except KeyboardInterrupt:
        posix.write(2, b"Error: interrupted\n")
        code = 130
    posix._exit(code)
