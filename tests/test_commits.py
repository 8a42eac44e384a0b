"""How kb records a change in git: exactly the touched paths, with the message, dates and identity
`git commit` would record, a reflog entry, a clean index afterwards, anything a user staged left staged, and
a HEAD moved by another program meanwhile refused rather than overwritten."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kb.history import History, clean_message
from tests.conftest import git, log_subjects

MOMENT = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)


def changes(kb, *extra: tuple[str, ...]) -> None:
    """The writes that go through a commit of files: add, edit, rename, delete, restore."""
    steps: list[tuple[str, ...]] = [
        ("add", "First", "-t", "a", "-b", "one"),
        ("add", "Second", "-b", "two"),
        ("edit", "First", "-a", "more"),
        ("mv", "Second", "Renamed"),
        ("rm", "First"),
        ("restore", "First", "2"),
        *extra,
    ]
    for step in steps:
        r = kb(*step)
        assert r.exit_code == 0, (step, r.stderr)


def porcelain_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """kb as it committed with `git commit` alone."""
    monkeypatch.setattr(History, "_commit_tree", lambda self, *args: (False, None))


@pytest.mark.cold_only("it sends kb's commits through git commit in this process")
def test_commits_are_those_git_commit_makes(kb, tmp_path, monkeypatch):
    # The same changes at the same clock, once with plumbing, once with `git commit`: the same commits
    # (ids cover tree, parents, author, committer, dates and message) and the same reflog.
    made = {}
    for name in ("plumbing", "porcelain"):
        root = tmp_path / name
        monkeypatch.setenv("KB_HOME", str(root))
        if name == "porcelain":
            porcelain_only(monkeypatch)
        changes(kb)
        made[name] = (
            git(root, "log", "--format=%H %an <%ae> %aI %cn <%ce> %cI %s"),
            git(root, "reflog", "--format=%H %gs", "HEAD"),
            git(
                root,
                "reflog",
                "--format=%H %gs",
                "refs/heads/" + git(root, "branch", "--show-current").strip(),
            ),
        )
    assert made["plumbing"] == made["porcelain"]
    log, reflog, _ = made["plumbing"]
    assert len(log.splitlines()) == 7
    assert [line.split(" ", 1)[1].split(":")[0] for line in reflog.splitlines()] == ["commit"] * 6 + [
        "commit (initial)"
    ]


def test_a_commit_has_exactly_its_paths_dates_author_and_reflog(kb, root):
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    (root / "notes" / "Loose.md").write_text("not kb's yet\n")  # an outside edit: committed on its own first
    assert kb("edit", "Alpha", "-a", "more").exit_code == 0
    assert log_subjects(root) == [
        "Edit: Alpha",
        "External edit: Loose",
        "Add: Alpha",
        "Initialize knowledge base",
    ]
    assert git(root, "show", "--name-only", "--format=", "HEAD").split("\n")[:-1] == ["notes/Alpha.md"]
    assert git(root, "show", "--name-only", "--format=", "HEAD~1").split("\n")[:-1] == ["notes/Loose.md"]
    raw = git(root, "cat-file", "commit", "HEAD")
    head, _, message = raw.partition("\n\n")
    assert message == "Edit: Alpha\n"
    fields = dict(line.split(" ", 1) for line in head.splitlines())
    assert fields["parent"] == git(root, "rev-parse", "HEAD~1").strip()
    assert fields["author"] == "kb <kb@localhost> 1767323045 +0000"  # the note's `modified` (KB_NOW)
    assert fields["committer"] == "kb <kb@localhost> 1767323045 +0000"
    assert git(root, "reflog", "-1", "--format=%gs", "HEAD").strip() == "commit: Edit: Alpha"
    branch = git(root, "symbolic-ref", "HEAD").strip()
    assert git(root, "reflog", "-1", "--format=%gs", branch).strip() == "commit: Edit: Alpha"
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(root, "diff", "--cached", "--name-only") == ""


def test_something_the_user_staged_stays_staged_and_uncommitted(kb, root):
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    (root / "plan.txt").write_text("the user's\n")
    git(root, "add", "plan.txt")
    assert kb("add", "Beta", "-b", "y").exit_code == 0
    assert kb("edit", "Alpha", "-a", "z").exit_code == 0
    assert git(root, "show", "--name-only", "--format=", "HEAD~1").split("\n")[:-1] == ["notes/Beta.md"]
    assert git(root, "show", "--name-only", "--format=", "HEAD").split("\n")[:-1] == ["notes/Alpha.md"]
    assert git(root, "diff", "--cached", "--name-only").split() == ["plan.txt"]
    assert "plan.txt" not in git(root, "ls-tree", "-r", "--name-only", "HEAD")
    assert git(root, "status", "--porcelain") == "A  plan.txt\n"


@pytest.mark.cold_only("it moves HEAD from inside kb's git calls in this process")
@pytest.mark.parametrize("command", [("add", "Beta", "-b", "new"), ("edit", "Alpha", "-a", "more")])
def test_a_head_moved_meanwhile_is_an_error_and_nothing_is_lost(command, kb, root, monkeypatch):
    assert kb("add", "Alpha", "-b", "original").exit_code == 0
    before = (root / "notes" / "Alpha.md").read_bytes()
    real = History._run

    def intruding(self, args, data=None, env=None):
        if args and args[0] == "update-ref":
            # Another program moves the branch between kb reading HEAD and moving it.
            def other(*argv: str) -> str:
                return subprocess.run(
                    ["git", "-c", "user.name=Other", "-c", "user.email=o@x", *argv],
                    cwd=self.root, capture_output=True, text=True, check=True,
                ).stdout.strip()  # fmt: skip

            other("update-ref", "HEAD", other("commit-tree", "-m", "Intruder", "-p", "HEAD", "HEAD^{tree}"))
        return real(self, args, data, env)

    monkeypatch.setattr(History, "_run", intruding)
    r = kb(*command)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: HEAD moved while kb was committing")
    assert "nothing was changed" in r.stderr
    monkeypatch.setattr(History, "_run", real)
    assert log_subjects(root) == ["Intruder", "Add: Alpha", "Initialize knowledge base"]  # theirs kept
    assert (root / "notes" / "Alpha.md").read_bytes() == before
    assert not (root / "notes" / "Beta.md").exists()
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert kb(*command).exit_code == 0  # and it can be done again
    assert log_subjects(root)[:2] == [f"{'Add: Beta' if command[0] == 'add' else 'Edit: Alpha'}", "Intruder"]


def empty_repository(tmp_path: Path) -> tuple[Path, History]:
    """A new repository on branch trunk, with no commit, and a file a.md in its folder."""
    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(root)], check=True)
    (root / "a.md").write_text("a\n")
    return root, History(root)


def test_the_first_commit_of_an_empty_repository(tmp_path):
    root, history = empty_repository(tmp_path)
    sha = history.commit(["a.md"], "First\n\nbody  \n\n\n", MOMENT, MOMENT)
    assert sha is not None and sha == git(root, "rev-parse", "HEAD").strip()
    assert git(root, "symbolic-ref", "HEAD").strip() == "refs/heads/trunk"  # made through HEAD's symbolic ref
    assert git(root, "rev-list", "--parents", "HEAD").split() == [sha]
    assert git(root, "cat-file", "commit", "HEAD").endswith("\n\nFirst\n\nbody\n")
    assert git(root, "reflog", "--format=%gs", "trunk").splitlines() == ["commit (initial): First"]
    assert git(root, "reflog", "--format=%gs", "HEAD").splitlines() == ["commit (initial): First"]
    assert git(root, "status", "--porcelain") == ""
    # Then nothing to commit: no commit.
    assert history.commit(["a.md"], "Again", MOMENT, MOMENT) is None
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"


def test_kb_init_makes_the_first_commit_in_an_empty_folder(kb, root):
    assert kb("init").exit_code == 0
    assert git(root, "reflog", "--format=%gs", "HEAD").splitlines() == [
        "commit (initial): Initialize knowledge base"
    ]
    assert git(root, "status", "--porcelain") == ""


def test_a_detached_head_moves_alone(tmp_path):
    root, history = empty_repository(tmp_path)
    first = history.commit(["a.md"], "First", MOMENT, MOMENT)
    git(root, "checkout", "-q", "--detach")
    (root / "a.md").write_text("b\n")
    second = history.commit(["a.md"], "Second", MOMENT, MOMENT)
    assert second is not None and second != first
    assert (root / ".git" / "HEAD").read_text().strip() == second
    assert git(root, "rev-parse", "trunk").strip() == first
    assert git(root, "rev-parse", "HEAD~1").strip() == first
    assert git(root, "reflog", "-1", "--format=%gs", "HEAD").strip() == "commit: Second"
    assert git(root, "status", "--porcelain") == ""


def test_kb_refuses_to_write_on_a_detached_head(kb, root):
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    git(root, "checkout", "-q", "--detach")
    head = git(root, "rev-parse", "HEAD")
    r = kb("add", "Beta", "-b", "y")
    assert r.exit_code == 1 and "HEAD is detached" in r.stderr
    assert git(root, "rev-parse", "HEAD") == head
    assert not (root / "notes" / "Beta.md").exists()


@pytest.mark.cold_only("it counts kb's calls of git commit in this process")
def test_a_message_cleanup_setting_is_left_to_git_commit(kb, root, monkeypatch):
    assert kb("init").exit_code == 0
    git(root, "config", "commit.cleanup", "strip")
    porcelain = History._commit_porcelain
    used: list[str] = []

    def counted(self, *args):
        used.append("git commit")
        return porcelain(self, *args)

    monkeypatch.setattr(History, "_commit_porcelain", counted)
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    assert used == ["git commit"]
    assert log_subjects(root)[0] == "Add: Alpha"
    assert git(root, "status", "--porcelain") == ""


def test_loose_objects_are_packed_when_git_would_pack_them(kb, root):
    """git commit runs git's automatic packing; kb's commits start it when git's own test says it is due."""
    import hashlib

    assert kb("init").exit_code == 0
    git(root, "config", "gc.auto", "256")  # due past one loose object whose id begins with 17
    git(root, "config", "gc.autoDetach", "false")
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    assert not list((root / ".git" / "objects" / "pack").glob("*.pack"))  # not due yet
    made = 0
    n = 0
    while made < 2:  # two loose objects in objects/17
        n += 1
        data = f"filler {n}\n".encode()
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().startswith("17"):
            subprocess.run(["git", "-C", str(root), "hash-object", "-w", "--stdin"], input=data, check=True)
            made += 1
    assert kb("add", "Beta", "-b", "y").exit_code == 0
    assert list((root / ".git" / "objects" / "pack").glob("*.pack"))
    assert git(root, "cat-file", "-t", "HEAD") == "commit\n"


def loose_objects(root: Path) -> list[Path]:
    objects = root / ".git" / "objects"
    return [p for d in objects.iterdir() if len(d.name) == 2 for p in d.iterdir()]


@pytest.mark.cold_only("it lowers kb's mark for packing in this process")
def test_loose_objects_of_many_bytes_are_packed_though_few(kb, root, monkeypatch):
    """git's automatic packing counts objects only; kb packs its loose objects once they take
    PACK_LOOSE_BYTES (each commit writes the tree of a changed folder whole), in the foreground when
    gc.autoDetach is false, as gc does."""
    from kb import history

    assert kb("init").exit_code == 0
    git(root, "config", "gc.autoDetach", "false")
    for n in range(3):
        assert kb("add", f"Note {n}", "-b", f"body {n}").exit_code == 0
    assert loose_objects(root)  # a few small objects: not due
    assert not list((root / ".git" / "objects" / "pack").glob("*.pack"))
    estimate = int((root / ".git" / history.LOOSE_ESTIMATE).read_text())
    assert estimate > 0  # the index's size, added by each commit

    # The mark just past what the loose objects take now: the next commit's estimate reaches it, the
    # count finds it passed, and git packs them all.
    monkeypatch.setattr(history, "PACK_LOOSE_BYTES", sum(p.stat().st_size for p in loose_objects(root)) + 1)
    assert kb("add", "Last", "-b", "the last").exit_code == 0
    assert list((root / ".git" / "objects" / "pack").glob("*.pack"))
    assert loose_objects(root) == []
    assert (root / ".git" / history.LOOSE_ESTIMATE).read_text() == "0"
    assert git(root, "fsck", "--no-progress", "--no-dangling") == ""
    assert log_subjects(root)[:2] == ["Add: Last", "Add: Note 2"]
    assert kb("show", "Note 0").stdout.count("body 0") == 1


@pytest.mark.cold_only("it lowers kb's mark for packing in this process")
def test_the_packing_of_many_bytes_runs_in_the_background_one_at_a_time(kb, root, monkeypatch):
    import fcntl
    import time

    from kb import history

    assert kb("init").exit_code == 0
    monkeypatch.setattr(history, "PACK_LOOSE_BYTES", 1)  # due at every commit
    lock = root / ".git" / history.PACK_LOCK
    lock.touch()
    with open(lock, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a packing kb started would hold it
        assert kb("add", "Alpha", "-b", "x").exit_code == 0
        time.sleep(0.5)
        assert not list((root / ".git" / "objects" / "pack").glob("*.pack"))  # one at a time: none started
    assert kb("add", "Beta", "-b", "y").exit_code == 0  # started, and kb answered without waiting
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(lock, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the packing has ended
            except OSError:
                time.sleep(0.05)
                continue
        break
    assert list((root / ".git" / "objects" / "pack").glob("*.pack"))
    assert loose_objects(root) == []
    assert git(root, "fsck", "--no-progress", "--no-dangling") == ""


def a_while_ago(root: Path) -> None:
    """As if kb's last split of the split index, which could not share the notes just written (racily
    clean in the second they were written), were minutes old: the next commit may split it again."""
    import os
    import time

    from kb import history

    tried = root / ".git" / history.SPLIT_TRIED
    if tried.exists():
        os.utime(tried, (time.time() - 3600, time.time() - 3600))


def test_a_split_index_grown_whole_is_split_again(kb, root):
    """git leaves entries whose stat data changed (every note touched) in the split index's own file,
    up to all of them, and splits it again only for new entries: kb's commit splits it again."""
    import os
    import time

    assert kb("init").exit_code == 0
    for n in range(300):
        (root / "notes" / f"n{n}.md").write_text(f"---\ntitle: N{n}\n---\nbody {n}\n")
    assert kb("add", "First", "-b", "x").exit_code == 0  # commits the notes made outside kb first
    a_while_ago(root)
    time.sleep(1.1)  # none of the notes racily clean (git keeps those in the split index's own file)
    assert git(root, "status", "--porcelain") == ""
    git(root, "update-index", "--split-index")
    index = root / ".git" / "index"
    small = index.stat().st_size
    for n in range(300):
        os.utime(root / "notes" / f"n{n}.md", (time.time() - 5, time.time() - 5))
    assert git(root, "status", "--porcelain") == ""  # refreshed: every entry's stat data is new
    grown = index.stat().st_size
    assert grown > 10 * small
    assert kb("add", "Second", "-b", "y").exit_code == 0
    assert index.stat().st_size < grown / 4
    st = index.stat()
    state = (root / ".git" / "kb-index-state").read_text().split("\n")
    assert state[0] == git(root, "rev-parse", "HEAD").strip()  # the next commit knows the index as left
    assert state[2] == f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "fsck", "--no-progress", "--no-dangling") == ""


@pytest.mark.cold_only("it records kb's git calls in this process")
def test_a_split_index_that_cannot_shrink_is_not_split_at_every_commit(kb, root, monkeypatch):
    """Notes dated in the future are racily clean for git: they stay in the split index's own file
    whatever splits it. kb tries once, and not again at every commit (each would write a new shared
    index)."""
    import os
    import time

    from kb import history

    assert kb("init").exit_code == 0
    for n in range(300):
        (root / "notes" / f"n{n}.md").write_text(f"---\ntitle: N{n}\n---\nbody {n}\n")
    assert kb("add", "First", "-b", "x").exit_code == 0
    future = time.time() + 86400
    for n in range(300):
        os.utime(root / "notes" / f"n{n}.md", (future, future))
    assert git(root, "status", "--porcelain") == ""
    a_while_ago(root)
    index = root / ".git" / "index"
    grown = index.stat().st_size
    staged = History._git_input
    splits: list[list[str]] = []

    def recorded(self, args, *rest, **kw):
        if "--split-index" in args:
            splits.append(args)
        return staged(self, args, *rest, **kw)

    monkeypatch.setattr(History, "_git_input", recorded)
    for name in ("A", "B", "C"):
        assert kb("add", name, "-b", name).exit_code == 0
    assert len(splits) == 1
    assert index.stat().st_size > grown / 2  # it could not shrink
    assert (root / ".git" / history.SPLIT_TRIED).exists()
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "fsck", "--no-progress", "--no-dangling") == ""


def test_packs_past_git_s_limit_are_joined_as_git_commit_would(kb, root):
    """kb's packing by bytes adds packs; past gc.autoPackLimit, git gc --auto joins them (as after a
    git commit)."""
    assert kb("init").exit_code == 0
    git(root, "config", "gc.autoPackLimit", "2")
    git(root, "config", "gc.autoDetach", "false")
    packs = root / ".git" / "objects" / "pack"
    for n in range(3):
        assert kb("add", f"Note {n}", "-b", f"body {n}").exit_code == 0
        git(root, "repack", "-d", "-l", "-q")  # one more pack each time
    assert len(list(packs.glob("*.pack"))) == 3
    assert kb("add", "Last", "-b", "the last").exit_code == 0
    assert len(list(packs.glob("*.pack"))) == 1
    assert git(root, "fsck", "--no-progress", "--no-dangling") == ""
    assert log_subjects(root)[:2] == ["Add: Last", "Add: Note 2"]


@pytest.mark.cold_only("it records kb's git calls in this process")
def test_write_tree_looks_up_every_object_unless_the_index_is_as_kb_left_it(kb, root, monkeypatch):
    assert kb("init").exit_code == 0
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    run = History._run
    trees: list[list[str]] = []

    def recorded(self, args, *rest, **kw):
        if "write-tree" in args:
            trees.append(list(args))
        return run(self, args, *rest, **kw)

    monkeypatch.setattr(History, "_run", recorded)
    history = History(root)
    for name in ("Beta", "Gamma", "Delta"):
        (root / "notes" / f"{name}.md").write_text(f"{name}\n")
        assert history.commit([f"notes/{name}.md"], f"Add: {name}", MOMENT, MOMENT)
        if name == "Gamma":  # the index written by someone else: what it holds is not known
            git(root, "update-index", "--really-refresh")
    assert ["--missing-ok" in t for t in trees] == [True, True, False]
    assert log_subjects(root)[:3] == ["Add: Delta", "Add: Gamma", "Add: Beta"]
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "message",
    [
        "Subject",
        "Subject\n",
        "\n\n  \nSubject  \t\n\n\n\nbody line \r\n  indented\n\n\nKb-Recovered: yes\n\n\n",
        "Subject\n# not a comment here\n",
        "Sub\u00a0ject\u00a0\n\nbody\u2003",
        "   ",
    ],
)
def test_messages_are_cleaned_as_git_commit_cleans_them(message):
    expected = subprocess.run(["git", "stripspace"], input=message.encode(), capture_output=True, check=True)
    assert clean_message(message).encode() == expected.stdout


def test_the_index_is_clean_after_many_changes(kb, root):
    changes(kb)
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(root, "diff", "--cached", "--name-only") == ""
    assert git(root, "fsck", "--no-progress", "--no-dangling").strip() == ""
    assert Path(root / ".git" / "index").exists()


def test_meanwhile_runs_once_in_this_thread_whatever_git_does(tmp_path):
    import threading

    from kb.errors import GitError

    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a.md").write_text("a\n")
    history = History(root)
    calls: list[bool] = []

    def meanwhile() -> None:
        calls.append(threading.current_thread() is threading.main_thread())

    assert history.commit(["a.md"], "First", MOMENT, MOMENT, meanwhile=meanwhile) is not None
    assert history.commit(["a.md"], "Nothing", MOMENT, MOMENT, meanwhile=meanwhile) is None
    with pytest.raises(GitError):  # git refuses a path outside the repository
        history.commit(["../outside.md"], "Bad", MOMENT, MOMENT, meanwhile=meanwhile)
    assert calls == [True, True, True]
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"


@pytest.mark.cold_only("it records kb's git calls in this process")
def test_an_index_as_kb_left_it_needs_no_tree_comparison(kb, root, monkeypatch):
    # After kb's commit, nothing else has written git's index: the next commit of files need not compare
    # HEAD's tree with the new one. Once anything writes the index (git status refreshing it, a git add),
    # it compares them again, and what the user staged stays staged.
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    left = (root / ".git" / "kb-index-state").read_text().split("\n")
    assert left[:2] == [git(root, "rev-parse", "HEAD").strip(), git(root, "rev-parse", "HEAD^{tree}").strip()]
    calls: list[str] = []
    real = History._read

    def recording(self, args, data=None):
        calls.append(args[0])
        return real(self, args, data)

    monkeypatch.setattr(History, "_read", recording)
    history = History(root)
    alpha = root / "notes" / "Alpha.md"
    alpha.write_text(alpha.read_text() + "y\n")
    assert history.commit(["notes/Alpha.md"], "Edit: Alpha", MOMENT, MOMENT)
    assert "diff-tree" not in calls
    (root / "plan.txt").write_text("the user's\n")
    git(root, "add", "plan.txt")
    alpha.write_text(alpha.read_text() + "z\n")
    assert history.commit(["notes/Alpha.md"], "Edit: Alpha", MOMENT, MOMENT)
    assert "diff-tree" in calls
    assert git(root, "show", "--name-only", "--format=", "HEAD").split("\n")[:-1] == ["notes/Alpha.md"]
    assert git(root, "status", "--porcelain") == "A  plan.txt\n"
    git(root, "reset", "-q", "--", "plan.txt")  # the index written again: compared again
    calls.clear()
    alpha.write_text(alpha.read_text() + "w\n")
    assert history.commit(["notes/Alpha.md"], "Edit: Alpha", MOMENT, MOMENT)
    assert "diff-tree" in calls
    assert git(root, "show", "--name-only", "--format=", "HEAD").split("\n")[:-1] == ["notes/Alpha.md"]


@pytest.mark.cold_only("it stages a file from inside kb's git calls in this process")
def test_a_file_staged_while_kb_reads_the_notes_is_not_committed(kb, root, monkeypatch):
    # git status writes the index (refreshed times): whatever else wrote it meanwhile, kb compares trees.
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    real = History._start

    def staging(self, args, env=None, quiet=False):
        if args and args[0] == "status":
            (root / "user.txt").write_text("the user's\n")
            git(root, "add", "user.txt")
        return real(self, args, env, quiet)

    monkeypatch.setattr(History, "_start", staging)
    assert kb("add", "Second", "-b", "y").exit_code == 0
    monkeypatch.setattr(History, "_start", real)
    assert git(root, "show", "--name-only", "--format=", "HEAD").split("\n")[:-1] == ["notes/Second.md"]
    assert "A  user.txt" in git(root, "status", "--porcelain")


def test_a_branch_moved_back_by_hand_keeps_each_commit_to_its_own_paths(kb, root):
    # `git reset --soft` moves HEAD and keeps the index as it was: kb's next commit holds its own note only.
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    assert kb("add", "Beta", "-b", "y").exit_code == 0
    git(root, "reset", "-q", "--soft", "HEAD~1")
    assert kb("edit", "Alpha", "-a", "z").exit_code == 0
    assert git(root, "show", "--name-only", "--format=", "HEAD").split("\n")[:-1] == ["notes/Alpha.md"]
    # Beta, uncommitted again, is committed as an outside change first, on its own.
    assert log_subjects(root)[:3] == ["Edit: Alpha", "External edit: Beta", "Add: Alpha"]
    assert git(root, "show", "--name-only", "--format=", "HEAD~1").split("\n")[:-1] == ["notes/Beta.md"]
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_commit_made_by_hand_between_kb_commits(kb, root):
    assert kb("add", "Alpha", "-b", "x").exit_code == 0
    (root / "plan.txt").write_text("the user's\n")
    git(root, "add", "plan.txt")
    git(root, "-c", "user.name=U", "-c", "user.email=u@x", "commit", "-q", "-m", "Plan")
    assert kb("edit", "Alpha", "-a", "z").exit_code == 0
    assert log_subjects(root)[:2] == ["Edit: Alpha", "Plan"]
    assert git(root, "show", "--name-only", "--format=", "HEAD").split("\n")[:-1] == ["notes/Alpha.md"]
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""


def test_the_git_program_is_looked_up_once_per_path_and_again_when_it_is_gone(tmp_path, monkeypatch):
    from kb.history import git_program

    first = tmp_path / "bin"
    first.mkdir()
    fake = first / "git"
    fake.write_text('#!/bin/sh\nexec git "$@"\n')
    fake.chmod(0o755)
    real = shutil.which("git")
    monkeypatch.setenv("PATH", f"{first}{os.pathsep}{os.environ['PATH']}")
    assert git_program() == str(fake)
    fake.unlink()
    assert git_program() == real  # the one it found is gone: looked up again
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert git_program() == "git"  # none: running it fails, and kb says git cannot run
