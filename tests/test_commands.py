"""Each command's happy path through the real CLI on a real git repository."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import NOW, git, log_subjects, write_editor


def note_path(root: Path, title: str) -> Path:
    return root / "notes" / f"{title}.md"


def test_add_writes_notable_front_matter_and_one_commit(kb, root):
    r = kb("add", "Machine Learning", "-t", "Notebooks/Skills/Tech", "-b", "Some text.")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "Added: Machine Learning" in r.stderr
    text = note_path(root, "Machine Learning").read_text()
    assert text == (
        "---\n"
        "tags: [Notebooks/Skills/Tech]\n"
        "title: Machine Learning\n"
        f"created: '{NOW}'\n"
        f"modified: '{NOW}'\n"
        "---\n\n"
        "# Machine Learning\n\n"
        "Some text.\n"
    )
    assert log_subjects(root) == ["Add: Machine Learning", "Initialize knowledge base"]
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["notes/Machine", "Learning.md"]
    assert (
        git(root, "log", "-1", "--format=%an <%ae>|%aI").strip()
        == "kb <kb@localhost>|2026-01-02T03:04:05+00:00"
    )
    assert (root / ".gitignore").read_text() == "/index/\n"


def test_add_without_tags_omits_the_key_and_keeps_a_given_heading(kb, root):
    assert kb("add", "Plain", input="# Plain heading\n\nbody\n").exit_code == 0
    text = note_path(root, "Plain").read_text()
    assert "tags:" not in text
    assert text.endswith("---\n\n# Plain heading\n\nbody\n")


def test_add_body_from_stdin_is_kept_byte_for_byte(kb, root):
    body = "line one\r\nline two\twith tab â€“ odd\n\n\n"
    assert kb("add", "Stdin", input=body.encode()).exit_code == 0
    assert note_path(root, "Stdin").read_bytes().endswith(("# Stdin\n\n" + body).encode())


def test_add_uses_the_configured_git_identity(kb, root):
    assert kb("init").exit_code == 0
    git(root, "config", "user.name", "Ada Lovelace")
    git(root, "config", "user.email", "ada@example.org")
    assert kb("add", "Identity", "-b", "x").exit_code == 0
    assert git(root, "log", "-1", "--format=%an <%ae>").strip() == "Ada Lovelace <ada@example.org>"


def test_add_existing_title_is_an_error_naming_the_note(kb, root):
    kb("add", "Machine Learning", "-b", "x")
    before = git(root, "rev-parse", "HEAD")
    r = kb("add", "machine learning", "-b", "y")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1
    assert "'Machine Learning' already exists (notes/Machine Learning.md)" in r.stderr
    assert git(root, "rev-parse", "HEAD") == before


def test_add_with_editor(kb, root, tmp_path):
    editor = write_editor(tmp_path, 'printf "typed in the editor\\n" >> "$1"')
    r = kb("add", "From Editor", "-t", "x", "--editor", env={"EDITOR": editor})
    assert r.exit_code == 0, r.stderr
    assert note_path(root, "From Editor").read_text().endswith("# From Editor\n\ntyped in the editor\n")


def test_add_with_editor_that_changes_nothing_saves_nothing(kb, root, tmp_path):
    editor = write_editor(tmp_path, "true")
    r = kb("add", "Nothing", "--editor", env={"EDITOR": editor})
    assert r.exit_code == 1
    assert "nothing saved" in r.stderr
    assert not note_path(root, "Nothing").exists()


def test_editor_with_arguments_is_split_like_a_shell(kb, root, tmp_path):
    editor = write_editor(tmp_path, 'printf "%s\\n" "$1" >> "$2"')
    r = kb("add", "Args", "--editor", env={"VISUAL": f"{editor} 'two words'"})
    assert r.exit_code == 0, r.stderr
    assert note_path(root, "Args").read_text().endswith("two words\n")


def test_editor_failure_keeps_the_typed_text(kb, root, tmp_path):
    editor = write_editor(tmp_path, 'printf "precious words\\n" >> "$1"; exit 3')
    r = kb("add", "Crash", "--editor", env={"EDITOR": editor})
    assert r.exit_code == 1
    assert "exited with status 3" in r.stderr
    kept = Path(r.stderr.strip().rsplit(" ", 1)[-1])
    assert kept.read_text().endswith("precious words\n")
    assert not note_path(root, "Crash").exists()


def test_no_editor_is_a_usage_error(kb, root, tmp_path):
    bin_dir = tmp_path / "bin"  # git, and no editor kb would fall back to
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "git")
    r = kb("add", "No Editor", "--editor", env={"PATH": str(bin_dir)})
    assert r.exit_code == 2
    assert "set $EDITOR" in r.stderr


def test_edit_append_and_body_and_tags(kb, root, monkeypatch):
    kb("add", "Note", "-t", "a", "-b", "first")
    monkeypatch.setenv("KB_NOW", "2026-02-03T04:05:06.007Z")
    assert kb("edit", "Note", "-a", "second").exit_code == 0
    text = note_path(root, "Note").read_text()
    assert text.endswith("# Note\n\nfirst\n\nsecond\n")
    assert "modified: '2026-02-03T04:05:06.007Z'" in text
    assert f"created: '{NOW}'" in text
    assert kb("edit", "Note", "-t", "b/c", "--untag", "a").exit_code == 0
    assert "tags: [b/c]\n" in note_path(root, "Note").read_text()
    assert kb("edit", "Note", "-b", "replaced").exit_code == 0
    assert note_path(root, "Note").read_text().endswith("---\n\nreplaced\n")
    assert kb("edit", "Note", "--untag", "b/c").exit_code == 0
    assert "tags:" not in note_path(root, "Note").read_text()
    assert log_subjects(root)[:4] == ["Edit: Note"] * 4
    assert git(root, "log", "-1", "--format=%aI").strip() == "2026-02-03T04:05:06+00:00"


def test_edit_body_from_stdin(kb, root):
    kb("add", "Note", "-b", "first")
    assert kb("edit", "Note", input="from stdin\n").exit_code == 0
    assert note_path(root, "Note").read_text().endswith("---\n\nfrom stdin\n")


def test_edit_with_empty_stdin_refuses(kb, root):
    kb("add", "Note", "-b", "first")
    r = kb("edit", "Note", input="")
    assert r.exit_code == 2
    assert "stdin was empty" in r.stderr
    assert note_path(root, "Note").read_text().endswith("first\n")
    blank = kb("edit", "Note", input=" \n\n")
    assert blank.exit_code == 2 and "stdin was blank" in blank.stderr
    assert note_path(root, "Note").read_text().endswith("first\n")
    missing = kb("edit", "Nothing like it", input="")  # the wrong NOTE is the first thing to say
    assert missing.exit_code == 1 and missing.stderr == "Error: no note matches 'Nothing like it'\n"


def test_edit_that_changes_nothing_makes_no_commit(kb, root, tmp_path, monkeypatch):
    kb("add", "Note", "-t", "a", "-b", "first")
    before = note_path(root, "Note").read_bytes()
    head = git(root, "rev-parse", "HEAD")
    monkeypatch.setenv("KB_NOW", "2030-01-01T00:00:00.000Z")
    for args in (["-t", "a"], ["-b", "# Note\n\nfirst"], ["--title", "Note"]):
        r = kb("edit", "Note", *args)
        assert r.exit_code == 0 and "No changes" in r.stderr
    r = kb("edit", "Note", "--editor", env={"EDITOR": write_editor(tmp_path, "true")})
    assert r.exit_code == 0 and "No changes" in r.stderr
    assert note_path(root, "Note").read_bytes() == before
    assert git(root, "rev-parse", "HEAD") == head


def test_rename_moves_the_file_updates_heading_and_records_it(kb, root):
    kb("add", "Old Name", "-b", "text")
    r = kb("edit", "Old Name", "--title", "New/Name")
    assert r.exit_code == 0, r.stderr
    assert not note_path(root, "Old Name").exists()
    new = root / "notes" / "New∕Name.md"
    text = new.read_text()
    assert "title: New/Name\n" in text and "# New/Name\n\ntext\n" in text
    assert log_subjects(root)[0] == "Rename: Old Name -> New/Name"
    assert "Kb-Renamed-From: notes/Old Name.md" in git(root, "log", "-1", "--format=%B")
    assert git(root, "status", "--porcelain") == ""
    assert kb("mv", "New/Name", "Third").exit_code == 0
    assert note_path(root, "Third").exists() and not new.exists()


def test_rename_onto_an_existing_title_is_refused(kb, root):
    kb("add", "One", "-b", "1")
    kb("add", "Two", "-b", "2")
    r = kb("mv", "One", "TWO")
    assert r.exit_code == 1 and "'Two' already exists" in r.stderr
    assert note_path(root, "One").exists()


def test_case_only_rename(kb, root):
    kb("add", "shouting", "-b", "x")
    assert kb("mv", "shouting", "SHOUTING").exit_code == 0
    assert [p.name for p in (root / "notes").iterdir()] == ["SHOUTING.md"]
    assert git(root, "status", "--porcelain") == ""


def test_show_raw_json_and_piped(kb, root):
    kb("add", "Shown", "-t", "x/y", "-b", "**bold** body")
    r = kb("show", "Shown")
    assert r.exit_code == 0
    assert r.stdout_bytes == note_path(root, "Shown").read_bytes()
    assert kb("show", "Shown", "--raw").stdout_bytes == note_path(root, "Shown").read_bytes()
    data = json.loads(kb("show", "Shown", "--json").stdout)
    assert data == {
        "version": 1,
        "title": "Shown",
        "path": "notes/Shown.md",
        "tags": ["x/y"],
        "created": NOW,
        "modified": NOW,
        "problem": None,
        "warnings": [],
        "body": "\n# Shown\n\n**bold** body\n",
        "extra": {},
    }


def test_list_sorting_filtering_and_json(kb, root, monkeypatch):
    for i, (title, tag) in enumerate([("beta", "Work/Projects"), ("Alpha", "Home"), ("gamma", "Work")]):
        monkeypatch.setenv("KB_NOW", f"2026-01-0{i + 1}T00:00:00.000Z")
        kb("add", title, "-t", tag, "-b", "x")
    titles = [line.split("\t")[1] for line in kb("list").stdout.splitlines()]
    assert titles == ["gamma", "Alpha", "beta"]
    titles = [line.split("\t")[1] for line in kb("list", "--sort", "title").stdout.splitlines()]
    assert titles == ["Alpha", "beta", "gamma"]
    titles = [line.split("\t")[1] for line in kb("list", "-t", "Work").stdout.splitlines()]
    assert titles == ["gamma", "beta"]
    for any_case in ("work", "WORK/projects"):  # as search's tag: field reads it
        listed = [line.split("\t")[1] for line in kb("list", "-t", any_case).stdout.splitlines()]
        assert listed == (["gamma", "beta"] if any_case == "work" else ["beta"])
    assert [line.split("\t")[1] for line in kb("list", "-t", "Wor").stdout.splitlines()] == []
    data = json.loads(kb("list", "--json", "--sort", "created").stdout)
    assert [n["title"] for n in data["notes"]] == ["gamma", "Alpha", "beta"]
    assert set(data["notes"][0]) == {"title", "path", "tags", "created", "modified", "problem", "warnings"}
    assert kb("list", "--sort", "size").exit_code == 2


def test_list_on_a_knowledge_base_that_does_not_exist_yet(kb, root):
    r = kb("list")  # an error naming the folder (a mistyped --kb is not an empty knowledge base)
    assert r.exit_code == 1 and r.stdout == "" and str(root) in r.stderr
    assert not root.exists()


def test_tags_count_children_under_parents(kb):
    kb("add", "A", "-t", "Notebooks/Skills/Tech", "-b", "x")
    kb("add", "B", "-t", "Notebooks/Skills", "-t", "Notebooks/Skills/Tech", "-b", "x")
    kb("add", "C", "-t", "Other", "-b", "x")
    data = json.loads(kb("tags", "--json").stdout)
    assert data["tags"] == [
        {"tag": "Notebooks", "count": 2},
        {"tag": "Notebooks/Skills", "count": 2},
        {"tag": "Notebooks/Skills/Tech", "count": 2},
        {"tag": "Other", "count": 1},
    ]
    assert kb("tags").stdout.splitlines()[0] == "Notebooks\t2"


def test_a_tag_no_note_has_is_said_with_the_closest_and_a_hash_is_read_as_kb_shows_tags(kb):
    kb("add", "A", "-t", "Notebooks/Skills/Tech", "-b", "words here")
    kb("add", "C", "-t", "Other", "-b", "words there")
    for command in (["list"], ["search", "words"]):
        r = kb(*command, "-t", "Noteboks/skils")
        assert r.stdout == "" or "No notes match" in r.stdout
        assert r.exit_code == 1, command  # a mistake, as grep's no match
        assert "no note has the tag 'Noteboks/skils'; did you mean" in r.stderr
        assert "'notebooks/skills'?" in r.stderr.lower()
        assert "did you mean" not in kb(*command, "-t", "zzz").stderr
        shown = kb(*command, "-t", "#Other")  # as kb list and kb search show tags
        assert shown.exit_code == 0 and "notes/A.md" not in shown.stdout and "notes/C.md" in shown.stdout
        assert "no note has" not in shown.stderr
    assert kb("list", "-t", "Other", "--folder", "notes").exit_code == 0
    missing = kb("list", "--folder", "nowhere", "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["notes"] == []
    assert "no notes in a folder 'nowhere'" in missing.stderr
    assert kb("list", "--orphans", "-t", "Other").exit_code == 0  # a filter that leaves none is no mistake
    for command in (["list"], ["search", "words"]):  # click would keep the last -t and drop the first
        twice = kb(*command, "-t", "nosuch", "-t", "Other")
        assert twice.exit_code == 2 and "-t is given 2 times" in twice.stderr and twice.stdout == ""
    kb("add", "Linker", "-b", "see [[C]]", "--folder", "sub")
    left = kb("list", "--folder", "sub", "--links-to", "A")  # the folder is there: no note in it links to A
    assert left.exit_code == 0 and left.stdout == "" and left.stderr == ""
    assert kb("search", "tag:#other", "-l").stdout == "notes/C.md\n"  # as Obsidian writes it
    assert kb("add", "D", "-t", "#Other", "-b", "x").exit_code == 0  # the tag Other, as kb shows it
    assert kb("tags").stdout.splitlines()[-1] == "Other\t2"
    for command in (["add", "E", "-t", "#", "-b", "x"], ["list", "-t", ""], ["search", "words", "-t", ""]):
        r = kb(*command)
        assert r.exit_code == 2 and r.stderr.startswith("Error: invalid tag"), (command, r.stderr)


def test_rm_is_a_recoverable_revision(kb, root):
    kb("add", "Doomed", "-b", "keep me")
    content = note_path(root, "Doomed").read_bytes()
    r = kb("rm", "Doomed")
    assert r.exit_code == 0 and "stays in the history" in r.stderr
    assert not note_path(root, "Doomed").exists()
    assert log_subjects(root)[0] == "Delete: Doomed"
    assert git(root, "show", "HEAD~1:notes/Doomed.md").encode() == content


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("Machine Learning", "Machine Learning"),
        ("machine learning", "Machine Learning"),
        ("machine l", "Machine Learning"),
        ("notes/Machine Learning.md", "Machine Learning"),
        ("Machine Learning.md", "Machine Learning"),
        ("Machine", "Machine"),
    ],
)
def test_note_resolution(kb, ref, expected):
    kb("add", "Machine Learning", "-b", "x")
    kb("add", "Machine", "-b", "x")
    kb("add", "Deep Learning", "-b", "x")
    assert json.loads(kb("show", ref, "--json").stdout)["title"] == expected


def test_ambiguous_and_unknown_notes_list_candidates(kb):
    kb("add", "Deep Learning", "-b", "x")
    kb("add", "Deep Sea", "-b", "x")
    r = kb("show", "deep")
    assert r.exit_code == 1
    assert "matches 2 notes" in r.stderr and "'Deep Learning'" in r.stderr and "'Deep Sea'" in r.stderr
    r = kb("show", "Deep Lerning")
    assert r.exit_code == 1
    assert "no note matches 'Deep Lerning'; did you mean: 'Deep Learning'" in r.stderr
    kb("add", "Café Crème Brûlée Recipes", "-b", "x")
    r = kb("show", "cafe  creme brulee   recipes")  # accents and spaces as typed on any keyboard
    assert r.exit_code == 1 and "did you mean: 'Café Crème Brûlée Recipes'" in r.stderr


def test_did_you_mean_ranks_the_closest_of_many_long_titles():
    from kb.service.lookup import close_titles

    titles = [f"Meeting notes about the quarterly planning of team {n}" for n in range(3000)]
    titles.append("Meeting notes about the quarterly planing of team 77 (draft)")
    typed = "Meeting notes about the quarterly planing of team 77 (draft"
    assert close_titles(typed, titles)[0] == titles[-1]
    assert close_titles("Meeting notes about the quarterly planning of team 1234", titles)[0] == titles[1234]
    assert close_titles("zzzz", titles) == []


def test_init_is_idempotent_and_adopts_a_notable_folder(kb, tmp_path):
    notable = tmp_path / "notable"
    (notable / "notes").mkdir(parents=True)
    (notable / "notes" / "Existing.md").write_text("---\ntitle: Existing\n---\n\nold note\n")
    (notable / "attachments").mkdir()
    (notable / "attachments" / "pic.png").write_bytes(b"\x89PNG")
    assert kb("init", str(notable)).exit_code == 0
    assert log_subjects(notable) == ["Initialize knowledge base with 1 existing note"]
    assert sorted(git(notable, "ls-files").split()) == [
        ".gitignore",
        "attachments/pic.png",
        "notes/Existing.md",
    ]
    assert kb("init", str(notable)).exit_code == 0
    assert log_subjects(notable) == ["Initialize knowledge base with 1 existing note"]
    assert (notable / "notes" / "Existing.md").read_text() == "---\ntitle: Existing\n---\n\nold note\n"


def test_a_notable_folder_is_used_in_place_by_the_first_write(kb, tmp_path):
    notable = tmp_path / "notable"
    (notable / "notes").mkdir(parents=True)
    (notable / "notes" / "Existing.md").write_text("---\ntitle: Existing\n---\n\nold\n")
    assert kb("--kb", str(notable), "add", "New", "-b", "x").exit_code == 0
    assert log_subjects(notable) == ["Add: New", "Initialize knowledge base with 1 existing note"]


def test_existing_gitignore_gains_index_once(kb, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / ".gitignore").write_text("*.tmp")
    assert kb("--kb", str(folder), "init").exit_code == 0
    assert (folder / ".gitignore").read_text() == "*.tmp\n/index/\n"
    kb("--kb", str(folder), "init")
    assert (folder / ".gitignore").read_text() == "*.tmp\n/index/\n"


def test_a_non_empty_folder_that_is_not_a_kb_is_not_taken_over_implicitly(kb, tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "taxes.pdf").write_bytes(b"%PDF")
    r = kb("--kb", str(folder), "add", "X", "-b", "x")
    assert r.exit_code == 1 and "kb init" in r.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["taxes.pdf"]


def test_outside_edits_are_committed_first_as_their_own_revision(kb, root):
    kb("add", "One", "-b", "1")
    kb("add", "Two", "-b", "2")
    path = note_path(root, "One")
    path.write_text(path.read_text() + "edited in another editor\n")
    (root / "notes" / "Dropped.md").write_text("# Dropped in by a script\n")
    r = kb("edit", "Two", "-a", "more")
    assert r.exit_code == 0
    assert "Committed changes made outside kb first" in r.stderr
    assert log_subjects(root)[:2] == ["Edit: Two", "External edit: Dropped, One"]
    assert git(root, "status", "--porcelain") == ""


def test_kb_option_beats_environment(kb, tmp_path):
    other = tmp_path / "other"
    assert kb("--kb", str(other), "add", "Elsewhere", "-b", "x").exit_code == 0
    assert (other / "notes" / "Elsewhere.md").exists()
    assert not (tmp_path / "kb").exists()


def test_every_command_has_help(kb):
    from typer.main import get_command

    from kb.cli import app

    names = sorted(get_command(app).commands)  # type: ignore[attr-defined]
    assert {"init", "add", "edit", "show", "list", "tags", "rm", "mv"} <= set(names)
    for name in names:
        r = kb(name, "--help")
        assert r.exit_code == 0
        assert "Usage" in r.stdout and len(r.stdout) > 100


def test_version(kb):
    assert kb("--version").stdout.startswith("kb ")


def test_a_limit_below_one_is_a_usage_error_everywhere(kb):
    assert kb("add", "Limit", "-b", "word").exit_code == 0
    for args in (["log", "-n", "0"], ["log", "Limit", "-n", "0"], ["search", "word", "-n", "0"]):
        r = kb(*args)
        assert (r.exit_code, r.stderr) == (2, "Error: -n must be at least 1\n"), args


def test_a_named_command_runs_alone_as_in_the_whole_app():
    """The cold path builds only the command it runs (cli.app_for): its help and its usage errors are the
    same as the whole app's; anything that needs the other commands gets the whole app."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from kb import cli

    commands = get_command(cli.app).commands  # type: ignore[attr-defined]
    names = sorted(n for n in commands if n not in ("server", "help"))
    assert "search" in names and "list" in names
    runner = CliRunner()
    for name in names:
        for args in ([name, "--help"], [name, "--no-such-option"], ["--kb", "/nonexistent", name, "-h"]):
            alone = cli.app_for(args)
            assert alone is not cli.app and len(alone.registered_commands) == 1
            whole = runner.invoke(cli.app, args)
            mine = runner.invoke(alone, args)
            assert (mine.exit_code, mine.stdout, mine.stderr) == (whole.exit_code, whole.stdout, whole.stderr)
    wholes = (
        [],
        ["--help"],
        ["--version"],
        ["serch", "x"],
        ["server", "status"],
        ["--kb"],
        ["--debug"],
        ["help"],
    )
    for args in (*wholes, ["help", "edit"]):
        assert cli.app_for(args) is cli.app
