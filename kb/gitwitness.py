"""git's word, for a cold `kb search`, that no note changed since the search catalog last agreed with a scan.

A cold search must know that the index is in step with the notes: walking every folder and lstat-ing every
note costs 30-40 ms at 10,000 notes in Python. git keeps the same facts already. Its index file records the
stat data (mtime, ctime, size, inode...) of every tracked file as it last saw it; `git diff-files` compares
them with the files in C, lstat-ing in parallel threads and reading the content of a racily clean entry (one
changed in the same moment as the index was written); `git ls-files -o` lists what is not tracked. Both are
started as the process starts (kb.client, before the command line is imported) and run on another core
while the interpreter imports; the search waits for them only when it needs the answer.

The witness is the git index file's identity and times, with the layout. The catalog keeps it with the scan
digest that agreed with every row (kb.index.catalog.Catalog.remember_scan), and only when, in one process:
- diff-files found every tracked file as the index records it, nothing untracked could be a note, and the
  index file was the same one before git started and after it ended;
- then the scan found only notes that git tracks plainly (`git ls-files --stage -v`: no assume-unchanged
  or skip-worktree bit, which would make git look away from a file, and no submodule where notes may be:
  git does not look inside one), and agreed with every row.
Later, when the index file is still that file, diff-files is quiet again and nothing untracked could be a
note, every note is as it was at that scan: a file changed since has other stat data than the index records
(its ctime at least), a new one is untracked or rewrites the index, a removed one is reported. Whatever
git says otherwise, or when it cannot say, the notes are scanned as before. The catalog forgets the witness
with the digest whenever a row changes. git's own settings that would weaken its checks (core.ignoreStat,
core.checkStat, core.trustctime, core.fsmonitor) are overridden, and variables that point git elsewhere
(GIT_DIR, GIT_INDEX_FILE...) are not passed on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from kb.layout import INDEX_DIR, SKIPPED_FOLDERS, Layout

_SETTINGS = (
    "core.fsmonitor=false",
    "core.ignoreStat=false",
    "core.checkStat=default",
    "core.trustctime=true",
    "core.preloadIndex=true",
)


class _Probe:
    """git's two checks of one knowledge base, started; `answer` once they ended."""

    def __init__(self, root: str, folder: tuple[int, int], before: str, diff: int, listing: int, out: int):
        self.root, self.folder, self.before = os.path.realpath(root), folder, before
        self.diff, self.listing, self.out = diff, listing, out
        self.answer: tuple[str, frozenset[str]] | None = None
        self.ended = False


_PROBE: list[_Probe] = []  # at most one: the one this process started


def index_signature(git_dir: str) -> str | None:
    """The git index file's identity and times: any rewrite of it (git writes a new file and renames it into
    place) changes them. None when there is none."""
    try:
        st = os.stat(os.path.join(git_dir, "index"))
    except OSError:
        return None
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _git(root: str) -> list[str]:
    return [
        "git",
        "-C",
        root,
        "--git-dir=.git",
        "--work-tree=.",
        *(arg for s in _SETTINGS for arg in ("-c", s)),
    ]


# Variables that would point git at another repository, work tree or index than the knowledge base's own.
_ELSEWHERE = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
    }
)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ELSEWHERE}
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return env


def start(root: str) -> None:
    """Start git's checks of the knowledge base at `root` (an absolute path), when it is a git repository
    of its own. Never waits; nothing happens when git cannot be started."""
    if _PROBE or not os.path.isdir(os.path.join(root, ".git")):
        return
    before = index_signature(os.path.join(root, ".git"))
    try:
        st = os.stat(root)
    except OSError:
        return
    if before is None:
        return
    env = _environment()
    quiet = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    try:
        diff = os.posix_spawnp("git", [*_git(root), "diff-files", "--quiet"], env, file_actions=quiet)
    except OSError:
        return
    try:
        r, w = os.pipe()
    except OSError:
        _reap(diff)
        return
    try:
        listing = os.posix_spawnp(
            "git",
            [*_git(root), "ls-files", "-z", "--others", "--directory", "--no-empty-directory"],
            env,
            file_actions=[quiet[0], (os.POSIX_SPAWN_DUP2, w, 1), quiet[2]],
        )
    except OSError:
        os.close(r)
        _reap(diff)
        return
    finally:
        os.close(w)
    _PROBE.append(_Probe(root, (st.st_dev, st.st_ino), before, diff, listing, r))


def _reap(pid: int) -> int:
    """The exit status of a child this process started (-1 when it cannot be had)."""
    while True:
        try:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except InterruptedError:
            continue
        except ChildProcessError:
            return -1


def _ended(probe: _Probe) -> tuple[bool, list[str]]:
    """Wait for git's two checks: (every tracked file as the index records it, what is not tracked)."""
    chunks: list[bytes] = []
    try:
        while chunk := os.read(probe.out, 1 << 16):
            chunks.append(chunk)
    except OSError:
        chunks = [b"\0?"]
    finally:
        os.close(probe.out)
    listed = _reap(probe.listing) == 0
    clean = _reap(probe.diff) == 0 and listed
    names = b"".join(chunks).decode("utf-8", "surrogateescape").split("\0")
    return clean, [name for name in names if name]


def forget() -> None:
    """Forget the checks this process started (waiting for them to end): the next start() starts anew."""
    while _PROBE:
        probe = _PROBE.pop()
        if not probe.ended:
            probe.ended = True
            _ended(probe)


def _could_be_notes(name: str, layout: Layout) -> bool:
    """Whether an untracked file or folder (`git ls-files -o --directory` names a folder with a slash at
    the end) is or may hold a note under `layout`. (A file that changes the layout itself, kb.toml or
    Markdown outside notes/, changes the layout kb finds, which is part of the witness.)"""
    if not name.endswith("/"):
        return layout.is_note_path(name)
    folder = name.rstrip("/")
    parts = folder.split("/")
    if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in parts) or folder == INDEX_DIR:
        return False
    prefix = layout.prefix
    if prefix and not (folder + "/").startswith(prefix) and not prefix.startswith(folder + "/"):
        return False  # outside the notes root
    return not layout.ignored(folder)


def witness(root: str, layout: Layout) -> str | None:
    """What the catalog keeps with an agreed scan, from the checks this process started for `root`: None
    when there were none, or git found a changed file, an untracked one that could be a note, or the index
    file was rewritten meanwhile."""
    answer = _answer(root, layout)
    return answer[0] if answer is not None else None


def _answer(root: str, layout: Layout) -> tuple[str, frozenset[str]] | None:
    if not _PROBE:
        return None
    probe = _PROBE[0]
    try:
        st = os.stat(root)
    except OSError:
        return None
    if (st.st_dev, st.st_ino) != probe.folder or os.path.realpath(root) != probe.root:
        return None
    if not probe.ended:
        probe.ended = True
        clean, untracked = _ended(probe)
        after = index_signature(os.path.join(probe.root, ".git"))
        if clean and after == probe.before:
            probe.answer = probe.before, frozenset(untracked)
    if probe.answer is None or any(_could_be_notes(name, layout) for name in probe.answer[1]):
        return None
    return f"{probe.answer[0]} {layout!r}", probe.answer[1]


def vouches(root: str, layout: Layout, notes: Iterable[str]) -> str | None:
    """The witness, when git also tracks each of `notes` (a scan's paths, found after the checks ended)
    plainly: not marked assume-unchanged or skip-worktree, nor unmerged, nor any other note path so; and no
    submodule is where notes may be (git does not look inside one). Runs `git ls-files --stage -v` (only
    when a witness is to be kept: after a scan that agreed)."""
    if witness(root, layout) is None:
        return None
    import subprocess

    try:
        done = subprocess.run(
            [*_git(root), "ls-files", "-z", "--stage", "-v"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=_environment(),
            check=False,
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    plain: set[str] = set()
    for entry in done.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        tag, _, rest = entry.partition(" ")  # "H 100644 SHA 0\tpath"
        mode, _, path = rest.partition("\t")
        if mode.startswith("160000 "):  # a submodule: git does not look at the files inside it
            if _could_be_notes(path + "/", layout):
                return None
        elif tag == "H" and mode.endswith(" 0"):
            plain.add(path)
        elif layout.is_note_path(path):
            return None
    if any(path not in plain for path in notes):
        return None
    if index_signature(os.path.join(root, ".git")) != _PROBE[0].before:
        return None  # the index file was rewritten since the checks read it
    return witness(root, layout)
