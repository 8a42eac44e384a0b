"""Every test runs against a knowledge base in its own temporary folder, with no git configuration of the
machine's and a fixed clock. Nothing here reads or writes the user's home."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app

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


@pytest.fixture
def kb() -> Callable[..., Run]:
    """Run the real CLI in-process: kb("add", "Title", input="body")."""
    runner = CliRunner()

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Run:
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr, result.stdout_bytes)

    return run


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


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
