"""A rename that rewrites links in many notes is all or nothing: a failing commit or a kill -9 of kb in the
middle leaves either the old state or the new one, never a mix."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import git

LINKING = 12


def _linked(kb, root: Path) -> dict[str, bytes]:
    assert kb("add", "Target", "-b", "the target").exit_code == 0
    for i in range(LINKING):
        assert (
            kb("add", f"Linker {i}", "-b", f"See [[Target]] and [[Target|the target]] ({i}).").exit_code == 0
        )
    return _files(root)


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "notes").iterdir() if p.is_file()}


def _consistent(kb, root: Path, before: dict[str, bytes]) -> str:
    """The knowledge base is wholly before the rename or wholly after it; which one."""
    assert git(root, "status", "--porcelain") == ""
    files = _files(root)
    if files == before:
        return "old"
    assert "Target.md" not in files and "Goal.md" in files
    for i in range(LINKING):
        text = files[f"Linker {i}.md"].decode()
        assert "[[Goal]]" in text and "[[Goal|the target]]" in text and "[[Target" not in text
    backlinks = kb("backlinks", "Goal").stdout.splitlines()
    assert len(backlinks) == 2 * LINKING
    return "new"


@pytest.mark.cold_only("it makes kb's own commits fail in this process")
def test_a_failing_commit_puts_every_file_back(kb, root, monkeypatch):
    before = _linked(kb, root)
    from kb.errors import GitError
    from kb.history import History

    def fail(self, *args, **kwargs):
        raise GitError("git commit failed: injected")

    monkeypatch.setattr(History, "commit", fail)
    r = kb("mv", "Target", "Goal")
    assert r.exit_code == 1 and "injected" in r.stderr
    monkeypatch.undo()
    assert _consistent(kb, root, before) == "old"


@pytest.mark.parametrize("when", ["before-commit", "commit-landed"])
def test_kill_9_during_a_rename_leaves_old_or_new(kb, root, tmp_path, when):
    before = _linked(kb, root)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "in-commit"
    real = shutil.which("git")
    # A git first on PATH: on `commit` or `update-ref` (what moves HEAD) it says so and waits, before or
    # after running the real one.
    first, after = ("sleep 2; ", "") if when == "before-commit" else ("", "sleep 2; ")
    (bin_dir / "git").write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do case "$a" in commit|update-ref) touch \'{marker}\'; {first}break;; esac; done\n'
        f"'{real}' \"$@\"\nrc=$?\n"
        f'for a in "$@"; do case "$a" in commit|update-ref) {after}break;; esac; done\n'
        "exit $rc\n"
    )
    (bin_dir / "git").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "KB_LOCK_TIMEOUT": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "kb", "mv", "Target", "Goal"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # The next command (a read) finishes or undoes what the killed run left.
    assert kb("list").exit_code == 0
    state = _consistent(kb, root, before)
    assert state == ("new" if when == "commit-landed" else state)
