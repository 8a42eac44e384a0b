"""Moving or renaming a file that is not a note (an image, a PDF) with kb mv rewrites every link to it in
the notes, each in its own form, in the same revision; what kb must not move is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import NOW, git, log_subjects, snapshot
from .test_link_commands import write_vault

A = (
    "# A\n\n"
    "![[diagram.png]] and ![[diagram.png|300]] and ![[Diagram.PNG#x]]\n"
    "![](attachments/diagram.png) and [pdf](<attachments/diagram.png>) and ![t](./attachments/diagram.png)\n"
    "`![[diagram.png]]` stays, so does https://example.org/attachments/diagram.png\n"
    "```\n![[diagram.png]]\n```\n"
)
B = (
    "---\n"
    "title: B\n"
    "modified: '2021-01-01T00:00:00.000Z'\n"
    "---\n"
    '![](../attachments/diagram%20one.png) ![](../attachments/diagram.png "t")\r\n'
    "![[other.png]] [[A]]\n"
)
C = "# C\n\nNothing to see: ![[other.png]], <attachments/other.png> <img src=other.png>\n"


@pytest.fixture
def vault(root: Path, kb) -> Path:
    write_vault(
        root,
        {
            "a.md": A,
            "sub/b.md": B,
            "c.md": C,
            "attachments/diagram.png": "\x89PNG one",
            "attachments/diagram one.png": "\x89PNG two",
            "attachments/other.png": "\x89PNG other",
        },
    )
    assert kb("init").exit_code == 0
    return root


def _changed(root: Path) -> list[str]:
    return sorted(
        p for p in git(root, "show", "--no-renames", "--name-only", "--format=", "HEAD").splitlines() if p
    )


def test_moving_a_file_rewrites_every_link_in_its_form(vault, kb):
    before = snapshot(vault)
    out = kb("mv", "attachments/diagram.png", "media/")
    assert out.exit_code == 0, out.stderr
    assert "Moved: diagram.png (attachments/diagram.png -> media/diagram.png)" in out.stderr
    assert "4 links in 2 notes updated" in out.stderr
    assert (vault / "a.md").read_bytes() == (
        A.replace("![](attachments/diagram.png)", "![](media/diagram.png)")
        .replace("[pdf](<attachments/diagram.png>)", "[pdf](<media/diagram.png>)")
        .replace("![t](./attachments/diagram.png)", "![t](./media/diagram.png)")
    ).encode()
    assert (vault / "sub/b.md").read_bytes() == B.replace(
        '../attachments/diagram.png "t"', '../media/diagram.png "t"'
    ).replace("2021-01-01T00:00:00.000Z", NOW).encode()
    assert (vault / "media/diagram.png").read_bytes() == before["attachments/diagram.png"]
    assert not (vault / "attachments/diagram.png").exists()
    assert (vault / "c.md").read_bytes() == C.encode()
    assert log_subjects(vault)[0] == "Move: attachments/diagram.png -> media/diagram.png"
    assert "4 links in 2 notes updated" in git(vault, "log", "-1", "--format=%B")
    assert _changed(vault) == ["a.md", "attachments/diagram.png", "media/diagram.png", "sub/b.md"]
    assert git(vault, "status", "--porcelain") == ""
    check = kb("check")
    assert check.exit_code == 0, check.stdout


def test_renaming_a_file_keeps_bare_embeds_bare_and_encodes_as_it_was(vault, kb):
    assert kb("mv", "attachments/diagram.png", "attachments/chart.png").exit_code == 0
    assert kb("mv", "attachments/diagram one.png", "attachments/chart two.png").exit_code == 0
    assert (vault / "a.md").read_bytes() == (
        A.replace("[[diagram.png", "[[chart.png", 2)
        .replace("![[Diagram.PNG#x]]", "![[chart.png#x]]")
        .replace("(attachments/diagram.png)", "(attachments/chart.png)")
        .replace("(<attachments/diagram.png>)", "(<attachments/chart.png>)")
        .replace("(./attachments/diagram.png)", "(./attachments/chart.png)")
    ).encode()
    assert (vault / "sub/b.md").read_bytes() == B.replace("diagram%20one.png", "chart%20two.png").replace(
        "../attachments/diagram.png", "../attachments/chart.png"
    ).replace("2021-01-01T00:00:00.000Z", NOW).encode()


def test_a_bare_embed_becomes_a_path_when_the_new_name_is_not_unique(vault, kb):
    write_vault(vault, {"elsewhere/chart.png": "\x89PNG elsewhere"})
    out = kb("mv", "attachments/other.png", "attachments/chart.png")
    assert out.exit_code == 0, out.stderr
    assert "3 links in 2 notes updated" in out.stderr
    assert (vault / "c.md").read_bytes() == C.replace("![[other.png]]", "![[attachments/chart.png]]").replace(
        "<attachments/other.png>", "<attachments/chart.png>"
    ).encode()
    assert b"![[attachments/chart.png]] [[A]]" in (vault / "sub/b.md").read_bytes()
    assert kb("check").stdout == "elsewhere/chart.png: an attachment no note links to\n"


def test_a_new_name_that_takes_over_another_files_links_keeps_them_there(root, kb):
    write_vault(
        root,
        {"n.md": "![[x.png]] ![[y.png]]\n", "a/x.png": "x", "b/y.png": "y"},
    )
    kb("init")
    out = kb("mv", "b/y.png", "b/x.png")
    assert out.exit_code == 0, out.stderr
    assert (root / "n.md").read_text() == "![[a/x.png]] ![[b/x.png]]\n"
    assert kb("check").exit_code == 0


def test_an_existing_folder_as_the_target_keeps_the_name(vault, kb):
    (vault / "media").mkdir()
    out = kb("mv", "attachments/diagram.png", "media")
    assert out.exit_code == 0, out.stderr
    assert (vault / "media/diagram.png").exists()
    assert b"![](media/diagram.png)" in (vault / "a.md").read_bytes()


def test_no_links_moves_the_file_alone(vault, kb):
    out = kb("mv", "attachments/diagram.png", "media/d.png", "--no-links")
    assert out.exit_code == 0 and "updated" not in out.stderr
    assert (vault / "a.md").read_bytes() == A.encode()
    assert _changed(vault) == ["attachments/diagram.png", "media/d.png"]
    assert kb("check").exit_code == 1


def test_notable_layout_attachments(kb, root):
    kb("add", "Src", "-b", "See [a](@attachment/x.png), ![](../attachments/x.png) and ![[x.png|200]].")
    write_vault(root, {"attachments/x.png": "x"})
    out = kb("mv", "attachments/x.png", "attachments/chart.png")
    assert out.exit_code == 0, out.stderr
    assert "3 links in 1 note updated" in out.stderr
    text = (root / "notes/Src.md").read_text()
    assert "See [a](@attachment/chart.png), ![](../attachments/chart.png) and ![[chart.png|200]]." in text
    assert git(root, "status", "--porcelain") == ""
    assert kb("check").exit_code == 0


@pytest.mark.parametrize(
    ("source", "target", "says"),
    [
        ("attachments/diagram.png", "attachments/other.png", "already exists"),
        ("attachments/diagram.png", "../outside.png", "not inside the knowledge base"),
        ("attachments/diagram.png", "/etc/x.png", "not inside the knowledge base"),
        ("attachments/diagram.png", "index/x.png", "index/"),
        ("attachments/diagram.png", ".git/x.png", "index/, .git/"),
        ("attachments/diagram.png", "media/x.md", "would be a note"),
        (".git/config", "config.txt", "index/, .git/"),
        ("attachments/link.png", "attachments/l2.png", "symbolic link"),
        ("attachments/diagram.png", "linked/x.png", "symbolic link"),
    ],
)
def test_refused_in_one_line(vault, kb, tmp_path, source, target, says):
    (vault / "attachments/link.png").symlink_to("diagram.png")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (vault / "linked").symlink_to(outside)
    git(vault, "add", "attachments/link.png", "linked")
    git(vault, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "links")
    before = snapshot(vault)
    out = kb("mv", source, target)
    assert out.exit_code == 2, out.stderr
    assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert snapshot(vault) == before
    assert not list(outside.iterdir())


@pytest.mark.cold_only("it makes kb's own commits fail in this process")
def test_a_failing_commit_puts_the_file_and_every_note_back(vault, kb, monkeypatch):
    before = snapshot(vault)
    from kb.errors import GitError
    from kb.history import History

    def fail(self, *args, **kwargs):
        raise GitError("git commit failed: injected")

    with monkeypatch.context() as patched:
        patched.setattr(History, "commit", fail)
        r = kb("mv", "attachments/diagram.png", "media/chart.png")
    assert r.exit_code == 1 and "injected" in r.stderr and "nothing was changed" in r.stderr
    assert snapshot(vault) == before
    assert not (vault / "media/chart.png").exists()
    assert git(vault, "status", "--porcelain") == ""
    assert kb("check").exit_code == 0


@pytest.mark.cold_only("it makes kb's own commits fail in this process")
def test_notable_attachment_move_failing_commit(kb, root, monkeypatch):
    kb("add", "Other", "-b", "text")
    write_vault(root, {"attachments/x.png": "x"})
    kb("add", "Src", "-b", "See [a](@attachment/x.png) and ![[x.png]].")  # commits attachments/x.png first
    before = snapshot(root)
    from kb.errors import GitError
    from kb.history import History

    def fail(self, *args, **kwargs):
        raise GitError("git commit failed: injected")

    with monkeypatch.context() as patched:
        patched.setattr(History, "commit", fail)
        assert kb("mv", "attachments/x.png", "attachments/y.png").exit_code == 1
    assert snapshot(root) == before
    assert git(root, "status", "--porcelain") == ""


def test_a_vault_note_without_a_modified_key_gets_none(root, kb):
    text = "---\ntags: [x]\npublish: true\n---\n\n![[d.png]] and [[Old]]\n"
    write_vault(root, {"n.md": text, "d.png": "png", "Old.md": "# Old\n"})
    kb("init")
    assert kb("mv", "d.png", "img/e.png").exit_code == 0
    assert kb("mv", "Old", "New").exit_code == 0
    assert (root / "n.md").read_text() == text.replace("[[Old]]", "[[New]]").replace("d.png", "e.png")


def test_a_title_that_is_also_a_files_name_at_the_root_names_the_note(root, kb):
    write_vault(
        root,
        {"Node.js.md": "# Node.js\n", "Node.js": "js", "l.md": "[[Node.js]] [x](Node.js) [n](Node.js.md)\n"},
    )
    kb("init")
    out = kb("mv", "Node.js", "Deno")
    assert out.exit_code == 0, out.stderr
    assert (root / "Deno.md").exists() and (root / "Node.js").read_text() == "js"
    moved = kb("mv", "./Node.js", "src/")
    assert moved.exit_code == 0, moved.stderr
    assert (root / "src/Node.js").read_text() == "js"
    # [[Node.js]] names the file (a name with an extension is a file first), and by name it still finds it
    assert (root / "l.md").read_text() == "[[Node.js]] [x](src/Node.js) [n](Deno.md)\n"
