"""Processes killed mid-change, interrupted with Ctrl-C, or racing each other: nothing is lost.

The kill loop runs 40 trials by default, its kill points spread over each command's measured run time;
KB_CRASH_TRIALS=1000 runs a longer one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from kb.notes import parse_note
from tests.conftest import git, write_editor


@pytest.fixture(autouse=True)
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orphaned git processes of a killed kb may still be finishing: let the next command wait."""
    monkeypatch.setenv("KB_LOCK_TIMEOUT", "30")


def _default_sigint() -> None:
    # As from a terminal: the test runner's own SIGINT disposition (it may be ignoring it) is not inherited.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kb", *args],
        preexec_fn=_default_sigint,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def search_paths(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "kb", "search", *args, "-l"], capture_output=True)
    assert proc.returncode in (0, 1), proc.stderr
    return sorted(proc.stdout.decode().splitlines())


_CHECKS = iter(range(10**6))


def assert_converged(root: Path) -> None:
    """After one more writing command: every note parses, all is committed, git is sound, no temp file
    is left, and the index answers like a fresh rebuild."""
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "add", f"Check {next(_CHECKS)}", "-b", "final"], capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    for path in (root / "notes").iterdir():
        note = parse_note(path.read_bytes())
        assert note.problem is None and note.title_for(path.name), (path, note.problem)
    assert git(root, "status", "--porcelain") == ""
    subprocess.run(
        ["git", "-C", str(root), "fsck", "--strict", "--no-progress"], check=True, capture_output=True
    )
    assert not list(root.rglob(".kb-tmp-*"))
    assert not (root / ".git" / "index.lock").exists()
    before = search_paths("*")
    assert subprocess.run([sys.executable, "-m", "kb", "reindex"], capture_output=True).returncode == 0
    assert search_paths("*") == before == sorted(f"notes/{p.name}" for p in (root / "notes").iterdir())


def quick_check(root: Path) -> None:
    """After a killed process, the next command, even a reading one, converges: the interrupted change
    is committed, no temp file is left, every note parses, git's objects are sound. (The reading command
    runs in this process, to spare a Python start per trial; assert_converged runs real processes.)"""
    result = CliRunner().invoke(app, ["list"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    status = git(root, "status", "--porcelain")
    assert status == "", (status, result.stderr, git(root, "log", "-3", "--format=%s|%b"))
    assert not list(root.rglob(".kb-tmp-*"))
    assert not (root / ".git" / "kb-journal").exists()
    for path in (root / "notes").iterdir():
        if not path.name.startswith("."):
            note = parse_note(path.read_bytes())
            assert note.problem is None and note.title_for(path.name), (path, note.problem)
    subprocess.run(["git", "-C", str(root), "fsck", "--no-progress"], check=True, capture_output=True)


def _timed_run(*args: str) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "kb", *args], capture_output=True)
    return time.monotonic() - start


def test_kill_9_at_random_points(root: Path, tmp_path: Path):
    """kill -9 of add, edit, rename, import and sync at points spread over their runs.

    Each command's uninterrupted run is timed first on this machine; its kill points are then drawn from
    the strata of 30%..110% of that time, so most fall while kb works rather than while Python starts or
    after kb has finished; some must land between a write and its commit (a journal is left)."""
    trials = int(os.environ.get("KB_CRASH_TRIALS", "40"))
    rng = random.Random(5)
    kb = [sys.executable, "-m", "kb"]
    assert subprocess.run([*kb, "add", "Seed note", "-b", "x"], capture_output=True).returncode == 0
    assert subprocess.run([*kb, "search", "x"], capture_output=True).returncode == 0
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    assert subprocess.run([*kb, "sync", "--remote", str(remote)], capture_output=True).returncode == 0
    source = tmp_path / "to-import"
    source.mkdir()
    (source / "imported first.md").write_text("# Imported first\n\ntext\n")
    run_time = {
        0: _timed_run("add", "Timed note", "-b", "timed"),
        1: _timed_run("edit", "Seed note", "-a", "timed"),
        2: max(_timed_run("mv", "Seed note", "Seed renamed"), _timed_run("mv", "Seed renamed", "Seed note")),
        3: _timed_run("import", str(source)),
        4: _timed_run("sync"),
    }
    per_kind = -(-trials // 5)
    acknowledged = []
    mid_change = 0
    for trial in range(trials):
        kind = trial % 5
        if kind == 0:
            args = ["add", f"Crash note {trial}", "-b", f"body {trial}"]
        elif kind == 1:
            args = ["edit", "Seed note", "-a", f"appended in trial {trial}"]
        elif kind == 2:
            names = ["Seed note", "Seed renamed"] if trial % 2 else ["Seed renamed", "Seed note"]
            args = ["mv", *names]
        elif kind == 3:
            (source / f"imported {trial}.md").write_text(f"# Imported {trial}\n\ntext\n")
            args = ["import", str(source)]
        else:
            args = ["sync"]
        stratum = (trial // 5 + rng.random()) / per_kind
        proc = spawn(*args)
        time.sleep(run_time[kind] * (0.3 + 0.8 * stratum))
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        if code == 0 and kind == 0:
            acknowledged.append(f"Crash note {trial}")
        mid_change += (root / ".git" / "kb-journal").exists()
        quick_check(root)
        if trial % 25 == 24:
            assert_converged(root)
    assert_converged(root)
    names = {p.stem for p in (root / "notes").iterdir()}
    assert set(acknowledged) <= names
    assert mid_change or trials < 20, "no kill landed between a write and its commit"


def test_eight_adds_at_once(root: Path):
    procs = [
        spawn("add", f"Parallel {i}", "-b", f"word{i} body", env={"KB_LOCK_TIMEOUT": "60"}) for i in range(8)
    ]
    codes = [p.wait(timeout=180) for p in procs]
    assert codes == [0] * 8, [p.stderr.read() for p in procs]  # type: ignore[union-attr]
    assert sorted(p.name for p in (root / "notes").iterdir()) == [f"Parallel {i}.md" for i in range(8)]
    for i in range(8):
        assert search_paths(f"word{i}") == [f"notes/Parallel {i}.md"]
    assert_converged(root)


def test_ctrl_c_in_the_editor_saves_nothing_and_exits_130(root: Path, tmp_path: Path):
    assert (
        subprocess.run([sys.executable, "-m", "kb", "add", "Note", "-b", "x"], capture_output=True).returncode
        == 0
    )
    before = (root / "notes" / "Note.md").read_bytes()
    # exec: the editor is the process kb started, so kb's Ctrl-C handling ends it (a shell's orphaned
    # `sleep` would keep kb's stderr open for its 30 s).
    editor = write_editor(tmp_path, 'echo "typed" >> "$1"; exec sleep 30')
    proc = spawn("edit", "Note", "--editor", env={"EDITOR": editor})
    drafts = root / ".git" / "kb-drafts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until kb is waiting for the editor, however slow the machine
        if any("typed" in p.read_text() for p in drafts.rglob("*.md")) if drafts.is_dir() else False:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    assert code == 130
    assert proc.stderr is not None and b"interrupted" in proc.stderr.read()
    assert (root / "notes" / "Note.md").read_bytes() == before
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.cold_only("makes History.commit send this process Ctrl-C")
def test_ctrl_c_while_git_commits_keeps_the_commit_and_says_so(root: Path, kb, monkeypatch):
    from kb.history import History

    assert kb("add", "Note", "-b", "x").exit_code == 0
    real = History.commit

    def commit(self: History, *args: object, **kwargs: object) -> object:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while git writes the commit: it waits for it
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(History, "commit", commit)
    r = kb("edit", "Note", "-a", "walrus")
    assert r.exit_code == 130, r.stderr
    assert "interrupted, after the change was committed [" in r.stderr and "it is kept" in r.stderr
    assert git(root, "log", "-1", "--format=%s").strip() == "Edit: Note"
    assert (root / "notes" / "Note.md").read_text().endswith("walrus\n")
    monkeypatch.setattr(History, "commit", real)
    assert "Note.md" in kb("search", "walrus").stdout  # the index caught up
    assert_converged(root)


@pytest.mark.parametrize("when", [0.05, 0.15, 0.3])
def test_ctrl_c_during_a_change_is_all_or_nothing(root: Path, when: float):
    assert (
        subprocess.run([sys.executable, "-m", "kb", "add", "Note", "-b", "x"], capture_output=True).returncode
        == 0
    )
    proc = spawn("edit", "Note", "-a", "interrupted edit")
    time.sleep(when)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    assert proc.stderr is not None
    err = proc.stderr.read()
    # 130, or -2 when the signal came before Python reached kb's handler (a shell shows 130 for both),
    # or Python's own exit 1 with a traceback when it came while the interpreter was still starting
    # (site's import hooks, e.g. an editable install's), before any of kb's code ran.
    starting = code == 1 and b"KeyboardInterrupt" in err and b"/kb/" not in err
    assert code in (0, 130, -signal.SIGINT) or starting, err.decode("utf-8", "replace")[-800:]
    text = (root / "notes" / "Note.md").read_text()
    assert text.endswith(("x\n", "interrupted edit\n"))
    assert_converged(root)


def test_a_change_interrupted_between_write_and_commit_is_finished_by_the_next_read(root: Path, kb):
    """What a run killed after writing but before committing leaves: its journal, the written file and a
    temp file. The next command, a read, commits the change with its own message and cleans up."""
    import json as json_module

    assert kb("add", "Note", "-b", "x").exit_code == 0
    assert kb("search", "x", "-l").exit_code == 0
    path = root / "notes" / "Note.md"
    path.write_text(path.read_text() + "\nwritten before the crash\n")
    (root / "notes" / ".kb-tmp-leftover").write_text("half")
    (root / ".git" / "kb-journal").write_text(
        json_module.dumps({"pid": 1, "message": "Edit: Note", "paths": ["notes/Note.md"]})
    )
    r = kb("list")
    assert r.exit_code == 0
    assert git(root, "log", "-1", "--format=%s|%b").strip() == (
        "Edit: Note|Kb-Recovered: completed after an interrupted run"
    )
    assert git(root, "status", "--porcelain") == ""
    assert not (root / "notes" / ".kb-tmp-leftover").exists()
    assert not (root / ".git" / "kb-journal").exists()
    assert kb("search", "crash", "-l").stdout == "notes/Note.md\n"


@pytest.mark.cold_only("makes the index build of this process stop at Ctrl-C")
def test_ctrl_c_during_reindex_keeps_the_index_there_was(root: Path, kb, monkeypatch):
    from kb.index import NoteIndex
    from kb.store import BUILDING_INDEX

    for n in range(6):
        assert kb("add", f"Note {n}", "-b", f"walrus number{n}").exit_code == 0
    assert kb("search", "walrus").exit_code == 0
    before = {p.name: p.stat().st_ino for p in (root / "index").iterdir()}
    real = NoteIndex._read_document
    read: list[str] = []

    def read_document(self: NoteIndex, path: str) -> object:
        read.append(path)
        if len(read) == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the build
        return real(self, path)

    monkeypatch.setattr(NoteIndex, "_read_document", read_document)
    r = kb("reindex")
    assert r.exit_code == 130 and "interrupted" in r.stderr
    assert {p.name: p.stat().st_ino for p in (root / "index").iterdir()} == before  # untouched
    assert not (root / BUILDING_INDEX).exists()
    monkeypatch.setattr(NoteIndex, "_read_document", real)
    r = kb("search", "walrus", "-n", "10")
    assert r.exit_code == 0 and r.stdout.count("notes/Note ") == 6 and "rebuilt" not in r.stderr.lower()
    assert kb("reindex").exit_code == 0
    assert not (root / BUILDING_INDEX).exists()
    assert kb("search", "number3", "-l").stdout == "notes/Note 3.md\n"


def test_an_index_build_a_kill_left_is_removed_by_the_next_change(root: Path, kb):
    from kb.store import BUILDING_INDEX

    assert kb("add", "Note", "-b", "x").exit_code == 0
    left = root / BUILDING_INDEX
    left.mkdir()
    (left / "_MAIN_1.toc").write_bytes(b"half")
    assert kb("edit", "Note", "-a", "y").exit_code == 0
    assert not left.exists()
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.cold_only("makes importing kb.client in this process stop at Ctrl-C")
def test_ctrl_c_while_kb_is_still_importing_ends_in_one_line(monkeypatch, capfd):
    import posix

    import kb.client
    from kb import entry

    def interrupted() -> None:
        raise KeyboardInterrupt  # Ctrl-C before kb's own handling of it began

    monkeypatch.setattr(kb.client, "main", interrupted)
    exits: list[int] = []
    monkeypatch.setattr(posix, "_exit", lambda code: exits.append(code))  # kb.entry has no `os`
    entry.main()
    assert exits == [130]
    assert capfd.readouterr().err == "Error: interrupted\n"


def test_a_ctrl_c_python_wraps_while_a_module_is_imported_is_an_interrupt(capfd):
    """A Ctrl-C while a class is made at import (a dataclass's field, say) reaches kb as a RuntimeError
    ("Error calling __set_name__ ...") caused by the KeyboardInterrupt: exit 130, as for any Ctrl-C."""
    from kb import quick

    class Named:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    try:
        type("Made", (), {"field": Named()})
    except RuntimeError as exc:
        assert isinstance(exc.__cause__, KeyboardInterrupt)
        assert quick.failed(exc) == 130
    else:
        raise AssertionError("Python no longer wraps it: the test is moot")
    assert capfd.readouterr().err.strip() == "Error: interrupted"
