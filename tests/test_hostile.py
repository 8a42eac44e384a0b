"""Broken notes, hostile titles, unsafe repository states, failed writes: one-line errors, nothing lost."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.history import message_for_git
from tests.conftest import git, log_subjects, snapshot, write_editor


def one_line_error(r, code: int = 1) -> str:
    assert r.exit_code == code, (r.exit_code, r.stderr)
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


@pytest.fixture
def with_note(kb, root):
    assert kb("add", "Good", "-t", "t", "-b", "fine").exit_code == 0
    return root


BROKEN = {
    "Bad Yaml.md": (b"---\ntitle: [oops\ntags: x\n---\n\nbody words\n", "invalid front matter at line 3"),
    "No Close.md": (b"---\ntitle: x\n\nbody without closing\n", "no closing '---'"),
    "Latin1.md": (b"---\ntitle: Caf\xe9\n---\nbody\n", "not valid UTF-8 at byte offset 14"),
    "Dupes.md": (b"---\ntitle: a\ntitle: b\n---\nbody\n", "duplicate key 'title'"),
    "Bomb.md": (
        b"---\na: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*" + bytes([97 + i])] * 9)) for i in range(9)
        )
        + b"---\nbody\n",
        "aliases",
    ),
    "Python.md": (
        b"---\nx: !!python/object/apply:os.system [echo pwned]\n---\nbody\n",
        "invalid front matter",
    ),
    "Huge Front.md": (b"---\n" + b"k: " + b"y" * 70000 + b"\n---\nbody\n", "larger than"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_notes_are_listed_shown_and_never_rewritten(name, kb, with_note):
    root = with_note
    data, problem = BROKEN[name]
    (root / "notes" / name).write_bytes(data)
    listing = kb("list")
    assert listing.exit_code == 0
    assert f"notes/{name}" in listing.stdout
    assert problem in listing.stderr and "Warning:" in listing.stderr
    shown = kb("show", f"notes/{name}", "--raw")
    assert shown.exit_code == 0 and shown.stdout_bytes == data
    assert problem in shown.stderr
    kb("list")  # commits nothing: reading never writes
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "outside")
    before = snapshot(root)
    err = one_line_error(kb("edit", f"notes/{name}", "-a", "more"))
    assert f"cannot rewrite notes/{name}" in err and problem in err
    assert snapshot(root) == before
    one_line_error(kb("mv", f"notes/{name}", "Renamed"))
    assert snapshot(root) == before


def test_the_editor_can_fix_broken_front_matter(kb, with_note, tmp_path):
    root = with_note
    path = root / "notes" / "Bad Yaml.md"
    path.write_bytes(BROKEN["Bad Yaml.md"][0])
    fix = write_editor(tmp_path, "sed -i 's/\\[oops/fixed/' \"$1\"")
    r = kb("edit", "notes/Bad Yaml.md", "--editor", env={"EDITOR": fix})
    assert r.exit_code == 0, r.stderr
    text = path.read_text()
    assert "title: fixed\n" in text and "modified: '" in text and text.endswith("\nbody words\n")


def test_an_editor_that_breaks_the_front_matter_saves_nothing(kb, with_note, tmp_path):
    root = with_note
    before = snapshot(root)
    breaker = write_editor(tmp_path, "sed -i 's/^title: Good/title: [Good/' \"$1\"")
    err = one_line_error(kb("edit", "Good", "--editor", env={"EDITOR": breaker}))
    assert "not saved: invalid front matter at line 4" in err
    kept = Path(err.strip().rsplit(" ", 1)[-1])
    assert "title: [Good" in kept.read_text()
    assert snapshot(root) == before


def test_editor_crash_on_edit_saves_nothing_and_keeps_the_text(kb, with_note, tmp_path):
    root = with_note
    before = snapshot(root)
    crash = write_editor(tmp_path, 'echo "half typed" >> "$1"; kill -9 $$')
    err = one_line_error(kb("edit", "Good", "--editor", env={"EDITOR": crash}))
    assert "exited with status" in err
    assert "half typed" in Path(err.strip().rsplit(" ", 1)[-1]).read_text()
    assert snapshot(root) == before


def test_binary_files_and_links_in_notes_are_skipped(kb, with_note, tmp_path):
    root = with_note
    (root / "notes" / "blob.md").write_bytes(b"\x00\x01\x02binary")
    secret = tmp_path / "secret.md"
    secret.write_text("---\ntitle: Secret\n---\nsecret\n")
    (root / "notes" / "link.md").symlink_to(secret)
    r = kb("list")
    assert r.exit_code == 0
    assert "blob.md" not in r.stdout and "link.md" not in r.stdout and "Good" in r.stdout
    assert "notes/blob.md: skipped, binary file" in r.stderr
    assert "notes/link.md: a symbolic link to a file; not followed" in r.stderr
    one_line_error(kb("show", "Secret"))
    one_line_error(kb("show", "notes/link.md"))


def test_names_that_are_not_utf8_are_warned_of_and_break_nothing(kb, with_note):
    """A file or folder whose name is not UTF-8 (Latin-1 bytes, say): neither the search index nor the
    catalog can hold its path. It is not read as a note, every command says so, and nothing fails."""
    root = with_note
    notes = os.fsencode(root / "notes")
    with open(notes + b"/Caf\xe9.md", "wb") as f:
        f.write(b"# Cafe\n\nA quince.\n")
    os.mkdir(notes + b"/D\xe9p\xf4t")
    with open(notes + b"/D\xe9p\xf4t/Inside.md", "wb") as f:
        f.write(b"# Inside\n\nA quince too.\n")
    file_warning = "notes/Caf\\xe9.md: the name is not UTF-8; not read (rename it)"
    folder_warning = "notes/D\\xe9p\\xf4t: the name is not UTF-8; not read (rename it)"
    found = kb("search", "quince")
    assert found.exit_code == 1 and "Traceback" not in found.stderr and "unexpected" not in found.stderr
    listed = kb("list")
    assert listed.exit_code == 0 and "Good" in listed.stdout and "Cafe" not in listed.stdout
    assert file_warning in listed.stderr and folder_warning in listed.stderr
    checked = kb("check")
    assert checked.exit_code == 1 and "kb cannot see this file: the name is not UTF-8" in checked.stdout
    added = kb("add", "After them", "-b", "A quince at last.")
    assert added.exit_code == 0 and "outside" not in added.stdout + added.stderr  # nothing kb commits
    untracked = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-z"], capture_output=True)
    assert sorted(untracked.stdout.split(b"\0")[:-1]) == [b"?? notes/Caf\xe9.md", b"?? notes/D\xe9p\xf4t/"]
    assert kb("search", "quince", "-l").stdout.strip() == "notes/After them.md"
    os.rename(notes + b"/Caf\xe9.md", notes + b"/Cafe.md")
    assert sorted(kb("search", "quince", "-l").stdout.splitlines()) == [
        "notes/After them.md",
        "notes/Cafe.md",
    ]


def test_arguments_and_a_knowledge_base_path_that_are_not_utf8_are_refused_in_one_line(
    kb, with_note, monkeypatch, tmp_path
):
    odd = os.fsdecode(b"caf\xe9")
    for args in (["show", odd], ["edit", odd, "-a", "x"], ["list", "-t", odd], ["search", odd], ["add", odd]):
        r = kb(*args)
        assert r.exit_code == 2 and r.stderr == "Error: an argument is not UTF-8: caf\\xe9\n", args
    home = os.fsdecode(os.fsencode(tmp_path) + b"/\xe9kb")
    monkeypatch.setenv("KB_HOME", home)
    r = kb("add", "Anything", "-b", "x")
    assert r.exit_code == 2 and "the knowledge base path is not UTF-8" in r.stderr
    assert r.stderr.count("\n") == 1 and not os.path.exists(os.fsencode(home))


def test_an_empty_note_is_valid_and_left_alone(kb, with_note):
    root = with_note
    empty = root / "notes" / "Empty.md"
    empty.write_bytes(b"")
    assert "Empty" in kb("list").stdout
    assert kb("edit", "Good", "-a", "x").exit_code == 0
    assert empty.read_bytes() == b""
    assert kb("show", "Empty").stdout_bytes == b""


@pytest.mark.parametrize(
    ("title", "code"),
    [
        ("", 2),
        ("   ", 2),
        ("two\nlines", 2),
        pytest.param(
            "nul\x00byte", 2, marks=pytest.mark.cold_only("a process's arguments cannot hold a NUL")
        ),
        ("esc\x1b", 2),
    ],
)
def test_unwritable_titles_are_refused(title, code, kb, root):
    one_line_error(kb("add", title, "-b", "x"), code)
    assert not (root / "notes").exists() or not any((root / "notes").iterdir())


@pytest.mark.parametrize(
    ("title", "filename"),
    [
        ("../../escape", "∕..∕escape.md"),
        ("/etc/passwd", "∕etc∕passwd.md"),
        ("~", "~.md"),
        ("-rf --all", "-rf --all.md"),
        ("--upload-pack=x", "--upload-pack=x.md"),
        ("CON", "CON_.md"),
        ("aux", "aux_.md"),
        ("dot.", "dot.md"),
        ("..", "Untitled.md"),
        ("a\\b", "a∖b.md"),
        ("🦀 crab ‮rtl‬ zero​width", "🦀 crab ‮rtl‬ zero​width.md"),
    ],
)
def test_hostile_titles_land_inside_notes(title, filename, kb, root):
    r = kb("add", "-b", "x", "--", title)
    assert r.exit_code == 0, r.stderr
    files = [p.name for p in (root / "notes").iterdir()]
    assert files == [filename]
    assert json.loads(kb("show", f"notes/{filename}", "--json").stdout)["title"] == title.strip()
    assert git(root, "status", "--porcelain") == ""


def test_nfc_nfd_and_case_variants_are_one_note(kb, root):
    nfc = unicodedata.normalize("NFC", "Café")
    nfd = unicodedata.normalize("NFD", "Café")
    assert kb("add", nfc, "-b", "x").exit_code == 0
    one_line_error(kb("add", nfd, "-b", "y"))
    one_line_error(kb("add", "CAFÉ", "-b", "y"))
    assert len(list((root / "notes").iterdir())) == 1


def test_file_name_clash_gets_a_number(kb, root):
    assert kb("add", "a/b", "-b", "x").exit_code == 0
    assert kb("add", "a∕b", "-b", "y").exit_code == 0
    assert sorted(p.name for p in (root / "notes").iterdir()) == ["a∕b (2).md", "a∕b.md"]


def test_very_long_title(kb, root):
    title = "Long " * 200
    assert kb("add", title, "-b", "x").exit_code == 0
    [path] = (root / "notes").iterdir()
    assert len(path.name.encode()) <= 255
    assert json.loads(kb("show", title.strip(), "--json").stdout)["title"] == title.strip()


@pytest.mark.parametrize("state", ["merge", "rebase", "detached", "index.lock"])
def test_writes_refuse_in_unsafe_repository_states(state, kb, with_note, monkeypatch):
    root = with_note
    monkeypatch.setenv("KB_LOCK_TIMEOUT", "0.2")  # how long a stale index.lock is waited for
    git_dir = root / ".git"
    if state == "merge":
        (git_dir / "MERGE_HEAD").write_text(git(root, "rev-parse", "HEAD"))
    elif state == "rebase":
        (git_dir / "rebase-merge").mkdir()
    elif state == "detached":
        git(root, "checkout", "-q", "--detach")
    else:
        (git_dir / "index.lock").write_text("")
    (root / "notes" / "Good.md").write_text("edited outside\n")
    before = snapshot(root)
    head_file = (git_dir / "HEAD").read_bytes()
    for args in (["add", "New", "-b", "x"], ["edit", "Good", "-a", "y"], ["rm", "Good"], ["mv", "Good", "Z"]):
        err = one_line_error(kb(*args))
        assert "kb has changed nothing" in err
        assert snapshot(root) == before
    assert (git_dir / "HEAD").read_bytes() == head_file
    assert kb("list").exit_code == 0


def test_a_second_writer_waits_then_fails_clearly(kb, with_note):
    root = with_note
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        err = one_line_error(kb("add", "Blocked", "-b", "x", env={"KB_LOCK_TIMEOUT": "0.3"}))
        assert "another kb process is changing the knowledge base" in err
    finally:
        os.close(fd)
    assert kb("add", "Blocked", "-b", "x").exit_code == 0


@pytest.mark.cold_only("it makes a file appear in the middle of kb's write, in this process")
@pytest.mark.parametrize(
    ("linked", "failing"),
    [(True, False), (False, False), (True, True)],
    ids=["hard-links", "no-hard-links", "write-fails"],
)
def test_a_file_made_while_kb_adds_a_note_of_its_name_is_never_replaced(
    linked, failing, kb, with_note, monkeypatch
):
    """Between the look for a free file name and the write, another program makes a file of that name:
    kb leaves it as it is and changes nothing (a new note's file is linked into place, never renamed over
    one; where the file system has no hard links, it looks again just before the rename)."""
    from kb import store

    root = with_note
    target = root / "notes" / "Raced.md"
    made, synced = tempfile.mkstemp, os.fsync

    def racing(*args: object, **kwargs: object) -> tuple[int, str]:
        found = made(*args, **kwargs)  # type: ignore[call-overload]
        if not target.exists():
            target.write_text("# By hand\n\nPrecious.\n")
        return found

    monkeypatch.setattr(store.tempfile, "mkstemp", racing)
    if failing:  # the write fails before its file is in place: the file made meanwhile is not kb's to delete

        def full(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(store.os, "fsync", full)
    if not linked:

        def no_links(*args: object, **kwargs: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(store.os, "link", no_links)
    head = git(root, "rev-parse", "HEAD")
    r = kb("add", "Raced", "-b", "From kb.")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    said = "No space left on device" if failing else "notes/Raced.md appeared while kb was writing it"
    assert said in r.stderr and "nothing was changed" in r.stderr
    assert target.read_text() == "# By hand\n\nPrecious.\n"
    assert git(root, "rev-parse", "HEAD") == head
    assert not [p for p in (root / "notes").iterdir() if p.name.startswith(".kb-tmp-")]
    monkeypatch.setattr(store.tempfile, "mkstemp", made)
    monkeypatch.setattr(store.os, "fsync", synced)
    again = kb("add", "Raced", "-b", "From kb.")
    assert again.exit_code == 0 and "notes/Raced (2).md" in again.stderr + again.stdout


@pytest.mark.cold_only("it makes kb's own writes fail in this process")
@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_write_leaves_the_original_intact(failing, kb, with_note, monkeypatch):
    root = with_note
    before = snapshot(root)
    real = {"write": os.write, "fsync": os.fsync, "replace": os.replace}

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "write":
        import kb.store as store_module

        original_fdopen = os.fdopen

        class Full:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                boom()

            def flush(self):
                pass

            def fileno(self):
                return self.handle.fileno()

        monkeypatch.setattr(store_module.os, "fdopen", lambda fd, mode: Full(original_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(os, failing, boom)
    err = one_line_error(kb("edit", "Good", "-a", "never written"))
    assert "No space left on device" in err and "the old file is intact" in err
    monkeypatch.setattr(os, failing, real[failing])
    assert snapshot(root) == before
    assert not [p for p in root.rglob(".kb-tmp-*")]


def test_git_missing_is_a_clear_error(kb, root, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    err = one_line_error(kb("add", "X", "-b", "x", env={"PATH": str(empty)}))
    assert "git is not installed" in err


def test_usage_errors_exit_2_in_one_line(kb):
    one_line_error(kb("add"), 2)
    one_line_error(kb("add", "X", "--no-such-option"), 2)
    one_line_error(kb("nope"), 2)
    one_line_error(kb("add", "X", "-b", "x", "--editor"), 2)
    one_line_error(kb("edit", "X", "-b", "x", "-a", "y"), 2)
    one_line_error(kb("add", "X", "-t", "a//b", "-b", "x"), 2)


def test_unknown_note_for_every_command(kb, with_note):
    for args in (["show", "Nope"], ["edit", "Nope", "-a", "x"], ["rm", "Nope"], ["mv", "Nope", "Y"]):
        assert "no note matches 'Nope'" in one_line_error(kb(*args))


def test_non_utf8_or_nul_stdin_is_refused(kb, root):
    one_line_error(kb("add", "X", input=b"caf\xe9\n"), 2)
    assert "NUL bytes" in one_line_error(kb("add", "X", input=b"a\x00b\n"), 2)
    assert not root.exists() or not (root / "notes" / "X.md").exists()


# ---------------------------------------------------------------- hypothesis round trips through the CLI

safe_text = st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs"))
any_title = st.text(alphabet=safe_text, min_size=1, max_size=120).filter(lambda s: s.strip())
any_tag = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs", "Zs")), max_size=20
).filter(lambda s: s.strip("/ ") and "//" not in s and "," not in s)
any_body = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=300
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=any_title, tags=st.lists(any_tag, max_size=3, unique=True), body=any_body)
def test_any_title_tags_and_body_round_trip(kb, title, tags, body):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "kb"
        args = ["--kb", str(root), "add", "-b", body]
        for tag in tags:
            args += ["-t", tag]
        args += ["--", title]
        r = kb(*args)
        if r.exit_code == 2:  # a tag kb cannot write (e.g. only slashes and spaces inside)
            assert r.stderr.startswith("Error: invalid tag")
            return
        assert r.exit_code == 0, r.stderr
        files = list((root / "notes").iterdir())
        assert len(files) == 1 and files[0].parent == root / "notes"
        shown = json.loads(kb("--kb", str(root), "show", f"notes/{files[0].name}", "--json").stdout)
        assert shown["title"] == title.strip()
        assert len(shown["tags"]) == len(tags) or "#" in body  # a body's own #tags are tags too
        assert body.rstrip("\n") in shown["body"] or not body.strip()
        assert log_subjects(root)[0] == f"Add: {message_for_git(title.strip())}"
        # a knowledge base outside the test's folder: its server (with --warm) ends before the folder goes
        assert kb("--kb", str(root), "server", "stop").exit_code == 0


def test_an_earlier_revision_imported_keeps_its_message_readable(kb, root, tmp_path):
    title = "Caf\u00e9 \ufdd0 na\u00efve"
    for name, modified in (("new", "2024-05-01"), ("old", "2024-01-01")):
        note = tmp_path / name / "notes" / "X.md"
        note.parent.mkdir(parents=True)
        note.write_text(
            f"---\ntitle: '{title}'\ncreated: '2023-01-01T00:00:00.000Z'\n"
            f"modified: '{modified}T00:00:00.000Z'\n---\n\n{name} text\n"
        )
        assert kb("import", str(tmp_path / name)).exit_code == 0
    subjects = log_subjects(root)
    assert "Merge: Import: Caf\u00e9 \ufffd na\u00efve (earlier revision)" in subjects, subjects
    assert all("\u00c3" not in subject for subject in subjects)  # no UTF-8 read as Latin-1


def test_a_title_git_would_garble_keeps_the_rest_of_the_message(kb, root):
    title = "Caf\u00e9 \ufdd0 \U0010ffff na\u00efve"  # two noncharacters among accented letters
    assert kb("add", title, "-b", "x").exit_code == 0
    assert log_subjects(root)[0] == "Add: Caf\u00e9 \ufffd \ufffd na\u00efve"  # not read as Latin-1
    assert json.loads(kb("show", title, "--json").stdout)["title"] == title  # the note keeps its title


@pytest.mark.cold_only("it makes kb's own commits fail in this process")
def test_a_failed_commit_puts_every_file_back(kb, with_note, monkeypatch):
    root = with_note
    kb("add", "Other", "-b", "o")
    before = snapshot(root)
    from kb.errors import GitError
    from kb.history import History

    real_commit = History.commit

    def fail(self, paths, message, *args, **kwargs):
        if message.startswith(("Add:", "Edit:", "Rename:", "Delete:")):
            raise GitError("git commit failed: simulated disk full")
        return real_commit(self, paths, message, *args, **kwargs)

    monkeypatch.setattr(History, "commit", fail)
    for args in (
        ["add", "New", "-b", "x"],
        ["edit", "Good", "-a", "more"],
        ["mv", "Good", "Renamed"],
        ["rm", "Good"],
    ):
        err = one_line_error(kb(*args))
        assert "simulated disk full" in err and "nothing was changed" in err
        assert snapshot(root) == before, args


def test_a_huge_note_is_readable_and_searchable_with_a_cap(kb, root):
    kb("init")
    line = "giant " + "x" * (10 * 1024 * 1024) + " needle\n"
    (root / "notes" / "Huge.md").write_text("---\ntitle: Huge\n---\n\nfindme " + line)
    r = kb("search", "findme", "-l")
    assert r.exit_code == 0 and r.stdout == "notes/Huge.md\n"
    assert kb("show", "Huge", "--raw").stdout_bytes.endswith(b" needle\n")
    assert kb("list").exit_code == 0


def test_git_too_old_is_a_clear_error(kb, root, tmp_path):
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\necho 'git version 2.1.0'\n")
    (fake / "git").chmod(0o755)
    err = one_line_error(kb("add", "X", "-b", "x", env={"PATH": f"{fake}:{os.environ['PATH']}"}))
    assert "too old" in err and "2.25" in err


def test_crlf_and_bom_notes_keep_their_bytes_through_an_edit(kb, root):
    kb("init")
    original = (
        "\ufeff---\r\ntitle: Windows\r\nmodified: '2021-01-01T00:00:00.000Z'\r\n---\r\n\r\nline one\r\n"
    )
    (root / "notes" / "Windows.md").write_bytes(original.encode())
    assert kb("edit", "Windows", "-a", "line two").exit_code == 0
    data = (root / "notes" / "Windows.md").read_bytes().decode()
    assert data.startswith("\ufeff---\r\ntitle: Windows\r\nmodified: '2026-01-02T03:04:05.678Z'\r\n---\r\n")
    assert data.endswith("\r\n\r\nline one\r\n\r\nline two\r\n")


@pytest.fixture
def read_only(tmp_path):
    """A read-only view of a folder through a bind mount (needs root; skipped elsewhere)."""
    import subprocess

    mounts = []

    def make(source: Path) -> Path:
        target = tmp_path / "read-only"
        target.mkdir()
        steps = [
            ["mount", "--bind", str(source), str(target)],
            ["mount", "-o", "remount,ro,bind", str(target)],
        ]
        for step in steps:
            if subprocess.run(step, capture_output=True).returncode != 0:
                if mounts:
                    subprocess.run(["umount", str(target)], capture_output=True)
                pytest.skip("cannot make a read-only bind mount here")
            mounts.append(target)
        return target

    yield make
    for target in mounts[:1]:
        # lazy: a git helper process of the in-process runs may still have its working folder there
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_read_only_file_system_reads_work_and_writes_fail_cleanly(kb, with_note, read_only):
    root = with_note
    kb("edit", "Good", "-a", "second")
    assert kb("search", "fine", "-l").exit_code == 0  # the index is built and current
    ro = read_only(root)
    before = snapshot(ro)
    for args in (["list"], ["show", "Good"], ["search", "fine"], ["log", "Good"], ["diff", "Good"], ["tags"]):
        r = kb("--kb", str(ro), *args)
        assert r.exit_code == 0, (args, r.stderr)
    for args in (
        ["add", "New", "-b", "x"],
        ["edit", "Good", "-a", "more"],
        ["rm", "Good"],
        ["mv", "Good", "Z"],
    ):
        err = one_line_error(kb("--kb", str(ro), *args))
        assert "Read-only file system" in err or "read-only" in err.lower(), err
    assert snapshot(ro) == before


def test_impossible_dates_are_kept_and_listing_still_sorts(kb, root):
    kb("init")
    for name, created in (
        ("Feb30", "2024-02-30"),
        ("Zero", "'0000-01-01'"),
        ("Far", "10000-01-01"),
        ("Junk", "soon"),
    ):
        (root / "notes" / f"{name}.md").write_text(
            f"---\ntitle: {name}\ncreated: {created}\nmodified: {created}\n---\nx\n"
        )
    kb("add", "Real", "-b", "x")
    r = kb("list", "--sort", "created", "--json")
    assert r.exit_code == 0
    notes = json.loads(r.stdout)["notes"]
    assert notes[0]["title"] == "Real"
    assert {n["title"]: n["created"] for n in notes}["Feb30"] == "2024-02-30"
    assert "not a valid date" in r.stderr
    assert kb("edit", "Feb30", "-a", "still editable").exit_code == 0
    assert "created: 2024-02-30\n" in (root / "notes" / "Feb30.md").read_text()


# ---------------------------------------------------------------- untrusted content


@pytest.mark.parametrize(
    "args",
    [("show", "Sneaky"), ("list",), ("log",), ("log", "Sneaky"), ("diff", "Sneaky"), ("search", "sneaky")],
    ids=" ".join,
)
def test_control_sequences_and_markup_in_content_are_printed_visibly(args, kb, root):
    assert kb("add", "Sneaky", "-b", "sneaky words").exit_code == 0
    path = root / "notes" / "Sneaky.md"
    git(root, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "--allow-empty", "-m",
        "Outside \x1b]0;title\x07 [link=file:///etc/passwd]x[/link]")  # fmt: skip
    path.write_text(path.read_text() + "\nsneaky \x1b]52;c;cHduZWQ=\x07 \x1b[2J \x9b2J\n")
    r = kb(*args)
    assert r.exit_code == 0, r.stderr
    out = r.stdout + r.stderr
    assert not any(ch in out for ch in "\x1b\x07\x9b"), out


@pytest.mark.parametrize("args", [("add", "Hooked", "-b", "x"), ("reindex",), ("list",)], ids=" ".join)
def test_repository_hooks_and_fsmonitor_never_run(args, kb, with_note, tmp_path):
    root = with_note
    marker = tmp_path / "ran"
    for name in ("post-commit", "prepare-commit-msg", "reference-transaction", "post-index-change"):
        hook = root / ".git" / "hooks" / name
        hook.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
        hook.chmod(0o755)
    monitor = tmp_path / "monitor.sh"
    monitor.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    monitor.chmod(0o755)
    git(root, "config", "core.fsmonitor", str(monitor))
    (root / "notes" / "Outside.md").write_text("# Outside\n")  # so that even a read has work to do
    assert kb(*args).exit_code == 0
    assert not marker.exists()


@pytest.mark.parametrize(
    "query",
    [
        " ".join(f"NOT n{i}" for i in range(400)),
        " OR ".join(f"*x{i}*" for i in range(50)),
        " OR ".join(f"word{i}~2" for i in range(50)),
        "(" * 3000 + "x" + ")" * 3000,
        "created:>1",
        "modified:[x to y]",
    ],
    ids=["400 NOT", "50 wildcards", "50 fuzzy", "3000 parentheses", "date comparison", "date range"],
)
def test_queries_built_to_be_slow_are_usage_errors(query, kb, with_note):
    err = one_line_error(kb("search", "--", query), code=2)
    assert "Recursion" not in err and "parseable" not in err


def test_an_unreachable_or_unrelated_remote_changes_nothing(kb, with_note, tmp_path):
    root = with_note
    before = snapshot(root)
    one_line_error(kb("sync", "--remote", str(tmp_path / "nowhere.git")))
    assert snapshot(root) == before and git(root, "remote") == ""
    other = tmp_path / "other"
    assert (
        kb(
            "--kb", str(other), "add", "Theirs", "-b", "t", env={"KB_NOW": "2025-01-01T00:00:00.000Z"}
        ).exit_code
        == 0
    )
    bare = tmp_path / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert kb("--kb", str(other), "sync", "--remote", str(bare)).exit_code == 0
    err = one_line_error(kb("sync", "--remote", str(bare)))
    assert "--allow-unrelated" in err
    assert snapshot(root) == before and git(root, "remote") == ""


def test_an_editor_that_makes_the_title_not_text_saves_nothing(kb, with_note, tmp_path):
    root = with_note
    before = snapshot(root)
    editor = write_editor(tmp_path, "sed -i 's/^title: .*/title: {a: 1}/' \"$1\"")
    err = one_line_error(kb("edit", "Good", "--editor", env={"EDITOR": editor}), code=2)
    assert "'title' is not text" in err
    assert snapshot(root) == before


def test_a_title_or_file_name_with_a_line_break_stays_on_its_line(kb, root):
    assert kb("add", "Plain", "-b", "body words").exit_code == 0
    notes = root / "notes"
    (notes / "Weird.md").write_text('---\ntitle: "two\\nlines\\tand a tab"\n---\n\nbody words\n')
    (notes / "new\nline\tname.md").write_text("# Named\n\nbody words\n")
    (notes / "Carriage.md").write_text('---\ntitle: "back\\rto the start"\n---\n\nbody words\n')
    listed = kb("list").stdout.splitlines()
    assert len(listed) == 4 and all(line.count("\t") == 3 for line in listed)
    assert any("two\u240alines\u2409and a tab" in line for line in listed)
    assert any("new\u240aline\u2409name.md" in line for line in listed)
    found = kb("search", "body").stdout.splitlines()
    heads = [line for line in found if not line.startswith("    ")]
    assert len(heads) == 4 and all(line.count("\t") in (2, 3) for line in heads)
    paths = kb("search", "-l", "body").stdout.splitlines()
    assert sorted(paths) == sorted(
        ["notes/Plain.md", "notes/Weird.md", "notes/new\u240aline\u2409name.md", "notes/Carriage.md"]
    )
    exact = kb("search", "-l", "-0", "body").stdout_bytes.split(b"\0")
    assert b"notes/new\nline\tname.md" in exact  # -0 into a pipe: the name as it is, for xargs -0


def test_a_name_of_thousands_of_characters_is_not_echoed_whole(kb, with_note):
    name = "x" * 5000
    err = one_line_error(kb("show", name))
    assert len(err) < 1100 and "characters left out" in err
    assert err.startswith("Error: no note matches 'xxx")


def test_mv_to_a_path_with_dot_dot_is_refused_not_made_a_title(kb, with_note):
    root = with_note
    err = one_line_error(kb("mv", "Good", "../archive"), 2)
    assert "'../archive' is a path, not a title" in err and "archive/" in err
    assert [p.name for p in (root / "notes").iterdir()] == ["Good.md"]
    assert "'sub/../x' is a path" in one_line_error(kb("mv", "Good", "sub/../x"), 2)
    assert "'/tmp/x' is a path" in one_line_error(kb("mv", "Good", "/tmp/x"), 2)
    (root / "notes" / "db").mkdir()
    r = kb("mv", "Good", "db")  # a folder of that name: into it, as mv does
    assert r.exit_code == 0 and (root / "notes" / "db" / "Good.md").is_file(), r.stderr
    assert "Moved: Good (notes/Good.md -> notes/db/Good.md)" in r.stderr
    assert kb("mv", "Good", "Fine").exit_code == 0 and (root / "notes" / "db" / "Fine.md").is_file()
    (root / "notes" / "db" / "inner").mkdir()
    assert kb("mv", "Fine", "notes/db/inner").exit_code == 0  # written from the root
    assert (root / "notes" / "db" / "inner" / "Fine.md").is_file()
    assert kb("mv", "Fine", "./db").exit_code == 0 and (root / "notes" / "db" / "Fine.md").is_file()
    assert "'./nowhere' is a path" in one_line_error(kb("mv", "Fine", "./nowhere"), 2)


def test_names_longer_than_the_file_system_allows_are_one_line_errors(kb, with_note, tmp_path):
    long = "x" * 300
    for args in (["show", f"{long}.md"], ["backlinks", f"{long}.md"], ["rm", f"a/{long}.md"]):
        assert "no note matches" in one_line_error(kb(*args))
    err = one_line_error(kb("--kb", str(tmp_path / ("y" * 5000)), "list"))
    assert "a name is longer than the file system allows" in err and len(err) < 1100
    r = kb("search", "z" * 5000)
    assert r.exit_code == 1 and "characters left out" in r.stderr and len(r.stderr) < 1100
