"""service.update_listing: `kb list`'s order, `kb tags`' counts and every note's record, brought up to date
from the changed files only (as the warm server does after a quick check), equal what working them out
anew gives, whatever the changes (new, edited, retitled, retagged, deleted, unreadable notes)."""

from __future__ import annotations

import random
from pathlib import Path

from kb import service, store
from kb.index import NoteIndex

_TAGS = ["work", "Work", "work/projects", "home", "a/b/c", "A/b", "reading", "x"]
_NAMES = ["Alpha", "beta", "Gamma", "alpha", "Delta", "epsilon"]


def _note(rng: random.Random, i: int) -> str:
    title = rng.choice(_NAMES) + ("" if rng.random() < 0.6 else f" {i}")
    tags = rng.sample(_TAGS, rng.randint(0, 3))
    lines = ["---", f"title: {title}"]
    if tags:
        lines.append(f"tags: [{', '.join(tags)}]")
    if rng.random() < 0.8:  # others get no date of their own
        day = rng.randint(1, 3)  # many ties
        lines.append(f"modified: '2024-01-0{day}T10:00:00.000Z'")
    if rng.random() < 0.1:
        lines.append("created: not a date")  # a warning of its own
    lines += ["---", "", f"Text {rng.random()} #inline{rng.randint(0, 3)}", ""]
    return "\n".join(lines)


def _values(root: Path) -> dict[str, object]:
    kept = store.settled_values(root)
    return {
        name: kept.get(name) for name in ("all_notes", "note_warnings", "list:modified", "tags", "tag_forms")
    }


def test_the_listing_brought_up_to_date_equals_it_worked_out_anew(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    notes = root / "notes"
    notes.mkdir(parents=True)
    rng = random.Random(7)
    count = 40
    for i in range(count):
        (notes / f"n{i}.md").write_text(_note(rng, i))
    (notes / "binary.md").write_bytes(b"\x00\x01\x02 not text")
    NoteIndex(root).rebuild()
    try:
        notes_store = store.Store(root)
        store.settle(root, notes_store.scan())
        service.prepare_listing(root)
        assert all(value is not None for value in _values(root).values())
        for _ in range(40):
            before = store.settled_values(root)
            changed: set[str] = set()
            for _ in range(rng.randint(1, 6)):
                kind = rng.random()
                existing = sorted(p.name for p in notes.glob("*.md"))
                if kind < 0.35 and existing:  # edited: new title, tags or date
                    name = rng.choice(existing)
                    (notes / name).write_text(_note(rng, rng.randint(0, 999)))
                elif kind < 0.55 and existing:
                    name = rng.choice(existing)
                    (notes / name).unlink()
                elif kind < 0.65:
                    name = f"bad{rng.randint(0, 3)}.md"
                    (notes / name).write_bytes(b"\x00binary\x00")
                else:
                    count += 1
                    name = f"n{count}.md"
                    (notes / name).write_text(_note(rng, count))
                changed.add(f"notes/{name}")
            NoteIndex(root).refresh()  # as the server's check does before the listing
            scan = store.Store(root).scan()
            store.settle(root, scan)
            assert service.update_listing(root, before, changed)
            updated = _values(root)
            store.settle(root, scan)
            service.prepare_listing(root)
            anew = _values(root)
            assert updated == anew
            tags = anew["tags"]
            assert isinstance(tags, service.TagsResult) and tags.tags  # not trivially empty
    finally:
        store.settle(root, None)


def test_without_what_it_needs_nothing_is_brought_up_to_date(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "a.md").write_text("# A\n")
    NoteIndex(root).rebuild()
    try:
        store.settle(root, store.Store(root).scan())
        assert not service.update_listing(root, {}, {"notes/a.md"})  # nothing kept from before
        store.settle(root, None)
        assert not service.update_listing(root, {"all_notes": ((), ())}, set())  # not settled
    finally:
        store.settle(root, None)
