"""kb check: one line per problem with path:line, exit 1 when anything is found, --json, --fix."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .conftest import git, log_subjects
from .test_link_commands import write_vault


def test_a_clean_knowledge_base_passes(kb, root):
    write_vault(root, {"a.md": "# A\n\n[[b]] ![[pic.png]]\n", "b.md": "# B\n", "img/pic.png": "png"})
    kb("init")
    out = kb("check")
    assert out.exit_code == 0, out.stdout
    assert out.stdout == ""
    assert "Checked 2 notes and 2 links: no problems." in out.stderr


def test_every_kind_of_problem_one_line_each(kb, root):
    write_vault(
        root,
        {
            "a.md": "# A\n\nSee [[Nowhere]] and [[Twin]]\nand ![[gone.png]] and [p](missing.pdf)\n",
            "x/Twin.md": "# Twin\n",
            "y/Twin.md": "# Twin\n",
            "same1.md": "# Same\n",
            "same2.md": "---\ntitle: Same\n---\n",
            "broken.md": "---\ntitle: [oops\n---\ntext\n",
            "Attachments/unused.png": "png",
        },
    )
    (root / "bin.md").write_bytes(b"\x00\x01binary")
    os.symlink("x", root / "elsewhere")
    kb("init")
    out = kb("check")
    assert out.exit_code == 1
    assert out.stdout.splitlines() == [
        "Attachments/unused.png: an attachment no note links to",
        "a.md:3: dead link [[Nowhere]]",
        "a.md:3: ambiguous link [[Twin]]: x/Twin.md, y/Twin.md",
        "a.md:4: missing embed ![[gone.png]]",
        "a.md:4: missing attachment (missing.pdf)",
        "bin.md: kb cannot see this file: skipped, binary file (contains NUL bytes)",
        "broken.md:1: front matter cannot be read: invalid front matter at line 3: "
        "did not find expected ',' or ']'",
        "elsewhere: kb cannot see this file: a symbolic link to a folder; not followed",
        "same1.md: title 'Same' also in same2.md",
        "same2.md: title 'Same' also in same1.md",
    ]
    data = json.loads(kb("check", "--json").stdout)
    assert data["version"] == 1
    assert {p["kind"] for p in data["problems"]} == {
        "unlinked-attachment",
        "dead-link",
        "ambiguous-link",
        "missing-attachment",
        "unseen-file",
        "unreadable",
        "duplicate-title",
    }
    assert data["problems"][1] == {
        "kind": "dead-link",
        "path": "a.md",
        "line": 3,
        "message": "dead link [[Nowhere]]",
    }


def test_index_out_of_step_is_found_and_fixed(kb, root):
    write_vault(root, {"a.md": "# A\n"})
    kb("init")
    (root / "index" / "kb-catalog.sqlite3").write_bytes(b"not a database")
    out = kb("check")
    assert out.exit_code == 1 and "index/: the search index is damaged" in out.stdout
    fixed = kb("check", "--fix")
    assert fixed.exit_code == 0, fixed.stdout
    assert "Fixed: index: rebuilt" in fixed.stderr
    assert kb("search", "A", "-l").stdout == "a.md\n"  # and search still works in the same process


def test_fix_rewrites_links_to_notes_renamed_since(kb, root):
    write_vault(
        root,
        {
            "old.md": "# Old Title\n",
            "linker.md": "---\nmodified: '2020-01-01T00:00:00.000Z'\n---\n[[Old Title|t]], [x](old.md#s)\n",
        },
    )
    kb("init")
    assert kb("mv", "old.md", "New Title", "--no-links").exit_code == 0
    git(root, "mv", "New Title.md", "Newer.md")
    git(root, "-c", "user.name=x", "-c", "user.email=x@y", "commit", "-qm", "renamed by hand")
    assert kb("check").exit_code == 1
    out = kb("check", "--fix")
    assert out.exit_code == 0, out.stdout
    text = (root / "linker.md").read_text()
    assert text.endswith("---\n[[New Title|t]], [x](Newer.md#s)\n")  # its title now, its file
    assert log_subjects(root)[0] == "Fix links: 2 links to renamed notes in 1 note"
    assert "no problems left." in out.stderr
    head = git(root, "rev-parse", "HEAD")
    again = kb("check", "--fix")
    assert again.exit_code == 0 and "no problems (nothing to repair)." in again.stderr
    assert git(root, "rev-parse", "HEAD") == head  # nothing left to fix


def test_fix_says_what_it_left(kb, root):
    write_vault(root, {"old.md": "text\n", "linker.md": "[[Old]] [[Nowhere]]\n"})
    kb("init")
    assert kb("mv", "old.md", "new.md", "--no-links").exit_code == 0
    out = kb("check", "--fix")
    assert out.exit_code == 1
    assert (root / "linker.md").read_text() == "[[new]] [[Nowhere]]\n"
    assert "Fixed: link linker.md:1: Old -> new.md" in out.stderr
    assert out.stdout == "linker.md:1: dead link [[Nowhere]]\n"
    assert "1 problem left, which --fix does not repair" in out.stderr
    assert log_subjects(root)[0] == "Fix links: 1 link to renamed notes in 1 note"


def test_an_index_not_built_yet_is_no_problem(kb, root):
    kb("add", "A", "-b", "[[B]]")
    kb("add", "B", "-b", "text")
    shutil.rmtree(root / "index", ignore_errors=True)
    out = kb("check", "--json")
    assert out.exit_code == 0, out.stdout
    assert json.loads(out.stdout)["links"] == 1


def test_check_needs_a_knowledge_base(kb, tmp_path):
    assert kb("--kb", str(tmp_path / "none"), "check").exit_code == 1


def test_check_changes_no_note(kb, root):
    write_vault(root, {"a.md": "[[dead]]\n"})
    kb("init")
    head = git(root, "rev-parse", "HEAD")
    assert kb("check").exit_code == 1
    assert git(root, "rev-parse", "HEAD") == head
    assert Path(root / "a.md").read_text() == "[[dead]]\n"
