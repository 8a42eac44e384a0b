"""kb log, show --rev, diff, restore and import, on real repositories."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kb.cli import app
from tests.conftest import FIXTURES, SEEDS, git, isolate, log_subjects, snapshot

OLDER, NEWER = FIXTURES / "older.md", FIXTURES / "newer.md"


def revisions(kb, note: str) -> list[dict]:
    r = kb("log", note, "--json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)["revisions"]


@pytest.fixture(scope="module")
def built_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A note with five revisions: add, two edits, a rename, an edit. Built once per module."""
    tmp = tmp_path_factory.mktemp("history")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp)
        for i, (args, now) in enumerate(
            [
                (["add", "Alpha", "-t", "one", "-b", "first line"], "2026-01-01T10:00:00.000Z"),
                (["edit", "Alpha", "-a", "second line"], "2026-01-02T10:00:00.000Z"),
                (["edit", "Alpha", "-t", "two"], "2026-01-03T10:00:00.000Z"),
                (["mv", "Alpha", "Beta"], "2026-01-04T10:00:00.000Z"),
                (["edit", "Beta", "-a", "third line"], "2026-01-05T10:00:00.000Z"),
            ]
        ):
            mp.setenv("KB_NOW", now)
            assert runner.invoke(app, args).exit_code == 0, (i, args)
    return tmp / "kb"


@pytest.fixture
def history(built_history: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's own copy of the module's history, at `root`."""
    shutil.copytree(built_history, root, symlinks=True)
    monkeypatch.setenv("KB_NOW", "2026-02-01T00:00:00.000Z")


def test_restore_by_a_renamed_notes_old_title_names_it_and_makes_no_second_note(history, kb, root):
    # Alpha was renamed Beta in revision 4 (the module's history)
    before = git(root, "rev-parse", "HEAD")
    r = kb("restore", "Alpha", "1")
    assert r.exit_code != 0
    assert "'Alpha' (notes/Alpha.md) was renamed in revision 4" in r.stderr, r.stderr
    assert "it is notes/Beta.md now: restore it by that name" in r.stderr
    assert not (root / "notes" / "Alpha.md").exists() and git(root, "rev-parse", "HEAD") == before
    assert kb("restore", "Beta", "1").exit_code == 0


def test_restoring_the_current_version_is_refused_and_commits_nothing(history, kb, root):
    before = git(root, "rev-parse", "HEAD")
    r = kb("restore", "Beta", "5")
    assert (
        r.exit_code == 1
        and "revision 5 is the current version of notes/Beta.md: nothing to restore" in r.stderr
    )
    assert git(root, "rev-parse", "HEAD") == before
    assert kb("restore", "Beta", "4").exit_code == 0  # another version: restored
    assert git(root, "rev-parse", "HEAD") != before


def test_log_says_how_many_revisions_it_leaves_out(history, kb):
    r = kb("log", "Beta", "-n", "2")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2
    assert "2 of 5 revisions; -n N shows more." in r.stderr
    assert "of 5 revisions" not in kb("log", "Beta").stderr


def test_log_numbers_revisions_and_follows_renames(history, kb):
    revs = revisions(kb, "Beta")
    assert [r["number"] for r in revs] == [1, 2, 3, 4, 5]
    assert [r["action"] for r in revs] == ["add", "edit", "edit", "rename", "edit"]
    assert [r["date"][:10] for r in revs] == [
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
        "2026-01-04",
        "2026-01-05",
    ]
    assert [r["path"] for r in revs] == ["notes/Alpha.md"] * 3 + ["notes/Beta.md"] * 2
    assert revs[1]["added"] == 3 and revs[1]["removed"] == 1  # modified, a blank line, the new line
    plain = kb("log", "Beta").stdout.splitlines()
    assert plain[0].startswith("5\t2026-01-05T10:00:00.000Z\t") and plain[0].endswith("Edit: Beta")
    assert len(kb("log", "Beta", "-n", "2").stdout.splitlines()) == 2


def test_log_follows_a_rename_made_outside_kb(history, kb, root):
    os.rename(root / "notes" / "Beta.md", root / "notes" / "Gamma.md")
    assert kb("edit", "notes/Gamma.md", "-a", "after the outside rename").exit_code == 0
    revs = revisions(kb, "notes/Gamma.md")
    assert len(revs) == 7
    assert revs[5]["action"] == "external edit" and revs[5]["path"] == "notes/Gamma.md"
    assert revs[0]["path"] == "notes/Alpha.md"


@pytest.mark.parametrize(
    ("rev", "number"),
    [
        ("1", 1),
        ("5", 5),
        ("0", 5),
        ("-1", 4),
        ("~2", 3),
        ("2026-01-02", 2),
        ("2026-01-03T09:00:00Z", 2),
        ("2026-03-01", 5),
        ("31 days ago", 1),  # KB_NOW is 2026-02-01: the version current at the end of the day
        ("30 days ago", 2),
        ("yesterday", 5),
        ("2026-01", 5),
    ],
)
def test_rev_forms(history, kb, rev, number):
    expected = revisions(kb, "Beta")[number - 1]
    shown = json.loads(kb("show", "Beta", "--rev", rev, "--json").stdout)
    assert shown["modified"] == expected["date"]
    commit = expected["commit"]
    assert (
        json.loads(kb("show", "Beta", "--rev", commit[:8], "--json").stdout)["modified"] == expected["date"]
    )


@pytest.mark.parametrize("rev", ["6", "-5", "2025-01-01", "nonsense", "deadbeef"])
def test_unknown_revisions_list_the_valid_range(history, kb, rev):
    r = kb("show", "Beta", "--rev", rev)
    assert r.exit_code == 2 and r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1
    assert "1..5" in r.stderr or "did not exist yet" in r.stderr


def test_show_rev_prints_the_old_file(history, kb, root):
    old = kb("show", "Beta", "--rev", "1").stdout
    assert "title: Alpha\n" in old and "tags: [one]\n" in old and "second line" not in old


def test_diff_forms(history, kb, root):
    r = kb("diff", "Beta", "1", "3", "--stat")
    assert (
        "tag added: two" in r.stdout
        and "modified: 2026-01-01T10:00:00.000Z -> 2026-01-03T10:00:00.000Z" in r.stdout
    )
    # default: the previous revision against the current file
    r = kb("diff", "Beta")
    assert r.stdout.startswith("--- a/notes/Beta.md\n+++ b/notes/Beta.md\n")
    assert "+third line" in r.stdout
    # A alone: A against the current file, across the rename
    r = kb("diff", "Beta", "1")
    assert "rename from notes/Alpha.md\nrename to notes/Beta.md\n" in r.stdout
    # uncommitted changes are part of the current file
    path = root / "notes" / "Beta.md"
    path.write_text(path.read_text() + "uncommitted\n")
    assert "+uncommitted" in kb("diff", "Beta").stdout
    data = json.loads(kb("diff", "Beta", "2", "4", "--json").stdout)
    assert data["from"] == {"label": data["from"]["label"], "path": "notes/Alpha.md"}
    assert data["to"]["path"] == "notes/Beta.md"
    assert {"key": "title", "old": "Alpha", "new": "Beta"} in data["fields"]
    assert data["tags"] == {"added": ["two"], "removed": []}
    assert set(data) == {
        "version",
        "title",
        "from",
        "to",
        "identical",
        "fields",
        "tags",
        "sections",
        "lines",
        "patch",
    }


def test_identical_versions(history, kb):
    r = kb("diff", "Beta", "5")
    assert r.exit_code == 0 and r.stdout == "" and "No differences" in r.stderr


def _apply_with_patch(tmp_path: Path, a: bytes, patch_text: str) -> bytes:
    target = tmp_path / "target.md"
    target.write_bytes(a)
    proc = subprocess.run(["patch", "-s", str(target)], input=patch_text.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return target.read_bytes()


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch program")
def test_piped_diff_is_a_patch_that_patch_and_git_apply_accept(history, kb, root, tmp_path):
    for a, b in [("1", "2"), ("2", "3"), ("4", "5"), ("1", "3")]:
        patch_text = kb("diff", "Beta", a, b).stdout
        a_bytes = kb("show", "Beta", "--rev", a).stdout_bytes
        b_bytes = kb("show", "Beta", "--rev", b).stdout_bytes
        assert _apply_with_patch(tmp_path, a_bytes, patch_text) == b_bytes
    # git apply, in a checkout of revision 1, turns it into revision 5 (rename included)
    first = revisions(kb, "Beta")[0]["commit"]
    work = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(root), str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "checkout", "-q", first], check=True)
    patch_text = kb("diff", "Beta", "1", "5").stdout
    proc = subprocess.run(
        ["git", "-C", str(work), "apply", "-"], input=patch_text.encode(), capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (work / "notes" / "Beta.md").read_bytes() == kb("show", "Beta", "--rev", "5").stdout_bytes
    assert not (work / "notes" / "Alpha.md").exists()


line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\r\n"), max_size=30
)
version = st.tuples(st.lists(line, max_size=12), st.booleans(), st.booleans())


def _render(spec: tuple[list[str], bool, bool]) -> bytes:
    lines, final_newline, crlf = spec
    nl = "\r\n" if crlf else "\n"
    text = nl.join(lines) + (nl if final_newline and lines else "")
    return text.encode("utf-8")


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch program")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=version, b=version)
def test_unified_diff_round_trips_through_patch(tmp_path, a, b):
    from kb.diff import unified

    a_bytes, b_bytes = _render(a), _render(b)
    patch_text = unified(a_bytes, b_bytes, "notes/X.md", "notes/X.md")
    if a_bytes == b_bytes:
        assert patch_text == ""
        return
    assert _apply_with_patch(tmp_path, a_bytes, patch_text) == b_bytes


# ---------------------------------------------------------------- restore


def test_restore_makes_an_old_revision_current_and_keeps_everything(history, kb, root, monkeypatch):
    monkeypatch.setenv("KB_NOW", "2026-03-01T00:00:00.000Z")
    before = kb("show", "Beta", "--raw").stdout
    r = kb("restore", "Beta", "2")
    assert r.exit_code == 0, r.stderr
    # revision 2 was titled Alpha: its content comes back under today's title and file
    assert log_subjects(root)[0] == "Restore: Beta to revision 2"
    assert not (root / "notes" / "Alpha.md").exists()
    text = (root / "notes" / "Beta.md").read_text()
    assert "title: Beta\n" in text and "tags: [one]\n" in text and "second line" in text
    assert "third line" not in text
    assert "modified: '2026-03-01T00:00:00.000Z'" in text and "created: '2026-01-01T10:00:00.000Z'" in text
    revs = revisions(kb, "Beta")
    assert len(revs) == 6 and revs[-1]["action"] == "restore"
    assert [r["path"] for r in revs] == ["notes/Alpha.md"] * 3 + ["notes/Beta.md"] * 3  # one line
    assert kb("show", "Beta", "--rev", "5").stdout == before
    assert git(root, "status", "--porcelain") == ""


def test_restore_title_too_takes_the_old_title_back(history, kb, root, monkeypatch):
    monkeypatch.setenv("KB_NOW", "2026-03-01T00:00:00.000Z")
    r = kb("restore", "Beta", "2", "--title-too")
    assert r.exit_code == 0, r.stderr
    assert log_subjects(root)[0] == "Restore: Alpha to revision 2"
    assert not (root / "notes" / "Beta.md").exists()
    text = (root / "notes" / "Alpha.md").read_text()
    assert "title: Alpha\n" in text and "second line" in text
    revs = revisions(kb, "Alpha")
    assert len(revs) == 6 and revs[-1]["action"] == "restore"


def test_restore_keeps_a_heading_title_in_a_vault(kb, tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "plan.md").write_text("# Old plan\n\nfirst idea\n")
    assert kb("--kb", str(vault), "init").exit_code == 0
    assert kb("--kb", str(vault), "edit", "Old plan", "--title", "New plan").exit_code == 0
    assert kb("--kb", str(vault), "edit", "New plan", "-a", "second idea").exit_code == 0
    r = kb("--kb", str(vault), "restore", "New plan", "1")
    assert r.exit_code == 0, r.stderr
    files = sorted(p.name for p in vault.glob("*.md"))
    assert len(files) == 1
    assert (vault / files[0]).read_text() == "# New plan\n\nfirst idea\n"  # no front matter added


def test_restore_brings_back_a_deleted_note(history, kb, root):
    assert kb("rm", "Beta").exit_code == 0
    revs = revisions(kb, "Beta")
    assert revs[-1]["action"] == "delete" and revs[-1]["deleted"]
    assert kb("show", "Beta", "--rev", "5").exit_code == 0
    r = kb("restore", "Beta", "5")
    assert r.exit_code == 0, r.stderr
    assert "third line" in (root / "notes" / "Beta.md").read_text()
    assert revisions(kb, "Beta")[-1]["action"] == "restore"


def test_a_note_moved_then_deleted_is_one_deleted_note(kb, root):
    assert kb("add", "Alpha", "-b", "first words").exit_code == 0
    (root / "notes" / "sub").mkdir()
    assert kb("mv", "notes/Alpha.md", "sub/").exit_code == 0
    assert kb("rm", "Alpha").exit_code == 0
    r = kb("show", "Alpha", "--rev", "1")  # its first path was moved, not deleted
    assert r.exit_code == 0, r.stderr
    assert "first words" in r.stdout
    assert kb("restore", "Alpha", "1").exit_code == 0
    assert "first words" in (root / "notes" / "sub" / "Alpha.md").read_text()


def test_each_of_many_deleted_notes_is_named_by_its_own_title(kb, root):
    for title in ("Apple pie", "Banana bread", "Cherry tart"):
        assert kb("add", title, "-b", f"{title} recipe").exit_code == 0
    for title in ("Banana bread", "Apple pie", "Cherry tart"):
        assert kb("rm", title).exit_code == 0
    # A path deleted twice is known by what it held last.
    (root / "notes" / "Banana bread.md").write_text("---\ntitle: Banana loaf\n---\nloaf\n")
    assert kb("reindex").exit_code == 0
    assert kb("rm", "Banana loaf").exit_code == 0
    for ref, path in (
        ("cherry", "Cherry tart.md"),
        ("Apple pie", "Apple pie.md"),
        ("Banana loaf", "Banana bread.md"),
    ):
        r = kb("show", ref)
        assert r.exit_code != 0
        assert f"({'notes/' + path}) was deleted in revision" in r.stderr, r.stderr
    r = kb("show", "Banana bread")  # its file name names it too
    assert "'Banana loaf' (notes/Banana bread.md) was deleted in revision" in r.stderr, r.stderr


def test_a_deleted_note_of_a_vault_comes_back_in_its_folder_beside_a_namesake_elsewhere(kb, tmp_path):
    vault = tmp_path / "vault"
    (vault / "sub").mkdir(parents=True)
    (vault / "sub" / "Alpha.md").write_text("# Alpha\n\nthe one in sub\n")
    assert kb("--kb", str(vault), "init").exit_code == 0
    assert kb("--kb", str(vault), "rm", "sub/Alpha.md").exit_code == 0
    assert kb("--kb", str(vault), "add", "Alpha", "-b", "another at the top").exit_code == 0
    r = kb("--kb", str(vault), "restore", "sub/Alpha.md", "1")
    assert r.exit_code == 0, r.stderr
    assert "the one in sub" in (vault / "sub" / "Alpha.md").read_text()
    assert "another at the top" in (vault / "Alpha.md").read_text()
    # a namesake in the very folder it comes back to is a clash
    assert kb("--kb", str(vault), "rm", "sub/Alpha.md").exit_code == 0
    (vault / "sub" / "Other.md").write_text("# Alpha\n\na namesake in sub\n")
    r = kb("--kb", str(vault), "restore", "sub/Alpha.md", "1")
    assert r.exit_code == 1 and "already exists" in r.stderr, r.stderr
    assert not (vault / "sub" / "Alpha.md").exists()


def test_a_namesake_deleted_elsewhere_is_a_second_deleted_note(kb, root):
    assert kb("add", "Alpha", "-b", "a namesake in a folder", "--folder", "old").exit_code == 0
    assert kb("rm", "Alpha").exit_code == 0
    assert kb("add", "Alpha", "-b", "first words").exit_code == 0
    (root / "notes" / "sub").mkdir()
    assert kb("mv", "notes/Alpha.md", "sub/").exit_code == 0
    assert kb("rm", "Alpha").exit_code == 0
    r = kb("show", "Alpha", "--rev", "1")
    assert r.exit_code == 1
    assert "matches 2 deleted notes: notes/old/Alpha.md, notes/sub/Alpha.md" in r.stderr
    r = kb("show", "notes/sub/Alpha.md", "--rev", "1")
    assert r.exit_code == 0 and "first words" in r.stdout


def test_restore_of_a_deletion_revision_is_refused(history, kb, root):
    kb("rm", "Beta")
    before = snapshot(root)
    r = kb("restore", "Beta", "6")
    assert r.exit_code == 1 and "deletion" in r.stderr
    assert snapshot(root) == before


def test_recent_changes(history, kb):
    r = kb("log", "--json")
    changes = json.loads(r.stdout)["changes"]
    assert [c["message"] for c in changes[:2]] == ["Edit: Beta", "Rename: Alpha -> Beta"]
    assert changes[1]["paths"] == [{"status": "R", "path": "notes/Beta.md"}]
    assert kb("log", "-n", "1").stdout.count("\n") == 1


# ---------------------------------------------------------------- import and the seed scenario


def _seed_pairs() -> list[tuple[Path, Path]]:
    pairs = [(OLDER, NEWER)]
    if SEEDS.is_dir():
        pairs.append((SEEDS / "001_40ede766b0e83c2d.txt", SEEDS / "000_5a1375f1e16f1bfa.txt"))
    return pairs


@pytest.mark.parametrize("pair", _seed_pairs(), ids=lambda p: p[0].parent.name)
@pytest.mark.parametrize("order", ["older-first", "newer-first"])
@pytest.mark.parametrize("calls", [1, 2])
def test_importing_the_seeds_gives_one_note_with_two_revisions(pair, order, calls, kb, root, tmp_path):
    older, newer = pair
    files = [older, newer] if order == "older-first" else [newer, older]
    copies = []
    for i, source in enumerate(files):
        target = tmp_path / f"snap{i}" / source.name
        target.parent.mkdir()
        shutil.copyfile(source, target)
        copies.append(str(target))
    if calls == 1:
        assert kb("import", *copies).exit_code == 0
    else:
        for copy in copies:
            assert kb("import", copy).exit_code == 0
    assert [p.name for p in (root / "notes").iterdir()] == ["Machine Learning.md"]
    assert (root / "notes" / "Machine Learning.md").read_bytes() == newer.read_bytes()
    revs = revisions(kb, "Machine Learning")
    assert [r["date"] for r in revs] == ["2021-11-23T15:11:42.617Z", "2021-12-02T10:37:55.243Z"]
    assert git(root, "status", "--porcelain") == ""
    summary = kb("diff", "Machine Learning", "1", "2", "--stat").stdout
    assert "section added: PonderNet" in summary
    assert "section added: Activation functions" in summary
    assert "section changed: Reparametrization trick" in summary
    assert [ln for ln in summary.splitlines() if ": " in ln and "section" not in ln and "lines" not in ln][
        1:
    ] == ["  modified: 2021-11-23T15:11:42.617Z -> 2021-12-02T10:37:55.243Z"]
    assert kb("show", "Machine Learning", "--rev", "1").stdout_bytes == older.read_bytes()
    head = git(root, "rev-parse", "HEAD")
    again = kb("import", *copies, "--json")
    assert json.loads(again.stdout)["unchanged"] == 2
    assert git(root, "rev-parse", "HEAD") == head


def _notable_folder(base: Path) -> Path:
    folder = base / "notable"
    (folder / "notes").mkdir(parents=True)
    (folder / "attachments").mkdir()
    (folder / "attachments" / "diagram.png").write_bytes(b"\x89PNG\r\n\x1a\n fake")
    for i in range(12):
        (folder / "notes" / f"Note {i}.md").write_text(
            f"---\ntags: [Imported/Batch{i % 3}]\ntitle: Note {i}\n"
            f"created: '2020-01-{i + 1:02d}T00:00:00.000Z'\n"
            f"modified: '2020-02-{i + 1:02d}T00:00:00.000Z'\npinned: true\n---\n\n# Note {i}\n\nbody {i}\n"
        )
    (folder / "notes" / "Broken.md").write_bytes(b"---\ntitle: [broken\n---\nx\n")
    (folder / "notes" / "Latin1.md").write_bytes(b"caf\xe9\n")
    return folder


def test_import_a_notable_folder_with_attachments(kb, root, tmp_path):
    folder = _notable_folder(tmp_path)
    r = kb("import", str(folder), "--json")
    assert r.exit_code == 1, r.stderr  # two files skipped (each listed with its reason)
    data = json.loads(r.stdout)
    assert (data["imported"], data["revised"], data["unchanged"], data["skipped"]) == (12, 0, 0, 2)
    assert data["attachments"] == 1
    reasons = {Path(i["source"]).name: i["reason"] for i in data["items"] if i["status"] == "skipped"}
    assert "invalid front matter" in reasons["Broken.md"] and "not valid UTF-8" in reasons["Latin1.md"]
    assert (root / "attachments" / "diagram.png").read_bytes() == b"\x89PNG\r\n\x1a\n fake"
    for i in range(12):
        assert (root / "notes" / f"Note {i}.md").read_bytes() == (
            folder / "notes" / f"Note {i}.md"
        ).read_bytes()
    # The twelve new notes are one commit; each revision is dated by the note's own `modified`.
    subjects = [s for s in log_subjects(root) if s.startswith("Import")]
    assert subjects == ["Import: 1 attachment", "Import: 12 notes"]
    assert [r["date"] for r in revisions(kb, "Note 3")] == ["2020-02-04T00:00:00.000Z"]
    assert git(root, "status", "--porcelain") == ""
    assert json.loads(kb("search", "tag:Imported", "--json", "-n", "50").stdout)["total"] == 12
    head = git(root, "rev-parse", "HEAD")
    again = json.loads(kb("import", str(folder), "--json").stdout)
    assert again["unchanged"] == 12 and again["imported"] == 0
    assert git(root, "rev-parse", "HEAD") == head


def test_import_an_obsidian_vault_and_loose_files(kb, root, tmp_path):
    vault = tmp_path / "vault"
    (vault / ".obsidian").mkdir(parents=True)
    (vault / ".obsidian" / "app.json").write_text("{}")
    (vault / "Projects").mkdir()
    (vault / "Projects" / "Plan.md").write_text("# The Plan\n\nStep one.\n")
    (vault / "Daily.markdown").write_text("no heading here\n")
    (vault / "attachments").mkdir()
    (vault / "attachments" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    loose = tmp_path / "loose.txt"
    loose.write_text("---\ntags: [x]\n---\n\nLoose text.\n")
    r = kb("import", str(vault), str(loose), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["imported"] == 3 and data["attachments"] == 1
    # The vault keeps its structure under notes/ (its attachments beside); the loose file is named by title.
    names = sorted(
        p.relative_to(root / "notes").as_posix() for p in (root / "notes").rglob("*") if p.is_file()
    )
    assert names == ["Daily.markdown", "Projects/Plan.md", "attachments/photo.jpg", "loose.md"]
    plan = (root / "notes" / "Projects" / "Plan.md").read_text()
    assert plan.startswith("---\ncreated: '") and plan.endswith("---\n\n# The Plan\n\nStep one.\n")
    assert "tags: [x]\n" in (root / "notes" / "loose.md").read_text()
    assert not list(root.rglob("app.json"))
    listed = {n["path"]: n["title"] for n in json.loads(kb("list", "--json").stdout)["notes"]}
    assert listed["notes/Projects/Plan.md"] == "The Plan" and listed["notes/Daily.markdown"] == "Daily"
    again = json.loads(kb("import", str(vault), str(loose), "--json").stdout)
    assert again["unchanged"] == 3


def test_import_dry_run_changes_nothing(kb, root, tmp_path):
    folder = _notable_folder(tmp_path)
    kb("init")
    before = snapshot(root)
    data = json.loads(kb("import", str(folder), "--dry-run", "--json").stdout)
    assert data["dry_run"] and data["imported"] == 12
    assert snapshot(root) == before


def test_import_refuses_a_path_that_does_not_exist(kb, tmp_path):
    r = kb("import", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_paths_with_pattern_characters_are_literal(kb, root):
    """git reads `[v2]` in a path as a pattern unless told otherwise: the history of 'Plan [v2]' must not
    pick up the commits of 'Plan v' or 'Plan 2'."""
    for title in ("Plan [v2]", "Plan v", "Plan 2", "Star *"):
        assert kb("add", title, "-b", "first").exit_code == 0
    assert (root / "notes" / "Plan [v2].md").exists()
    for title in ("Plan v", "Plan 2"):
        for n in range(2):
            assert kb("edit", title, "-a", f"more {n}").exit_code == 0
    assert len(revisions(kb, "Plan [v2]")) == 1
    assert len(revisions(kb, "Plan v")) == 3
    assert kb("edit", "Plan [v2]", "-a", "second").exit_code == 0
    assert git(root, "show", "--name-only", "--format=", "HEAD").splitlines() == ["notes/Plan [v2].md"]
    assert len(revisions(kb, "Plan [v2]")) == 2
    assert len(revisions(kb, "Star *")) == 1


def _lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    return table[0][0]


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(["a\n", "b\n", "\n", "c"]), max_size=14),
    st.lists(st.sampled_from(["a\n", "b\n", "\n", "c"]), max_size=14),
)
def test_line_counts_are_those_of_a_shortest_diff(a, b):
    from kb.diff import shortest_counts

    common = _lcs(a, b)
    assert shortest_counts(a, b) == (len(b) - common, len(a) - common)


# ---------------------------------------------------------------- the revision cache


@contextlib.contextmanager
def _cache_off(monkeypatch):
    """History read from git alone, as when the revision cache cannot be used."""
    from kb.history.revcache import CacheUnavailable, RevisionCache

    def unavailable(self, *args):
        raise CacheUnavailable("off")

    with monkeypatch.context() as m:
        for name in ("bring_up_to", "versions", "counts"):
            m.setattr(RevisionCache, name, unavailable)
        yield


def _without_cache(kb, note: str, monkeypatch) -> list[dict]:
    with _cache_off(monkeypatch):
        return revisions(kb, note)


def test_the_revision_cache_agrees_with_git(history, kb, root, monkeypatch):
    """Through renames, a deletion, a restore, commits made with git outside kb and a rewritten HEAD, the
    cached history is git's history."""
    cache = root / ".git" / "kb-revisions.sqlite3"
    assert revisions(kb, "Beta") == _without_cache(kb, "Beta", monkeypatch)
    assert cache.exists()
    kb("rm", "Beta")
    assert revisions(kb, "Beta") == _without_cache(kb, "Beta", monkeypatch)
    assert kb("restore", "Beta", "5").exit_code == 0
    (root / "notes" / "Beta.md").write_text((root / "notes" / "Beta.md").read_text() + "\noutside\n")
    git(root, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-qam", "outside one")
    git(root, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-q", "--allow-empty", "-m", "empty")
    cached = revisions(kb, "Beta")
    assert cached == _without_cache(kb, "Beta", monkeypatch)
    assert cached[-1]["message"] == "outside one" and len(cached) == 8
    git(root, "-c", "user.name=o", "-c", "user.email=o@o", "reset", "-q", "--hard", "HEAD~2")
    git(root, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-q", "--allow-empty", "-m", "other")
    rewritten = revisions(kb, "Beta")
    assert rewritten == _without_cache(kb, "Beta", monkeypatch) and len(rewritten) == 7
    assert kb("show", "Beta", "--rev", "1").stdout == _show_rev_without_cache(kb, monkeypatch)


def test_a_log_reads_what_it_worked_out_of_each_version_from_the_cache(history, kb, root, monkeypatch):
    """kb log keeps each version's `modified` and the lines counted between versions by their blob ids:
    the next log reads only versions new since, and says what the cache says."""
    import sqlite3

    assert kb("add", "Gamma", "-b", "one").exit_code == 0
    for line in ("two", "three"):
        assert kb("edit", "Gamma", "-a", line).exit_code == 0
    first = revisions(kb, "Gamma")
    assert first == _without_cache(kb, "Gamma", monkeypatch)
    db = sqlite3.connect(root / ".git" / "kb-revisions.sqlite3")
    assert db.execute("SELECT count(*) FROM versions1").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM counts1").fetchone()[0] == 3
    with db:
        db.execute("UPDATE counts1 SET added = 99, removed = 98")  # not what git's versions say
    assert {(r["added"], r["removed"]) for r in revisions(kb, "Gamma")} == {(99, 98)}  # read, not counted
    (root / ".git" / "kb-revisions.sqlite3").unlink()
    assert revisions(kb, "Gamma") == first
    assert kb("edit", "Gamma", "-a", "four").exit_code == 0
    again = revisions(kb, "Gamma")
    assert again[:3] == first and again[3]["added"] > 0
    assert again == _without_cache(kb, "Gamma", monkeypatch)
    # A note followed through a rename: the versions before it (read from git) are counted each time.
    assert revisions(kb, "Beta") == _without_cache(kb, "Beta", monkeypatch)


def _show_rev_without_cache(kb, monkeypatch) -> str:
    with _cache_off(monkeypatch):
        return kb("show", "Beta", "--rev", "1").stdout


def _merge_a_side_branch(root: Path, who: list[str]) -> str:
    """A commit of notes/Side.md on a branch from HEAD~1, merged into the current branch (whose name is
    returned) with a merge commit."""
    branch = git(root, "symbolic-ref", "--short", "HEAD").strip()
    git(root, "checkout", "-q", "-b", "side", "HEAD~1")
    (root / "notes" / "Side.md").write_text("side\n")
    git(root, "add", "notes/Side.md")
    git(root, *who, "commit", "-qm", "side")
    git(root, "checkout", "-q", branch)
    git(root, *who, "merge", "-q", "--no-ff", "side", "-m", "merge side")
    return branch


def test_recent_changes_from_the_cache_are_gits(kb, root, monkeypatch):
    """`kb log` reads the last commits' changes from the revision cache when it holds them: the same
    commits, paths, statuses and order as git log -M, through renames kb and git make, moves into folders,
    deletions, commits of other files and names git sorts byte by byte; after a merge, from git."""
    from kb.history import History

    who = ["-c", "user.name=o", "-c", "user.email=o@o"]
    for title in ("Zeta", "alpha", "a", "Émile", "b c"):
        assert kb("add", title, "-b", f"text of {title}").exit_code == 0
    assert kb("add", "In folder", "-b", "x", "--folder", "a").exit_code == 0
    assert kb("edit", "Zeta", "-a", "more").exit_code == 0
    assert kb("mv", "alpha", "Alpha renamed").exit_code == 0
    assert kb("mv", "b c", "a/").exit_code == 0
    assert kb("rm", "Émile", "--yes").exit_code == 0
    git(root, "mv", "notes/a.md", "notes/a moved.md")  # a rename by hand, its text the same
    (root / "notes" / "Zeta.md").unlink()  # and a deletion and an addition of other text in one commit
    (root / "notes" / "Fresh.md").write_text("# Fresh\n\nnew text\n")
    (root / "other.txt").write_text("not a note\n")
    git(root, "add", "-A")
    git(root, *who, "commit", "-qm", "by hand")
    (root / "other.txt").write_text("still not a note\n")
    git(root, *who, "commit", "-qam", "other file only")
    for name in ("Alpha renamed.md", "a/In folder.md", "a/b c.md"):  # several changes in one commit
        (root / "notes" / name).write_text((root / "notes" / name).read_text() + "\nedited by hand\n")
    (root / "notes" / "a.b.md").write_text("a dot b\n")
    git(root, "add", "-A")
    git(root, *who, "commit", "-qm", "several by hand")
    assert kb("log", "Alpha renamed").exit_code == 0  # makes the cache

    def both(n: int) -> dict:
        cached = kb("log", "--json", "-n", str(n))
        with _cache_off(monkeypatch):
            logged = kb("log", "--json", "-n", str(n))
        assert cached.exit_code == logged.exit_code == 0 and cached.stdout == logged.stdout
        return json.loads(cached.stdout)

    history = History(root)
    assert history.recent_cached(30, "notes") is not None  # read from the cache
    changes = both(30)["changes"]
    assert [p["path"] for p in changes[0]["paths"]] == [
        "notes/Alpha renamed.md", "notes/a.b.md", "notes/a/In folder.md", "notes/a/b c.md"
    ]  # fmt: skip
    assert changes[1]["message"] == "by hand"
    assert {(p["status"], p["path"]) for p in changes[1]["paths"]} >= {
        ("R", "notes/a moved.md"),
        ("A", "notes/Fresh.md"),
        ("D", "notes/Zeta.md"),
    }
    for n in (1, 2, 5):
        both(n)
    assert kb("add", "After", "-b", "y").exit_code == 0  # the cache is one commit behind
    assert both(3)["changes"][0]["message"] == "Add: After"
    _merge_a_side_branch(root, who)
    assert History(root).recent_cached(30, "notes") is None  # a merge: git log itself
    both(30)


def test_recent_changes_are_dated_in_utc_as_a_notes_revisions_are(kb, root):
    assert kb("add", "Zoned", "-b", "x").exit_code == 0
    (root / "notes" / "Zoned.md").write_text("# Zoned\n\nby hand\n")
    env = {**os.environ, "GIT_AUTHOR_DATE": "2026-08-22T09:04:49-05:00"}
    subprocess.run(
        ["git", "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-qam", "by hand"],
        cwd=root, env=env, check=True,
    )  # fmt: skip
    latest = json.loads(kb("log", "--json", "-n", "1").stdout)["changes"][0]
    assert latest["date"] == "2026-08-22T14:04:49.000Z"
    assert revisions(kb, "Zoned")[-1]["date"] == latest["date"]
    assert kb("log", "-n", "1").stdout.startswith("2026-08-22 14:04:49\t")


def test_recent_changes_whatever_git_settings_and_file_names(kb, root, monkeypatch):
    """The root commit's changes and git's order of paths whatever log.showRoot and diff.orderFile say; a
    file name that is not UTF-8 is read from git (the cache holds it decoded)."""
    from kb.history import History

    who = ["-c", "user.name=o", "-c", "user.email=o@o"]
    assert kb("add", "One", "-b", "one").exit_code == 0
    for name in ("b.md", "a.md", "c.md"):
        (root / "notes" / name).write_text(f"{name}\n")
    git(root, "add", "-A")
    git(root, *who, "commit", "-qm", "three by hand")
    assert kb("log", "One").exit_code == 0  # makes the cache
    (root / "order").write_text("notes/c.md\nnotes/b.md\n")
    git(root, "config", "log.showRoot", "false")
    git(root, "config", "diff.orderFile", str(root / "order"))

    def both() -> dict:
        cached = kb("log", "--json")
        with _cache_off(monkeypatch):
            logged = kb("log", "--json")
        assert cached.stdout == logged.stdout
        return json.loads(cached.stdout)

    assert History(root).recent_cached(30, "notes") is not None
    changes = both()["changes"]
    assert [p["path"] for p in changes[0]["paths"]] == ["notes/a.md", "notes/b.md", "notes/c.md"]
    assert changes[-1]["message"] == "Add: One"  # the root commit, log.showRoot false or not
    for raw in (b"y\x80.md", b"y\x81.md"):
        (root / "notes" / os.fsdecode(raw)).write_bytes(raw)
    git(root, "add", "-A")
    git(root, *who, "commit", "-qm", "names not in UTF-8")
    assert History(root).recent_cached(30, "notes") is None
    assert len(both()["changes"][0]["paths"]) == 2


@pytest.mark.parametrize("damage", [b"not a database at all", b"", b"SQLite format 3\x00" + b"\x07" * 200])
def test_a_damaged_revision_cache_is_rebuilt(history, kb, root, damage):
    expected = revisions(kb, "Beta")
    (root / ".git" / "kb-revisions.sqlite3").write_bytes(damage)
    assert revisions(kb, "Beta") == expected
    assert kb("diff", "Beta", "1", "5").exit_code == 0


def test_an_unwritable_git_folder_reads_history_from_git(history, kb, root):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    expected = revisions(kb, "Beta")
    (root / ".git" / "kb-revisions.sqlite3").unlink()
    (root / ".git").chmod(0o555)
    try:
        assert revisions(kb, "Beta") == expected
    finally:
        (root / ".git").chmod(0o755)


def test_revision_cache_follows_merges_resets_and_lost_commits(kb, root):
    """The cache holds exactly the commits reachable from HEAD after each way HEAD can move: a merge with
    the known commit as its first or second parent, a reset behind it with new commits, a known commit
    git no longer has."""
    import sqlite3

    from kb.history import History

    def check(expected_added: int | None) -> None:
        history = History(root)
        cache = history.revision_cache()
        head = history.head()
        assert head is not None
        held = {sha for _, sha, _, _, _ in cache.commits(head)}
        assert held == set(git(root, "rev-list", "HEAD").split())
        if expected_added is not None:
            assert cache.added is not None and len(cache.added[2]) == expected_added
        cache.close()

    who = ["-c", "user.name=o", "-c", "user.email=o@o"]
    assert kb("add", "One", "-b", "one").exit_code == 0
    assert kb("add", "Two", "-b", "two").exit_code == 0
    check(None)
    branch = _merge_a_side_branch(root, who)
    check(2)  # the side commit and the merge: the known head is the merge's first parent
    known = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "-b", "other", "HEAD~1")
    (root / "notes" / "Other.md").write_text("other\n")
    git(root, "add", "notes/Other.md")
    git(root, *who, "commit", "-qm", "other")
    git(root, *who, "merge", "-q", "--no-ff", known, "-m", "merge main")
    git(root, "checkout", "-q", branch)
    git(root, "reset", "-q", "--hard", "other")
    check(2)  # the known head is the new merge's second parent
    git(root, "reset", "-q", "--hard", "HEAD~2")
    (root / "notes" / "Three.md").write_text("three\n")
    git(root, "add", "notes/Three.md")
    git(root, *who, "commit", "-qm", "three")
    check(None)  # behind the known head, then a new commit: built anew
    assert len(History(root).revision_cache().commits(History(root).head() or "")) == 4
    db = sqlite3.connect(root / ".git" / "kb-revisions.sqlite3")
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'head'", ("f" * 40,))
    db.close()
    check(None)  # a known head git does not have: built anew


# ---------------------------------------------------------------- a path taken again (A -> B -> A)


def steps(kb, *commands: list[str]) -> None:
    """Each command on its own day, from 2024-01-01."""
    for day, args in enumerate(commands, 1):
        r = kb(*args, env={"KB_NOW": f"2024-01-{day:02d}T10:00:00.000Z"})
        assert r.exit_code == 0, (args, r.stderr)


@pytest.mark.parametrize(
    "back",
    [["mv", "Backpropagation", "Backprop"], ["restore", "Backpropagation", "1", "--title-too"]],
    ids=["mv", "restore"],
)
def test_a_note_renamed_back_to_its_first_name_keeps_one_history(kb, back):
    steps(
        kb,
        ["add", "Backprop", "-b", "Chain rule stuff."],
        ["add", "ML Basics", "-b", "See [[Backprop]]."],
        ["mv", "Backprop", "Backpropagation"],
        back,
    )
    revs = revisions(kb, "Backprop")
    assert [r["number"] for r in revs] == [1, 2, 3]
    assert [r["path"] for r in revs] == ["notes/Backprop.md", "notes/Backpropagation.md", "notes/Backprop.md"]
    assert not any(r["deleted"] for r in revs)
    assert [(r["added"] > 0, r["removed"] < 9) for r in revs[1:]] == [
        (True, True)
    ] * 2  # no delete, no re-add
    shown = kb("show", "Backprop", "--rev", "2")
    assert shown.exit_code == 0, shown.stderr
    assert "title: Backpropagation" in shown.stdout and "Chain rule stuff." in shown.stdout
    assert "+title: Backpropagation" in kb("diff", "Backprop", "1", "2").stdout
    found = json.loads(kb("search", "--history", "chain", "--json").stdout)
    assert found["total"] == 1 and [h["revisions"] for h in found["hits"]] == [[1, 2, 3]]
    old = json.loads(kb("search", "--history", "Backpropagation", "--json").stdout)
    assert old["total"] == len(old["hits"])
    assert [(h["path"], h["revisions"]) for h in old["hits"] if h["title"] == "Backprop"] == [
        ("notes/Backprop.md", [2])
    ]
    lines = {
        line["text"]: line["revision"]
        for line in json.loads(kb("blame", "Backprop", "--json").stdout)["lines"]
    }
    assert lines["Chain rule stuff."] == 1 and lines["title: Backprop"] == 3


def test_a_note_renamed_back_and_forth_twice_keeps_one_history(kb):
    steps(kb, ["add", "A", "-b", "alpha text."], ["mv", "A", "B"], ["mv", "B", "A"], ["mv", "A", "B"])
    revs = revisions(kb, "B")
    assert [r["path"] for r in revs] == ["notes/A.md", "notes/B.md", "notes/A.md", "notes/B.md"]
    assert [r["action"] for r in revs] == ["add", "rename", "rename", "rename"]
    assert "title: A" in kb("show", "B", "--rev", "3").stdout
    found = json.loads(kb("search", "--history", "alpha", "--json").stdout)
    assert [(h["path"], h["revisions"]) for h in found["hits"]] == [("notes/B.md", [1, 2, 3, 4])]
    lines = {
        line["text"]: line["revision"] for line in json.loads(kb("blame", "B", "--json").stdout)["lines"]
    }
    assert lines["alpha text."] == 1


def test_a_new_note_at_a_renamed_notes_old_path_has_its_own_history(kb):
    steps(kb, ["add", "A", "-b", "old text."], ["mv", "A", "B"], ["add", "A", "-b", "new text."])
    new = revisions(kb, "A")
    assert [(r["action"], r["path"]) for r in new] == [("add", "notes/A.md")]
    assert [r["path"] for r in revisions(kb, "B")] == ["notes/A.md", "notes/B.md"]
    assert "old text." not in kb("show", "A", "--rev", "1").stdout
    found = json.loads(kb("search", "--history", "text", "--json").stdout)
    assert sorted((h["path"], h["revisions"]) for h in found["hits"]) == [
        ("notes/A.md", [1]),
        ("notes/B.md", [1, 2]),
    ]
    assert {line["revision"] for line in json.loads(kb("blame", "A", "--json").stdout)["lines"]} == {1}


def test_a_note_whose_links_a_rename_rewrote_logs_links_not_rename(kb):
    steps(
        kb,
        ["add", "Backprop", "-b", "x"],
        ["add", "ML Basics", "-b", "See [[Backprop]]."],
        ["mv", "Backprop", "Backpropagation"],
    )
    assert [r["action"] for r in revisions(kb, "ML Basics")] == ["add", "links"]
    assert [r["action"] for r in revisions(kb, "Backpropagation")] == ["add", "rename"]
    assert "\tlinks\t" in kb("log", "ML Basics").stdout.splitlines()[0]


def test_restore_title_too_rewrites_the_links_to_the_name_it_leaves(kb, root, monkeypatch):
    monkeypatch.setenv("KB_NOW", "2026-01-01T10:00:00.000Z")
    assert kb("add", "Backprop", "-b", "Chain rule stuff.").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-02T10:00:00.000Z")
    assert kb("mv", "Backprop", "Backpropagation").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-03T10:00:00.000Z")
    assert (
        kb("add", "ML Basics", "-b", "See [[Backpropagation]] and [it](Backpropagation.md).").exit_code == 0
    )
    monkeypatch.setenv("KB_NOW", "2026-01-04T10:00:00.000Z")
    r = kb("restore", "Backpropagation", "1", "--title-too")
    assert r.exit_code == 0, r.stderr
    assert (root / "notes" / "Backprop.md").exists() and not (root / "notes" / "Backpropagation.md").exists()
    text = (root / "notes" / "ML Basics.md").read_text()
    assert "[[Backprop]]" in text and "[it](Backprop.md)" in text
    assert "2 links in 1 note updated" in r.stderr
    assert "dead" not in kb("links", "ML Basics").stdout
    assert git(root, "status", "--porcelain") == ""
    assert [r["action"] for r in revisions(kb, "Backprop")] == ["add", "rename", "restore"]


def test_a_name_a_note_left_says_where_it_went(kb, monkeypatch):
    monkeypatch.setenv("KB_NOW", "2026-01-01T10:00:00.000Z")
    assert kb("add", "Neurons", "-b", "Cells.").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-02T10:00:00.000Z")
    assert kb("mv", "Neurons", "Nerve cells").exit_code == 0
    r = kb("show", "Neurons")
    assert r.exit_code == 1
    assert (
        "'Neurons' (notes/Neurons.md) was renamed in revision 2 on 2026-01-02; it is notes/Nerve cells.md now"
        in r.stderr
    )
    went = "was renamed in revision 2 on 2026-01-02; it is notes/Nerve cells.md now"
    r = kb("log", "Neurons")
    assert r.exit_code == 0 and "This note was renamed: it is notes/Nerve cells.md now." in r.stderr
    assert "kb restore" not in r.stderr
    assert json.loads(kb("log", "Neurons", "--json").stdout)["renamed_to"] == "notes/Nerve cells.md"
    for command in (["diff"], ["links"], ["backlinks"], ["rm", "--yes"], ["edit", "-a", "x"], ["mv", "Y"]):
        r = kb(command[0], "Neurons", *command[1:])
        assert r.exit_code == 1 and went in r.stderr and "did you mean" not in r.stderr, (command, r.stderr)
    monkeypatch.setenv("KB_NOW", "2026-01-03T10:00:00.000Z")
    assert kb("rm", "Nerve cells", "--yes").exit_code == 0
    assert "notes/Nerve cells.md, its last name, is gone too" in kb("show", "Neurons").stderr
    assert "kb restore 'Nerve cells' 2" in kb("show", "Nerve cells").stderr
    for command in (["edit", "Nerve cells", "-a", "x"], ["backlinks", "Nerve cells"], ["rm", "Nerve cells"]):
        r = kb(*command)
        assert r.exit_code == 1 and "kb restore 'Nerve cells' 2" in r.stderr, (command, r.stderr)


def test_restore_title_too_renames_the_note_in_its_own_folder_and_never_over_another(kb, root):
    """The old title's file name is looked for in the note's own folder: a note of that file name at the
    top is another note, never overwritten."""
    assert kb("add", "X", "-b", "First text.", "--folder", "sub").exit_code == 0
    note = root / "notes" / "sub" / "X.md"
    note.write_text(note.read_text().replace("title: X\n", "title: Z\n"))
    (root / "notes" / "X.md").write_text("---\ntitle: Other\n---\n\nPrecious.\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=Someone", "-c", "user.email=s@example.org", "commit", "-q", "-m", "By hand")
    r = kb("restore", "Z", "1", "--title-too")
    assert r.exit_code == 0, r.stderr
    assert (root / "notes" / "X.md").read_text() == "---\ntitle: Other\n---\n\nPrecious.\n"
    assert "title: X\n" in note.read_text() and "First text." in note.read_text()
    assert git(root, "status", "--porcelain") == ""
