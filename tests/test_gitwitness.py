"""git's word that no note changed (kb.gitwitness): a cold search that has it does not walk the notes, and
every change made outside kb is still found."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kb import gitwitness
from kb.index import NoteIndex, RefreshReport
from kb.index.catalog import Catalog
from kb.store import Store
from tests.conftest import PROGRAM, Run, cold_runner

SETTLED_NS = gitwitness.SETTLED_NS


@pytest.fixture(autouse=True)
def _no_checks_left(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # kept at once (the two seconds that guard against changes within one tick are tested on their own)
    monkeypatch.setattr(gitwitness, "SETTLED_NS", 0)
    gitwitness.forget()
    yield
    gitwitness.forget()


@pytest.fixture
def kb(root: Path) -> Callable[..., Run]:
    run = cold_runner()
    for title, body in (("Alpha", "apple banana"), ("Beta", "cherry damson"), ("Gamma", "elder fig")):
        assert run("add", title, "-b", body).exit_code == 0
    assert run("search", "apple").exit_code == 0
    return run


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _refresh(root: Path) -> RefreshReport:
    """What a cold search does first: git asked as the process starts, then the index brought up to date."""
    gitwitness.forget()
    gitwitness.start(str(root))
    return NoteIndex(root).refresh()


def _witness(root: Path) -> str | None:
    catalog = Catalog.open(root / "index")
    assert catalog is not None
    with catalog:
        return catalog.agreed()[1]


def _holds(root: Path) -> bool:
    """Whether the witness the catalog keeps holds now, by a check started anew."""
    gitwitness.forget()
    gitwitness.start(str(root))
    return gitwitness.holds(str(root), Store(root).layout, _witness(root)) is not None


def _no_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    def walk(self: Store, keep: bool = False) -> None:
        raise AssertionError("the notes were walked")

    monkeypatch.setattr(Store, "scan", walk)


def test_unchanged_notes_are_not_walked(
    kb: Callable[..., Run], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refresh(root)
    assert _witness(root) is not None
    with monkeypatch.context() as patched:
        _no_walk(patched)
        assert _refresh(root) == RefreshReport(0, 0, 0, False, _refresh_generation(root))
        assert kb("search", "banana").exit_code == 0  # no checks started in this process: a walk, patched out
    gitwitness.forget()


def _refresh_generation(root: Path) -> str:
    catalog = Catalog.open(root / "index")
    assert catalog is not None
    with catalog:
        return catalog.generation()


def _append(root: Path) -> str:
    with open(root / "notes" / "Alpha.md", "a") as f:
        f.write("\nappended quince\n")
    return "quince"


def _same_size(root: Path) -> str:
    path = root / "notes" / "Beta.md"
    text = path.read_text()
    assert "cherry" in text
    path.write_text(text.replace("cherry", "raisin"))
    return "raisin"


def _create(root: Path) -> str:
    (root / "notes" / "New one.md").write_text("# New one\n\nwalnut\n")
    return "walnut"


def _create_deep(root: Path) -> str:
    (root / "notes" / "deep" / "er").mkdir(parents=True)
    (root / "notes" / "deep" / "er" / "Far.md").write_text("# Far\n\nhazelnut\n")
    return "hazelnut"


def _committed_by_hand(root: Path) -> str:
    (root / "notes" / "Hand.md").write_text("# Hand\n\npistachio\n")
    _git(root, "add", "notes/Hand.md")
    _git(root, "-c", "user.name=A", "-c", "user.email=a@b", "commit", "-q", "-m", "by hand")
    return "pistachio"


def _rename(root: Path) -> str:
    os.replace(root / "notes" / "Gamma.md", root / "notes" / "Moved.md")
    return "elder"


def _assume_unchanged(root: Path) -> str:
    _git(root, "update-index", "--assume-unchanged", "notes/Alpha.md")
    for _ in range(2):  # the index was rewritten: scanned; the bit keeps git's word from being kept
        _refresh(root)
        assert not _holds(root)
    return _append(root)


@pytest.mark.parametrize(
    "change",
    [_append, _same_size, _create, _create_deep, _committed_by_hand, _rename, _assume_unchanged],
    ids=lambda f: f.__name__.strip("_"),
)
def test_changes_made_outside_are_found(
    kb: Callable[..., Run], root: Path, change: Callable[[Path], str]
) -> None:
    _refresh(root)
    assert _witness(root) is not None
    word = change(root)
    report = _refresh(root)
    assert report.added + report.updated + report.removed > 0
    found = kb("search", word, "-l")
    assert found.exit_code == 0, word
    assert all((root / path).is_file() for path in found.stdout.splitlines())


def test_a_deleted_note_is_gone(kb: Callable[..., Run], root: Path) -> None:
    _refresh(root)
    (root / "notes" / "Gamma.md").unlink()
    assert _refresh(root).removed == 1
    assert kb("search", "elder").exit_code == 1


def test_a_changed_layout_is_not_vouched_for(kb: Callable[..., Run], root: Path) -> None:
    (root / "notes" / "drafts").mkdir()
    (root / "notes" / "drafts" / "Draft.md").write_text("# Draft\n\nmulberry\n")
    _git(root, "add", "notes/drafts/Draft.md")
    _git(root, "-c", "user.name=A", "-c", "user.email=a@b", "commit", "-q", "-m", "draft")
    _refresh(root)
    _refresh(root)
    assert _witness(root) is not None
    assert kb("search", "mulberry").exit_code == 0
    (root / "kb.toml").write_text('notes = "notes"\nignore = ["notes/drafts"]\n')
    assert _refresh(root).removed == 1
    assert kb("search", "mulberry").exit_code == 1


def test_untracked_files_that_are_not_notes_keep_the_word(kb: Callable[..., Run], root: Path) -> None:
    (root / "notes" / "picture.png").write_bytes(b"png")
    (root / "notes" / ".hidden").mkdir()
    (root / "notes" / ".hidden" / "Secret.md").write_text("x")
    (root / "scratch.txt").write_text("x")
    _refresh(root)
    assert _witness(root) is not None
    (root / "notes" / "Other.md").write_text("# Other\n\nalmond\n")
    assert _refresh(root).added == 1


def test_without_git_the_notes_are_walked(
    kb: Callable[..., Run], root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    _refresh(root)
    assert _witness(root) is None
    _append(root)
    assert _refresh(root).updated == 1


def test_another_knowledge_base_gets_no_word(kb: Callable[..., Run], root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert kb("--kb", str(other), "add", "Other", "-b", "plum").exit_code == 0
    for place in (root, other):
        _refresh(place)
        assert _holds(place)
    gitwitness.forget()
    gitwitness.start(str(root))
    assert gitwitness.holds(str(other), Store(other).layout, _witness(other)) is None
    assert gitwitness.holds(str(root), Store(root).layout, _witness(root)) == frozenset()


def test_the_program_finds_an_outside_edit(
    kb: Callable[..., Run], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "KB_SERVER": "0"}

    def search(word: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([str(PROGRAM), "search", word, "-l"], capture_output=True, env=env, check=False)

    time.sleep(SETTLED_NS / 1e9 + 0.1)  # the program's own setting, not this process's patched one
    assert search("banana").returncode == 0
    assert search("banana").returncode == 0
    assert _witness(root) is not None  # the program asked git, and its word was kept
    for i in range(3):
        with open(root / "notes" / "Alpha.md", "a") as f:
            f.write(f"\nround{i}word\n")
        done = search(f"round{i}word")
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"notes/Alpha.md\n"


def test_a_submodule_where_notes_may_be_gets_no_word(kb: Callable[..., Run], root: Path) -> None:
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    _git(root, "update-index", "--add", "--cacheinfo", f"160000,{head.stdout.strip()},notes/sub")
    _git(root, "-c", "user.name=A", "-c", "user.email=a@b", "commit", "-q", "-m", "a submodule")
    (root / "notes" / "sub").mkdir()
    _refresh(root)
    _refresh(root)
    assert not _holds(root)
    (root / "notes" / "sub" / "Inside.md").write_text("# Inside\n\nlychee\n")  # git looks away from it
    assert _refresh(root).added == 1
    assert kb("search", "lychee").exit_code == 0


def test_an_empty_folder_keeps_the_word(
    kb: Callable[..., Run], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "notes" / "empty").mkdir()
    _refresh(root)
    _refresh(root)
    with monkeypatch.context() as patched:
        _no_walk(patched)
        _refresh(root)
    (root / "notes" / "empty" / "Now.md").write_text("# Now\n\nkumquat\n")
    assert _refresh(root).added == 1


def test_a_new_name_differing_only_in_case_is_seen(kb: Callable[..., Run], root: Path) -> None:
    _git(root, "config", "core.ignorecase", "true")  # git would not list it as untracked
    _refresh(root)
    assert _holds(root)
    (root / "notes" / "ALPHA.md").write_text("---\ntitle: ALPHA upper\n---\nquokka\n")
    assert _refresh(root).added == 1
    assert kb("search", "quokka", "-l").stdout == "notes/ALPHA.md\n"


def test_a_refusal_is_kept_and_spares_the_look(
    kb: Callable[..., Run], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git(root, "update-index", "--skip-worktree", "notes/Beta.md")
    _refresh(root)
    _refresh(root)
    kept = _witness(root)
    assert kept is not None and json.loads(kept).get("refused")
    real = subprocess.run

    def no_listing(*args: object, **kwargs: object) -> object:
        raise AssertionError("git ls-files ran again")

    with monkeypatch.context() as patched:
        patched.setattr(subprocess, "run", no_listing)
        _refresh(root)
    assert subprocess.run is real
    _append(root)
    assert _refresh(root).updated == 1


def test_a_folder_changed_just_now_keeps_no_word(
    kb: Callable[..., Run], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gitwitness, "SETTLED_NS", 3_600 * 10**9)  # an hour is "just now"
    _refresh(root)
    _refresh(root)
    assert _witness(root) is None  # the git index file was written just now
    long_ago = time.time() - 7_200
    os.utime(root / ".git" / "index", (long_ago, long_ago))
    _refresh(root)
    assert _witness(root) is None  # and the notes folder changed just now
    monkeypatch.setattr(gitwitness, "SETTLED_NS", 0)
    _refresh(root)
    assert _witness(root) is not None


def test_outside_edits_not_committed_keep_the_word(
    kb: Callable[..., Run], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(root)  # not committed: git names it
    _refresh(root)
    _refresh(root)
    assert _holds(root)
    with monkeypatch.context() as patched:
        _no_walk(patched)
        assert _refresh(root) == RefreshReport(0, 0, 0, False, _refresh_generation(root))
        with open(root / "notes" / "Alpha.md", "a") as f:  # the named note again
            f.write("\nsecond persimmon\n")
        assert _refresh(root).updated == 1
        assert _holds(root)  # kept again: the rows agree with the notes it names
        _same_size(root)  # another, committed note: git names it now
        assert _refresh(root).updated == 1
    assert kb("search", "persimmon", "-l").stdout == "notes/Alpha.md\n"
    assert kb("search", "raisin", "-l").stdout == "notes/Beta.md\n"


def test_a_note_made_after_the_scan_began_keeps_no_word(
    kb: Callable[..., Run], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search that stalled (Ctrl-Z, a slow disk) longer than SETTLED_NS between its scan and keeping the
    witness: a note made meanwhile must not be taken as seen."""
    _refresh(root)
    assert _holds(root)
    assert kb("add", "Other", "-b", "text").exit_code == 0  # the witness no longer holds: a scan
    monkeypatch.setattr(gitwitness, "SETTLED_NS", 10**9)
    _refresh(root)  # the rows agree with a scan: too soon after the add for a witness
    assert _witness(root) is None
    time.sleep(1.1)  # what the add changed is settled
    gitwitness.forget()
    gitwitness.start(str(root))
    scan = Store.scan

    def late(self: Store, keep: bool = False) -> object:  # after the scan, before the witness is kept
        found = scan(self, keep)
        (root / "notes" / "Late.md").write_text("# Late\n\nlatecomer\n")
        time.sleep(1.1)  # the stall
        return found

    with monkeypatch.context() as patched:
        patched.setattr(Store, "scan", late)
        NoteIndex(root).refresh()
    assert _witness(root) is None
    assert _refresh(root).added == 1
    assert kb("search", "latecomer", "-l").stdout == "notes/Late.md\n"


def test_a_tracked_name_that_is_not_utf8_is_left_out(kb: Callable[..., Run], root: Path) -> None:
    odd = os.fsencode(root / "notes") + b"/caf\xe9.md"
    with open(odd, "wb") as f:
        f.write(b"# Cafe\n\napple latin\n")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=A", "-c", "user.email=a@b", "commit", "-q", "-m", "a name not UTF-8")
    _refresh(root)
    _refresh(root)
    assert _holds(root)
    with open(odd, "ab") as f:  # git names it now
        f.write(b"more\n")
    assert _refresh(root) == RefreshReport(0, 0, 0, False, _refresh_generation(root))
    assert kb("search", "apple", "-l").stdout == "notes/Alpha.md\n"


def test_git_runs_no_filter_or_hook_of_the_repository(root: Path, tmp_path: Path) -> None:
    """A repository kb adopted may define a clean filter for every file: git reads a racily clean file
    through it, so git's check of the notes turns every filter off."""
    from tests.test_security import trapped_folder

    markers = trapped_folder(root, tmp_path)
    kb = cold_runner()
    assert kb("init", str(root)).exit_code == 0
    assert kb("add", "Mine", "-b", "my words").exit_code == 0  # racily clean: committed just now
    env = {**os.environ, "KB_SERVER": "0"}
    for _ in range(2):
        done = subprocess.run(
            [str(PROGRAM), "search", "words", "-l"], capture_output=True, env=env, check=False
        )
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in markers.iterdir()) == []
