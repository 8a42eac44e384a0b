"""git's word, for a cold `kb search`, that no note changed since the search catalog last agreed with a scan.

A cold search must know that the index is in step with the notes: walking every folder and lstat-ing every
note costs 30-40 ms at 10,000 notes in Python. git keeps most of the same facts already: its index file
records the stat data (mtime, ctime, size, inode...) of every tracked file as it last saw it, and `git
diff-files` compares them with the files in C, reading the content of a racily clean entry (one changed in
the same second as the index was written). It is started as the process starts (kb.client, before the
command line is imported) and runs on another core while the interpreter imports; the search waits for it
only when it needs the answer. A new file is seen from the folders instead: creating, removing or renaming
a file in a folder changes the folder's mtime and ctime, so the stat data of every folder where notes may be
stands for its list of names.

The witness, kept by the catalog with the scan digest that agreed with every row
(kb.index.catalog.Catalog.remember_scan), is the git index file's identity and times, the layout, and the
stat data of every folder where notes may be. It is kept only when, in one process:
- diff-files ran (naming the tracked files that differ from what the index records), the index file being
  the same one before git started and after it ended;
- then the scan agreed with every row and found only notes that git tracks plainly (`git ls-files --stage
  -v`: no assume-unchanged or skip-worktree bit, which would make git look away from a file, and no
  submodule where notes may be: git does not look inside one);
- the index file and every folder were last changed two seconds or more before the process began, so before
  its scan (git compares times in whole seconds: an in-place rewrite in the same second as its stat was
  recorded could keep every number it compares; a folder's time could be set twice in one tick of the
  clock; and a note made while the scan ran changes its folder after that moment).
Later, when the index file is still that file, the layout is the same and every folder has the same stat
data, every note is as it was at that scan but for those diff-files named then or names now (outside edits
not committed yet, at most MOST_DIRTY of them), which are compared with their rows one by one: a file
changed since has other stat data than the index records (its ctime at least, a second or more later), a
new, removed or renamed one changed its folder. Whatever git says otherwise, or when it cannot say, the
notes are scanned as before. The catalog forgets the witness with the digest whenever a row changes (and
keeps it again when the change was to the rows of notes it names). git's own settings that would
weaken its checks (core.ignoreStat, core.checkStat, core.trustctime, core.fsmonitor) are overridden, every
filter the configuration defines is turned off (git reads a racily clean file through its clean command),
hooks are off, and variables that point git elsewhere (GIT_DIR, GIT_INDEX_FILE...) are not passed on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable

from kb.layout import Layout
from kb.notes import is_utf8

SETTLED_NS = 2_000_000_000  # how long before the witness is kept the index file and folders were last changed
MOST_DIRTY = 1000  # files git may name as changed since its index has them (each compared with its row)

_SETTINGS = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.ignoreStat=false",
    "core.checkStat=default",
    "core.trustctime=true",
    "core.preloadIndex=true",
)
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


class _Probe:
    """`git diff-files` of one knowledge base, started; `clean` and `dirty` once it ended."""

    def __init__(self, root: str, folder: tuple[int, int], before: str, diff: int, out: int | None):
        self.started = time.time_ns()  # before any scan of this process: what "settled" is measured from
        self.root, self.folder, self.before = os.path.realpath(root), folder, before
        self.diff, self.out = diff, out  # `out`: the file its list of names goes to (None: --quiet)
        self.clean: bool | None = None  # None: not waited for yet
        self.dirty: frozenset[str] = frozenset()  # the files it names (changed since the index has them)


_PROBE: list[_Probe] = []  # at most one: the one this process started


def index_signature(git_dir: str) -> str | None:
    """The git index file's identity and times: any rewrite of it (git writes a new file and renames it into
    place) changes them. None when there is none."""
    try:
        st = os.stat(os.path.join(git_dir, "index"))
    except OSError:
        return None
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def filters_off(names: Iterable[str]) -> list[str]:
    """The `-c` arguments that turn off the clean and smudge filters of these names: a filter runs a command
    the configuration names (someone else's, in a repository kb adopted) on the paths .gitattributes gives
    it, and git reads a racily clean file through it."""
    return [
        arg
        for name in sorted(set(names))
        for var, value in (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false"))
        for arg in ("-c", f"filter.{name}.{var}={value}")
    ]


def _filters(root: str, env: dict[str, str]) -> list[str] | None:
    """filters_off() of every filter git's configuration defines for `root` (one `git config`, ~2 ms);
    None when it cannot be read."""
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.posix_spawnp(
            "git",
            [
                "git",
                "-C",
                root,
                "--git-dir=.git",
                "config",
                "-z",
                "--name-only",
                "--get-regexp",
                r"^filter\.",
            ],
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, w, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
        )
    except OSError:
        os.close(r)
        return None
    finally:
        os.close(w)
    chunks: list[bytes] = []
    try:
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
    except OSError:
        _reap(pid)
        return None
    finally:
        os.close(r)
    if _reap(pid) not in (0, 1):  # 1: no such setting
        return None
    keys = b"".join(chunks).decode("utf-8", "surrogateescape").split("\0")
    return filters_off(key[len("filter.") :].rsplit(".", 1)[0] for key in keys if key.startswith("filter."))


def _git(root: str) -> list[str]:
    return ["git", "-C", root, "--git-dir=.git", "--work-tree=.", *(a for s in _SETTINGS for a in ("-c", s))]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ELSEWHERE}
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return env


def start(root: str) -> None:
    """Start git's check of the knowledge base at `root` (an absolute path), when it is a git repository of
    its own. Never waits; nothing happens when git cannot be started."""
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
    off = _filters(root, env)
    if off is None:
        return
    quiet = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    try:  # the names go to a file of no name (a pipe could fill while nothing reads it)
        out: int | None = os.open(os.environ.get("TMPDIR") or "/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
    except (OSError, AttributeError):
        out = None
    args = ["--name-only", "-z"] if out is not None else ["--quiet"]
    actions = quiet if out is None else [quiet[0], (os.POSIX_SPAWN_DUP2, out, 1), quiet[2]]
    try:
        diff = os.posix_spawnp("git", [*_git(root), *off, "diff-files", *args], env, file_actions=actions)
    except OSError:
        if out is not None:
            os.close(out)
        return
    _PROBE.append(_Probe(root, (st.st_dev, st.st_ino), before, diff, out))


def _reap(pid: int) -> int:
    """The exit status of a child this process started (-1 when it cannot be had)."""
    while True:
        try:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except InterruptedError:
            continue
        except ChildProcessError:
            return -1


def forget() -> None:
    """Forget the check this process started (waiting for it to end): the next start() starts anew (a
    process runs one command and asks once; a test asks again)."""
    while _PROBE:
        probe = _PROBE.pop()
        if probe.clean is None:
            _reap(probe.diff)
        if probe.out is not None:
            os.close(probe.out)
            probe.out = None


def _asked(root: str) -> _Probe | None:
    """The check this process started for `root`, once it ended (naming at most MOST_DIRTY files that
    differ from what the git index records) with the index file unchanged meanwhile; None otherwise."""
    if not _PROBE:
        return None
    probe = _PROBE[0]
    try:
        st = os.stat(root)
    except OSError:
        return None
    if (st.st_dev, st.st_ino) != probe.folder or os.path.realpath(root) != probe.root:
        return None
    if probe.clean is None:
        ended = _reap(probe.diff) == 0
        probe.clean = ended and index_signature(os.path.join(probe.root, ".git")) == probe.before
        if probe.out is not None:
            names = _read_all(probe.out)
            os.close(probe.out)
            probe.out = None
            if names is None or len(names) > MOST_DIRTY:
                probe.clean = False
            else:
                probe.dirty = names
    return probe if probe.clean else None


def _read_all(fd: int) -> frozenset[str] | None:
    """The NUL-separated names written to the file `fd` (from its start); None when it cannot be read."""
    chunks: list[bytes] = []
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    except OSError:
        return None
    text = b"".join(chunks).decode("utf-8", "surrogateescape")
    return frozenset(name for name in text.split("\0") if name)


def _folder_stats(root: str, folders: list[str]) -> tuple[list[list[str | int]], int] | None:
    """[folder, mtime_ns, ctime_ns, inode] of each folder (root-relative), with the latest of their times;
    None when one is gone."""
    out: list[list[str | int]] = []
    latest = 0
    for folder in folders:
        try:
            st = os.stat(os.path.join(root, folder) if folder else root)
        except OSError:
            return None
        out.append([folder, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
        latest = max(latest, st.st_mtime_ns, st.st_ctime_ns)
    return out, latest


def holds(root: str, layout: Layout, kept: str | None) -> frozenset[str] | None:
    """Whether the witness `kept` (the catalog's, see Catalog.agreed) still holds: the check this process
    started ended, and the git index file, the layout and every folder are as the witness has them. Then
    every note is as it was at the scan it was kept with, but for the notes git named then or now (changed
    since the index has them: outside edits not committed yet), which are returned to be compared; None
    when it does not hold."""
    probe = _asked(root) if kept is not None else None
    if probe is None or kept is None:
        return None
    try:
        data = json.loads(kept)
        if data.get("refused") or data["index"] != probe.before or data["layout"] != repr(layout):
            return None
        folders = data["folders"]
        found = _folder_stats(root, [str(f[0]) for f in folders])
        if found is None or found[0] != folders:
            return None
        named = {str(name) for name in data["dirty"]} | probe.dirty
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return frozenset(name for name in named if layout.is_note_path(name) and is_utf8(name))


def vouch(
    root: str, layout: Layout, notes: Iterable[str], folders: Callable[[], list[str]], kept: str | None
) -> str | None:
    """What to keep with a scan that agreed with every row (`notes`: its paths; `folders`: every folder
    where notes may be, root-relative; `kept`: what the catalog keeps now): the witness; or, when git does
    not track each note plainly or a submodule is where notes may be, a refusal that spares the next
    search the look while the git index file stays the same. None, and nothing to keep, when the check this
    process started found a change or did not run, when `kept` is that refusal already, or when the index
    file or a folder changed less than SETTLED_NS ago. Runs `git ls-files --stage -v`."""
    probe = _asked(root)
    if probe is None or kept == _refusal(probe.before):
        return None
    git_dir = os.path.join(root, ".git")
    try:
        index_changed = os.stat(os.path.join(git_dir, "index")).st_mtime_ns
    except OSError:
        return None
    # Settled before this process began (before its scan): a folder changed after the scan began (a note
    # made while it ran, in a search that stalled for seconds) must not be taken as the scan saw it.
    settled = probe.started - SETTLED_NS
    names = folders()
    stats = _folder_stats(root, names) if index_changed <= settled else None
    if stats is None or stats[1] > settled:
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
    if index_signature(git_dir) != probe.before or _folder_stats(root, names) != stats:
        return None  # changed while git listed it
    plain: set[str] = set()
    for entry in done.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        tag, _, rest = entry.partition(" ")  # "H 100644 SHA 0\tpath"
        mode, _, path = rest.partition("\t")
        if mode.startswith("160000 "):  # a submodule: git does not look at the files inside it
            if layout.may_hold_notes(path):
                return _refusal(probe.before)
        elif tag == "H" and mode.endswith(" 0"):
            plain.add(path)
        elif layout.is_note_path(path):
            return _refusal(probe.before)
    if any(path not in plain for path in notes):
        return _refusal(probe.before)
    dirty = sorted(probe.dirty)
    return json.dumps({"index": probe.before, "layout": repr(layout), "folders": stats[0], "dirty": dirty})


def _refusal(index: str) -> str:
    return json.dumps({"index": index, "refused": True})
