"""The warm server and its thin client: real server processes in tmp_path, the client as a user runs it.

Every test that starts a server stops it (and kills what is left of it) in teardown; servers here exit
after 60 s without a request in any case."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from kb import client, server, watch, worker
from kb.freshness import Freshness
from kb.service import NoteInfo
from tests.conftest import PROGRAM, Run, git, index_tree, server_pids

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the warm server needs inotify (Linux)")

CLIENT = [sys.executable, "-c", "from kb.client import main; main()"]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


@dataclass
class Warm:
    root: Path
    env: dict[str, str]

    def run(
        self, *args: str, cold: bool = False, env: dict[str, str] | None = None, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        full = {**self.env, **(env or {})}
        if cold:
            full["KB_SERVER"] = "0"
        return subprocess.run([*CLIENT, *args], capture_output=True, env=full, input=input, timeout=60)

    def status(self) -> server.ServerStatus:
        return server.status(self.root)

    def requests(self) -> int:
        return int(dict(self.status().details).get("requests", "-1"))

    def pid(self) -> int:
        return int(dict(self.status().details)["pid"])

    def start(self) -> None:
        proc = self.run("server", "start")
        assert proc.returncode == 0, proc.stderr
        assert self.status().running

    def wait_running(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status().running:
                return
            time.sleep(0.05)
        raise AssertionError("the server did not start")

    def stop(self) -> None:
        server.stop(self.root, wait=5.0)
        for pid in server_pids(self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def warm(cold_kb, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warm]:
    """A knowledge base of a few linked notes, kb's warm server allowed, the runtime folder in tmp_path."""
    runtime = tmp_path / "run"
    made = None
    if len(os.fsencode(runtime)) > 60:  # a Unix socket's path is short; pytest's tmp_path may not be
        made = tempfile.mkdtemp(prefix="kbr", dir="/tmp")
        runtime = Path(made)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("KB_SERVER", raising=False)
    monkeypatch.setenv("KB_SERVER_IDLE", "60")
    assert (
        cold_kb("add", "Alpha note", "-t", "greek", "-b", "The zebra crossing. See [[Beta note]].").exit_code
        == 0
    )
    assert (
        cold_kb("add", "Beta note", "-t", "greek/letters", "-b", "Quiet words about a giraffe.").exit_code
        == 0
    )
    assert cold_kb("edit", "Alpha note", "-a", "A second paragraph with zebra again.").exit_code == 0
    assert cold_kb("search", "zebra").exit_code == 0  # the index is built
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    handle = Warm(root, env)
    try:
        yield handle
    finally:
        handle.stop()
        if made:
            shutil.rmtree(made, ignore_errors=True)


COMMANDS = [
    ("search", "zebra"),
    ("search", "zebra", "--json"),
    ("search", "-l", "greek"),
    ("search", "nothingmatchesthis"),
    ("search", "bad("),
    ("list",),
    ("list", "--json"),
    ("--color", "always", "list"),
    ("show", "Alpha note"),
    ("show", "Alpha note", "--raw"),
    ("show", "No such note"),
    ("log", "Alpha note"),
    ("log", "--json"),
    ("tags",),
    ("tags", "--json"),
    ("links", "Alpha note"),
    ("backlinks", "Beta note"),
    ("changes", "--since", "2020-01-01"),
    ("changes", "--since", "2020-01-01", "--json"),
    ("blame", "Alpha note"),
    ("list", "--as-of", "2026-01-02"),
    ("list", "--as-of", "soon"),
]


def test_warm_and_cold_print_the_same_bytes_and_exit_the_same(warm: Warm):
    warm.start()
    before = warm.requests()
    for args in COMMANDS:
        cold = warm.run(*args, cold=True)
        hot = warm.run(*args)
        assert (hot.returncode, hot.stdout, hot.stderr) == (cold.returncode, cold.stdout, cold.stderr), args
    assert warm.requests() == before + len(COMMANDS)  # every one of them was answered by the server
    codes = {args: warm.run(*args).returncode for args in COMMANDS}
    assert codes[("search", "bad(")] == 2
    assert codes[("show", "No such note")] == 1
    assert codes[("search", "nothingmatchesthis")] == 1


def _on_terminal(warm: Warm, args: list[str], env: dict[str, str], rows: int = 30) -> tuple[str, int]:
    full = {**warm.env, "TERM": "xterm-256color", **env}
    child = pexpect.spawn(
        CLIENT[0], [*CLIENT[1:], *args], env=full, dimensions=(rows, 100), encoding="utf-8", timeout=60
    )
    out = child.read()
    child.close()
    return out, child.exitstatus if child.exitstatus is not None else -1


def test_on_a_terminal_warm_and_cold_agree_and_the_pager_runs_in_the_client(
    warm: Warm, cold_kb, tmp_path: Path
):
    body = "\n\n".join(f"Paragraph {i} of zebra." for i in range(60))
    assert cold_kb("add", "Tall", "-b", body).exit_code == 0
    warm.start()
    before = warm.requests()
    for args in (["search", "zebra"], ["list"], ["show", "Alpha note"], ["tags"], ["log", "Alpha note"]):
        assert _on_terminal(warm, args, {}) == _on_terminal(warm, args, {"KB_SERVER": "0"}), args
    assert warm.requests() == before + 5
    marker = tmp_path / "pager-ran"
    pager = tmp_path / "pager.sh"
    pager.write_text(f'#!/bin/sh\necho ran >> "{marker}"\ncat\n')
    pager.chmod(0o755)
    hot = _on_terminal(warm, ["show", "Tall"], {"KB_PAGER": str(pager)}, rows=10)
    assert marker.read_text() == "ran\n"
    cold = _on_terminal(warm, ["show", "Tall"], {"KB_PAGER": str(pager), "KB_SERVER": "0"}, rows=10)
    assert marker.read_text() == "ran\nran\n"
    assert hot == cold and "Paragraph 59" in hot[0]


def test_a_command_that_opens_the_picker_is_handed_back_to_run_cold(warm: Warm):
    warm.start()
    before = warm.requests()
    full = {**warm.env, "TERM": "xterm-256color"}
    child = pexpect.spawn(CLIENT[0], [*CLIENT[1:], "show"], env=full, dimensions=(30, 100), timeout=60)
    child.expect("note>")  # the picker, drawn by the client itself on its terminal
    child.send("Beta")
    child.expect("Beta note")
    child.send("\r")
    child.expect("giraffe")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert warm.requests() == before + 1  # asked once, handed back, never run twice


def test_piped_stdin_and_a_closed_stdout_behave_as_cold(warm: Warm):
    warm.start()
    hot = warm.run("search", "zebra", input=b"ignored")
    cold = warm.run("search", "zebra", input=b"ignored", cold=True)
    assert hot.stdout == cold.stdout and hot.returncode == cold.returncode == 0
    full = {**warm.env}
    script = f"{' '.join(CLIENT[:2])} '{CLIENT[2]}' search zebra | head -c 1 >/dev/null; echo $?"
    proc = subprocess.run(["sh", "-c", script], capture_output=True, env=full, timeout=60)
    assert proc.stdout.strip() == b"0"


def _many_notes(warm: Warm, root: Path, count: int = 1500) -> None:
    """Notes enough that `kb list` prints far more than a pipe holds (150 kB), then the server started."""
    for n in range(count):
        (root / "notes" / f"A long title for note number {n:05d} of many.md").write_text(f"# Note {n}\n")
    warm.start()
    warm.wait_running()


def test_a_reader_that_stops_early_is_no_failure_warm_or_cold(warm: Warm, root: Path):
    # `kb list | head -1`: the reader takes a line and closes the pipe while kb still writes (the output
    # is far larger than a pipe holds); kb stops quietly with status 0, warm as cold. A pipe closed
    # anywhere else is still a failure.
    _many_notes(warm, root)
    program = " ".join(f"'{part}'" for part in CLIENT)
    for command in ("list", "list --json", "search note -n 2000 -l"):
        for mode in ("1", "0"):
            script = f"{program} --kb '{root}' {command} | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}"
            env = {**warm.env, "KB_SERVER": mode}
            proc = subprocess.run(["bash", "-c", script], capture_output=True, env=env, timeout=120)
            assert proc.stdout.strip() == b"0", (command, mode, proc.stderr)
            assert b"Error" not in proc.stderr and b"Traceback" not in proc.stderr
    assert warm.requests() >= 3


def test_output_into_a_pipe_set_not_to_block_is_whole_warm_or_cold(warm: Warm, root: Path):
    """A pipe handed over with O_NONBLOCK (as some programs leave theirs) whose reader comes late: every
    byte arrives, warm and cold (Python alone writes what the pipe holds and drops the rest)."""
    _many_notes(warm, root)
    expected = warm.run("list", cold=True).stdout
    assert len(expected) > 100_000
    for mode in ("1", "1", "0"):  # warm twice: the second time the list is made ahead
        reading, writing = os.pipe()
        os.set_blocking(writing, False)
        env = {**warm.env, "KB_SERVER": mode}
        proc = subprocess.Popen([str(PROGRAM), "list"], stdout=writing, stderr=subprocess.PIPE, env=env)
        os.close(writing)
        time.sleep(0.5)  # the pipe fills while no one reads
        with open(reading, "rb") as got:
            out = got.read()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and err == b"", (mode, err)
        assert out == expected, (mode, len(out), len(expected))
    assert warm.requests() >= 2


def test_a_folder_that_is_no_knowledge_base_gets_no_server(warm: Warm, tmp_path: Path):
    """A mistyped --kb names some other folder: the command says it is no knowledge base, and no server is
    started for it (one would watch every folder under it)."""
    from kb import layout

    other = tmp_path / "elsewhere"
    for n in range(5):
        (other / f"folder {n}").mkdir(parents=True)
    try:
        for command in ("list", "search", "tags", "show"):
            args = [command] + (["word"] if command in ("search", "show") else [])
            proc = warm.run("--kb", str(other), *args)
            assert proc.returncode != 0 and b"is not a knowledge base" in proc.stderr, proc.stderr
        time.sleep(0.5)  # a server started in the background would be up by now
        assert not server.status(other).running
    finally:
        server.stop(other, wait=5.0)
    assert server.serve(other) == 1
    assert not client.is_knowledge_base(os.fsencode(other)) and not layout.is_knowledge_base(other)
    for marker in ("notes", ".git", "kb.toml"):  # the client's test is kb.layout's
        made = tmp_path / f"with {marker}"
        made.mkdir()
        (made / marker).mkdir() if marker != "kb.toml" else (made / marker).write_text("")
        assert client.is_knowledge_base(os.fsencode(made)) and layout.is_knowledge_base(made)
    (tmp_path / "file notes").mkdir()
    (tmp_path / "file notes" / "notes").write_text("a file, not a folder")
    assert not client.is_knowledge_base(os.fsencode(tmp_path / "file notes"))
    assert not layout.is_knowledge_base(tmp_path / "file notes")


def test_a_terminal_set_not_to_block_gets_every_line_warm_or_cold(warm: Warm, root: Path):
    """A terminal left with O_NONBLOCK by the program before: every row of a long list reaches it."""
    _many_notes(warm, root, 800)
    code = "import os, sys; os.set_blocking(1, False); os.execv(sys.argv[1], sys.argv[1:])"
    for mode in ("1", "0"):
        env = {**warm.env, "KB_SERVER": mode, "TERM": "xterm-256color"}
        child = pexpect.spawn(
            sys.executable, ["-c", code, str(PROGRAM), "--no-pager", "list"], env=env, dimensions=(24, 100)
        )
        shown = child.read()  # until it ends
        child.close()
        assert child.exitstatus == 0, (mode, shown[-300:])
        rows = set(re.findall(rb"number (\d{5})", shown))
        assert len(rows) == 800, (mode, len(rows))


def test_outside_edits_are_found_at_once(warm: Warm, root: Path):
    warm.start()
    notes = root / "notes"
    assert warm.run("search", "zebra").returncode == 0
    with open(notes / "Beta note.md", "a") as f:  # appended in place
        f.write("\nAn okapi walks by.\n")
    assert b"Beta note" in warm.run("search", "okapi").stdout
    (notes / "Gamma.md").write_text("---\ntitle: Gamma\n---\n\nA narwhal swims.\n")  # created
    assert b"Gamma" in warm.run("search", "narwhal").stdout
    assert b"Gamma" in warm.run("list").stdout
    os.rename(notes / "Gamma.md", notes / "Delta.md")  # renamed
    found = warm.run("search", "narwhal").stdout
    assert b"Delta.md" in found and b"Gamma.md" not in found
    (notes / "Delta.md").unlink()  # deleted
    assert warm.run("search", "narwhal").returncode == 1
    (notes / "deep" / "er").mkdir(parents=True)  # a new folder, then a note in it
    assert warm.run("list").returncode == 0
    (notes / "deep" / "er" / "Inner.md").write_text("# Inner\n\nA quokka.\n")
    assert b"Inner" in warm.run("search", "quokka").stdout
    git(root, "add", "-A")
    git(root, "-c", "user.name=Someone", "-c", "user.email=someone@example.org", "commit", "-qm", "outside")
    git(root, "checkout", "-q", "HEAD~1", "--", "notes")  # an older version, by hand
    assert warm.run("search", "okapi").returncode == 1
    assert warm.run("search", "quokka").returncode == 0  # not in that commit: still there
    assert warm.requests() >= 9  # answered by the server, not by cold runs


def _checks(warm: Warm) -> tuple[int, int]:
    details = dict(warm.status().details)
    return int(details["full checks"]), int(details["quick checks (changed files only)"])


def test_changed_files_are_checked_alone_and_a_changed_folder_walks_them_all(warm: Warm, root: Path):
    warm.start()
    notes = root / "notes"
    assert warm.run("search", "zebra").returncode == 0
    full, quick = _checks(warm)
    with open(notes / "Beta note.md", "a") as f:
        f.write("\nAn okapi walks by.\n")
    assert b"Beta note" in warm.run("search", "okapi").stdout
    assert warm.run("add", "Gamma", "-b", "A narwhal swims.").returncode == 0
    assert b"Gamma" in warm.run("search", "narwhal").stdout
    (notes / "Beta note.md").unlink()
    assert warm.run("search", "okapi").returncode == 1
    assert b"Beta note" not in warm.run("list").stdout
    after = _checks(warm)
    assert after[0] == full and after[1] >= quick + 3  # no walk of every folder
    (notes / "sub").mkdir()  # a folder: its notes are found by a walk
    (notes / "sub" / "Inner.md").write_text("# Inner\n\nA quokka.\n")
    assert b"Inner" in warm.run("search", "quokka").stdout
    assert _checks(warm)[0] > full
    full = _checks(warm)[0]
    (notes / "Link.md").symlink_to(notes / "Gamma.md")  # a link: the walk warns of it
    assert warm.run("list").returncode == 0
    assert _checks(warm)[0] > full
    assert warm.run("search", "narwhal").stdout == warm.run("search", "narwhal", cold=True).stdout


def test_with_no_usable_index_the_notes_are_still_worked_out_once_by_the_server(warm: Warm, root: Path):
    # After an upgrade (a catalog of another version) or with index/ deleted, the first search builds the
    # index; until then list, tags and NOTE lookups read every note, which the server does once.
    assert warm.run("search", "zebra", cold=True).returncode == 0  # the index built
    catalog = root / "index" / "kb-catalog.sqlite3"
    with contextlib.closing(sqlite3.connect(catalog)) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'version'")
        db.commit()
    cold = [warm.run(*args, cold=True) for args in (["list"], ["tags"], ["show", "Beta note"])]
    warm.start()
    full = _checks(warm)[0]
    for _ in range(3):
        _spare_ready(warm)
        hot = [warm.run(*args) for args in (["list"], ["tags"], ["show", "Beta note"])]
        assert [(r.returncode, r.stdout, r.stderr) for r in hot] == [
            (r.returncode, r.stdout, r.stderr) for r in cold
        ]
    assert _checks(warm)[0] == full  # not a check of every note per command, as before
    assert _by_spare(warm) >= 3
    found = warm.run("search", "zebra")  # builds the index, as cold would
    assert found.returncode == 0 and b"rebuilt" in found.stderr, found.stderr
    assert warm.run("add", "Later", "-b", "An okapi.").returncode == 0
    assert b"Later" in warm.run("search", "okapi").stdout
    assert b"Later" in warm.run("list").stdout


def _spare_ready(warm: Warm, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dict(warm.status().details).get("spare", "").endswith("ready"):
            return
        time.sleep(0.05)
    raise AssertionError(f"no spare became ready: {warm.status()}")


def _by_spare(warm: Warm) -> int:
    return int(dict(warm.status().details)["answered by a spare"])


def test_a_ready_spare_answers_and_is_dropped_when_the_notes_change(warm: Warm, root: Path):
    warm.run("search", "zebra", cold=True)  # git's word on the notes kept (kb.gitwitness): the next has it
    warm.start()
    cold = warm.run("search", "zebra", cold=True)
    warm.run("tags")  # whatever the cold run wrote is seen (a spare forked before it would be dropped)
    _spare_ready(warm)
    base = _by_spare(warm)
    hot = warm.run("search", "zebra")
    assert (hot.returncode, hot.stdout, hot.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert _by_spare(warm) == base + 1
    _spare_ready(warm)
    with open(root / "notes" / "Beta note.md", "a") as f:  # after the spare was forked
        f.write("\nAn okapi walks by.\n")
    found = warm.run("search", "okapi")
    assert found.returncode == 0 and b"Beta note" in found.stdout
    assert _by_spare(warm) == base + 1  # that spare knew the notes as they were: a fresh worker answered
    cold = warm.run("list", cold=True)
    warm.run("tags")
    _spare_ready(warm)
    base = _by_spare(warm)
    hot = warm.run("list")
    assert (hot.returncode, hot.stdout, hot.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert b"Beta note" in hot.stdout and _by_spare(warm) == base + 1


def test_a_cold_reindex_and_a_deleted_index_are_noticed(warm: Warm, root: Path):
    warm.start()
    assert warm.run("reindex", cold=True).returncode == 0
    assert warm.run("search", "giraffe").returncode == 0
    shutil.rmtree(root / "index")
    hot = warm.run("search", "giraffe")
    assert hot.returncode == 0 and b"Beta note" in hot.stdout


def test_cold_writers_and_the_server_at_once(warm: Warm, root: Path):
    warm.start()
    patient = {"KB_LOCK_TIMEOUT": "60"}

    def write(i: int) -> int:
        proc = warm.run("add", f"Parallel {i}", "-b", f"word{i} shared", cold=True, env=patient)
        return proc.returncode

    def read(_: int) -> int:
        return warm.run("search", "shared", "-n", "100", env=patient).returncode

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        writes = [pool.submit(write, i) for i in range(6)]
        reads = [pool.submit(read, i) for i in range(8)]
        assert [f.result() for f in writes] == [0] * 6
        assert all(f.result() in (0, 1) for f in reads)
    found = warm.run("search", "shared", "-n", "100", "-l")
    assert found.returncode == 0
    assert (
        sorted(found.stdout.decode().split()) == sorted(f"notes/Parallel {i}.md" for i in range(6))
        or len(found.stdout.splitlines()) == 6
    )
    assert git(root, "status", "--porcelain") == ""
    fsck = subprocess.run(["git", "-C", str(root), "fsck", "--no-progress"], capture_output=True, timeout=60)
    assert fsck.returncode == 0


def test_after_kill_9_the_next_command_works_and_starts_another(warm: Warm):
    warm.start()
    pid = warm.pid()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.02)
    proc = warm.run("search", "zebra")  # a stale socket: refused, run cold, start a new server
    assert proc.returncode == 0 and b"Alpha note" in proc.stdout
    warm.wait_running()
    assert warm.pid() != pid
    assert warm.run("search", "zebra").stdout == proc.stdout


def test_another_build_or_interpreter_setting_runs_cold(warm: Warm):
    warm.start()
    before = warm.requests()
    cold = warm.run("search", "zebra", cold=True)
    other = warm.run("search", "zebra", env={"PYTHONWARNINGS": "ignore"})  # another interpreter start
    assert (other.returncode, other.stdout, other.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert warm.requests() == before
    where = server.paths(warm.root)
    assert where is not None
    sock = client.connect(where[1])
    assert sock is not None
    request = client.fields([client.PROTOCOL, b"run", b"another-build", os.fsencode(warm.root), b"/", b"0"])
    sock.sendmsg(
        [client.frame(b"Q", request)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, client.descriptors(0, 1, 2))]
    )
    assert client.recv_frame(sock)[0] == b"C"
    sock.close()
    deadline = time.monotonic() + 10  # a server of another build leaves
    while time.monotonic() < deadline and warm.status().running:
        time.sleep(0.05)
    assert not warm.status().running


def test_an_idle_server_exits(warm: Warm):
    warm.env["KB_SERVER_IDLE"] = "2"
    warm.start()
    pid = warm.pid()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or b"kb.server" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    where = server.paths(warm.root)
    assert where is not None and not os.path.exists(where[1])


def test_ten_first_calls_at_once_start_one_server(warm: Warm):
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        runs = list(pool.map(lambda _: warm.run("search", "zebra"), range(10)))
    assert all(r.returncode == 0 and b"Alpha note" in r.stdout for r in runs)
    warm.wait_running()
    time.sleep(1.0)  # any second server would have started by now
    pids = set(server_pids(warm.root))
    # a server's workers and spare are its forked children: the same command line, the server their parent
    servers = [pid for pid in pids if _parent(pid) not in pids]
    assert len(servers) == 1, servers


def test_server_status_start_stop(warm: Warm):
    proc = warm.run("server", "status")
    assert b"running: no" in proc.stdout
    warm.start()
    proc = warm.run("server", "status")
    assert b"running: yes" in proc.stdout and b"mode: warm" in proc.stdout
    proc = warm.run("server", "stop")
    assert proc.returncode == 0 and b"Stopped" in proc.stderr
    assert not warm.status().running
    assert b"KB_SERVER=0" in warm.run("server", "status", cold=True).stdout


def test_kb_server_0_never_starts_a_server(warm: Warm):
    assert warm.run("search", "zebra", cold=True).returncode == 0
    time.sleep(0.5)
    assert not warm.status().running and not server_pids(warm.root)


def test_a_socket_of_another_mode_or_owner_is_not_used(warm: Warm):
    where = server.paths(warm.root)
    assert where is not None
    folder, sock_path, lock_path = where
    os.makedirs(folder, mode=0o700, exist_ok=True)
    # Hold the lock so that no real server starts, and listen on a socket anyone could open.
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    import fcntl

    fcntl.flock(lock, fcntl.LOCK_EX)
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        fake.bind(sock_path)
        fake.listen(8)
        fake.settimeout(0.3)
        os.chmod(sock_path, 0o666)
        proc = warm.run("search", "zebra")
        assert proc.returncode == 0 and b"Alpha note" in proc.stdout  # ran cold
        with pytest.raises(TimeoutError):
            fake.accept()
        os.chmod(sock_path, 0o600)
        if os.getuid() == 0:
            os.chown(sock_path, 12345, 12345)
            assert warm.run("search", "zebra").returncode == 0
            with pytest.raises(TimeoutError):
                fake.accept()
            os.chown(sock_path, 0, 0)
        os.chmod(folder, 0o755)  # a runtime folder others may enter
        assert warm.run("search", "zebra").returncode == 0
        with pytest.raises(TimeoutError):
            fake.accept()
    finally:
        os.chmod(folder, 0o700)
        fake.close()
        os.close(lock)


def test_a_file_system_without_inotify_runs_cold(monkeypatch: pytest.MonkeyPatch, root: Path):
    monkeypatch.setattr(watch, "fs_type", lambda path: "nfs4")
    reason = watch.cold_reason(root)
    assert reason is not None and "nfs4" in reason
    monkeypatch.setattr(watch, "fs_type", lambda path: "fuse.sshfs")
    assert watch.cold_reason(root) is not None
    monkeypatch.setattr(watch, "fs_type", lambda path: "ext4")
    assert watch.cold_reason(root) is None


def test_the_client_imports_no_heavy_library():
    code = "import sys, kb.client; print(sorted(m for m in sys.modules if m.split('.')[0] in " + (
        "('typer', 'rich', 'whoosh', 'yaml', 'git', 'click', 'kb.cli')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_kb_program_answered_warm_imports_nothing_but_the_client(warm: Warm):
    """The installed `kb` program (not an entry point's wrapper, which imports `re` and with it `enum`:
    4-5 ms of every start) imports only kb.entry and kb.client before the server answers: in a Python
    started without `site` (and so without `os`, which site imports)."""
    warm.env = {**warm.env, "PYTHONPROFILEIMPORTTIME": "1"}  # the server must have the same PYTHON* settings
    warm.start()
    before = warm.requests()
    proc = subprocess.run([str(PROGRAM), "tags"], capture_output=True, env=warm.env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert warm.requests() == before + 1
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert {"kb.entry", "kb.client"} <= imported
    assert not imported & {"re", "enum", "typer", "rich", "whoosh", "yaml", "kb.cli", "site", "os"}, sorted(
        imported
    )


def test_add_and_edit_run_warm_and_print_what_cold_prints(warm: Warm, root: Path):
    warm.start()
    before = warm.requests()
    at = {"KB_NOW": "2026-03-04T05:06:07Z"}
    cold = warm.run("add", "Cold one", "-t", "x", "-b", "Some okapi text.", cold=True, env=at)
    hot = warm.run("add", "Warm one", "-t", "x", "-b", "Some okapi text.", env=at)
    assert cold.returncode == hot.returncode == 0, (cold.stderr, hot.stderr)

    def same(text: bytes) -> bytes:  # the commit ids differ: the notes do
        return re.sub(rb"\[[0-9a-f]{7,}\]", b"[commit]", text.replace(b"Warm one", b"Cold one"))

    assert same(hot.stdout) == same(cold.stdout) and same(hot.stderr) == same(cold.stderr)
    assert b"Added" in hot.stderr + hot.stdout
    assert (root / "notes" / "Warm one.md").read_text().endswith("Some okapi text.\n")
    piped = warm.run("add", "Piped one", input=b"A body from stdin.\n")
    assert piped.returncode == 0 and "A body from stdin." in (root / "notes" / "Piped one.md").read_text()
    edited = warm.run("edit", "Warm one", "-a", "A second okapi paragraph.")
    assert edited.returncode == 0 and "second okapi" in (root / "notes" / "Warm one.md").read_text()
    assert warm.run("edit", "Warm one", input=b"").returncode == 2  # empty stdin: a usage error, as cold
    assert warm.requests() == before + 4  # all answered by the server
    log = git(root, "log", "--format=%s", "-3").splitlines()
    assert len(log) == 3 and all("Warm one" in s or "Piped one" in s for s in log), log
    found = warm.run("search", "okapi", "-l")
    assert b"Warm one.md" in found.stdout and b"Cold one.md" in found.stdout
    assert oct((root / "notes" / "Piped one.md").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_add_with_the_editor_is_handed_back_to_run_cold(warm: Warm, tmp_path: Path, root: Path):
    warm.start()
    before = warm.requests()
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "Written in the editor.\\n" >> "$1"\n')
    editor.chmod(0o755)
    full = {**warm.env, "TERM": "xterm-256color", "EDITOR": str(editor), "VISUAL": str(editor)}
    child = pexpect.spawn(
        CLIENT[0], [*CLIENT[1:], "add", "Edited one"], env=full, dimensions=(30, 100), timeout=60
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Written in the editor." in (root / "notes" / "Edited one.md").read_text()
    assert warm.requests() == before + 1  # asked once, handed back, run once (cold)
    assert len(git(root, "log", "--format=%s", "--", "notes/Edited one.md").splitlines()) == 1


def test_warm_writers_at_once_lose_nothing(warm: Warm, root: Path):
    warm.start()
    patient = {"KB_LOCK_TIMEOUT": "60"}
    before = len(git(root, "log", "--format=%H").splitlines())
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        runs = list(
            pool.map(lambda i: warm.run("add", f"Parallel {i}", "-b", f"text {i}", env=patient), range(6))
        )
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert len(git(root, "log", "--format=%H").splitlines()) == before + 6
    found = warm.run("list", "--json")
    assert all(f"Parallel {i}".encode() in found.stdout for i in range(6))
    assert git(root, "status", "--porcelain", "--", "notes") == ""


def test_a_warm_edit_sees_a_note_made_outside_just_before(warm: Warm, root: Path):
    warm.start()
    assert warm.run("list").returncode == 0  # the server has looked at the notes
    (root / "notes" / "Outside.md").write_text("---\ntitle: Outside\n---\n\nMade by hand.\n")
    edited = warm.run("edit", "Outside", "-a", "And edited with kb.")
    assert edited.returncode == 0, edited.stderr
    assert "And edited with kb." in (root / "notes" / "Outside.md").read_text()
    clash = warm.run("add", "Outside", "-b", "again")
    assert clash.returncode != 0 and b"already exists" in clash.stderr


def test_a_spare_that_dies_is_replaced(warm: Warm):
    warm.start()
    for _ in range(2):  # killed while it rehearses or while it waits: either way another takes its place
        spare = dict(warm.status().details)["spare"]
        assert spare.startswith("pid "), spare
        pid = int(spare.split()[1].rstrip(","))
        os.kill(pid, signal.SIGKILL)
        hot = warm.run("search", "zebra")
        assert hot.returncode == 0 and b"Alpha note" in hot.stdout
        _spare_ready(warm)
        assert dict(warm.status().details)["spare"].split()[1].rstrip(",") != str(pid)


def test_a_server_whose_knowledge_base_is_deleted_exits(warm: Warm, root: Path):
    warm.start()
    pid = warm.pid()
    _spare_ready(warm)  # nothing writes in the folder while it is deleted (a rehearsing spare may)
    deadline = time.monotonic() + 20
    while root.exists() and time.monotonic() < deadline:  # a file the server writes meanwhile: again
        shutil.rmtree(root, ignore_errors=True)
    assert not root.exists()
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if b"kb.server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or b"kb.server" not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_rehearsal_changes_nothing_and_the_next_command_repairs_as_cold(cold_kb, root: Path, capsys):
    """What the server and its spare run to warm up may meet a damaged index or a dead run's journal (made
    after the server last looked): they leave it to the user's command, which repairs it and says so."""
    from kb import cli, store

    assert cold_kb("add", "Alpha", "-b", "zebra").exit_code == 0
    assert cold_kb("search", "zebra").exit_code == 0
    catalog = root / "index" / "kb-catalog.sqlite3"
    catalog.write_text("not a database")
    with store.rehearsal():
        assert cli.run(["--no-pager", "--kb", str(root), "search", "zebra"]) != 0
    capsys.readouterr()
    assert catalog.read_text() == "not a database"  # not rebuilt
    r = cold_kb("search", "zebra")
    assert r.exit_code == 0 and "rebuilt" in r.stderr and "Alpha" in r.stdout


def test_python_m_kb_runs_cold_even_when_a_server_runs(warm: Warm):
    warm.start()
    before = warm.requests()
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "search", "zebra"], capture_output=True, env=warm.env, timeout=60
    )
    assert proc.returncode == 0 and b"Alpha note" in proc.stdout
    assert warm.requests() == before  # not asked: `python -m kb` is the cold command line, always


_WORD = "writes on the server's word (no git status, no walk)"
_ME = ("-c", "user.name=Someone", "-c", "user.email=someone@example.org")


def _committed(warm: Warm, timeout: float = 30.0) -> None:
    """Wait until the server's git status has found the notes all committed (and nothing changed since)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dict(warm.status().details).get("notes all committed") == "yes":
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never found the notes all committed: {warm.status()}")


def _vouched(warm: Warm) -> int:
    return int(dict(warm.status().details)[_WORD])


def test_a_write_on_the_servers_word_commits_what_a_cold_one_does(warm: Warm, root: Path):
    warm.start()
    _committed(warm)
    added = warm.run("add", "Vouched one", "-t", "x", "-b", "A quokka lives here.")
    assert added.returncode == 0, added.stderr
    assert _vouched(warm) == 1  # no git status, no walk: the server's scan, confirmed under the lock
    _committed(warm)
    edited = warm.run("edit", "Vouched one", "-a", "A second quokka.")
    assert edited.returncode == 0, edited.stderr
    assert _vouched(warm) == 2
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "log", "--format=%s", "-2").splitlines() == ["Edit: Vouched one", "Add: Vouched one"]
    _committed(warm)
    other = warm.run(
        "add", "Other git settings", "-b", "Text.", env={"GIT_CONFIG_GLOBAL": str(root / "none")}
    )
    assert other.returncode == 0, other.stderr
    assert _vouched(warm) == 2  # git status ran with the server's settings, not this client's
    clash = warm.run("add", "vouched ONE", "-b", "Same title.")  # the title is still looked up
    assert clash.returncode != 0 and b"already" in clash.stderr.lower(), clash.stderr
    found = warm.run("search", "quokka", "-l")
    assert found.stdout.strip() == b"notes/Vouched one.md"


def test_a_write_on_the_servers_word_makes_its_trees_from_the_images_kept(warm: Warm, root: Path):
    """The server keeps images of HEAD's trees (kb.history.trees): a write's worker makes the new trees
    from them, the ones git's write-tree makes of the same index."""
    warm.start()
    _committed(warm)
    for n in range(4):
        added = warm.run("add", f"Tree note {n}", "-t", "x", "-b", f"Body {n}.")
        assert added.returncode == 0, added.stderr
        edited = warm.run("edit", "Alpha note", "-a", f"Line {n}.")
        assert edited.returncode == 0, edited.stderr
        _committed(warm)
    made = int(dict(warm.status().details)["commits whose trees came from the images kept"])
    assert made >= 4
    assert index_tree(root) == git(root, "rev-parse", "HEAD^{tree}").strip()
    assert git(root, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
    assert git(root, "status", "--porcelain") == ""
    assert len(git(root, "log", "--format=%s").splitlines()) == 4 + 8


def test_the_first_write_in_a_folder_of_notes_has_the_images_of_its_tree(warm: Warm, root: Path):
    """The server keeps the trees of every folder of notes it has listed, not only of those it saw kb
    write in: the first write in a sub-folder makes its trees from them too."""
    for folder in ("Projects", "Projects/Old", "Areas"):
        made = warm.run("add", f"First in {folder}", "--folder", folder, "-b", "Text.", cold=True)
        assert made.returncode == 0, made.stderr
    warm.start()
    _committed(warm)
    for folder in ("Projects/Old", "Areas"):
        added = warm.run("add", f"Second in {folder}", "--folder", folder, "-b", "More text.")
        assert added.returncode == 0, added.stderr
        _committed(warm)
    assert int(dict(warm.status().details)["commits whose trees came from the images kept"]) == 2
    assert index_tree(root) == git(root, "rev-parse", "HEAD^{tree}").strip()
    assert git(root, "status", "--porcelain") == ""


def test_a_write_on_the_servers_word_finds_a_free_name_among_every_name_of_the_folder(warm: Warm, root: Path):
    """The server lists the folders' names with its word (a folder's, a file's that is not a note): a new
    note's file never takes one of them, in any case."""
    notes = root / "notes"
    (notes / "Taken by a folder.MD").mkdir()
    (notes / "Taken by a folder.MD" / "inside.txt").write_text("A file.\n")
    (notes / "NOT A NOTE.MD").write_text("Not kb's to overwrite.\n")  # .MD: not a note's suffix
    git(root, "add", "-A", "notes")
    git(root, *_ME, "commit", "-q", "-m", "A folder, and a file that is not a note")
    warm.start()
    made = []
    for title in ("Taken by a folder", "not a note"):
        _committed(warm)
        before = _vouched(warm)
        added = warm.run("add", title, "-b", "Body.")
        assert added.returncode == 0, added.stderr
        assert _vouched(warm) == before + 1
        made.append(git(root, "log", "-1", "--format=", "--name-only").strip())
    assert made == [
        "notes/Taken by a folder (2).md",
        "notes/not a note (2).md",
    ]
    assert (notes / "NOT A NOTE.MD").read_text() == "Not kb's to overwrite.\n"


def test_a_name_that_is_not_utf8_does_not_keep_writes_off_the_servers_word(warm: Warm, root: Path):
    """kb neither reads nor commits a file whose name is not UTF-8 (kb check names it): the server's git
    status still finds every note committed."""
    with open(os.fsencode(root / "notes") + b"/Caf\xe9.md", "wb") as f:
        f.write(b"# Cafe\n")
    warm.start()
    _committed(warm)
    added = warm.run("add", "Vouched beside it", "-b", "Body.")
    assert added.returncode == 0 and b"outside" not in added.stderr, added.stderr
    assert _vouched(warm) == 1


def _made_ahead(warm: Warm, timeout: float = 30.0) -> str:
    """Wait until the server has made `kb list`'s output for the notes as they are; its size."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = dict(warm.status().details)["kb list's output made ahead"]
        if said.startswith("yes"):
            return said
        time.sleep(0.05)
    raise AssertionError(f"kb list's output was never made ahead: {warm.status()}")


def test_kb_list_made_ahead_prints_what_the_cold_path_prints_and_never_an_older_list(warm: Warm, root: Path):
    """Once `kb list` has come, the server makes its plain output ahead for the settled notes; a worker
    prints it as it is. A change makes it anew; a list that comes first is printed from the records."""
    (root / "notes" / "Hangul 한국어.md").write_text("# 한국어 note\n\nText.\n")  # UTF-8 with 0xED
    warm.start()
    first = warm.run("list")
    assert first.returncode == 0, first.stderr
    assert dict(warm.status().details)["kb list's output made ahead"] in ("no", "being made")
    _made_ahead(warm)
    cold = warm.run("list", cold=True)
    before = warm.requests()
    made = warm.run("list")
    assert warm.requests() == before + 1  # the server answered
    assert made.returncode == 0 and made.stderr == cold.stderr == b""
    assert made.stdout == first.stdout == cold.stdout and "한국어 note".encode() in cold.stdout
    for i in range(3):
        added = warm.run("add", f"Listed at once {i}", "-b", "Body.")
        assert added.returncode == 0, added.stderr
        listed = warm.run("list")  # before the server made it anew: from the records
        assert f"\tListed at once {i}\t\tnotes/Listed at once {i}.md\n".encode() in listed.stdout
        cold_now = warm.run("list", cold=True).stdout
        assert listed.stdout == cold_now, (listed.stdout.decode(), cold_now.decode(), warm.status())
    _made_ahead(warm)
    assert warm.run("list").stdout == warm.run("list", cold=True).stdout
    filtered = warm.run("list", "-t", "greek")
    assert (
        filtered.stdout.count(b"\n") == 2
        and filtered.stdout == warm.run("list", "-t", "greek", cold=True).stdout
    )


def test_a_list_made_ahead_reaches_a_file_a_file_opened_to_append_and_a_pipe(
    warm: Warm, root: Path, tmp_path: Path
):
    """The kernel sends the list made ahead to the client's stdout; where it cannot (a file opened to
    append), the worker writes it. Every way, the bytes are the cold path's."""
    _many_notes(warm, root)
    assert warm.run("list").returncode == 0  # from now on the server makes it ahead
    _made_ahead(warm)
    cold = warm.run("list", cold=True).stdout
    assert cold.count(b"\n") > 1500
    program = " ".join(f"'{part}'" for part in CLIENT)
    out = tmp_path / "out.txt"
    for redirect, kept in ((">", b""), (">>", b"kept\n")):
        out.write_bytes(b"kept\n")
        requests = warm.requests()
        proc = subprocess.run(
            ["sh", "-c", f"{program} --kb '{root}' list {redirect} '{out}'"],
            capture_output=True,
            env=warm.env,
            timeout=60,
        )
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
        assert warm.requests() == requests + 1  # the server answered
        assert out.read_bytes() == kept + cold
    assert warm.run("list").stdout == cold
    script = f"{program} --kb '{root}' list | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, env=warm.env, timeout=60)
    assert proc.stdout.strip() == b"0" and proc.stderr == b"", proc.stderr


def test_an_outside_edit_just_before_a_warm_write_is_committed_first(warm: Warm, root: Path):
    warm.start()
    for attempt in range(3):
        _committed(warm)
        before = _vouched(warm)
        with (root / "notes" / "Beta note.md").open("a") as f:
            f.write(f"An outside line {attempt}.\n")  # its event is read when the write comes
        added = warm.run("add", f"After outside {attempt}", "-b", "Body.")
        assert added.returncode == 0, added.stderr
        assert _vouched(warm) == before  # not on the server's word: the worker looked, as cold
        subjects = git(root, "log", "--format=%s", "-2").splitlines()
        assert subjects == [f"Add: After outside {attempt}", "External edit: Beta note"], subjects
    _committed(warm)
    (root / "notes" / "Staged.md").write_text("# Staged\n\nStaged by hand.\n")
    git(root, "add", "notes/Staged.md")
    added = warm.run("add", "After staging", "-b", "Body.")
    assert added.returncode == 0, added.stderr
    assert "Staged" in git(root, "log", "--format=%s", "-3")
    assert git(root, "status", "--porcelain") == ""


def _settle(freshness: Freshness, root: Path) -> None:
    """In this test process, as the server when idle: a check, then its git status, after which it vouches
    for the notes."""
    from kb import store

    assert freshness.check()
    store.settle(root, None)  # the server's promise is not this test process's
    freshness.start_status()
    while freshness.status is not None:
        freshness.status_output()
    assert freshness.vouchable()


def test_the_word_is_checked_again_under_the_lock(cold_kb, root: Path):
    """What the worker checks once it holds the write lock (worker.vouch_in_worker): a change since the
    server's word, whether its event is still waiting or the server has read it meanwhile, or a commit made
    by hand, means no word: git status and the walk, as cold."""
    from types import SimpleNamespace

    from kb.service import transaction

    assert cold_kb("add", "Alpha note", "-b", "Some text.").exit_code == 0
    assert cold_kb("search", "text").exit_code == 0
    watcher = watch.Watcher(root)
    freshness = Freshness(root, watcher)
    fake = SimpleNamespace(watcher=watcher, freshness=freshness, real=os.path.realpath(root))

    def settled() -> tuple[object, ...]:
        _settle(freshness, root)
        assert freshness.kept is not None
        return freshness.stamp()

    def word() -> object:
        stamp = settled()
        worker.vouch_in_worker(fake, stamp, freshness.kept, freshness.names)
        return transaction._VOUCH[0]

    try:
        check = word()
        assert check(root) == (freshness.kept, freshness.names)  # nothing happened: the scan stands
        assert "alpha note.md" in freshness.names[""] and "beta note.md" not in freshness.names[""]
        assert watcher.counts.value(watch.Shared.VOUCHED) == 1
        assert check not in transaction._VOUCH  # asked once

        check = word()
        (root / "notes" / "Alpha note.md").write_text("# Alpha note\n\nChanged outside.\n")
        assert check(root) is None  # its event waits on the watch

        assert cold_kb("search", "outside").exit_code == 0  # committed later; indexed now
        git(root, "add", "-A")
        git(root, *_ME, "commit", "-q", "-m", "By hand")
        check = word()
        (root / "notes" / "Alpha note.md").write_text("# Alpha note\n\nChanged again.\n")
        freshness.take(watcher.drain())  # the server read the event meanwhile
        assert check(root) is None

        assert cold_kb("search", "again").exit_code == 0
        git(root, *_ME, "commit", "-q", "-am", "By hand again")
        check = word()
        git(root, *_ME, "commit", "-q", "--allow-empty", "-m", "HEAD moved")
        assert check(root) is None

        check = word()
        git(root, "config", "core.excludesFile", str(root / "nowhere"))  # git status may now say more
        assert check(root) is None
        assert watcher.counts.value(watch.Shared.VOUCHED) == 1
    finally:
        transaction.vouch_for_writes(None)
        watcher.close()


def test_after_an_outside_edit_the_write_that_commits_it_gives_the_next_one_the_word(warm: Warm, root: Path):
    """The write after an outside edit is off the server's word: its own git status looks, under the lock,
    and it commits the edit first. It tells the server what it did, as a write on the word does, so the
    next write, at once, is on the word: no git status by the server between them (at 100,000 notes one
    takes longer than the time between two writes a person makes)."""
    warm.start()
    _committed(warm)
    for attempt in range(2):
        before = _vouched(warm)
        with (root / "notes" / "Beta note.md").open("a") as f:
            f.write(f"An outside line {attempt}.\n")
        added = warm.run("add", f"Looked {attempt}", "-b", "A bilby.")
        assert added.returncode == 0, added.stderr
        assert _vouched(warm) == before  # not on the word: the worker looked
        statuses = _statuses(warm)
        for i in range(2):
            edited = warm.run("edit", f"Looked {attempt}", "-a", f"Bilby {i}.")
            assert edited.returncode == 0, edited.stderr
        assert _vouched(warm) == before + 2, "; ".join(f"{k}={v}" for k, v in warm.status().details)
        assert _statuses(warm) == statuses
        subjects = git(root, "log", "--format=%s", "-4").splitlines()
        assert subjects == [f"Edit: Looked {attempt}"] * 2 + [
            f"Add: Looked {attempt}",
            "External edit: Beta note",
        ], subjects
    added = warm.run("add", "looked 1", "-b", "Same title.")  # the folder's names are listed again
    assert added.returncode != 0 and b"already" in added.stderr.lower(), added.stderr
    assert git(root, "status", "--porcelain") == ""
    found = warm.run("search", "bilby", "-l")
    assert sorted(found.stdout.decode().splitlines()) == ["notes/Looked 0.md", "notes/Looked 1.md"]


def test_a_write_that_looked_gives_no_word_while_a_temporary_file_of_kb_is_left(warm: Warm, root: Path):
    """A temporary file kb's clean-up leaves (a link of that name, not kb's to remove) means no word from
    the server's own git status; nor from a write that looked itself."""
    warm.start()
    _committed(warm)
    (root / "notes" / ".kb-tmp-left").symlink_to("Beta note.md")
    with (root / "notes" / "Beta note.md").open("a") as f:
        f.write("An outside line.\n")
    added = warm.run("add", "With a leftover", "-b", "Body.")
    assert added.returncode == 0, added.stderr
    time.sleep(1.0)  # what the write told is read by now
    assert dict(warm.status().details)["notes all committed"] != "yes"
    assert (root / "notes" / ".kb-tmp-left").is_symlink()


_CARRIED = "writes that left the word standing (no git status after)"


def _statuses(warm: Warm) -> int:
    return int(dict(warm.status().details)["git statuses run when idle"])


def _carried(warm: Warm) -> int:
    return int(dict(warm.status().details)[_CARRIED])


def test_writes_back_to_back_stay_on_the_servers_word(warm: Warm, root: Path):
    """A write on the server's word tells the server what it wrote once it lets go of the lock: the next
    write, at once, is on the word too (no git status between them), and commits what a cold one does.
    (A `git status` by hand may rewrite git's index: that ends the word, so it comes last here.)"""
    warm.start()
    _committed(warm)
    for i in range(4):
        added = warm.run("add", f"In a row {i}", "-b", f"A wombat number {i}.")
        assert added.returncode == 0, added.stderr
        assert _vouched(warm) == i + 1, warm.status().details
    for i in range(2):
        edited = warm.run("edit", "In a row 1", "-a", f"Another wombat {i}.")
        assert edited.returncode == 0, edited.stderr
    assert _vouched(warm) == 6 and _carried(warm) >= 5, warm.status().details
    found = warm.run("search", "wombat", "-l")
    assert sorted(found.stdout.decode().splitlines()) == [f"notes/In a row {i}.md" for i in range(4)]
    again = warm.run("add", "in a row 2", "-b", "Same title.")  # it changes nothing: the word stands
    assert again.returncode != 0 and b"already" in again.stderr.lower(), again.stderr
    for title in ("Colon:Name", "colonname"):  # one file name, in any case: the names kept know the first
        assert warm.run("add", title, "-b", "Body.").returncode == 0
    assert _vouched(warm) == 9, "; ".join(f"{k}={v}" for k, v in warm.status().details)
    subjects = git(root, "log", "--format=%s", "-8").splitlines()
    assert subjects == ["Add: colonname", "Add: Colon:Name"] + ["Edit: In a row 1"] * 2 + [
        f"Add: In a row {i}" for i in (3, 2, 1, 0)
    ], subjects
    for rev, path in (("HEAD", "colonname (2)"), ("HEAD~1", "ColonName"), ("HEAD~2", "In a row 1"),
                      ("HEAD~4", "In a row 3")):  # fmt: skip
        assert git(root, "show", "--format=", "--name-only", rev).strip() == f"notes/{path}.md"
    assert git(root, "status", "--porcelain") == ""


def test_the_index_changing_beside_its_rows_keeps_the_word(warm: Warm, root: Path):
    """What kb writes in index/ without changing what the catalog's rows say (a merge of the segments, a
    shortcut it keeps in the catalog) does not need a git status: the next write is on the word. A row
    changed by someone else does."""
    warm.start()
    _committed(warm)
    before, statuses = _vouched(warm), _statuses(warm)
    segment = root / "index" / "merged-meanwhile.tmp"
    segment.write_bytes(b"x")  # the index's folder changes (a merge writes and removes files there)
    segment.unlink()
    catalog = root / "index" / "kb-catalog.sqlite3"
    os.utime(catalog, ns=(time.time_ns(), time.time_ns()))  # the file's times, not its rows
    added = warm.run("add", "Beside the rows", "-b", "Body.")
    assert added.returncode == 0, added.stderr
    assert _vouched(warm) == before + 1, "; ".join(f"{k}={v}" for k, v in warm.status().details)
    assert _statuses(warm) == statuses  # the word stood throughout: no git status was needed
    _committed(warm)
    statuses = _statuses(warm)
    with contextlib.closing(sqlite3.connect(catalog)) as db, db:
        db.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'"
        )
    added = warm.run("add", "After a row changed", "-b", "Body.")
    assert added.returncode == 0, added.stderr
    # The catalog's rows may not be the scan's: the worker looked, unless the server, idle before the
    # write came (a slow machine), checked every row and ran git status again, which gives a new word.
    if _vouched(warm) != before + 1:
        assert _vouched(warm) == before + 2 and _statuses(warm) > statuses
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "which", ["another note", "the note just written", "a new file", "its mode", "git reset by hand"]
)
def test_an_outside_change_right_after_a_write_on_the_word_is_committed_first(
    warm: Warm, root: Path, which: str
):
    """Whether its event comes before or after the write's word is kept, a change by another program
    right after it means the next write looks, as cold, and commits that change first."""
    warm.start()
    for attempt in range(3):
        _committed(warm)
        title = f"Written {attempt}"
        added = warm.run("add", title, "-b", "A wombat.")
        assert added.returncode == 0, added.stderr
        if which == "another note":
            outside, path = "Beta note", root / "notes" / "Beta note.md"
            with path.open("a") as f:
                f.write(f"Outside {attempt}.\n")
        elif which == "the note just written":
            outside, path = title, root / "notes" / f"{title}.md"
            data = path.read_bytes()
            path.write_bytes(data.replace(b"A wombat.", b"A numbat."))  # the same size, at once
        elif which == "its mode":
            outside = title
            (root / "notes" / f"{title}.md").chmod(0o755)
        elif which == "git reset by hand":  # the note is no longer committed, nor staged
            outside = title
            git(root, "reset", "-q", "HEAD~1")
        else:
            outside = f"Made outside {attempt}"
            (root / "notes" / f"{outside}.md").write_text(f"# {outside}\n\nText.\n")
        before = _vouched(warm)
        next_one = warm.run("add", f"Next {attempt}", "-b", "Body.")
        assert next_one.returncode == 0, next_one.stderr
        assert _vouched(warm) == before, warm.status()  # not on the word: the worker looked
        subjects = git(root, "log", "--format=%s", "-2").splitlines()
        assert subjects[0] == f"Add: Next {attempt}" and subjects[1].endswith(outside), subjects
        assert git(root, "status", "--porcelain") == ""


def _written(
    cold_kb: Callable[..., Run], freshness: Freshness, root: Path, title: str, body: str
) -> tuple[str, bytes]:
    """A write as a worker on the server's word makes it (here, cold), and what it would tell (carry)."""
    freshness.begin_carry()
    freshness.due = True  # as the server marks a write's request
    assert cold_kb("add", title, "-b", body).exit_code == 0
    return _written_record(freshness, root, f"notes/{title}.md")


def _written_record(freshness: Freshness, root: Path, rel: str) -> tuple[str, bytes]:
    """What a worker that wrote `rel` tells the server as it lets go of the lock (worker.carry_to_server)."""
    import hashlib
    import json

    said = [hashlib.sha256((root / rel).read_bytes()).hexdigest(), (root / rel).stat().st_mode]
    end = freshness.end_digest(freshness.stamp())
    return rel, json.dumps({"files": {rel: said}, "end": end}).encode()


def test_what_a_write_tells_keeps_the_word_only_when_it_is_so(cold_kb, root: Path):
    """Freshness.carry: the word stands again after a write only when the events named nothing but the
    files it wrote, they hold the bytes it wrote, and git and the index are as it left them."""
    assert cold_kb("add", "Alpha note", "-b", "Some text.").exit_code == 0
    assert cold_kb("search", "text").exit_code == 0
    watcher = watch.Watcher(root)
    freshness = Freshness(root, watcher)

    def settled() -> None:
        _settle(freshness, root)

    def written(title: str, body: str) -> tuple[str, bytes]:
        return _written(cold_kb, freshness, root, title, body)

    try:
        settled()
        rel, told = written("Gamma note", "First.")
        assert freshness.carry(told) and freshness.vouchable()
        assert "gamma note.md" in freshness.names[""]
        assert freshness.kept is not None and rel in freshness.kept[0]

        _, told = written("Delta note", "Second.")
        assert not freshness.carry(told.replace(b'"notes/Delta', b'"notes/Other'))  # not what it wrote
        settled()
        _, told = written("Epsilon note", "Third.")
        (root / "notes" / "Alpha note.md").write_text("# Alpha note\n\nChanged outside.\n")
        assert not freshness.carry(told)  # an event for a file it did not write
        assert not freshness.vouchable()
        assert cold_kb("add", "Commits it", "-b", "x").exit_code == 0
        settled()
        rel, told = written("Zeta note", "Fourth.")
        (root / rel).write_text((root / rel).read_text().replace("Fourth", "Fifth"))
        assert not freshness.carry(told)  # its file holds other bytes now
        assert cold_kb("add", "Commits it too", "-b", "x").exit_code == 0
        settled()
        _, told = written("Eta note", "Sixth.")
        git(root, *_ME, "commit", "-q", "--allow-empty", "-m", "HEAD moved")
        assert not freshness.carry(told)  # git is not as it left it
        settled()
        _, told = written("Theta note", "Seventh.")
        (root / "notes" / "A folder").mkdir()
        assert not freshness.carry(told)  # a folder changed
        assert not freshness.carry(b"")  # told nothing (its change did not commit as it says)
        (root / "notes" / "picture.png").write_bytes(b"\x89PNG")
        git(root, "add", "notes/picture.png")
        git(root, *_ME, "commit", "-q", "-m", "A picture")
        settled()
        _, told = written("Iota note", "Eighth.")
        (root / "notes" / "picture.png").write_bytes(b"\x89PNG, changed")  # not a note: no row changes
        assert not freshness.carry(told)  # an event for a file it did not write
        assert cold_kb("add", "Commits the picture", "-b", "x").exit_code == 0
        settled()
        rel, told = written("Kappa note", "Ninth.")
        (root / rel).chmod(0o755)
        assert not freshness.carry(told)  # its mode is not the one it wrote (git would commit it)
    finally:
        watcher.close()


def test_a_write_off_the_word_that_looked_itself_gives_the_word_only_when_it_is_so(cold_kb, root: Path):
    """Freshness.carry after a write off the server's word (an outside edit came since its git status): the
    write's own git status, under the lock, looked (and committed the edit first). The word stands after it
    only when it says it looked, the events since it began named only the files it wrote, and no folder
    changed before it (a walk would be due)."""
    import json

    assert cold_kb("add", "Alpha note", "-b", "Some text.").exit_code == 0
    assert cold_kb("search", "text").exit_code == 0
    watcher = watch.Watcher(root)
    freshness = Freshness(root, watcher)

    def outside(text: str) -> None:
        (root / "notes" / "Alpha note.md").write_text(f"# Alpha note\n\n{text}\n")
        time.sleep(0.05)
        freshness.read_events()  # as the server when the write comes: off the word now
        assert not freshness.vouchable()

    def written(title: str, looked: bool = True) -> bytes:
        freshness.begin_carry(vouched=False)
        freshness.due = True
        assert cold_kb("add", title, "-b", "Body.").exit_code == 0  # it commits the outside edit first
        assert git(root, "log", "--format=%s", "-2").splitlines()[1] == "External edit: Alpha note"
        _, told = _written_record(freshness, root, f"notes/{title}.md")
        said = json.loads(told)
        said["looked"] = looked
        return json.dumps(said).encode()

    try:
        _settle(freshness, root)
        outside("First outside.")
        statuses = freshness.statuses
        assert freshness.carry(written("Looked one")) and freshness.vouchable()
        assert freshness.names == {}  # not listed with it: a new name's folder would be listed each time
        assert freshness.start_status() is None and freshness.statuses == statuses  # nothing to ask
        freshness.names_when_idle()  # so the server lists them when idle, while the word stands
        assert "looked one.md" in freshness.names[""] and freshness.vouchable()

        outside("Second outside.")
        assert not freshness.carry(written("Did not look", looked=False))
        _settle(freshness, root)
        outside("Third outside.")
        told = written("Looked two")
        (root / "notes" / "Made meanwhile.md").write_text("# Made meanwhile\n\nText.\n")
        assert not freshness.carry(told)  # an event for a file it did not write
        assert cold_kb("add", "Commits it", "-b", "x").exit_code == 0
        _settle(freshness, root)
        outside("Fourth outside.")
        (root / "notes" / "A folder").mkdir()
        time.sleep(0.05)
        freshness.read_events()
        assert not freshness.carry(written("Looked three"))  # a folder changed before it: a walk is due
    finally:
        watcher.close()


def test_an_idle_moment_before_a_write_tells_starts_no_git_status(cold_kb, root: Path):
    """The server may be idle (no worker left) before it has read what the write's worker told, when a
    long step of its loop kept the pipe unread: a git status started then would forget the word the
    write keeps (its stamp is the write's own), and at 100,000 notes writes coming every half second
    never got it back."""
    from kb import store

    assert cold_kb("add", "Alpha note", "-b", "Some text.").exit_code == 0
    assert cold_kb("search", "text").exit_code == 0
    watcher = watch.Watcher(root)
    freshness = Freshness(root, watcher)
    try:
        _settle(freshness, root)
        statuses = freshness.statuses
        _, told = _written(cold_kb, freshness, root, "Gamma note", "First.")
        time.sleep(0.05)
        assert freshness.check()  # as when idle: the events read, then
        store.settle(root, None)
        assert freshness.start_status() is None and freshness.statuses == statuses
        assert freshness.carry(told) and freshness.vouchable()
        assert freshness.start_status() is None  # nothing to ask git: the word stands
        assert freshness.statuses == statuses
    finally:
        watcher.close()


def test_after_changes_list_tags_and_show_warm_are_what_cold_gives(warm: Warm, root: Path):
    warm.start()
    assert warm.run("list").returncode == 0  # a listing command came: the server keeps the listing
    _spare_ready(warm)
    updates = int(dict(warm.status().details)["listings brought up to date (changed files only)"])
    for i, tag in enumerate(["new/tag", "greek", "Greek/Letters"]):
        added = warm.run("add", f"Listed {i}", "-t", tag, "-b", "Body.")
        assert added.returncode == 0, added.stderr
        if i == 2:  # and an outside edit: a retitled, retagged note
            (root / "notes" / "Beta note.md").write_text(
                "---\ntitle: Beta renamed\ntags: [zeta]\n---\nText.\n"
            )
        _spare_ready(warm)  # the listing brought up to date before the spare is forked
        for args in (("list",), ("tags",), ("show", f"Listed {i}"), ("list", "-t", "greek")):
            hot, cold = warm.run(*args), warm.run(*args, cold=True)
            assert (hot.returncode, hot.stdout, hot.stderr) == (cold.returncode, cold.stdout, cold.stderr), (
                args
            )
    done = int(dict(warm.status().details)["listings brought up to date (changed files only)"])
    # Brought up to date from the changed files alone, not worked out anew: most times all three; on a
    # loaded machine a worker's index update may land after the server's check, and then that listing
    # is worked out anew (which the outputs above show is the same).
    assert done >= updates + 1


def test_two_quick_checks_with_no_quiet_moment_between_keep_the_listing(warm: Warm, root: Path):
    """A write, then its index update after the answer: two quick checks before the server is idle, the
    second before the first's listing was brought up to date. The second carries the first's files over,
    and the listing is brought up to date once for both, not worked out anew (every note's record read
    again: seconds at 100,000 notes)."""
    from kb import service, store

    watcher = watch.Watcher(root)
    freshness = Freshness(root, watcher)
    try:
        assert freshness.check()
        freshness.notes()  # `kb list` came: the listing is worked out once
        assert not freshness.needs_listing()
        updates = freshness.updates
        for title, tag in (("Gamma note", "third"), ("Delta note", "fourth")):
            assert warm.run("add", title, "-t", tag, "-b", "More.", cold=True).returncode == 0
            time.sleep(0.05)
            assert freshness.check()  # quick: the events named the file; nothing done with the listing
            assert freshness.quick >= 1
        freshness.notes()  # as when the server is next idle: brought up to date, not worked out anew
        assert freshness.updates == updates + 1
        listed = store.settled_value(root, "list:modified")
        assert isinstance(listed, tuple)
        titles = [info.title for info in listed[0]]
        assert {"Gamma note", "Delta note", "Alpha note", "Beta note"} <= set(titles)
        counted = store.settled_value(root, "tags")
        assert isinstance(counted, service.TagsResult)
        assert {"third", "fourth"} <= {row.tag for row in counted.tags}
    finally:
        watcher.close()


def test_an_edit_in_a_dot_folder_of_the_notes_is_not_vouched_away(warm: Warm, root: Path):
    """Under Notable's notes/ kb commits every file git reports, dot-folders too: they are watched."""
    hidden = root / "notes" / ".drafts" / "x.md"
    hidden.parent.mkdir()
    hidden.write_text("one\n")
    (root / "notes" / "node_modules").mkdir()
    (root / "notes" / "node_modules" / "y.md").write_text("one\n")
    assert warm.run("add", "Commits them", "-b", "Body.", cold=True).returncode == 0  # committed outside
    warm.start()
    for path in (hidden, root / "notes" / "node_modules" / "y.md"):
        _committed(warm)
        before = _vouched(warm)
        path.write_text("two\n")
        added = warm.run("add", f"After {path.parent.name}", "-b", "Body.")
        assert added.returncode == 0, added.stderr
        assert _vouched(warm) == before
        assert git(root, "status", "--porcelain") == ""
        assert "External edit" in git(root, "log", "--format=%s", "-2")


def test_a_git_folder_elsewhere_is_never_vouched_for(warm: Warm, root: Path, tmp_path: Path):
    """With .git a file (a worktree, --separate-git-dir) the server's stamp would not see git move."""
    (root / ".git").rename(tmp_path / "elsewhere.git")
    (root / ".git").write_text(f"gitdir: {tmp_path / 'elsewhere.git'}\n")
    warm.start()
    _spare_ready(warm)
    time.sleep(0.5)
    assert dict(warm.status().details)["notes all committed"] != "yes"
    added = warm.run("add", "Separate", "-b", "Body.")
    assert added.returncode == 0, added.stderr
    assert _vouched(warm) == 0
    assert git(root, "status", "--porcelain") == ""
    # nor after a write that looked itself: a reset by hand moves only what the stamp cannot see here
    git(root, "reset", "-q", "--soft", "HEAD~1")
    again = warm.run("add", "Separate again", "-b", "Body.")
    assert again.returncode == 0, again.stderr
    assert git(root, "log", "--format=%s", "-2").splitlines()[1].startswith("External edit"), git(
        root, "log", "--format=%s", "-3"
    )
    time.sleep(1.0)  # what the write told is read by now
    assert dict(warm.status().details)["notes all committed"] != "yes"
    git(root, "reset", "-q", "--soft", "HEAD~1")
    third = warm.run("add", "Separate at last", "-b", "Body.")
    assert third.returncode == 0, third.stderr
    assert _vouched(warm) == 0  # the worker looked, and committed the reset note again
    assert git(root, "status", "--porcelain") == ""


def test_a_warm_change_merges_the_index_after_it_answers(warm: Warm, root: Path):
    # Each change adds a segment to the search index; past MERGE_AFTER_SEGMENTS a worker merges the small
    # ones once it has answered (12 changes, without merging: 13 segments).
    from whoosh import index as whoosh_index

    from kb.index import MERGE_AFTER_SEGMENTS

    warm.start()
    for i in range(MERGE_AFTER_SEGMENTS + 4):
        added = warm.run("add", f"Segment {i}", "-b", f"word{i} shared")
        assert added.returncode == 0, added.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        segments = len(whoosh_index.open_dir(str(root / "index"))._segments())
        if segments <= MERGE_AFTER_SEGMENTS + 1:  # the last change may add one after a merge
            break
        time.sleep(0.1)
    assert segments <= MERGE_AFTER_SEGMENTS + 1
    found = warm.run("search", "shared", "-l", "-n", "100")
    assert found.stdout.decode().count("notes/Segment ") == MERGE_AFTER_SEGMENTS + 4
    assert warm.run("search", "shared", "-l", "-n", "100", cold=True).stdout == found.stdout


def test_what_a_warm_change_indexes_after_it_answers_is_found_at_once(warm: Warm, root: Path):
    # The worker answers once the commit is made and indexes the note after: a search that comes at once
    # (warm, or cold in another process) finds it all the same, and so does the next writer.
    warm.start()
    for i in range(4):
        added = warm.run("add", f"Quick {i}", "-b", f"quickword{i} and more")
        assert added.returncode == 0, added.stderr
        found = warm.run("search", f"quickword{i}", "-l")
        assert found.stdout.decode().splitlines() == [f"notes/Quick {i}.md"], found.stderr
        edited = warm.run("edit", f"Quick {i}", "-a", f"laterword{i}")
        assert edited.returncode == 0, edited.stderr
        cold = warm.run("search", f"laterword{i}", "-l", cold=True)
        assert cold.stdout.decode().splitlines() == [f"notes/Quick {i}.md"], cold.stderr
    check = warm.run("check", cold=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_deferred_index_update_holds_the_write_lock_until_it_is_done(
    cold_kb, root: Path, monkeypatch: pytest.MonkeyPatch
):
    # What a worker does: the change answers with its commit made, the index not yet updated and the write
    # lock still held; run_deferred updates the index and lets go of the lock.
    from kb import store as kb_store
    from kb.index import NoteIndex

    assert cold_kb("add", "First", "-b", "plain").exit_code == 0
    assert cold_kb("search", "plain").exit_code == 0  # the index is made
    monkeypatch.setattr(kb_store, "_DEFERRING", [True])
    try:
        assert cold_kb("add", "Later", "-b", "deferredword").exit_code == 0
        assert kb_store.deferring_work()
        assert git(root, "log", "-1", "--format=%s").strip() == "Add: Later"
        assert "notes/Later.md" not in sqlite_paths(root)
        locking = (
            "import sys, pathlib, kb.store as s\nwith s.exclusive_lock(pathlib.Path(sys.argv[1]), 0.2): pass"
        )
        other = subprocess.run([sys.executable, "-c", locking, str(root)], capture_output=True, text=True)
        assert other.returncode != 0 and "LockTimeout" in other.stderr
        NoteIndex(root)  # a read of the index in this process does the deferred work first
        assert not kb_store.deferring_work()
        assert "notes/Later.md" in sqlite_paths(root)
        with kb_store.exclusive_lock(root, 0.2):
            pass
    finally:
        kb_store.run_deferred()


def sqlite_paths(root: Path) -> set[str]:
    import sqlite3

    from kb.index.catalog import CATALOG

    with contextlib.closing(sqlite3.connect(root / "index" / CATALOG)) as db:
        return {row[0] for row in db.execute("SELECT path FROM notes")}


def test_a_large_warm_change_is_indexed_before_it_answers(warm: Warm, root: Path):
    # A rename that rewrites the links of many notes: a read right after must not index them all again
    # (or wait for the worker's lock), so the worker indexes them before it answers.
    from kb.service.transaction import DEFER_AT_MOST
    from kb.store import exclusive_lock

    spokes = 12
    assert spokes + 1 > DEFER_AT_MOST
    assert warm.run("add", "Hub", "-b", "the centre", cold=True).returncode == 0
    for i in range(spokes):
        assert warm.run("add", f"Spoke {i}", "-b", f"to [[Hub]] {i}", cold=True).returncode == 0
    assert warm.run("search", "centre", cold=True).returncode == 0  # the index is made
    warm.start()
    requests = warm.requests()
    moved = warm.run("edit", "Hub", "--title", "Center")
    assert moved.returncode == 0, moved.stderr
    assert warm.requests() == requests + 1  # answered by the server
    with exclusive_lock(root, 0):  # free at once: nothing was left for after the answer
        pass
    assert "[[Center]]" in (root / "notes" / "Spoke 0.md").read_text()
    found = warm.run("search", "links:Center", "-l", "-n", "100")
    assert len(found.stdout.decode().splitlines()) == spokes, found.stderr


def _made(notes, folder: Path):
    """A kb.service.MadeList of `notes`, written as the server writes it."""
    from kb import render
    from kb.service import MadeList

    file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (kept open by MadeList)
    size, as_is = render.write_plain_list(notes, file.fileno())
    return MadeList(file, size, as_is)


def test_a_list_made_ahead_is_printed_through_any_stdout_as_the_notes_would_be(
    cold_kb, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """What the server makes ahead for `kb list` (render.write_plain_list), printed by render.note_list,
    is what it prints from the notes themselves: on a UTF-8 stdout and on one of another encoding, in
    memory, into a file, a file opened to append (where the kernel cannot send a file) and a pipe."""
    import io

    from kb import render
    from kb.service import list_notes

    assert cold_kb("add", "Café 한국어", "-b", "Text.").exit_code == 0
    assert cold_kb("add", "Plain", "-b", "Text.").exit_code == 0
    for n in range(300):  # made outside kb: the list takes them in
        (root / "notes" / f"Note {n} ☃.md").write_text(f"# Note {n} ☃\n\nText.\n", encoding="utf-8")
    whole = list_notes(root)
    # With a note whose title UTF-8 writes with 0xED (printed through the stream) and without (the bytes
    # sent as they are).
    plain = dataclasses.replace(whole, notes=[n for n in whole.notes if "한" not in n.title])
    for result in (whole, plain):
        made = dataclasses.replace(result, plain=_made(result.notes, tmp_path))
        assert made.plain is not None and made.plain.as_is is (result is plain)
        for encoding in ("utf-8", "latin-1"):
            printed = []
            for one in (result, made):
                stdout = io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="replace")
                monkeypatch.setattr(sys, "stdout", stdout)
                render.note_list(one, False)
                stdout.flush()
                printed.append(stdout.buffer.getvalue())
            assert printed[0] == printed[1] and b"Plain" in printed[0] and b"Note 299" in printed[0]
            if encoding == "utf-8":
                expected = printed[0]
        for mode in ("wb", "ab"):
            target = tmp_path / f"out-{mode}"
            target.write_bytes(b"before\n")
            with open(target, mode) as raw:
                monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8"))
                render.note_list(made, False)
                sys.stdout.flush()
            assert target.read_bytes() == (b"before\n" if mode == "ab" else b"") + expected
        reading, writing = os.pipe()
        os.set_blocking(writing, False)  # the kernel's copy waits for the reader
        got: list[bytes] = []

        def read(fd: int = reading, into: list[bytes] = got) -> None:
            into.extend(iter(lambda: os.read(fd, 4096), b""))

        reader = threading.Thread(target=read)
        reader.start()
        with open(writing, "wb") as raw:
            monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8"))
            render.note_list(made, False)
            sys.stdout.flush()
        reader.join(30)
        os.close(reading)
        assert b"".join(got) == expected
        made.plain.file.close()


def test_a_list_that_cannot_be_made_ahead_is_not_tried_again_until_the_notes_change(
    cold_kb, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A full disk (here: a write that fails in the forked child) leaves workers printing from the
    records; the server does not fork again and again for the same notes."""
    from kb import render, store
    from kb.service import list_notes

    assert cold_kb("add", "Alpha note", "-b", "Some text.").exit_code == 0
    watcher = watch.Watcher(root)
    freshness = Freshness(root, watcher, str(tmp_path))
    write = render.write_plain_list
    failing = [True]

    def full(notes: Sequence[NoteInfo], fd: int) -> tuple[int, bool]:
        if failing:
            raise OSError(28, "No space left on device")
        return write(notes, fd)

    def settled() -> None:
        assert freshness.check()
        store.settle(root, freshness.kept)
        listed = list_notes(root)  # what lookup keeps with the settled notes
        store.settle_value(root, "list:modified", (listed.notes, ()))

    monkeypatch.setattr(render, "write_plain_list", full)
    try:
        settled()
        tried = []
        for _ in range(3):
            freshness.start_plain()
            job = freshness.plain
            if job is not None:
                tried.append(job)
                assert not freshness.plain_ready()
                assert job.file is not None and job.file.closed
        assert len(tried) == 1  # once, not on every idle moment
        assert freshness.made_plain() is None
        failing.clear()
        freshness.start_plain()
        assert freshness.plain is None  # the same notes: not tried again
        (root / "notes" / "Beta note.md").write_text("# Beta note\n\nNew.\n")
        time.sleep(0.05)
        freshness.read_events()
        settled()
        freshness.start_plain()  # the notes changed: tried again, and made
        assert freshness.plain is not None and freshness.plain_ready()
        made = freshness.made_plain()
        assert made is not None and b"Beta note" in b"".join(render._made_chunks(made))
        made.file.close()
    finally:
        store.settle(root, None)
        watcher.close()


def test_a_list_made_ahead_that_lost_bytes_is_an_error_never_a_shorter_list(tmp_path: Path):
    from kb import render
    from kb.service import MadeList

    made = _made([], tmp_path)
    short = MadeList(made.file, made.size + 10, True)
    with pytest.raises(OSError, match="ends after 0 of 10 bytes"):
        b"".join(render._made_chunks(short))
    with open(tmp_path / "out", "wb") as out, pytest.raises(OSError, match="ends after 0 of 10 bytes"):
        render._send_made(short, out, out.fileno())
    made.file.close()


def test_the_runtime_folder_is_under_xdg_runtime_dir_only_when_that_is_a_folder(tmp_path: Path):
    uid = os.getuid()
    assert client.runtime_dir({b"XDG_RUNTIME_DIR": os.fsencode(tmp_path)}) == os.fsencode(tmp_path) + b"/kb"
    for value in (b"", b"relative/dir", os.fsencode(tmp_path / "missing"), os.fsencode(tmp_path / "file")):
        (tmp_path / "file").write_text("not a folder")
        assert client.runtime_dir({b"XDG_RUNTIME_DIR": value}) == b"/tmp/kb-%d" % uid
    assert client.runtime_dir({}) == b"/tmp/kb-%d" % uid


def test_server_stop_right_after_a_cold_command_stops_the_server_it_started(warm: Warm):
    """The first command runs cold and starts the server in the background; `kb server stop` at once waits
    for it to answer and stops it, rather than saying none runs while it starts."""
    assert not warm.status().running
    assert warm.run("list").returncode == 0  # cold: no server yet; it starts one
    stopped = warm.run("server", "stop")
    assert stopped.returncode == 0 and b"Stopped the server." in stopped.stderr + stopped.stdout, stopped
    time.sleep(1.0)
    assert not warm.status().running


def test_a_server_being_spawned_holds_its_lock_at_once_and_kb_server_stop_stops_it(warm: Warm, root: Path):
    """client.spawn takes the lock file and hands it to the server it starts: stop, at the very next moment,
    finds a server starting, waits for it and stops it (it never comes up afterwards)."""
    where = server.paths(root)
    assert where is not None
    folder, sock_path, lock_path = where
    client.spawn(os.fsencode(root), folder, os.path.basename(sock_path)[:-5])
    assert client.held(lock_path)  # before the new process has even started Python
    assert server.stop(root)
    time.sleep(1.0)
    assert not warm.status().running and not client.held(lock_path)


def test_kb_server_stop_says_so_when_a_server_holds_its_lock_but_does_not_answer(warm: Warm, root: Path):
    from kb.errors import KbError

    warm.start()
    where = server.paths(root)
    assert where is not None
    os.unlink(where[1])  # its socket gone (a cleaner of /tmp, say): the server still runs
    pids = server_pids(root)
    with pytest.raises(KbError, match="holds its lock but does not answer"):
        server.stop(root, starting=0.3)
    for pid in pids:  # ended by hand, as the message says
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _close_stdout() -> None:
    os.close(1)


def test_output_that_cannot_be_written_fails_as_cold(warm: Warm, root: Path):
    """A closed or full standard output: the same one-line error and exit status warm as cold."""
    warm.start()
    seen = []
    for cold in (False, True):
        env = {**warm.env, **({"KB_SERVER": "0"} if cold else {})}
        closed = subprocess.run([*CLIENT, "search", "zebra"], stderr=subprocess.PIPE, env=env,
                                preexec_fn=_close_stdout, timeout=60)  # fmt: skip
        with open("/dev/full", "wb") as full:
            filled = subprocess.run(
                [*CLIENT, "list"], stdout=full, stderr=subprocess.PIPE, env=env, timeout=60
            )
        seen.append(((closed.returncode, closed.stderr), (filled.returncode, filled.stderr)))
    assert seen[0] == seen[1]
    assert seen[1] == (
        (1, b"Error: cannot write the output: standard output is closed\n"),
        (1, b"Error: cannot write: No space left on device\n"),
    )


def test_a_worker_lets_go_of_the_servers_listings_without_freeing_them(tmp_path: Path):
    """A worker is a fork of the server that ends with os._exit: what it forgets at the write lock (the
    settled scan and every note's record) is kept, since freeing it would copy each page that holds it."""
    code = """
import sys, weakref
from pathlib import Path
from kb import store
root = Path(sys.argv[1])

class Listing:
    pass

def forgotten_alive(keep):
    value = Listing()
    store.settle(root, store.Store(root).scan())
    store.settle_value(root, "listing", value)
    alive = weakref.ref(value)
    del value
    if keep:
        store.keep_what_is_forgotten()
    with store.exclusive_lock(root, 1.0):
        assert store.settled(root) is None and store.settled_value(root, "listing") is None
    return alive() is not None

print(forgotten_alive(False), forgotten_alive(True))
"""
    root = tmp_path / "kb"
    (root / "notes").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["False", "True"], proc.stderr
