"""The index's one front door: damage is repaired, bugs are not hidden, and listing and NOTE lookup never
depend on Whoosh's files being readable."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def indexed(kb, root):
    for i in range(3):
        assert kb("add", f"Note {i}", "-b", f"alpha text number{i}").exit_code == 0
    assert kb("search", "alpha").exit_code == 0
    return root


@pytest.mark.cold_only("it puts a bug into kb's index in this process")
def test_a_bug_in_the_index_is_not_taken_for_damage(kb, indexed, monkeypatch):
    from kb.index import NoteIndex

    def broken(self):
        raise TypeError("a bug")

    monkeypatch.setattr(NoteIndex, "refresh", broken)
    before = sorted(p.name for p in (indexed / "index").iterdir())
    r = kb("search", "alpha")
    assert r.exit_code == 1 and "TypeError" in r.stderr
    assert sorted(p.name for p in (indexed / "index").iterdir()) == before  # nothing rebuilt


def test_listing_and_lookup_do_not_need_whoosh(kb, indexed):
    for item in (indexed / "index").iterdir():
        if not item.name.startswith("kb-catalog"):
            item.write_bytes(os.urandom(256))
    r = kb("list")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    r = kb("show", "Note 1", "--raw")
    assert r.exit_code == 0 and "number1" in r.stdout
    r = kb("search", "number2", "-l")
    assert r.exit_code == 0 and r.stdout.strip() == "notes/Note 2.md"
