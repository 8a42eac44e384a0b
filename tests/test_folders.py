"""Notes people already have: a folder of Markdown at any depth (an Obsidian vault, a TIL repository), used
in place or imported, with nothing lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kb.notes import heading_title, inline_tags, parse_note

from .conftest import git, log_subjects

FORMATTING = """# Formatting

How headings look:

```markdown
# This is a heading 1
```

# References

- a book
"""

CONFIG = """Where the app keeps its settings.

```sh
# ~/.config/app.conf
cat ~/.config/app.conf
```
"""


def _commit_all(folder: Path, message: str, date: str) -> None:
    git(folder, "add", "-A")
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    import subprocess

    who = ["-c", "user.name=Someone", "-c", "user.email=s@example.org"]
    subprocess.run(
        ["git", "-C", str(folder), *who, "commit", "-qm", message], check=True, env=env, capture_output=True
    )


def make_vault(folder: Path, repo: bool = True) -> Path:
    """A vault as people have them: topic folders, an unrelated notes/ folder, headings inside code, late
    sections, the same file name in two folders, Obsidian's Attachments/, embeds and relative links."""
    files = {
        "postgres/vacuum-full.md": "# VACUUM FULL\n\nRewrites the whole table. #postgres/maintenance\n",
        "postgres/index.md": "# Postgres\n\nSee [vacuum](vacuum-full.md) and ![[diagram.png]].\n",
        "vim/index.md": "# Vim\n\nModal editing. See [pg](../postgres/vacuum-full.md#why).\n",
        "notes/formatting.md": FORMATTING,
        "notes/app-config.md": CONFIG,
        "dated.md": "---\ncreated-at: 2020-01-02T03:04:05Z\nupdated: 2020-02-03\n---\nA dated note.\n",
        "README.md": "Just a readme without a heading\n",
        "Attachments/diagram.png": "\x89PNG fake",
        ".obsidian/app.json": "{}",
        ".trash/old.md": "# Old\n",
    }
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if repo:
        git(folder.parent, "init", "-q", str(folder))
        _commit_all(folder, "First notes", "2021-03-04T05:06:07+00:00")
    return folder


def test_heading_is_a_title_only_on_the_first_line():
    assert heading_title("\n\n# Title here\n\ntext") == "Title here"
    assert heading_title("# Closed heading ##\n") == "Closed heading"
    assert heading_title(FORMATTING) == "Formatting"
    assert heading_title(CONFIG) is None
    assert heading_title("Intro\n\n# Later\n") is None
    assert heading_title("## Second level\n") is None
    assert heading_title("```\n# in code\n```\n") is None
    assert parse_note(CONFIG.encode()).title_for("notes/app-config.md") == "app-config"


def test_inline_tags_outside_code_and_headings():
    body = (
        "# Heading\n#tag-one and #nested/tag, not#this, not [[Note#Heading]], not https://x.org/#frag\n"
        "`#incode` #2024 #fff1\n```\n#fenced\n```\n    #indented-code\n"
    )
    assert inline_tags(body) == ("tag-one", "nested/tag", "fff1")
    assert inline_tags("> [!note]\n> ```css\n> color: #ff0000;\n> ```\n> #quoted\n") == ("quoted",)


def test_a_heading_that_repeats_the_title_makes_no_tags(kb, root):
    for title in ("#A", "Meeting #work"):
        assert kb("add", title).exit_code == 0  # kb writes `# TITLE` as the body's first line
        shown = json.loads(kb("show", title, "--json").stdout)
        assert shown["tags"] == [] and shown["body"].strip() == f"# {title}"
    assert json.loads(kb("tags", "--json").stdout)["tags"] == []
    # the heading is the title's source (no title in front matter): its tags count, as Obsidian reads them
    assert parse_note(b"# Meeting #work\n\ntext\n").all_tags == ("work",)
    for heading in (b"# Meeting #work ", b"#  Meeting #work", b"  # Meeting #work", b"# Meeting #work #"):
        repeated = b"---\ntitle: 'Meeting #work'\n---\n" + heading + b"\n"
        assert parse_note(repeated).all_tags == (), heading  # the same heading, however it is spaced
    # a heading other than the title is the body's own
    other = b"---\ntitle: Meeting\n---\n# Meeting #work\n"
    assert parse_note(other).all_tags == ("work",)
    assert parse_note(b"---\ntitle: 'Meeting #work'\ntags: [x]\n---\n# Meeting #work\n#later\n").all_tags == (
        "x",
        "later",
    )


def test_init_in_place_sees_every_note_and_commits_only_settings(kb, tmp_path):
    vault = make_vault(tmp_path / "vault")
    before = git(vault, "rev-parse", "HEAD").strip()
    r = kb("--kb", str(vault), "init")
    assert r.exit_code == 0, r.stderr
    assert "7 notes in 3 folders; history kept (1 commit)" in r.stderr
    # One commit, of kb's settings and an anchored ignore line, on top of the folder's own history.
    assert git(vault, "rev-parse", "HEAD~1").strip() == before
    changed = git(vault, "show", "--name-only", "--format=", "HEAD").split()
    assert changed == [".gitignore", "kb.toml"]
    assert (vault / ".gitignore").read_text() == "/index/\n"
    assert 'notes = "."' in (vault / "kb.toml").read_text()
    listed = {n["path"]: n for n in json.loads(kb("--kb", str(vault), "list", "--json").stdout)["notes"]}
    assert set(listed) == {
        "postgres/vacuum-full.md",
        "postgres/index.md",
        "vim/index.md",
        "notes/formatting.md",
        "notes/app-config.md",
        "dated.md",
        "README.md",
    }
    titles = {path: n["title"] for path, n in listed.items()}
    assert titles["notes/formatting.md"] == "Formatting"
    assert titles["notes/app-config.md"] == "app-config"
    assert titles["README.md"] == "README"
    assert titles["vim/index.md"] == "Vim"
    # Dates: other tools' keys, else the file's first and last commit.
    assert listed["dated.md"]["created"] == "2020-01-02T03:04:05.000Z"
    assert listed["dated.md"]["modified"] == "2020-02-03T00:00:00.000Z"
    assert listed["vim/index.md"]["created"] == "2021-03-04T05:06:07.000Z"
    assert listed["postgres/vacuum-full.md"]["tags"] == ["postgres/maintenance"]
    # Nothing of the user's files was rewritten.
    assert git(vault, "status", "--porcelain") == ""


def test_in_place_search_folders_and_paths(kb, tmp_path):
    vault = make_vault(tmp_path / "vault")
    assert kb("--kb", str(vault), "init").exit_code == 0
    r = kb("--kb", str(vault), "search", "rewrites", "-l")
    assert r.stdout.split("\n")[0] == "postgres/vacuum-full.md"
    r = kb("--kb", str(vault), "search", "folder:postgres", "-l")
    assert sorted(r.stdout.split()) == ["postgres/index.md", "postgres/vacuum-full.md"]
    r = kb("--kb", str(vault), "list", "--folder", "vim")
    assert r.stdout.strip().endswith("vim/index.md") and len(r.stdout.splitlines()) == 1
    assert kb("--kb", str(vault), "tags").stdout.splitlines() == ["postgres\t1", "postgres/maintenance\t1"]
    # NOTE as a path from the root; a file name shared by two folders is ambiguous and names both.
    r = kb("--kb", str(vault), "show", "vim/index.md", "--raw")
    assert r.stdout.startswith("# Vim")
    r = kb("--kb", str(vault), "show", "index.md")
    assert r.exit_code == 1 and "postgres/index.md" in r.stderr and "vim/index.md" in r.stderr
    assert kb("--kb", str(vault), "show", "app-config", "--raw").stdout == CONFIG


def test_writes_in_place_keep_folders_and_add_nothing_unasked(kb, tmp_path):
    vault = make_vault(tmp_path / "vault")
    kb("--kb", str(vault), "init")
    r = kb("--kb", str(vault), "add", "Autovacuum", "--folder", "postgres", "-b", "Tuning.")
    assert r.exit_code == 0, r.stderr
    # Like its neighbours: the heading gives the title, git the dates; no front matter.
    assert (vault / "postgres" / "Autovacuum.md").read_text() == "# Autovacuum\n\nTuning.\n"
    # Two notes may share a title in different folders; not in the same one.
    assert kb("--kb", str(vault), "add", "Autovacuum", "--folder", "vim", "-b", "x").exit_code == 0
    assert kb("--kb", str(vault), "add", "Autovacuum", "--folder", "postgres").exit_code == 1
    assert kb("--kb", str(vault), "add", "Sneaky", "--folder", "../outside", "-b", "x").exit_code == 2
    assert kb("--kb", str(vault), "add", "Sneaky", "--folder", ".obsidian", "-b", "x").exit_code == 2
    # A rename keeps the note in its folder and writes no title into a file that had none.
    r = kb("--kb", str(vault), "edit", "vim/index.md", "--title", "Vim basics")
    assert r.exit_code == 0, r.stderr
    renamed = vault / "vim" / "Vim basics.md"
    assert renamed.read_text() == "# Vim basics\n\nModal editing. See [pg](../postgres/vacuum-full.md#why).\n"
    # A note titled by its file name is renamed too; an edit adds no front matter to a plain file.
    r = kb("--kb", str(vault), "mv", "README", "Read me first")
    assert r.exit_code == 0 and "Renamed" in r.stderr, r.stderr
    assert (vault / "Read me first.md").read_text() == "Just a readme without a heading\n"
    assert kb("--kb", str(vault), "edit", "Read me first", "-a", "More.").exit_code == 0
    assert (vault / "Read me first.md").read_text() == "Just a readme without a heading\n\nMore.\n"
    # A note that has kb's `modified` key gets it updated.
    (vault / "dated.md").write_text("---\nmodified: '2020-01-01T00:00:00.000Z'\n---\nA dated note.\n")
    kb("--kb", str(vault), "edit", "dated.md", "-a", "x")
    assert "modified: '2026-01-02T03:04:05.678Z'" in (vault / "dated.md").read_text()
    # A move between folders keeps the bytes.
    before = (vault / "dated.md").read_bytes()
    r = kb("--kb", str(vault), "mv", "dated.md", "archive/")
    assert r.exit_code == 0, r.stderr
    assert (vault / "archive" / "dated.md").read_bytes() == before and not (vault / "dated.md").exists()
    assert log_subjects(vault)[0].startswith("Move: dated (dated.md -> archive/dated.md)")
    log = json.loads(kb("--kb", str(vault), "log", "archive/dated.md", "--json").stdout)
    assert len(log["revisions"]) == 4  # first commit, outside edit, edit, move: through the move
    assert git(vault, "status", "--porcelain") == ""


def test_settings_file_ignores_paths(kb, tmp_path):
    vault = make_vault(tmp_path / "vault", repo=False)
    (vault / "kb.toml").write_text('notes = "."\nignore = ["notes", "*.draft.md"]\n')
    (vault / "idea.draft.md").write_text("draft\n")
    paths = {n["path"] for n in json.loads(kb("--kb", str(vault), "list", "--json").stdout)["notes"]}
    assert paths == {"postgres/vacuum-full.md", "postgres/index.md", "vim/index.md", "dated.md", "README.md"}
    (vault / "kb.toml").write_text("notes = [")
    r = kb("--kb", str(vault), "list")
    assert r.exit_code == 2 and "kb.toml" in r.stderr and "Traceback" not in r.stderr


def test_notable_layout_is_kept_when_notes_is_all_there_is(kb, tmp_path):
    folder = tmp_path / "notable"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "A.md").write_text("---\ntitle: A\n---\n\nbody\n")
    (folder / "attachments").mkdir()
    (folder / "attachments" / "x.md").write_text("not a note\n")
    r = kb("--kb", str(folder), "init")
    assert r.exit_code == 0 and not (folder / "kb.toml").exists()
    assert [n["path"] for n in json.loads(kb("--kb", str(folder), "list", "--json").stdout)["notes"]] == [
        "notes/A.md"
    ]


def test_a_symlinked_notes_folder_leaving_the_root_is_refused(kb, tmp_path):
    elsewhere = tmp_path / "Documents"
    elsewhere.mkdir()
    (elsewhere / "secret.md").write_text("# Secret\n")
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "notes").symlink_to(elsewhere)
    for args in (("list",), ("search", "secret"), ("show", "Secret")):
        r = kb(*args)
        assert r.exit_code == 1 and "symbolic link" in r.stderr and "Secret" not in r.stdout


def test_a_merge_that_changed_a_note_is_a_revision(kb, tmp_path):
    vault = make_vault(tmp_path / "vault")
    note = vault / "vim" / "index.md"
    git(vault, "checkout", "-qb", "side")
    note.write_text(note.read_text() + "\nSide line.\n")
    _commit_all(vault, "Side edit", "2021-03-05T00:00:00+00:00")
    git(vault, "checkout", "-q", "-")
    note.write_text("Top line.\n\n" + note.read_text())
    _commit_all(vault, "Main edit", "2021-03-06T00:00:00+00:00")
    env_merge = ["-c", "user.name=S", "-c", "user.email=s@e", "merge", "-q", "--no-edit", "side"]
    git(vault, *env_merge)
    assert "Side line" in note.read_text() and "Top line" in note.read_text()
    kb("--kb", str(vault), "init")
    log = json.loads(kb("--kb", str(vault), "log", "vim/index.md", "--json").stdout)
    subjects = [r["message"] for r in log["revisions"]]
    assert len(subjects) == 4 and subjects[-1].startswith("Merge"), subjects
    last = kb("--kb", str(vault), "show", "vim/index.md", "--rev", "4", "--raw").stdout
    assert last == note.read_text()


def test_import_keeps_every_file_and_the_structure(kb, root, tmp_path):
    vault = make_vault(tmp_path / "vault")
    (vault / "vim" / "vacuum-full.md").write_text("# VACUUM FULL\n\nA different note, same name.\n")
    (vault / "unlinked.sh").write_text("echo hi\n")
    r = kb("import", str(vault), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["imported"] == 8 and data["skipped"] == 0 and data["attachments"] == 1
    assert data["left_out"] == [str(vault / "unlinked.sh")]
    for source in vault.rglob("*.md"):
        rel = source.relative_to(vault).as_posix()
        if rel.startswith("."):
            assert not (root / "notes" / rel).exists()
            continue
        copied = (root / "notes" / rel).read_bytes()
        # Every byte is kept; dates the file did not have are added in front matter.
        original = source.read_bytes()
        assert copied == original or copied.endswith(original.split(b"---\n", 2)[-1]), rel
    assert (root / "notes" / "Attachments" / "diagram.png").read_bytes() == b"\xc2\x89PNG fake"
    vim = (root / "notes" / "vim" / "index.md").read_text()
    assert "created: '2021-03-04T05:06:07.000Z'" in vim  # from the source's git history
    assert "](../postgres/vacuum-full.md#why)" in vim
    dated = (root / "notes" / "dated.md").read_text()
    assert "created:" not in dated and "modified:" not in dated  # its own date keys are kept as they are
    titles = [n["title"] for n in json.loads(kb("list", "--json", "--sort", "title").stdout)["notes"]]
    assert (
        titles.count("VACUUM FULL") == 2
        and "References" not in titles
        and "This is a heading 1" not in titles
    )
    again = json.loads(kb("import", str(vault), "--json").stdout)
    assert again["unchanged"] == 8 and again["imported"] == 0


def test_import_skips_loudly(kb, root, tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "ok.md").write_text("fine\n")
    (vault / "binary.md").write_bytes(b"\x00\x01\x02")
    (vault / "link.md").symlink_to(vault / "ok.md")
    r = kb("import", str(vault))
    assert r.exit_code == 1
    assert "skipped" in r.stderr and "binary.md" in r.stderr and "link.md" in r.stderr
    assert (root / "notes" / "ok.md").exists()


def test_import_with_history_brings_revisions_and_dates(kb, root, tmp_path):
    vault = make_vault(tmp_path / "vault")
    note = vault / "vim" / "index.md"
    note.write_text(note.read_text() + "\nMore.\n")
    _commit_all(vault, "More vim", "2021-04-01T00:00:00+00:00")
    (vault / "postgres" / "index.md").unlink()
    _commit_all(vault, "Drop index", "2021-05-01T00:00:00+00:00")
    r = kb("import", str(vault), "--history", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["history_revisions"] == 3 and data["imported"] == 6
    assert not (root / "notes" / "postgres" / "index.md").exists()
    log = json.loads(kb("log", "notes/vim/index.md", "--json").stdout)
    dates = [rev["date"][:10] for rev in log["revisions"]]
    assert dates == ["2021-03-04", "2021-04-01"]
    assert (root / "notes" / "vim" / "index.md").read_bytes() == note.read_bytes()
    deleted = kb("show", "notes/postgres/index.md", "--rev", "1", "--raw")
    assert deleted.exit_code == 0 and "See [vacuum]" in deleted.stdout
    head = git(root, "rev-parse", "HEAD")
    again = json.loads(kb("import", str(vault), "--history", "--json").stdout)
    assert again["history_revisions"] == 0 and again["unchanged"] == 6
    assert git(root, "rev-parse", "HEAD") == head


@pytest.mark.parametrize("layout", ["unrelated-notes-folder"])
def test_import_of_a_folder_with_a_notes_subfolder_is_not_taken_for_notable(kb, root, tmp_path, layout):
    vault = make_vault(tmp_path / "vault", repo=False)
    data = json.loads(kb("import", str(vault), "--json").stdout)
    assert data["imported"] == 7


def test_import_warns_of_what_it_cannot_read(kb, root, tmp_path):
    loose = tmp_path / "odd.md"
    loose.write_text("---\ntitle: [not, text]\ncreated: 2024-02-30\n---\n\n# Odd\n")
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "bad-date.md").write_text("---\nmodified: someday\n---\nbody\n")
    r = kb("import", str(loose), str(vault), "--json")
    assert r.exit_code == 0, r.stderr
    found = json.loads(r.stdout)["warnings"]
    assert any("odd.md" in w and "'title' is not text" in w for w in found)
    assert any("odd.md" in w and "'created' is not a valid date" in w for w in found)
    assert any("bad-date.md" in w and "'modified' is not a valid date" in w for w in found)
    r = kb("import", str(loose), str(vault))
    assert "Warning:" in r.stderr and "not a valid date" in r.stderr


def test_importing_again_never_overwrites_a_change_made_here(kb, root, tmp_path):
    vault = make_vault(tmp_path / "vault")
    assert kb("import", str(vault)).exit_code == 0
    assert kb("edit", "notes/vim/index.md", "-a", "Written in kb.").exit_code == 0
    (vault / "vim" / "index.md").write_text("# Vim\n\nChanged at the source.\n")
    (vault / "dated.md").write_text("---\ncreated-at: 2020-01-02T03:04:05Z\n---\nChanged too.\n")
    r = kb("import", str(vault), "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1
    skipped = {Path(i["source"]).name: i["reason"] for i in data["items"] if i["status"] == "skipped"}
    assert "changed here since it was imported" in skipped["index.md"]
    assert "Written in kb." in (root / "notes" / "vim" / "index.md").read_text()
    assert data["revised"] == 1 and (root / "notes" / "dated.md").read_text().endswith("Changed too.\n")


def test_an_import_into_a_pipe_says_its_summary_and_draws_no_progress(kb, root, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for n in range(60):  # enough for the progress callback to be called
        (source / f"n{n}.md").write_text(f"# N{n}\n")
    r = kb("import", str(source))
    assert r.exit_code == 0
    assert r.stderr.startswith("Imported into notes/: 60 new"), repr(r.stderr[:200])


def test_importing_a_changed_file_again_keeps_the_created_date_it_was_given(kb, root, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    note = source / "Plain.md"
    note.write_text("# Plain\n\nNo dates of its own.\n")
    os.utime(note, (1_600_000_000, 1_600_000_000))  # 2020-09-13
    assert kb("import", str(source)).exit_code == 0
    first = (root / "notes" / "Plain.md").read_text()
    assert "created: '2020-09-13T12:26:40.000Z'" in first, first
    with open(note, "a") as f:  # edited at the source: its times move
        f.write("A line more.\n")
    r = kb("import", str(source), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["revised"] == 1, r.stdout
    again = (root / "notes" / "Plain.md").read_text()
    assert "A line more." in again
    assert "created: '2020-09-13T12:26:40.000Z'" in again, again
    assert "modified: '2020-09-13" not in again


def test_a_folder_whose_notes_notable_did_not_write_keeps_its_structure(kb, root, tmp_path):
    source = tmp_path / "proj"
    for sub, text in (("x", "monday"), ("y", "tuesday")):
        (source / "notes" / sub).mkdir(parents=True)
        (source / "notes" / sub / "meeting.md").write_text(f"# Meeting\n\n{text}\n")
    r = kb("import", str(source), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["imported"] == 2
    assert "tuesday" in (root / "notes" / "notes" / "y" / "meeting.md").read_text()
    assert "monday" in (root / "notes" / "notes" / "x" / "meeting.md").read_text()


def test_init_of_a_plain_folder_keeps_the_files_dates_and_attachments(kb, tmp_path):
    folder = make_vault(tmp_path / "plain", repo=False)
    old = 1514862245  # 2018-01-02T03:04:05Z
    for path in folder.rglob("*.md"):
        os.utime(path, (old, old))
    assert kb("--kb", str(folder), "init").exit_code == 0
    committed = git(folder, "ls-files").split()
    assert "Attachments/diagram.png" in committed and ".obsidian/app.json" not in committed
    listed = {n["path"]: n for n in json.loads(kb("--kb", str(folder), "list", "--json").stdout)["notes"]}
    assert listed["vim/index.md"]["modified"] == "2018-01-02T03:04:05.000Z"
    shown = json.loads(kb("--kb", str(folder), "show", "vim/index.md", "--json").stdout)
    assert shown["modified"] == "2018-01-02T03:04:05.000Z"
    assert listed["dated.md"]["created"] == "2020-01-02T03:04:05.000Z"


def test_settings_change_reaches_search_and_list(kb, tmp_path):
    vault = make_vault(tmp_path / "vault")
    kb("--kb", str(vault), "init")
    assert kb("--kb", str(vault), "search", "folder:notes", "-l").stdout.split() != []
    (vault / "kb.toml").write_text('notes = "."\nignore = ["notes"]\n')
    r = kb("--kb", str(vault), "search", "folder:notes", "-l")
    assert r.exit_code == 1 and r.stdout == ""
    assert kb("--kb", str(vault), "list", "--folder", "NOTES").stdout == ""
    r = kb("--kb", str(vault), "list", "--folder", "Postgres/")
    assert len(r.stdout.splitlines()) == 2
    r = kb("--kb", str(vault), "show", "vim/index", "--raw")  # a path without its .md
    assert r.exit_code == 0 and r.stdout.startswith("# Vim")
    log = json.loads(kb("--kb", str(vault), "log", "vim/index.md", "--json").stdout)
    assert log["title"] == "Vim"


def test_head_of_a_huge_note_never_cuts_a_character():
    from kb.notes import head_of

    raw = ("é" * 10).encode()
    for limit in range(1, 21):
        head = head_of(raw, limit)
        assert head.decode("utf-8") == "é" * (len(head) // 2) and len(head) <= limit
    assert head_of(b"short", 100) == b"short"


def test_dates_added_on_import_follow_the_files_line_endings(kb, root, tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "crlf.md").write_bytes(b"\xef\xbb\xbf# Windows\r\n\r\nText.\r\n")
    assert kb("import", str(vault)).exit_code == 0
    data = (root / "notes" / "crlf.md").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf---\r\ncreated: '") and data.endswith(
        b"---\r\n\r\n# Windows\r\n\r\nText.\r\n"
    )
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_a_file_that_is_not_a_note_is_never_taken_for_one(kb, tmp_path):
    vault = make_vault(tmp_path / "vault")
    kb("--kb", str(vault), "init")
    for args in (("edit", "Attachments/diagram.png", "-a", "x"), ("rm", "Attachments/diagram.png")):
        r = kb("--kb", str(vault), *args)
        assert r.exit_code == 2 and "is not a note" in r.stderr
    assert (vault / "Attachments" / "diagram.png").read_text() == "\x89PNG fake"
    assert git(vault, "status", "--porcelain") == ""
    outside = tmp_path / "outside.txt"  # a file out of the knowledge base is no file of it either
    outside.write_text("x")
    r = kb("--kb", str(vault), "show", str(outside))
    assert r.exit_code == 1 and "no note matches" in r.stderr and "kb mv" not in r.stderr, r.stderr


def test_a_folder_replaced_by_a_link_loses_its_notes_and_blocks_no_write(kb, root):
    assert kb("add", "First", "-b", "alpha").exit_code == 0
    (root / "notes" / "sub").mkdir()
    (root / "notes" / "other").mkdir()
    (root / "notes" / "sub" / "c.md").write_text("# Sub note\n\nsubword\n")
    (root / "notes" / "other" / "c.md").write_text("# Other note\n\notherword\n")
    assert kb("add", "Second", "-b", "beta").exit_code == 0  # both committed as outside edits
    assert kb("search", "subword", "-l").stdout == "notes/sub/c.md\n"
    for child in (root / "notes" / "sub").iterdir():
        child.unlink()
    (root / "notes" / "sub").rmdir()
    os.symlink("other", root / "notes" / "sub")  # the same file name is beyond the link
    r = kb("search", "subword", "-l")
    assert (r.exit_code, r.stdout) == (1, "")
    r = kb("add", "Third", "-b", "gamma")
    assert r.exit_code == 0, r.stderr
    assert "notes/sub/c.md" not in git(root, "ls-files")
    assert kb("reindex").exit_code == 0
    assert kb("search", "otherword", "-l").stdout == "notes/other/c.md\n"
    assert kb("search", "subword", "-l").exit_code == 1


def test_importing_a_file_a_note_of_its_own_has_the_name_of_says_so(kb, tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "A.md").write_text("# A\n\nalpha\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "A.md").write_text("# A\n\nanother alpha\n")
    (source / "C.md").write_text("# C\n\ngamma\n")
    assert kb("--kb", str(vault), "init").exit_code == 0
    r = kb("--kb", str(vault), "import", str(source), "--json")
    assert r.exit_code == 1
    [skipped] = [i for i in json.loads(r.stdout)["items"] if i["status"] == "skipped"]
    assert skipped["reason"] == "A.md is already here, with other text, not imported; kb's version is kept"
    assert (vault / "A.md").read_text() == "# A\n\nalpha\n" and (vault / "C.md").exists()


def test_a_folder_differing_only_in_case_from_one_there_is_refused(kb, root):
    """macOS and Windows ignore case in names: `Programming/` beside `programming/` would be one folder
    there, and a clone would mix the two."""
    assert kb("add", "Py", "-b", "x", "--folder", "programming").exit_code == 0
    for args in (
        ["add", "Rust", "-b", "x", "--folder", "Programming"],
        ["add", "Go", "-b", "x", "--folder", "PROGRAMMING/sub"],
        ["mv", "Py", "Programming/"],
        ["mv", "Py", "Programming/other.md"],
    ):
        r = kb(*args)
        assert r.exit_code == 2, (args, r.stderr)
        assert r.stderr.startswith(
            "Error: a folder 'programming' is there already, its name differing only in case"
        )
    assert sorted(p.name for p in (root / "notes").iterdir()) == ["programming"]
    assert (
        kb("add", "Go", "-b", "x", "--folder", "programming/Sub").exit_code == 0
    )  # a new folder inside: fine
    assert kb("mv", "Py", "programming/sub/").exit_code == 2  # but not its twin
    assert kb("mv", "Py", "programming/Sub/").exit_code == 0
