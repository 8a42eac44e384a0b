"""kb import of a Notable directory names files by title (and ` (2)` on a clash), which may differ from the
names the notes had there: the links between the imported notes are rewritten in the import's own commit so
that each still leads to the note it led to in the source, every other byte kept."""

from __future__ import annotations

from pathlib import Path

from .conftest import git


def _note(title: str, body: str, created: str = "2021-01-01T00:00:00.000Z") -> str:
    return (
        f"---\ntitle: {title}\ncreated: '{created}'\nmodified: '2021-01-02T00:00:00.000Z'\n---\n\n"
        f"# {title}\n\n{body}\n"
    )


def _notable(base: Path, notes: dict[str, str], attachments: dict[str, str] | None = None) -> Path:
    (base / "notes").mkdir(parents=True)
    for name, text in notes.items():
        (base / "notes" / name).write_bytes(text.encode("utf-8"))
    for rel, data in (attachments or {}).items():
        path = base / "attachments" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data)
    return base


LINKER = (
    "[a](@note/foo.md) [[foo]] [[foo|alias]] [c](foo.md) [[Bar]] [[Gone]] [d](<foo.md#x>) "
    "![p](@attachment/pic.png) `[[foo]]`\r\n"
)


def test_links_to_a_note_stored_under_another_name_are_kept(kb, root, tmp_path):
    source = _notable(
        tmp_path / "notable",
        {"foo.md": _note("Bar", "bar body"), "Linker.md": _note("Linker", LINKER)},
        {"pic.png": "png"},
    )
    out = kb("import", str(source))
    assert out.exit_code == 0, out.stderr
    assert (root / "notes/Bar.md").read_bytes() == (source / "notes/foo.md").read_bytes()
    expected = _note(
        "Linker",
        "[a](@note/Bar.md) [[Bar]] [[Bar|alias]] [c](Bar.md) [[Bar]] [[Gone]] [d](<Bar.md#x>) "
        "![p](@attachment/pic.png) `[[foo]]`\r\n",
    )
    assert (root / "notes/Linker.md").read_bytes() == expected.encode()
    check = kb("check")
    assert check.stdout == "notes/Linker.md:9: dead link [[Gone]]\n"  # dead in the source too
    message = git(root, "log", "-1", "--format=%B", "--", "notes/Linker.md")
    assert message.startswith("Import: 2 notes\n\n5 links in 1 note rewritten")
    assert git(root, "status", "--porcelain") == ""


def test_a_name_taken_in_the_knowledge_base_does_not_take_the_links(kb, root, tmp_path):
    assert kb("add", "What", "-b", "already here").exit_code == 0
    source = _notable(
        tmp_path / "notable",
        {"What.md": _note("What?", "the new one"), "L.md": _note("L", "[x](@note/What.md) [y](What.md)")},
    )
    assert kb("import", str(source)).exit_code == 0
    assert (root / "notes/What (2).md").exists()
    text = (root / "notes/L.md").read_text()
    assert "[x](@note/What%20%282%29.md) [y](What%20%282%29.md)" in text
    assert kb("backlinks", "What?").stdout.count("notes/L.md") == 2
    assert kb("backlinks", "What").stdout == ""
    assert kb("check").exit_code == 0


def test_an_import_with_nothing_to_keep_writes_the_files_as_they_were(kb, root, tmp_path):
    source = _notable(
        tmp_path / "notable",
        {"A.md": _note("A", "[[B]] [b](B.md) [[Gone]]"), "B.md": _note("B", "[a](@note/A.md)")},
    )
    assert kb("import", str(source)).exit_code == 0
    for name in ("A.md", "B.md"):
        assert (root / "notes" / name).read_bytes() == (source / "notes" / name).read_bytes()
    assert "rewritten" not in git(root, "log", "--format=%B")
