"""Every test runs against a knowledge base in its own temporary folder, with no git configuration of the
machine's and a fixed clock. Nothing here reads or writes the user's home.

`pytest --warm` runs the whole suite through the warm server: the `kb` fixture then runs each command as a
user does (the installed `kb` program in a subprocess, KB_SERVER on) against a real server of that test's
knowledge base, and checks that the server answered every command of kb.client.WARM. Tests marked
`cold_only` (they change kb's functions in this process) are skipped then."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb import client, server
from kb.cli import app_for

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
NOW = "2026-01-02T03:04:05.678Z"


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point kb, git and $HOME at `tmp_path`, fix the clock, forget the machine's editor and git identity."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    temp = tmp_path / "tmp"  # kb's drafts outside a knowledge base go here, not to the system's temp dir
    temp.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("KB_HOME", str(tmp_path / "kb"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("KB_NOW", NOW)
    monkeypatch.setenv("KB_LOCK_TIMEOUT", "2")
    # Every command runs cold unless a test of the warm server says otherwise (tests/test_server.py); its
    # sockets would go under tmp_path, never to the user's runtime folder.
    monkeypatch.setenv("KB_SERVER", "0")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    for name in ("EDITOR", "VISUAL", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        for part in ("NAME", "EMAIL", "DATE"):
            monkeypatch.delenv(f"GIT_{role}_{part}", raising=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--warm",
        action="store_true",
        help="run the `kb` fixture's commands through the real client and a real server of each test's kb",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cold_only(reason): needs the command to run in this process; skipped under --warm"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--warm"):
        return
    for item in items:
        marker = item.get_closest_marker("cold_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"cold only: {reason}"))


_COUNTS = {
    "warm": 0,
    "cold": 0,
    "late": 0,
}  # under --warm: the `kb` fixture's commands answered by a server, or not


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        for name, value in report.user_properties:
            if name in ("kb warm", "kb cold", "kb late") and isinstance(value, int):
                _COUNTS[name[3:]] += value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if config.getoption("--warm"):
        terminalreporter.write_line(
            f"--warm: {_COUNTS['warm']} commands answered by a kb server, {_COUNTS['cold']} run by the client"
            f", {_COUNTS['late']} by the client after waiting {client.READY_TIMEOUT:g} s for a busy server"
        )


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "kb"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


def cold_runner() -> Callable[..., Run]:
    """Run the real CLI in-process: kb("add", "Title", input="body")."""
    runner = CliRunner()

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str | None] | None = None) -> Run:
        # app_for: the commands the program itself builds for these arguments (cli.run)
        result = runner.invoke(app_for(list(args)), list(args), input=input, env=env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr, result.stdout_bytes)

    return run


PROGRAM = Path(sys.executable).with_name("kb")  # the console script a user runs (kb.entry, then kb.client)
_OFF = ("0", "off", "no", "false")


class WarmRunner:
    """`pytest --warm`: each command as the user runs it, `kb ARGS` in a subprocess (stdin a pipe holding
    `input`, stdout and stderr pipes, as the CliRunner has them: no terminal), KB_SERVER on. Before a command
    of kb.client.WARM whose knowledge base exists, that knowledge base's server is started (lazily: `kb init`
    or a first `kb add` makes the folder) and waited for; the command must then be answered by it (its count
    of requests goes up by one). Every server a test started is stopped at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.roots: set[Path] = set()
        self.warm = 0  # commands answered by a server
        self.cold = 0  # commands the client ran itself (not in WARM, --help, no knowledge base yet...)
        self.late = 0  # commands the client ran itself after waiting for a busy server

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: dict[str, str | None] | None = None
    ) -> Run:
        full = dict(os.environ)
        for name, value in (env or {}).items():
            if value is None:
                full.pop(name, None)
            else:
                full[name] = value
        root = self._server_for(list(args), full)
        before = self._requests(root) if root is not None else 0
        data = input.encode() if isinstance(input, str) else (input or b"")
        proc = subprocess.run(
            [str(PROGRAM), *args], input=data, capture_output=True, env=full, timeout=120, check=False
        )
        if root is not None:
            answered = self._requests(root) - before
            if answered == 1:
                self.warm += 1
            else:
                # The client waits READY_TIMEOUT for the server's "ready", then runs the command itself: on
                # a loaded machine the server may see the request only after that.
                deadline = time.monotonic() + 5.0
                while answered == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                    answered = self._requests(root) - before
                assert answered == 1, f"kb {' '.join(args)}: {answered} requests answered by the server"
                self.late += 1
        else:
            self.cold += 1
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return Run(code, _text(proc.stdout), _text(proc.stderr), proc.stdout)

    def _server_for(self, argv: list[str], env: dict[str, str]) -> Path | None:
        """The knowledge base whose server must answer this command (started now if need be), or None when
        the client runs it itself."""
        if env.get("KB_SERVER", "") in _OFF or env.get("_KB_COMPLETE") or sys.platform != "linux":
            return None
        if env.get("XDG_RUNTIME_DIR") != os.environ.get("XDG_RUNTIME_DIR"):
            return None
        command, kb_option = client.command_of(argv)
        if command not in client.WARM or any(a in ("-h", "--help", "--debug", "--version") for a in argv):
            return None
        if server.identity(env) != server.identity(dict(os.environ)):
            return None  # the server would refuse it (another locale or interpreter setting)
        found = client.resolve_root(
            kb_option, {os.fsencode(k): os.fsencode(v) for k, v in env.items()}, os.fsencode(os.getcwd())
        )
        if found is None or client.key_of(found) is None or not client.is_knowledge_base(found):
            return None  # no knowledge base (yet): the client runs the command (an error, as cold)
        root = Path(os.fsdecode(found))
        status = server.status(root)
        if not status.running:
            status = server.start(root, wait=60.0)
            assert status.running, f"no server of {root}: {status.note}"
            self.roots.add(root)
        details = dict(status.details)
        if details.get("mode") != "warm" or details.get("knowledge base") != os.path.realpath(root):
            return None  # it runs every command cold here, or it serves this folder under another path
        return root

    @staticmethod
    def _requests(root: Path) -> int:
        return int(dict(server.status(root).details).get("requests", "0"))

    def close(self) -> None:
        """Stop the servers of this test (and kill whatever is left of them)."""
        for root in self.roots:
            with contextlib.suppress(OSError):
                server.stop(root, wait=5.0)
        deadline = time.monotonic() + 5.0
        while server_pids(self.tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in server_pids(self.tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\r\n", "\n")  # as the CliRunner decodes


def server_pids(under: Path) -> list[int]:
    """The processes running a server (or its workers or spare) of the knowledge base `under` or of one
    under it."""
    exact = os.fsencode(under)
    prefix = exact + b"/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kb.server" in cmdline and any(arg == exact or arg.startswith(prefix) for arg in cmdline):
            found.append(int(entry.name))
    return found


@pytest.fixture
def cold_kb() -> Callable[..., Run]:
    """The CLI in this process, whatever the mode (for setting up what a test of the server then runs)."""
    return cold_runner()


@pytest.fixture
def kb(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., Run]]:
    """Run the real CLI: kb("add", "Title", input="body"); in-process, or through a server under --warm."""
    if not request.config.getoption("--warm"):
        yield cold_runner()
        return
    runtime = Path(
        tempfile.mkdtemp(prefix="kbw", dir="/tmp")
    )  # a socket's path is short; tmp_path's may not be
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("KB_SERVER", raising=False)
    monkeypatch.setenv("KB_SERVER_IDLE", "120")  # in case one is left behind
    runner = WarmRunner(tmp_path)
    try:
        yield runner
    finally:
        runner.close()
        shutil.rmtree(runtime, ignore_errors=True)
        request.node.user_properties += [
            ("kb warm", runner.warm),
            ("kb cold", runner.cold),
            ("kb late", runner.late),
        ]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def index_env(root: Path) -> dict[str, str]:
    """The environment for git to read a copy of the repository's index (its own is left as it is: kb
    notes when nothing but its commits wrote it)."""
    copy = root.parent / "index-copy"
    shutil.copyfile(root / ".git" / "index", copy)
    return {**os.environ, "GIT_INDEX_FILE": str(copy)}


def index_tree(root: Path) -> str:
    """The tree git's write-tree makes of (a copy of) the repository's index."""
    env = index_env(root)
    made = subprocess.run(["git", "write-tree"], cwd=root, env=env, capture_output=True, text=True)
    return made.stdout.strip()


def log_subjects(root: Path) -> list[str]:
    return git(root, "log", "--format=%s").splitlines()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the working tree and the repository's HEAD, to prove a command changed nothing."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".git/") and not rel.startswith("index/"):
            files[rel] = path.read_bytes()
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    files["<HEAD>"] = head.stdout.encode()
    return files


def write_editor(tmp_path: Path, script: str, name: str = "editor.sh") -> str:
    """An $EDITOR that runs a shell script on the file it is given ($1)."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return str(path)


def kb_subprocess(
    *args: str, env: dict[str, str] | None = None, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """The installed program, as a user runs it."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "kb", *args], capture_output=True, env=full, input=input, timeout=timeout
    )
