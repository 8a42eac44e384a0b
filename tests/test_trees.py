"""A commit's trees made from the images of the trees before it (kb.history.trees): the tree git's
write-tree makes of the same index, whatever the names (git's order puts a folder as if its name ended
with a slash), modes, folders on the way and deletions; git's write-tree where the images cannot."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kb.history import History, trees
from tests.conftest import git, index_env, index_tree

MOMENT = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)
FOLDERS = ["", "notes", "notes/a", "notes/a/b c", "notes/é"]
NAMES = ["a", "a.md", "a-b.md", "a b.md", "a0.md", "A.md", "é.md", "z.md", "[x].md", "ab.md", "b", "b.md"]
# Names beside a folder's in git's order ('!' '-' '.' before '/', '0' '~' after), forms of one letter,
# a backslash, a dash first, a newline, a space.
MORE = ["a!", "a.b", "a~", "a0", "e\u0301.md", "-x.md", "back\\slash.md", "new\nline.md", "b c"]


@pytest.fixture
def made() -> Iterator[list[int]]:
    count: list[int] = []
    trees.counted(lambda: count.append(1))
    try:
        yield count
    finally:
        trees.counted(None)
        trees.forget()


def _repository(tmp_path: Path) -> tuple[Path, History]:
    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(root)], check=True)
    paths = []
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
        path = f"{folder}/first.md" if folder else "first.md"
        (root / path).write_text(f"{folder}\n")
        paths.append(path)
    history = History(root)
    assert history.commit(paths, "First", MOMENT, MOMENT)
    return root, history


def _same_as_git(root: Path) -> None:
    """HEAD's tree is the one git's write-tree makes of the index, and nothing is left to commit (asked
    of a copy of the index: git's index as kb left it is not written)."""
    assert index_tree(root) == git(root, "rev-parse", "HEAD^{tree}").strip()
    status = ["git", "status", "--porcelain", "--untracked-files=all"]
    env = index_env(root)
    assert subprocess.run(status, cwd=root, env=env, capture_output=True, text=True, check=True).stdout == ""


@pytest.mark.parametrize(("seed", "names"), [(20261203, NAMES), (7, NAMES + MORE), (11, [*MORE, "a.md"])])
def test_trees_made_from_images_are_those_git_writes(tmp_path, made, seed, names):
    root, history = _repository(tmp_path)
    rng = random.Random(seed)
    steps = 60
    for step in range(steps):
        paths = set()
        for _ in range(rng.randint(1, 3)):
            folder = rng.choice(FOLDERS[:4] if step < steps // 2 else FOLDERS)
            name = rng.choice(names)
            rel = f"{folder}/{name}" if folder else name
            if os.path.isdir(root / rel) or rel in paths:
                continue
            path = root / rel
            paths.add(rel)
            if os.path.lexists(path) and rng.random() < 0.3:
                path.unlink()
            elif rng.random() < 0.1:
                if os.path.lexists(path):
                    path.unlink()
                os.symlink("first.md", path)
            else:
                if os.path.islink(path):
                    path.unlink()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{step} {rng.random()}\n")
                os.chmod(path, 0o755 if rng.random() < 0.15 else 0o644)
        if not paths:
            continue
        left = history.index_as_left()
        if left is not None:
            history.keep_trees(left[1], FOLDERS)
        history.commit(sorted(paths), f"Step {step}", MOMENT, MOMENT)
        _same_as_git(root)
        shown = ["git", "show", "-z", "--name-only", "--format=", "HEAD"]
        changed = subprocess.run(shown, cwd=root, capture_output=True, check=True).stdout.split(b"\0")
        assert {os.fsdecode(p) for p in changed if p.strip()} <= paths
    # Most commits had the images (not those after a folder was emptied, nor the first in a new one).
    assert len(made) >= steps // 2
    assert git(root, "fsck", "--strict", "--no-dangling", "--no-progress") == ""


def test_what_the_images_cannot_make_git_makes(tmp_path, made):
    root, history = _repository(tmp_path)
    cases = [
        ("notes/new folder/one.md", "write"),  # a folder made
        ("notes/a/b c/first.md", "delete"),  # a folder left empty
    ]
    for rel, what in cases:
        path = root / rel
        if what == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("new\n")
        else:
            path.unlink()
        left = history.index_as_left()
        assert left is not None, rel
        history.keep_trees(left[1], FOLDERS)
        history.commit([rel], f"Case {rel}", MOMENT, MOMENT)
        _same_as_git(root)
    assert made == []
    # And after them, an ordinary change has the images again.
    left = history.index_as_left()
    assert left is not None
    history.keep_trees(left[1], ["notes"])
    (root / "notes" / "first.md").write_text("again\n")
    history.commit(["notes/first.md"], "Again", MOMENT, MOMENT)
    _same_as_git(root)
    assert made == [1]


def test_images_of_another_tree_are_not_used(tmp_path, made):
    root, history = _repository(tmp_path)
    left = history.index_as_left()
    assert left is not None
    history.keep_trees(left[1], ["notes"])
    (root / "notes" / "first.md").write_text("changed by git\n")
    # HEAD moved, the index written: kb compares trees
    git(root, "-c", "user.name=Someone", "-c", "user.email=someone@example.org", "commit", "-qam", "By hand")
    (root / "notes" / "first.md").write_text("changed by kb\n")
    history.commit(["notes/first.md"], "By kb", MOMENT, MOMENT)
    _same_as_git(root)
    assert made == []


def test_a_tree_that_cannot_be_written_is_left_to_git(tmp_path, made, monkeypatch):
    root, history = _repository(tmp_path)
    left = history.index_as_left()
    assert left is not None
    history.keep_trees(left[1], ["notes"])

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trees.os, "link", full)
    (root / "notes" / "first.md").write_text("changed\n")
    history.commit(["notes/first.md"], "On a full disk", MOMENT, MOMENT)
    monkeypatch.undo()
    _same_as_git(root)
    assert git(root, "log", "-1", "--format=%s").strip() == "On a full disk"
    assert made == []
    assert not [p for p in (root / ".git" / "objects").rglob("tmp_obj_*")]


def _git_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = History._run

    def recording(self, args, *rest, **kwargs):
        calls.append(next(a for a in args if not a.startswith("-") and "=" not in a))
        return real(self, args, *rest, **kwargs)

    monkeypatch.setattr(History, "_run", recording)
    return calls


def _commit_with_images(root: Path, history: History, paths: list[str], message: str) -> None:
    left = history.index_as_left()
    assert left is not None
    history.keep_trees(left[1], ["notes", "notes/a"])
    history.commit(paths, message, MOMENT, MOMENT)
    _same_as_git(root)


def test_the_entries_staged_are_worked_out_when_nothing_converts_the_files(tmp_path, made, monkeypatch):
    root, history = _repository(tmp_path)
    calls = _git_calls(monkeypatch)
    (root / "notes" / "first.md").write_text("changed\r\nwith a carriage return\r\n")
    (root / "notes" / "a" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "notes" / "a" / "run.sh", 0o755)
    os.symlink("first.md", root / "notes" / "link.md")
    _commit_with_images(root, history, ["notes/first.md", "notes/a/run.sh", "notes/link.md"], "Three")
    assert made == [1]
    assert "ls-files" not in calls  # the blob ids were hashed here, as git hashed them
    listed = git(root, "ls-tree", "-r", "HEAD", "notes/a/run.sh", "notes/link.md")
    assert listed.startswith("100755 blob") and "\n120000 blob" in listed


@pytest.mark.parametrize(
    "converting",
    [
        ("file", "notes/.gitattributes", "*.md text eol=lf\n"),
        ("file", ".gitattributes", "*.md text\n"),
        ("file", ".git/info/attributes", "*.md text\n"),
        ("config", "core.autocrlf", "true"),
        ("config", "core.autocrlf", "input"),
        ("config", "core.fileMode", "false"),
    ],
)
def test_files_that_git_may_convert_are_staged_as_git_says(tmp_path, made, monkeypatch, converting):
    root, history = _repository(tmp_path)
    kind, where, what = converting
    if kind == "file":
        (root / where).write_text(what)
        if not where.startswith(".git/"):
            history.commit([where], "Attributes", MOMENT, MOMENT)
    else:
        git(root, "config", where, what)
        history = History(root)  # (the settings are read once per History)
    calls = _git_calls(monkeypatch)
    (root / "notes" / "first.md").write_text("changed\r\nwith carriage returns\r\n")
    _commit_with_images(root, history, ["notes/first.md"], "Converted")
    assert made == [1]
    assert "ls-files" in calls  # git's entries, whatever it did to the bytes


def test_a_file_changed_before_git_stages_it_is_staged_as_git_read_it(tmp_path, made, monkeypatch):
    root, history = _repository(tmp_path)
    calls = _git_calls(monkeypatch)
    note = root / "notes" / "first.md"
    note.write_text("as hashed here\n")
    real = History._git_input

    def meddling(self, args, *rest, **kwargs):
        if "update-index" in args:
            with open(note, "a") as handle:
                handle.write("and a line written meanwhile\n")
        return real(self, args, *rest, **kwargs)

    monkeypatch.setattr(History, "_git_input", meddling)
    _commit_with_images(root, history, ["notes/first.md"], "Changed meanwhile")
    assert made == [1] and "ls-files" in calls
    assert git(root, "show", "HEAD:notes/first.md") == "as hashed here\nand a line written meanwhile\n"


@pytest.mark.parametrize("seed", [3, 20261203])
def test_trees_advanced_from_the_images_are_those_git_reads(tmp_path, made, seed):
    """trees.advance: the trees a commit made from the images, kept as images with their entries' offsets
    worked out from the old ones, are the trees git then holds, byte for byte and entry for entry; keep
    finds them there and reads none of them from git. Where the images cannot make a commit's trees
    (a folder made), advance makes none, and keep reads them."""
    root, history = _repository(tmp_path)
    rng = random.Random(seed)
    read: list[bytes] = []

    def batch(spec: bytes) -> bytes | None:
        read.append(spec)
        done = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input=spec, capture_output=True)
        return done.stdout if done.returncode == 0 else None

    left = history.index_as_left()
    assert left is not None
    trees.keep(left[1], FOLDERS, batch)
    advanced = 0
    for step in range(40):
        paths = set()
        for _ in range(rng.randint(1, 3)):
            folder = rng.choice(FOLDERS)
            rel = f"{folder}/{rng.choice(NAMES + MORE)}" if folder else rng.choice(NAMES + MORE)
            if os.path.isdir(root / rel) or rel in paths or rel.endswith(("/b", "/a")) or rel in ("a", "b"):
                continue  # (names that are folders somewhere: not a file's change)
            paths.add(rel)
            if (root / rel).exists() and rng.random() < 0.25:
                (root / rel).unlink()
            else:
                (root / rel).write_text(f"{step} {rng.random()}\n")
                os.chmod(root / rel, 0o755 if rng.random() < 0.2 else 0o644)
        if not paths:
            continue
        before = history.index_as_left()
        assert before is not None
        staged = trees.staged_as_git(root, before[1], sorted(paths))
        history.commit(sorted(paths), f"Step {step}", MOMENT, MOMENT)
        head = git(root, "rev-parse", "HEAD^{tree}").strip()
        new = trees.advance(before[1], staged[0]) if staged is not None else None
        read.clear()
        trees.keep(head, FOLDERS, batch)
        if new is None:
            continue
        assert new == head
        assert read == []  # every tree found among the images advance made
        advanced += 1
        for folder in FOLDERS:
            sha = git(root, "rev-parse", f"HEAD:{folder}").strip() if folder else head
            image = trees.kept(sha)
            assert image is not None
            raw = subprocess.run(["git", "cat-file", "tree", sha], cwd=root, capture_output=True, check=True)
            fresh = trees.TreeImage(sha, raw.stdout)
            assert (image.raw, list(image.offsets)) == (fresh.raw, list(fresh.offsets)), (step, folder)
    assert advanced >= 20
