"""Store.rescan: a scan brought up to date from the files change events named equals a walk of every
folder, or says that only a walk will do."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest

from kb.store import TEMP_PREFIX, Store


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _notable(root: Path) -> Path:
    notes = root / "notes"
    for i in range(30):
        _write(notes / f"Note {i}.md", f"# Note {i}\n")
    _write(notes / "sub" / "Deep.md", "# Deep\n")
    return notes


def test_random_changes_rescanned_equal_a_walk(tmp_path: Path) -> None:
    notes = _notable(tmp_path)
    (notes / ".hidden").mkdir()
    (notes / "node_modules").mkdir()
    rng = random.Random(7)
    store = Store(tmp_path)
    kept = store.scan(keep=True)
    for _ in range(40):
        touched: set[str] = set()
        for _ in range(rng.randint(1, 5)):
            kind = rng.choice(["create", "append", "delete", "rename", "temp", "other", "hidden", "skipped"])
            folder = rng.choice([notes, notes / "sub"])
            name = f"Note {rng.randint(0, 40)}.md"
            path = folder / name
            if kind == "create":
                _write(path, "# new\n")
            elif kind == "append" and path.exists():
                with open(path, "a") as f:
                    f.write("more\n")
            elif kind == "delete" and path.exists():
                path.unlink()
            elif kind == "rename" and path.exists():
                target = folder / f"Renamed {rng.randint(0, 9)}.md"
                os.replace(path, target)
                touched.add(str(target))
            elif kind == "temp":
                path = folder / f"{TEMP_PREFIX}x.md"
                _write(path, "half")
            elif kind == "other":
                path = folder / "picture.png"
                _write(path, "png")
            elif kind == "hidden":
                path = notes / ".hidden" / "Secret.md"
                _write(path, "# secret\n")
            else:
                path = notes / "node_modules" / "Readme.md"
                _write(path, "# readme\n")
            touched.add(str(path))
        fresh = Store(tmp_path)
        rescanned = fresh.rescan(kept, store.layout, touched)
        assert rescanned is not None
        walked = Store(tmp_path).scan()
        assert rescanned[0][0] == walked[0]
        assert fresh.scan()[0] == walked[0]  # kept for the next scan, as scan(keep=True) keeps
        assert {p for p in set(walked[0]) ^ set(kept[0])} <= rescanned[1]  # every note added or removed
        kept = rescanned[0]


@pytest.mark.parametrize(
    "change",
    ["settings", "gitignore", "markdown beside notes", "link", "folder named like a note"],
)
def test_what_changes_what_is_a_note_needs_a_walk(tmp_path: Path, change: str) -> None:
    notes = _notable(tmp_path)
    store = Store(tmp_path)
    kept = store.scan(keep=True)
    if change == "settings":
        path = tmp_path / "kb.toml"
        path.write_text("")
    elif change == "gitignore":
        path = tmp_path / ".gitignore"
        path.write_text("index/\n")
    elif change == "markdown beside notes":
        path = tmp_path / "Loose.md"
        path.write_text("# loose\n")
    elif change == "link":
        path = notes / "Link.md"
        path.symlink_to(notes / "Note 1.md")
    else:
        path = notes / "Folder.md"
        path.mkdir()
    assert Store(tmp_path).rescan(kept, store.layout, {str(path)}) is None


def test_in_place_ignore_patterns_are_followed(tmp_path: Path) -> None:
    _write(tmp_path / "Top.md", "# Top\n")
    _write(tmp_path / "drafts" / "Draft.md", "# Draft\n")
    _write(tmp_path / "kb.toml", 'notes = "."\nignore = ["drafts"]\n')
    store = Store(tmp_path)
    assert store.layout.in_place
    kept = store.scan(keep=True)
    assert "drafts/Draft.md" not in kept[0]
    _write(tmp_path / "drafts" / "Second.md", "# Second\n")
    _write(tmp_path / "Other.md", "# Other\n")
    touched = {str(tmp_path / "drafts" / "Second.md"), str(tmp_path / "Other.md")}
    rescanned = Store(tmp_path).rescan(kept, store.layout, touched)
    assert rescanned is not None
    assert rescanned[0][0] == Store(tmp_path).scan()[0]
    assert "Other.md" in rescanned[0][0] and "drafts/Second.md" not in rescanned[0][0]
    # kb.toml at the top of a folder used in place is beside its notes: a walk
    assert Store(tmp_path).rescan(kept, store.layout, {str(tmp_path / "kb.toml")}) is None


def test_only_the_changed_rows_are_compared_while_no_one_else_changed_the_catalog(
    cold_kb, root: Path
) -> None:
    from kb.index import NoteIndex
    from kb.index.catalog import next_generation

    assert cold_kb("add", "Alpha", "-b", "One zebra.").exit_code == 0
    assert cold_kb("add", "Beta", "-b", "One giraffe.").exit_code == 0
    assert cold_kb("search", "zebra").exit_code == 0  # the index is built
    store = Store(root)
    kept = store.scan(keep=True)
    agreed = NoteIndex(root, store).refresh().agreed
    assert agreed is not None
    alpha = root / "notes" / "Alpha.md"
    with open(alpha, "a") as f:
        f.write("An okapi.\n")
    fresh = Store(root)
    found = fresh.rescan(kept, fresh.layout, {str(alpha)})
    assert found is not None and found[1] == {"notes/Alpha.md"}
    report = NoteIndex(root, fresh).refresh_changed(found[1], agreed)
    assert report is not None and (report.added, report.updated, report.removed) == (0, 1, 0)
    assert report.agreed == next_generation(agreed)  # ours was the only change since
    assert cold_kb("search", "okapi").exit_code == 0
    assert report.compared == {"notes/Alpha.md"}
    # another process changes the catalog (a note of its own): its row is compared too, as the log says
    assert cold_kb("edit", "Beta", "-a", "A quokka.").exit_code == 0
    again = NoteIndex(root, Store(root)).refresh_changed({"notes/Alpha.md"}, report.agreed)
    assert again is not None and again.compared == {"notes/Alpha.md", "notes/Beta.md"}
    assert (again.added, again.updated, again.removed) == (0, 0, 0)  # it indexed its own change
    # a rebuilt catalog counts its changes from 0 again: never taken for the one agreed with
    assert cold_kb("reindex").exit_code == 0
    rebuilt = NoteIndex(root, Store(root)).refresh().agreed
    assert rebuilt is not None and rebuilt.endswith("/0") and rebuilt != agreed


def test_when_the_catalog_changed_the_rescanned_notes_are_compared_without_a_walk(
    cold_kb, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb.index import NoteIndex
    from kb.index.catalog import CATALOG

    assert cold_kb("add", "Alpha", "-b", "One zebra.").exit_code == 0
    assert cold_kb("search", "zebra").exit_code == 0
    store = Store(root)
    kept = store.scan(keep=True)
    agreed = NoteIndex(root, store).refresh().agreed
    assert agreed is not None
    assert cold_kb("add", "Beta", "-b", "One giraffe.").exit_code == 0  # the catalog changes
    beta = root / "notes" / "Beta.md"
    fresh = Store(root)
    found = fresh.rescan(kept, fresh.layout, {str(beta)})
    assert found is not None

    def no_walk(*args: object, **kwargs: object) -> None:
        raise AssertionError("every folder walked")

    walk = Store._walk
    monkeypatch.setattr(Store, "_walk", no_walk)
    index = NoteIndex(root, fresh)
    # the catalog's log says the only row changed since is Beta's, a file the events named: no other row read
    quick = index.refresh_changed(found[1], agreed)
    assert quick is not None and quick.agreed is not None and quick.agreed != agreed
    monkeypatch.setattr(Store, "_walk", walk)
    assert cold_kb("edit", "Alpha", "-a", "More zebra.").exit_code == 0  # a row the events did not name
    other = NoteIndex(root, Store(root)).refresh_changed(found[1], quick.agreed)
    assert other is not None and other.compared == {"notes/Alpha.md", "notes/Beta.md"}
    after = NoteIndex(root, Store(root)).refresh().agreed
    assert after is not None
    assert cold_kb("edit", "Beta", "-a", "More giraffe.").exit_code == 0
    with sqlite3.connect(root / "index" / CATALOG) as db:
        db.execute("DELETE FROM changes")  # a change that says nothing of its rows (an earlier kb's)
    beta_only = {"notes/Beta.md"}
    assert NoteIndex(root, Store(root)).refresh_changed(beta_only, after) is None
    report = index.refresh()
    assert report.agreed is not None


def test_a_note_of_several_names_or_a_link_among_the_files_needs_a_walk(tmp_path: Path) -> None:
    notes = _notable(tmp_path)
    os.link(notes / "Note 1.md", notes / "sub" / "Same.md")  # one file, two names
    store = Store(tmp_path)
    kept = store.scan(keep=True)
    with open(notes / "Note 1.md", "a") as f:
        f.write("more\n")  # the other name changed too, and no event names it
    assert Store(tmp_path).rescan(kept, store.layout, {str(notes / "Note 1.md")}) is None
    (notes / "sub" / "Same.md").unlink()
    kept = Store(tmp_path).scan(keep=True)
    (notes / "folder-link").symlink_to(notes / "sub")  # the walk warns of it
    assert Store(tmp_path).rescan(kept, store.layout, {str(notes / "folder-link")}) is None
    with_warning = Store(tmp_path).scan(keep=True)
    assert with_warning[1]
    (notes / "folder-link").unlink()  # its warning goes with it: only a walk knows
    assert Store(tmp_path).rescan(with_warning, store.layout, {str(notes / "folder-link")}) is None


def test_the_catalogs_log_says_nothing_of_a_generation_it_has_not_reached(cold_kb, root: Path) -> None:
    """An index/ put back from a copy can be at an earlier generation than a check remembers: no answer."""
    from kb.index import NoteIndex

    assert cold_kb("add", "Alpha", "-b", "One zebra.").exit_code == 0
    assert cold_kb("search", "zebra").exit_code == 0
    assert cold_kb("add", "Beta", "-b", "One giraffe.").exit_code == 0
    catalog = NoteIndex(root).catalog()
    assert catalog is not None
    with catalog:
        now = catalog.generation()
        made, _, count = now.rpartition("/")
        assert catalog.changed_since(f"{made}/{int(count) - 1}")[0] == {"notes/Beta.md"}
        assert catalog.changed_since(now)[0] is None
        assert catalog.changed_since(f"{made}/{int(count) + 1}")[0] is None
        assert catalog.changed_since(f"another/{count}")[0] is None


def test_a_free_name_is_looked_up_in_the_adopted_folder_names_until_the_store_writes(tmp_path: Path) -> None:
    """The warm server's names of each folder, adopted with its scan, answer which file names are taken
    (in any case) instead of a listing of the folder, until this Store changes a file."""
    from kb.service.lookup import free_path
    from kb.store import FolderNames, folder_names, name_keys

    notes = _notable(tmp_path)
    (notes / "Folder named like a note.MD").mkdir()
    store = Store(tmp_path)
    listed = name_keys(notes)
    assert "folder named like a note.md" in listed and "note 3.md" in listed
    assert free_path(store, "Folder named like a note") == "notes/Folder named like a note (2).md"
    assert free_path(store, "note 3") == "notes/note 3 (2).md"
    assert free_path(store, "note 3", except_path="notes/Note 3.md") == "notes/note 3.md"
    scan = store.scan()
    kept = FolderNames(listed | {"ghost.md"})
    assert len(kept) == len(listed) + 1 and all(key in kept for key in listed)
    assert "ghost.md" in kept and "Ghost.md" not in kept and "other.md" not in kept
    store.adopt(scan, {"": kept, "sub": folder_names(notes / "sub")})
    assert free_path(store, "Ghost") == "notes/Ghost (2).md"  # the adopted names said so, not the disk
    assert free_path(store, "deep", folder="sub") == "notes/sub/deep (2).md"
    assert free_path(store, "New", folder="elsewhere") == "notes/elsewhere/New.md"  # not adopted: listed
    store.write_atomic("notes/Written.md", b"# Written\n")
    assert free_path(store, "Ghost") == "notes/Ghost.md"  # the store changed a file: the folder is read
    assert free_path(store, "written") == "notes/written (2).md"
    taken: set[str] = set()
    assert [free_path(store, "Twice", taken=taken) for _ in range(2)] == [
        "notes/Twice.md",
        "notes/Twice (2).md",
    ]
