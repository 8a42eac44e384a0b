"""Renames keep links: kb mv and kb edit --title rewrite every link to the note, in the same revision, each
in its own form; moving a note between folders keeps relative links working both ways."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.links import Vault, note_links
from kb.notes import parse_note

from .conftest import NOW, git, log_subjects
from .test_link_commands import write_vault

LINKER = (
    "---\n"
    "title: Linker\n"
    "tags: [a]\n"
    "created: '2021-01-01T00:00:00.000Z'\n"
    "modified: '2021-01-01T00:00:00.000Z'\n"
    "---\n\n"
    "See [[Old Note]], [[old note|alias]], [[Old Note#Heading]] and [[Old Note#^block|b]].\n"
    "Embedded: ![[Old Note]].  `[[Old Note]]` stays (code).\r\n"
    'Markdown: [t](Old%20Note.md#sec), [u](<Old Note.md>), [v](./Old%20Note.md "title").\n'
    "```\n[[Old Note]]\n```\n"
    "Other: [[Elsewhere]] [w](https://example.org/Old%20Note.md)\n"
)
PLAIN = "No front matter here.\n\nA link: [[Old Note]]\n"
DEEP = "# Deep\n\n[up](../Old%20Note.md) and [root](/Old%20Note.md) and [[sub/deep]]\n"


@pytest.fixture
def vault(root: Path, kb) -> Path:
    write_vault(
        root,
        {
            "Old Note.md": "# Old Note\n\nSelf: [[Old Note#Heading]]. Out: [d](sub/deep.md)\n",
            "Linker.md": LINKER,
            "plain.md": PLAIN,
            "sub/deep.md": DEEP,
            "Elsewhere.md": "# Elsewhere\n",
        },
    )
    assert kb("init").exit_code == 0
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*.md")
        if ".git" not in p.parts and p.relative_to(root).parts[0] != "index"
    }


def test_rename_rewrites_every_link_in_its_form(vault, kb):
    before = _files(vault)
    out = kb("mv", "Old Note", "New Name")
    assert out.exit_code == 0, out.stderr
    assert "12 links in 4 notes updated" in out.stderr
    after = _files(vault)
    modified = f"modified: '{NOW}'"
    assert (
        after["Linker.md"]
        == (
            LINKER.replace("Old Note", "New Name")
            .replace("Old%20Note", "New%20Name")
            .replace("[[old note|alias]]", "[[New Name|alias]]")
            .replace("`[[New Name]]` stays", "`[[Old Note]]` stays")
            .replace("```\n[[New Name]]\n```", "```\n[[Old Note]]\n```")
            .replace("https://example.org/New%20Name.md", "https://example.org/Old%20Note.md")
            .replace("modified: '2021-01-01T00:00:00.000Z'", modified)
        ).encode()
    )
    assert after["plain.md"] == PLAIN.replace("Old Note", "New Name").encode()  # no front matter added
    assert after["sub/deep.md"] == DEEP.replace("Old%20Note", "New%20Name").encode()
    assert after["Elsewhere.md"] == before["Elsewhere.md"]
    assert "Old Note.md" not in after
    assert b"Self: [[New Name#Heading]]. Out: [d](sub/deep.md)" in after["New Name.md"]
    # one revision holds the rename and every rewrite
    assert log_subjects(vault)[0] == "Rename: Old Note -> New Name"
    changed = git(vault, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(c for c in changed if c) == [
        "Linker.md",
        "New Name.md",
        "Old Note.md",
        "plain.md",
        "sub/deep.md",
    ]
    assert "12 links in 4 notes updated" in git(vault, "log", "-1", "--format=%B")
    assert git(vault, "status", "--porcelain") == ""
    backlinks = kb("backlinks", "New Name").stdout.splitlines()
    assert len(backlinks) == 12


def test_edit_title_does_the_same_and_no_links_skips(vault, kb):
    assert kb("edit", "Old Note", "--title", "Renamed").exit_code == 0
    assert b"[[Renamed|alias]]" in (vault / "Linker.md").read_bytes()
    before = _files(vault)
    out = kb("mv", "Renamed", "Again", "--no-links")
    assert out.exit_code == 0 and "updated" not in out.stderr
    after = _files(vault)
    assert after["Linker.md"] == before["Linker.md"]
    assert kb("backlinks", "Again").stdout == ""


def test_moving_between_folders_rewrites_relative_links_both_ways(vault, kb):
    out = kb("mv", "sub/deep.md", "other/place/")
    assert out.exit_code == 0, out.stderr
    deep = (vault / "other/place/deep.md").read_text()
    assert deep == DEEP.replace("../Old%20Note.md", "../../Old%20Note.md").replace(
        "[[sub/deep]]", "[[other/place/deep]]"
    )
    assert "[d](other/place/deep.md)" in (vault / "Old Note.md").read_text()
    assert kb("links", "other/place/deep.md").stdout.count("dead") == 0
    moved = kb("mv", "Old Note", "sub/")
    assert moved.exit_code == 0, moved.stderr
    text = (vault / "sub/Old Note.md").read_text()
    assert "[d](../other/place/deep.md)" in text
    assert "[up](../../sub/Old%20Note.md)" in (vault / "other/place/deep.md").read_text()
    assert "dead" not in kb("links", "sub/Old Note.md").stdout


def test_a_moved_notes_links_by_name_stay_as_written(root, kb):
    write_vault(
        root,
        {
            "Embed files.md": "# Embed files\n",
            "Internal links.md": "See [[Embed Files]], [[embed files|this]] and [x](Embed%20files.md).\n",
        },
    )
    kb("init")
    out = kb("mv", "Internal links", "sub/")
    assert out.exit_code == 0, out.stderr
    text = (root / "sub" / "Internal links.md").read_text()
    # names lead to the same note from any folder: kept, in their own case; a relative path is not
    assert text == "See [[Embed Files]], [[embed files|this]] and [x](../Embed%20files.md).\n", text
    assert "1 link in 1 note updated" in out.stderr
    assert "dead" not in kb("links", "sub/Internal links.md").stdout


def test_a_link_that_cannot_be_kept_by_name_becomes_a_path(root, kb):
    write_vault(
        root,
        {"a/Note.md": "# Note\n", "b/Other.md": "# Other\n", "c/linker.md": "[[Other]]\n"},
    )
    kb("init")
    assert kb("mv", "b/Other.md", "a/Note.md").exit_code != 0  # taken
    out = kb("mv", "b/Other.md", "b/Note.md")
    assert out.exit_code == 0, out.stderr
    assert (root / "c/linker.md").read_text() == "[[b/Note]]\n"  # [[Note]] would be ambiguous


def test_notable_layout_rename(kb, root):
    kb("add", "Target", "-b", "text")
    kb("add", "Source", "-b", "See [[Target]] and [t](@note/Target.md) and [x](Target.md).")
    out = kb("mv", "Target", "Goal")
    assert out.exit_code == 0
    assert "3 links in 1 note updated" in out.stderr
    text = (root / "notes/Source.md").read_text()
    assert "See [[Goal]] and [t](@note/Goal.md) and [x](Goal.md)." in text


# ---------------------------------------------------------------- property: resolved links are kept

FOLDERS = ["", "a/", "a/b/", "c/"]


def _resolved(root: Path) -> set[tuple[str, int, str]]:
    notes = {}
    texts = {}
    for p in root.rglob("*.md"):
        rel = p.relative_to(root).as_posix()
        if rel.startswith((".git/", "index/")):
            continue
        parsed = parse_note(p.read_bytes())
        notes[rel] = parsed.title_for(rel)
        texts[rel] = parsed
    vault = Vault(notes)
    out = set()
    for rel, parsed in texts.items():
        for i, link in enumerate(note_links(parsed)):
            found = vault.resolve(link, rel)
            out.add((rel, i, found.path if found.status == "ok" else found.status))
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 10_000), st.integers(0, 3))
def test_random_vaults_keep_their_resolved_links_through_renames(tmp_path_factory, seed, moves):
    rng = random.Random(seed)
    root = tmp_path_factory.mktemp("vault") / "kb"
    names = [f"{folder}n{i}.md" for i, folder in enumerate(rng.choice(FOLDERS) for _ in range(5))]
    files = {}
    for path in names:
        lines = [f"# N{path.rsplit('n', 1)[-1][:-3]}", ""]
        for _ in range(rng.randint(0, 4)):
            other = rng.choice(names)
            stem = other.rsplit("/", 1)[-1][:-3]
            rel = (
                Path(other).relative_to(Path(path).parent)
                if other.startswith(str(Path(path).parent))
                else None
            )
            forms = [f"[[{stem}]]", f"[[{stem}|x]]", f"![[{stem}#h]]", f"[t](/{other})"]
            if rel is not None and str(Path(path).parent) != ".":
                forms.append(f"[r]({rel.as_posix()})")
            if "/" not in path:
                forms.append(f"[r]({other})")
            lines.append(rng.choice(forms))
        files[path] = "\n".join(lines) + "\n"
    write_vault(root, files)
    env = {"KB_HOME": str(root)}
    from typer.testing import CliRunner

    from kb.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    current = {p: p for p in names}
    for step in range(moves + 1):
        before = _resolved(root)
        old = rng.choice(sorted(current.values()))
        folder = old.rsplit("/", 1)[0] + "/" if "/" in old else ""
        # a fresh name, or the name of a note in another folder (whose links must not be taken over)
        new_name = rng.choice([f"r{seed}x{step}", *sorted({Path(p).stem for p in current.values()})])
        kind = rng.randrange(3)
        if kind == 0:
            dest = rng.choice(["a/", "c/", "d/e/"])
            new = dest + old.rsplit("/", 1)[-1]
            args = ["mv", old, dest]
        elif kind == 1:
            new = folder + new_name + ".md"
            args = ["mv", old, new]
        else:
            new = folder + new_name + ".md"  # a new title: the file is named after it
            args = ["edit", old, "--title", new_name]
        if (root / new).exists() or new == old:
            continue
        result = runner.invoke(app, args, env=env)
        if kind == 2 and result.exit_code == 1 and "already exists" in result.stderr:
            continue  # another note in the folder has that title: refused, nothing changed
        if kind == 2 and result.exit_code == 0 and result.stderr.startswith("No changes"):
            continue  # the note has that title already (a file renamed before kept its heading)
        assert result.exit_code == 0, result.stderr
        assert (root / new).exists()
        for key, value in list(current.items()):
            if value == old:
                current[key] = new
        mapped = {(new if s == old else s, i, new if t == old else t) for s, i, t in before}
        assert _resolved(root) == mapped
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True
        )
        assert status.stdout == ""


def test_a_rename_does_not_take_over_links_to_another_note(root, kb):
    write_vault(root, {"a/X.md": "# X\n", "b/Foo.md": "# Foo\n", "c/linker.md": "[[Foo]] and [[X]]\n"})
    kb("init")
    out = kb("mv", "a/X.md", "Foo")
    assert out.exit_code == 0, out.stderr
    assert (root / "c/linker.md").read_text() == "[[b/Foo]] and [[a/Foo]]\n"
    assert "dead" not in kb("links", "c/linker.md").stdout


def test_bom_crlf_and_odd_bytes_stay(root, kb):
    linker = "\ufeff# Linker\r\n\r\nSee [[Old]] \u2013 and [x](Old.md)\r\nEnd without newline"
    write_vault(root, {"Old.md": "# Old\n", "linker.md": linker})
    kb("init")
    assert kb("mv", "Old", "New").exit_code == 0
    assert (root / "linker.md").read_bytes() == linker.replace("Old", "New").encode("utf-8")


def test_a_title_changed_in_the_editor_keeps_links(kb, root, tmp_path):
    from .conftest import write_editor

    kb("add", "Target", "-b", "text")
    kb("add", "Source", "-b", "See [[Target]].")
    editor = write_editor(tmp_path, "sed -i 's/^title: Target$/title: Goal/' \"$1\"")
    out = kb("edit", "Target", "--editor", env={"EDITOR": editor})
    assert out.exit_code == 0, out.stderr
    assert "1 link in 1 note updated" in out.stderr
    assert "See [[Goal]]." in (root / "notes/Source.md").read_text()


def test_a_title_with_a_slash_is_a_link_target_and_renaming_it_rewrites_its_links(root, kb):
    note = "---\ntitle: A/B\n---\nbody\n"
    linker = "# L\n\n[[A/B]] [[a/b|alias]] [[A/B#h]] [x](a-b.md) [[Nowhere/B]]\n"
    write_vault(root, {"a-b.md": note, "l.md": linker, "x/m.md": "# M\n\n![[A/B]]\n"})
    kb("init")
    assert kb("links", "l.md").stdout.splitlines() == [
        "3\tA/B\ta-b.md",
        "3\ta/b\ta-b.md",
        "3\tA/B#h\ta-b.md",
        "3\ta-b.md\ta-b.md",
        "3\tNowhere/B\tdead",
    ]
    assert kb("backlinks", "A/B").stdout.splitlines()[-1] == "x/m.md:3\t!A/B"
    out = kb("mv", "A/B", "C/D")
    assert out.exit_code == 0, out.stderr
    assert "5 links in 2 notes updated" in out.stderr
    assert (root / "l.md").read_text() == (
        "# L\n\n[[C/D]] [[C/D|alias]] [[C/D#h]] [x](C\u2215D.md) [[Nowhere/B]]\n"
    )
    assert (root / "x/m.md").read_text() == "# M\n\n![[C/D]]\n"
    assert kb("check").stdout == "l.md:3: dead link [[Nowhere/B]]\n"


def test_a_path_comes_before_a_title_with_a_slash_and_a_name_that_ends_so_is_ambiguous(root, kb):
    write_vault(root, {"a-b.md": "---\ntitle: A/B\n---\n", "a/b.md": "# b\n", "l.md": "[[A/B]]\n"})
    kb("init")
    assert kb("links", "l.md").stdout == "1\tA/B\ta/b.md\n"  # the path from the root
    kb("mv", "a/b.md", "x/a/", "--no-links")
    assert kb("links", "l.md").stdout == "1\tA/B\tambiguous: a-b.md, x/a/b.md\n"
