"""kb links and kb backlinks through the real CLI: links stored with each note when it is indexed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb.store import Store

VAULT = {
    "postgres/vacuum-full.md": "# VACUUM FULL\n\nRewrites the whole table. [[Postgres]]\n",
    "postgres/index.md": (
        "# Postgres\n\nSee [vacuum](vacuum-full.md) and ![[diagram.png]],\n"
        "[[Nowhere]], [[Twin]] and `[[Code]]`.\n"
    ),
    "vim/index.md": "# Vim\n\nModal editing. See [pg](../postgres/vacuum-full.md#why).\n",
    "a/Twin.md": "# Twin\n",
    "b/Twin.md": "# Twin\n",
    "Attachments/diagram.png": "png",
}


def write_vault(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


@pytest.fixture
def vault(root: Path, kb) -> Path:
    write_vault(root, VAULT)
    assert kb("init").exit_code == 0
    return root


def test_links_lists_targets_with_where_they_lead(vault, kb):
    out = kb("links", "postgres/index.md")
    assert out.exit_code == 0
    assert out.stdout.splitlines() == [
        "3\tvacuum-full.md\tpostgres/vacuum-full.md",
        "3\t!diagram.png\tAttachments/diagram.png",
        "4\tNowhere\tdead",
        "4\tTwin\tambiguous: a/Twin.md, b/Twin.md",
    ]


def test_links_json(vault, kb):
    data = json.loads(kb("links", "Postgres", "--json").stdout)
    assert data["version"] == 1 and data["note"] == "postgres/index.md"
    first = data["links"][0]
    assert first == {
        "source": "postgres/index.md",
        "line": 3,
        "kind": "markdown",
        "target": "vacuum-full.md",
        "fragment": None,
        "alias": "vacuum",
        "embed": False,
        "status": "ok",
        "path": "postgres/vacuum-full.md",
        "candidates": [],
    }
    assert [link["status"] for link in data["links"]] == ["ok", "ok", "dead", "ambiguous"]


@pytest.mark.cold_only("it watches kb's reads in this process")
def test_backlinks_come_from_the_index_without_reading_notes(vault, kb, monkeypatch):
    def no_reading(self, rel):
        raise AssertionError(f"read {rel}")

    monkeypatch.setattr(Store, "read", no_reading)
    out = kb("backlinks", "postgres/vacuum-full.md")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.splitlines() == [
        "postgres/index.md:3\tvacuum-full.md",
        "vim/index.md:3\t../postgres/vacuum-full.md#why",
    ]


def test_backlinks_follow_changes_made_outside_kb(vault, kb):
    (vault / "vim/index.md").write_text("# Vim\n\nNo links now.\n")
    (vault / "new.md").write_text("x\n\n[[VACUUM FULL|by title]]\n")
    data = json.loads(kb("backlinks", "vacuum-full", "--json").stdout)
    assert [(r["source"], r["line"], r["alias"]) for r in data["links"]] == [
        ("new.md", 3, "by title"),
        ("postgres/index.md", 3, "vacuum"),
    ]


def test_no_links_and_no_backlinks(vault, kb):
    out = kb("links", "a/Twin.md")
    assert out.exit_code == 0 and out.stdout == "" and "No links" in out.stderr
    out = kb("backlinks", "vim/index.md")
    assert out.exit_code == 0 and out.stdout == "" and "No note links" in out.stderr
    assert kb("backlinks", "nothing-like-this").exit_code == 1


def test_ambiguous_links_are_nobodys_backlink(vault, kb):
    assert kb("backlinks", "a/Twin.md").stdout == ""


def test_notable_layout(kb, root):
    assert kb("add", "Target", "-b", "text").exit_code == 0
    assert kb("add", "Source", "-b", "See [[Target]] and [t](@note/Target.md).").exit_code == 0
    out = kb("backlinks", "Target")
    assert out.stdout.splitlines() == ["notes/Source.md:9\tTarget", "notes/Source.md:9\t@note/Target.md"]
