"""Real notes in Notable's format, edited through $EDITOR: only `modified` and the edited line may change."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, NOW, SEEDS, git, log_subjects, write_editor


def seed_files() -> list[Path]:
    own = [FIXTURES / "older.md", FIXTURES / "newer.md"]
    shared = sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []
    return own + shared


def place(root: Path, source: Path, kb) -> Path:
    (root / "notes").mkdir(parents=True)
    target = root / "notes" / "Machine Learning.md"
    target.write_bytes(source.read_bytes())
    assert kb("init").exit_code == 0
    return target


def diff_lines(a: bytes, b: bytes) -> list[str]:
    la = a.decode().splitlines(keepends=True)
    lb = b.decode().splitlines(keepends=True)
    return [
        line
        for line in difflib.unified_diff(la, lb, n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("source", seed_files(), ids=lambda p: p.name)
def test_editor_edit_of_one_word_changes_exactly_two_lines(source, root, tmp_path, kb, monkeypatch):
    original = source.read_bytes()
    target = place(root, source, kb)
    editor = write_editor(tmp_path, "sed -i 's/solidify/strengthen/' \"$1\"")
    monkeypatch.setenv("KB_NOW", "2026-11-22T08:00:00.000Z")
    r = kb("edit", "Machine Learning", "--editor", env={"EDITOR": editor})
    assert r.exit_code == 0, r.stderr
    after = target.read_bytes()
    changes = diff_lines(original, after)
    assert len(changes) == 4, changes  # two lines out, two lines in
    removed = [c for c in changes if c.startswith("-")]
    added = [c for c in changes if c.startswith("+")]
    assert removed[0].startswith("-modified: '2021-")
    assert added[0] == "+modified: '2026-11-22T08:00:00.000Z'\n"
    assert "solidify" in removed[1] and added[1] == removed[1].replace("solidify", "strengthen").replace(
        "-", "+", 1
    )
    assert original.endswith(b"\n") == after.endswith(b"\n")
    assert log_subjects(root)[0] == "Edit: Machine Learning"
    assert git(root, "log", "-1", "--format=%aI").strip() == "2026-11-22T08:00:00+00:00"


@pytest.mark.parametrize("source", seed_files(), ids=lambda p: p.name)
def test_flag_edits_keep_every_other_byte(source, root, kb):
    original = source.read_bytes()
    target = place(root, source, kb)
    assert kb("edit", "Machine Learning", "-t", "Study").exit_code == 0
    changes = diff_lines(original, target.read_bytes())
    assert changes[:2] == ["-tags: [Notebooks/Skills/Tech]\n", "+tags: [Notebooks/Skills/Tech, Study]\n"]
    assert changes[2].startswith("-modified: '2021-") and changes[3] == f"+modified: '{NOW}'\n"
    assert len(changes) == 4


def test_seed_odd_characters_survive(root, kb):
    source = FIXTURES / "newer.md"
    target = place(root, source, kb)
    assert kb("edit", "Machine Learning", "-a", "appended").exit_code == 0
    data = target.read_bytes()
    assert "â€“".encode() in data
    assert data.startswith(source.read_bytes().split(b"modified:")[0])
    show = kb("show", "Machine Learning", "--json")
    assert '"title": "Machine Learning"' in show.stdout
