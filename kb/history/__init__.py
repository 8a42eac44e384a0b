"""git: repository checks, pending changes, commits of exactly the paths a change touched, history reads
(remotes and sync: kb.history.sync).

Writes use the real git (update-index, write-tree, commit-tree, update-ref; commit), never GitPython's
own index writer. User text (paths, messages) always goes on stdin, after `--` or as the value of `-m`/`-F`,
never where git reads options, and paths are literal (GIT_LITERAL_PATHSPECS): a note named `Plan [v2].md`
is never read as a pattern.

No code from the repository runs on kb's git calls (a knowledge base may be someone else's folder, or a
clone): every call goes through `git_command`, which turns hooks and fsmonitor off, and a repository's
calls also turn off the clean/smudge filters its configuration defines (but for the few that read only
commits, trees and blobs by id, where git runs no filter: `_read`, which so needs no `git config` first).
A repository that asks for signed commits (`commit.gpgSign`) is refused with a message naming the setting.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kb.errors import GitError, HeadMoved, RepositoryStateError
from kb.gitwitness import filters_off
from kb.history import trees
from kb.history.revcache import LOG_FORMAT, CacheUnavailable, RevisionCache, Row, parse_log
from kb.layout import beyond_link

FALLBACK_NAME = "kb"
FALLBACK_EMAIL = "kb@localhost"
MIN_GIT = (2, 25)
INDEX_STATE = "kb-index-state"  # in the git folder: the commit whose tree the index holds, as kb left it
LOOSE_ESTIMATE = "kb-loose-bytes"  # in the git folder: at most how many bytes kb's commits left loose since
SPLIT_TRIED = "kb-split-tried"  # in the git folder: the index's own size after a split that left it large
PACK_LOCK = "kb-pack.lock"  # in the git folder: held while a packing kb started runs
PACK_LOOSE_BYTES = 128 << 20  # loose objects' bytes past which kb packs them (whatever their number)
GIT_ENV = {"LANGUAGE": "C", "LC_ALL": "C", "GIT_LITERAL_PATHSPECS": "1"}
# Hooks (all of them: prepare-commit-msg, post-commit, reference-transaction, post-index-change, ...; the
# `--no-verify` of a commit skips only pre-commit and commit-msg) and the fsmonitor hook never run.
SAFE_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


def git_command(args: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The argv of a git call of kb's: no hooks, no fsmonitor (`extra`: more `-c` settings)."""
    return [git_program(), *SAFE_CONFIG, *extra, *args]


_GIT_PROGRAM: dict[str, str] = {}  # $PATH -> the git it finds


def git_program() -> str:
    """The git that $PATH finds, looked up once per PATH (and again if it is gone): given as "git", each
    call would try every folder of PATH before git's own (0.3 ms a call on a long PATH)."""
    path = os.environ.get("PATH", os.defpath)
    found = _GIT_PROGRAM.get(path)
    if found is None or not os.access(found, os.X_OK):
        found = shutil.which("git", path=path) or "git"
        _GIT_PROGRAM[path] = found
    return found


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "on", "1")


@dataclass(frozen=True)
class Change:
    status: str  # two-letter porcelain status
    path: str


def check_git() -> None:
    """git must be installed and recent enough; say what to install when it is not."""
    exe = shutil.which("git")
    if exe is None:
        raise GitError("git is not installed; install git 2.25 or newer (e.g. 'apt-get install git')")
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise GitError(f"git does not run: {exc}") from None
    numbers = out.split()[2].split(".") if len(out.split()) > 2 else []
    try:
        version = (int(numbers[0]), int(numbers[1]))
    except (IndexError, ValueError):
        return
    if version < MIN_GIT:
        raise GitError(f"git {out.split()[2]} is too old; kb needs git 2.25 or newer")


def init_repository(root: Path) -> None:
    """`git init` (idempotent) with the real git."""
    check_git()
    try:
        subprocess.run(
            git_command(["init", "-q", "--", str(root)]), capture_output=True, text=True, check=True
        )
    except subprocess.CalledProcessError as exc:
        raise GitError(f"git init failed: {(exc.stderr or '').strip()}") from None


class _Repository:
    """One knowledge base's git repository: state checks, pending changes, commits.

    The commands a note change runs (status, update-index, commit) go straight to the git executable:
    importing GitPython costs 90-140 ms, a third of the time `kb add` may take. GitPython is used where that
    cost does not count: `kb sync` (kb.history.sync) runs git through GitPython's command layer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.git_dir = _git_dir(root)
        self._identity_env: dict[str, str] | None = None
        self._config_values: dict[str, str] | None = None
        self._filter_off: list[str] | None = None
        # When the last commit() left git's index exactly the new HEAD's tree (_leave_index recorded it):
        # the commit it was made on (None: the first) and the commit.
        self.left: tuple[str | None, str] | None = None

    # ------------------------------------------------------------ state checks

    def check_writable_state(self, wait_for_index_lock: float = 0.0) -> None:
        """Refuse to write in a repository that is mid-merge, mid-rebase, detached or locked. A git index
        lock is waited for up to `wait_for_index_lock` seconds before it counts as stale."""
        g = self.git_dir
        states = {
            "MERGE_HEAD": "a merge is in progress",
            "rebase-merge": "a rebase is in progress",
            "rebase-apply": "a rebase or 'git am' is in progress",
            "CHERRY_PICK_HEAD": "a cherry-pick is in progress",
            "REVERT_HEAD": "a revert is in progress",
            "BISECT_LOG": "a bisect is in progress",
        }
        for name, what in states.items():
            if (g / name).exists():
                raise RepositoryStateError(
                    f"{what} in {self.root}; finish or abort it with git first, kb has changed nothing"
                )
        deadline = time.monotonic() + wait_for_index_lock
        while (g / "index.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # a git process that is still running finishes and removes it
        if (g / "index.lock").exists():
            raise RepositoryStateError(
                f"git's index is locked ({g / 'index.lock'}): if no git program is running, "
                "delete that file and try again; kb has changed nothing"
            )
        head = g / "HEAD"
        try:
            content = head.read_text().strip()
        except OSError as exc:
            raise RepositoryStateError(f"cannot read {head}: {exc.strerror}") from None
        if not content.startswith("ref:"):
            raise RepositoryStateError(
                f"HEAD is detached in {self.root}; check out a branch with git first, kb has changed nothing"
            )
        if _is_true(self._config().get("commit.gpgsign")):
            raise RepositoryStateError(
                "git's setting commit.gpgSign asks for signed commits, and kb does not sign (signing would "
                "run the program gpg.program names); turn it off for this knowledge base with "
                f"'git -C {self.root} config commit.gpgSign false'; kb has changed nothing"
            )

    def abort_merge(self) -> None:
        self._run(["merge", "--abort"])

    def has_commits(self) -> bool:
        return self.head() is not None

    def head(self) -> str | None:
        """HEAD's commit id, or None before the first commit. Read from the ref files when they are
        plain (as right after a commit); git answers otherwise."""
        try:
            content = (self.git_dir / "HEAD").read_text().strip()
            if content.startswith("ref: refs/"):
                ref = content[5:]
                try:
                    sha = (self.git_dir / ref).read_text().strip()
                except FileNotFoundError:  # a packed ref (after `git pack-refs` or a gc)
                    sha = _packed_ref(self.git_dir / "packed-refs", ref)
            else:
                sha = content
            if len(sha) in (40, 64) and all(c in "0123456789abcdef" for c in sha):
                return sha
        except (OSError, ValueError):
            pass
        proc = self._run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        sha = proc.stdout.decode("ascii", "replace").strip()
        return sha if proc.returncode == 0 and sha else None

    # ------------------------------------------------------------ changes

    def pending(self, pathspecs: Sequence[str]) -> list[Change]:
        """Uncommitted changes (tracked and untracked) under the given paths."""
        return self.pending_later(pathspecs)()

    def pending_later(self, pathspecs: Sequence[str]) -> Callable[[], list[Change]]:
        """pending(), started now and read when the returned function is called: git works on its own
        while kb does something else."""
        proc = self._start([*_STATUS, "--", *pathspecs])
        assert proc.stdin is not None
        proc.stdin.close()
        proc.stdin = None

        def result() -> list[Change]:
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise GitError(f"git status failed: {last_line(stderr.decode('utf-8', 'replace'))}")
            return _changes(stdout)

        return result

    def status_process(self, pathspecs: Sequence[str]) -> subprocess.Popen[bytes]:
        """pending()'s git status as a process of its own, its output on a pipe (parse it with
        status_changes), for a caller that waits for it beside other work (the warm server). It takes no
        lock and writes nothing (no refresh of git's index), so it never stands in a writer's way, and it
        runs at a lower priority than the user's commands (nice 10)."""
        proc = self._start([*_STATUS, "--", *pathspecs], {"GIT_OPTIONAL_LOCKS": "0"}, quiet=True)
        with contextlib.suppress(OSError):  # lowered once started (a preexec_fn would copy the whole caller)
            os.setpriority(os.PRIO_PROCESS, proc.pid, 10)
        return proc

    def commit(
        self,
        paths: Iterable[str],
        message: str,
        author_date: datetime,
        committer_date: datetime,
        meanwhile: Callable[[], None] | None = None,
    ) -> str | None:
        """Commit exactly `paths` (added, changed or deleted). Returns the new commit id, or None if
        there was nothing to commit. `meanwhile` runs while git writes the commit (it must not raise): for
        files, git's processes are run by a thread meanwhile.

        Files are committed with git's plumbing (update-index, write-tree, commit-tree, update-ref): a
        porcelain `git commit` first refreshes the whole index (an lstat of every tracked file) and runs
        the automatic maintenance, which grow with the number of notes. Folders (a first commit), and
        anything else staged by someone else (it stays staged, uncommitted), go through `git commit`."""
        self.left = None
        paths = sorted(set(paths))
        if not paths:
            return None
        message = message_for_git(message)
        env = dict(self._identity())
        env["GIT_AUTHOR_DATE"] = git_date(author_date)
        env["GIT_COMMITTER_DATE"] = git_date(committer_date)
        waiting = [meanwhile] if meanwhile is not None else []

        def run_meanwhile() -> None:
            while waiting:
                waiting.pop()()

        if all(not os.path.isdir(self.root / p) or os.path.islink(self.root / p) for p in paths):
            # Files: update-index stages an addition, a change or a deletion alike, and passes over a path
            # that is neither on disk nor in the index (a deletion already staged).
            # A path beyond a folder replaced by a symbolic link is gone as far as the notes go (git refuses
            # to stage it "beyond a symbolic link"): it is taken out of the index.
            gone = [p for p in paths if beyond_link(self.root, p)]
            data = "".join(f"{p}\0" for p in paths if p not in gone).encode("utf-8")

            def plumbing() -> tuple[bool, str | None]:
                left = self._index_as_left()
                hashed = self._staged_as_git(paths, left[1]) if left is not None else None
                # git's split index split again, when it has grown, by the update-index that stages the
                # paths (one process, under git's lock: see _split_grown).
                splitting = self._split_grown()
                split = ["--split-index"] if splitting else []
                if gone:
                    names = "".join(f"{p}\0" for p in gone).encode("utf-8")
                    self._git_input(["update-index", *split, "--force-remove", "-z", "--stdin"], names)
                    split = []
                if data:
                    self._git_input(["update-index", *split, "--add", "--remove", "-z", "--stdin"], data)
                if splitting:
                    self._split_done()
                return self._commit_tree(paths, message, env, left, hashed)

            done, sha = plumbing() if meanwhile is None else _alongside(plumbing, run_meanwhile)
            if done:
                return sha
        else:
            # Folders (the first commit): `git add` walks them, with .gitignore.
            indexed = {p for p in self._git("ls-files", "-z", "--", *paths).split("\0") if p}
            present = [p for p in paths if p in indexed or os.path.lexists(self.root / p)]
            if present:
                self._git("add", "-A", "--", *present)
        return self._commit_porcelain(paths, message, env, run_meanwhile)

    def _commit_tree(
        self,
        paths: list[str],
        message: str,
        env: dict[str, str],
        left: tuple[str, str] | None = None,
        hashed: _Hashed | None = None,
    ) -> tuple[bool, str | None]:
        """The staged `paths` committed with plumbing: (True, the commit or None when the tree is HEAD's),
        or (False, None) when `git commit` must do it (something else is staged, the index cannot be
        written as a tree, the configuration asks for a message cleanup kb does not do).

        HEAD moves by compare-and-swap from the commit read first (or from nothing, for the first
        commit; through its symbolic ref to the branch), so a HEAD moved meanwhile by anything else is
        an error, never a lost commit. The index then holds exactly the new HEAD's tree (write-tree
        records it), as after `git commit`.

        What else is staged is read from the trees (diff-tree), unless the index was, before `paths` were
        staged, exactly as kb's last commit left it (`left`: that commit and its tree, see _index_as_left):
        then only `paths` can differ from HEAD. Comparing two trees of a folder of 100,000 notes takes git
        60 ms."""
        text = clean_message(message)
        if not text or "commit.cleanup" in self._config():
            return False, None
        old = self.head()
        # The tree objects are the slow part: a folder of many notes is one large tree, written again whole
        # for each change (700 kB at 10,000 notes, 7 MB at 100,000). Compressing it was a third of
        # write-tree's time at 10,000 notes and half at 100,000, for 40% fewer bytes (the object ids in
        # it do not compress at all): it is written as it is, and packed soon (_pack_when_due), where each
        # tree is a delta of the one before.
        # When the index was HEAD's tree as kb's last commit left it, every entry is HEAD's or one
        # update-index has just written: write-tree's lookup of every entry's object (a third of its
        # time at 100,000 notes) would find a missing one only in an object store already damaged,
        # where HEAD lacks it too (`git fsck` says so), and is skipped (--missing-ok).
        known = left is not None and old is not None and left[0] == old
        tree = self._tree_from_images(paths, left[1], hashed) if known and left is not None else None
        if tree is not None:
            written = self._index_signature()  # the index as update-index left it: exactly `tree`
        else:
            args = ["-c", "core.looseCompression=0", "write-tree", *(["--missing-ok"] if known else [])]
            writing = self._run(args)
            written = self._index_signature()  # the index as write-tree left it: exactly `tree`
            tree = writing.stdout.decode("ascii", "replace").strip()
            if writing.returncode != 0 or not tree:
                return False, None  # unmerged entries, say: `git commit` explains
        if known and left is not None:
            if tree == left[1]:
                return True, None  # the files are as committed
        else:
            if old is None:
                listed = self._read(["ls-tree", "-r", "-z", "--name-only", "--full-tree", tree])
            else:
                listed = self._read(["diff-tree", "-r", "-z", "--no-renames", "--name-only", old, tree])
            if listed.returncode != 0:
                return False, None
            staged = [p for p in listed.stdout.decode("utf-8", "replace").split("\0") if p]
            if not staged:
                return True, None
            wanted = set(paths)
            if any(p not in wanted for p in staged):
                return False, None
        parent = [] if old is None else ["-p", old]
        sha = self._git_input(["commit-tree", tree, *parent], text.encode("utf-8"), env).strip()
        action = os.environ.get("GIT_REFLOG_ACTION") or ("commit (initial)" if old is None else "commit")
        subject = text.split("\n", 1)[0]
        moved = self._run(["update-ref", "-m", f"{action}: {subject}", "HEAD", sha, old or ""])
        if moved.returncode != 0:
            now = self.head()
            if now == sha:
                return True, sha
            why = last_line(moved.stderr.decode("utf-8", "replace"))
            if now != old:
                raise HeadMoved(
                    f"HEAD moved while kb was committing (another program changed the branch): {why}"
                )
            raise GitError(f"git update-ref failed: {why}")
        if self._leave_index(sha, tree, written):
            self.left = (old, sha)
        with contextlib.suppress(GitError):  # the commit is made: packing is for another time
            self._pack_when_due()
        return True, sha

    def _images_usable(self, paths: list[str], root: str) -> bool:
        """Whether the trees of a commit of `paths` on the tree `root` may be made from the images kept
        (kb.history.trees): there are some, and git keeps its objects as it does by default."""
        if len(paths) > TREES_MOST or trees.kept(root) is None:
            return False
        if any(os.environ.get(name) for name in _OBJECTS_ELSEWHERE):
            return False
        config = self._config()
        for key in _OBJECT_SETTINGS:
            value = config.get(key, "false").lower()
            if value not in _FALSE and not (key == "extensions.objectformat" and value == "sha1"):
                return False
        return True

    def _staged_as_git(self, paths: list[str], root: str) -> _Hashed | None:
        """Before update-index stages `paths` on an index that holds exactly the tree `root`: the entries
        it will stage, worked out here (kb.history.trees.staged_as_git) when the images are usable and
        nothing converts a file's bytes as git hashes them (no attributes file anywhere git reads one,
        no end-of-line setting, no setting that changes how modes or links are kept); None otherwise."""
        if not self._images_usable(paths, root) or os.environ.get("GIT_ATTR_SOURCE"):
            return None
        config = self._config()
        if config.get("core.autocrlf", "false").lower() not in _FALSE:
            return None  # (true, input: line ends converted)
        if "core.attributesfile" in config or any(
            config.get(key, "true").lower() in _FALSE for key in ("core.filemode", "core.symlinks")
        ):
            return None
        home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        elsewhere = (
            self._common_dir() / "info" / "attributes",
            Path(home) / "git" / "attributes",
            Path("/etc/gitattributes"),
            Path(os.path.realpath(git_program())).parent.parent / "etc" / "gitattributes",
        )
        if any(os.path.lexists(path) for path in elsewhere):
            return None
        return trees.staged_as_git(self.root, root, paths)

    def _tree_from_images(self, paths: list[str], root: str, hashed: _Hashed | None = None) -> str | None:
        """The tree of the index once `paths` were staged on an index that held exactly the tree `root`,
        made from the images of the trees the warm server keeps (kb.history.trees): their staged entries
        put in place of the old ones: those worked out before they were staged (`hashed`), when every
        file is still as it was then, else git's (`ls-files --stage`). None when there are no such
        images, or they cannot make it, or the repository keeps its objects otherwise than git does by
        default: then git's write-tree makes it."""
        if not self._images_usable(paths, root):
            return None
        if hashed is not None and all(trees.signature(self.root / p) == was for p, was in hashed[1].items()):
            try:
                return trees.build(self._common_dir() / "objects", root, hashed[0])
            except OSError:
                return None
        listed = self._run(["ls-files", "--stage", "-z", "--", *paths])
        if listed.returncode != 0:
            return None
        changes: dict[str, tuple[bytes, bytes] | None] = dict.fromkeys(paths)
        for item in listed.stdout.split(b"\0"):
            if not item:
                continue
            info, _, name = item.partition(b"\t")
            fields = info.split(b" ")
            path = name.decode("utf-8", "surrogateescape")
            if len(fields) != 3 or fields[2] != b"0" or path not in changes or changes[path] is not None:
                return None  # unmerged, or not one of the paths
            try:
                changes[path] = (fields[0], bytes.fromhex(fields[1].decode("ascii")))
            except (UnicodeDecodeError, ValueError):
                return None
        try:
            return trees.build(self._common_dir() / "objects", root, changes)
        except OSError:
            return None

    def keep_trees(self, root: str, folders: Iterable[str]) -> None:
        """Keep images of the tree `root` and of its trees at `folders` (kb.history.trees.keep), for the
        commits of processes forked from this one."""

        def batch(spec: bytes) -> bytes | None:
            proc = self._read(["cat-file", "--batch"], spec)
            return proc.stdout if proc.returncode == 0 else None

        trees.keep(root, folders, batch)

    def _index_signature(self) -> str | None:
        """The git index file's identity and times: any rewrite of it (git writes a new file and renames
        it into place) changes them."""
        if os.environ.get("GIT_INDEX_FILE"):
            return None  # another index than the repository's own
        try:
            st = os.stat(self.git_dir / "index")
        except OSError:
            return None
        return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"

    def _split_grown(self) -> bool:
        """Whether git's split index has grown its own file to a quarter of the shared index's size: git
        writes a new shared index only when the entries it lacks (new ones) pass a share of all; entries
        only changed since it was written (their stat data refreshed: every file touched, copied back or
        checked out) stay in the index file, up to every entry, and then each commit reads and writes
        both whole. The update-index that stages a commit's paths then splits it again."""
        if os.environ.get("GIT_INDEX_FILE") or self._config().get("core.splitindex", "").lower() in _FALSE:
            return False
        own, shared = _split_sizes(self.git_dir)
        if shared <= 0 or own * 4 < shared:
            return False
        # Entries git cannot tell from a change (racily clean: a file changed in the second the index
        # was written, or dated in the future) stay in its own file whatever splits it: after splits that
        # left it as large (_split_done), none again until it has doubled, or until 2^N minutes after the
        # Nth (each writes a new shared index, kept two weeks).
        tried = self.git_dir / SPLIT_TRIED
        with contextlib.suppress(OSError, ValueError):
            size, times = (int(n) for n in tried.read_text(encoding="ascii").split())
            waited = time.time() - tried.stat().st_mtime
            return own >= 2 * size or waited >= 60 * 2 ** min(times, 14)
        return True

    def _split_done(self) -> None:
        """After a split (_split_grown): what it left in the index's own file, when that is still a
        quarter of the shared index or more, for the next look; otherwise nothing."""
        own, shared = _split_sizes(self.git_dir)
        tried = self.git_dir / SPLIT_TRIED
        with contextlib.suppress(OSError):
            if shared > 0 and own * 4 >= shared:
                times = 0
                with contextlib.suppress(OSError, ValueError, IndexError):
                    times = int(tried.read_text(encoding="ascii").split()[1])
                tried.write_text(f"{own} {times + 1}", encoding="ascii")
            else:
                tried.unlink(missing_ok=True)

    def _leave_index(self, commit: str, tree: str, written: str | None) -> bool:
        """Record that the index holds exactly `tree`, the tree of `commit`: `written` is the index file's
        signature read as write-tree ended, and it must still be the file's now (nothing wrote it while
        the commit was made). Only a write in the moment between write-tree's end and that first look
        would go unseen; the state is not recorded again after anything else (git status, say) writes the
        index, so a commit after that compares the trees. True when recorded."""
        state = self.git_dir / INDEX_STATE
        signature = self._index_signature()
        try:
            if signature is None or signature != written:
                state.unlink(missing_ok=True)
                return False
            temporary = state.with_name(f"{INDEX_STATE}.{os.getpid()}")
            temporary.write_text(f"{commit}\n{tree}\n{signature}\n", encoding="ascii")
            os.replace(temporary, state)
        except OSError:
            with contextlib.suppress(OSError):
                state.unlink(missing_ok=True)
            return False
        return True

    def index_as_left(self) -> tuple[str, str] | None:
        """(commit, tree) when git's index is still exactly the tree of kb's last commit (_index_as_left)."""
        return self._index_as_left()

    def _index_as_left(self) -> tuple[str, str] | None:
        """(commit, tree) when the index file is the one kb's commit of `commit` left (same file, same
        times: nothing has written it since), and so holds exactly `tree`; None otherwise."""
        try:
            commit, tree, signature, *_ = (self.git_dir / INDEX_STATE).read_text(encoding="ascii").split("\n")
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not commit or not tree or signature != self._index_signature():
            return None
        return commit, tree

    def _pack_when_due(self) -> None:
        """What `git commit` does after each commit and plumbing does not: git's automatic packing, when
        git's own tests say it is due (more loose objects than gc.auto, counted as git counts them: those
        whose id begins with 17, times 256; or more packs than gc.autoPackLimit). `git gc --auto` then
        runs in the background by itself.

        And a packing git's test does not see: of few loose objects, but large ones. Each commit writes
        the tree of every folder it changes anew, whole (a folder of 10,000 notes: 700 kB; of 100,000:
        7 MB), and git counts only objects: 2,000 commits of one note each, in a folder of 100,000 notes,
        would leave 14 GB of trees loose. So past PACK_LOOSE_BYTES of loose objects (see _loose_due),
        `git repack -d -l` packs them into one more pack (each tree a delta of the one before: a few
        hundred bytes), in the background as gc does (unless gc.autoDetach is false), one at a time; the
        packs it adds are gc's to join, past gc.autoPackLimit."""
        config = self._config()
        if config.get("maintenance.auto", "true").lower() in _FALSE:
            return  # as `git commit` does: no automatic maintenance
        limit = config.get("gc.auto", "6700")
        try:
            threshold = -(-int(limit) // 256)
        except ValueError:
            threshold = 27
        if threshold <= 0:
            return  # gc.auto = 0: the user packs by hand
        try:
            packs_limit = int(config.get("gc.autopacklimit", "50"))
        except ValueError:
            packs_limit = 50
        common = self._common_dir()
        loose = packs = 0
        with contextlib.suppress(OSError):  # no loose object begins with 17 (yet)
            loose = sum(1 for name in os.listdir(common / "objects" / "17") if len(name) >= 38)
        with contextlib.suppress(OSError):
            packs = sum(1 for name in os.listdir(common / "objects" / "pack") if name.endswith(".pack"))
        if loose > threshold or 0 < packs_limit < packs:
            self._run(["gc", "--auto", "--quiet"], lowest=True)  # gc's packing, in the background
        elif (found := self._loose_due(common)) is not None:
            started = self._repack(common, config.get("gc.autodetach", "true").lower() not in _FALSE)
            with contextlib.suppress(OSError):
                (common / LOOSE_ESTIMATE).write_text("0" if started else str(found), encoding="ascii")

    def _common_dir(self) -> Path:
        """The folder of the objects (a linked worktree's are in the main repository's folder)."""
        with contextlib.suppress(OSError):
            return self.git_dir / (self.git_dir / "commondir").read_text().strip()
        return self.git_dir

    def _loose_due(self, common: Path) -> int | None:
        """The bytes the loose objects take, when PACK_LOOSE_BYTES or more; None otherwise. Counting them
        is a stat of every loose object (10 ms for 3,000): done only once an estimate kept in
        LOOSE_ESTIMATE reaches the mark. A commit adds the size of git's index to it, more than the trees
        it wrote (a tree holds a folder's names and ids, the index every file's, with its stat data).
        Objects made otherwise (git by hand, a pull) are found at the count."""
        estimate_file = common / LOOSE_ESTIMATE
        try:
            estimate = int(estimate_file.read_text(encoding="ascii"))
        except (OSError, ValueError):
            estimate = 0
        estimate += _index_bytes(self.git_dir)
        if estimate >= PACK_LOOSE_BYTES:
            estimate = _loose_bytes(common / "objects")
            if estimate >= PACK_LOOSE_BYTES:
                return estimate  # the caller keeps what it left
        with contextlib.suppress(OSError):
            estimate_file.write_text(str(estimate), encoding="ascii")
        return None

    def _repack(self, common: Path, detach: bool) -> bool:
        """`git repack -d -l -q` (what `git gc --auto` runs for many loose objects: those a commit being
        written meanwhile has not made reachable yet stay loose), unless one kb started still runs (it
        holds PACK_LOCK's lock: the repack process inherits it). In the background at the lowest
        priority, in a session of its own (a Ctrl-C in the terminal does not stop it), or in the
        foreground. Whether it started (or, in the foreground, ran)."""
        try:
            fd = os.open(common / PACK_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a packing runs
            repack = ["repack", "-d", "-l", "-q"]
            if not detach:
                return self._run(repack).returncode == 0
            args = self._argv(repack)
            env = {**os.environ, **GIT_ENV}
            try:
                proc = subprocess.Popen(
                    _lowest(args),
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    pass_fds=(fd,),
                    start_new_session=True,
                )
            except OSError:
                return False
            _BACKGROUND[:] = [p for p in _BACKGROUND if p.poll() is None] + [proc]  # reaped when done
            return True
        finally:
            os.close(fd)

    def _commit_porcelain(
        self, paths: list[str], message: str, env: dict[str, str], meanwhile: Callable[[], None]
    ) -> str | None:
        """The staged `paths` committed with `git commit`."""
        out = self._git("diff", "--cached", "--no-renames", "--name-only", "-z")
        everything = [p for p in out.split("\0") if p]
        wanted = set(paths)
        folders = tuple(f"{p}/" for p in paths if os.path.isdir(self.root / p))
        staged = [p for p in everything if p in wanted or p.startswith(folders)]
        if not staged:
            meanwhile()
            return None
        # With nothing else staged, a plain commit records exactly these paths, and is about twice as fast
        # as `git commit -- paths` (which builds a second index). Anything staged by someone else stays
        # staged: then the paths are named.
        only = [] if len(staged) == len(everything) else ["--", *staged]
        args = ["commit", "-q", "--no-verify", "-F", "-", *only]
        proc = self._start(args, env)
        assert proc.stdin is not None
        try:
            proc.stdin.write(message.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # git died early: its exit status says why
        proc.stdin = None  # written and closed: communicate() only reads
        meanwhile()
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise GitError(f"git commit failed: {last_line(err.decode('utf-8', 'replace'))}")
        sha = self.head()
        if sha is None:
            raise GitError("git commit left no commit behind")
        return sha

    # ------------------------------------------------------------ internals

    def _identity(self) -> dict[str, str]:
        """The configured git identity when there is one; kb's fallback otherwise.

        Read with it: git's split index and untracked cache, which kb turns on unless they are set either
        way. With many notes in one folder they make each commit write a small index instead of all of it,
        and `git status` skip re-reading unchanged folders."""
        if self._identity_env is None:
            found = self._config()
            for key in ("core.splitIndex", "core.untrackedCache"):
                if key.lower() not in found:
                    self._run(["config", key, "true"])
            env: dict[str, str] = {}
            for role in ("AUTHOR", "COMMITTER"):
                if "user.name" not in found and not os.environ.get(f"GIT_{role}_NAME"):
                    env[f"GIT_{role}_NAME"] = FALLBACK_NAME
                if "user.email" not in found and not os.environ.get(f"GIT_{role}_EMAIL"):
                    env[f"GIT_{role}_EMAIL"] = FALLBACK_EMAIL
            self._identity_env = env
        return self._identity_env

    def _config(self) -> dict[str, str]:
        """The settings kb reads (identity, index options, signing, filters), in one `git config` call."""
        if self._config_values is None:
            wanted = (
                r"^(user\.(name|email)|core\.(splitindex|untrackedcache)|commit\.(gpgsign|cleanup)|gc\.auto(detach|packlimit)?|maintenance\.auto"
                r"|filter\..+|core\.(sharedrepository|fsync|fsyncobjectfiles|fsyncmethod)|extensions\.objectformat"
                r"|core\.(autocrlf|attributesfile|filemode|symlinks))$"
            )
            try:
                proc = subprocess.run(
                    git_command(["config", "-z", "--get-regexp", wanted]),
                    cwd=self.root,
                    capture_output=True,
                    env={**os.environ, **GIT_ENV},
                )
            except OSError as exc:
                raise GitError(f"cannot run git: {exc.strerror or exc}") from None
            found: dict[str, str] = {}
            for item in proc.stdout.decode("utf-8", "replace").split("\0"):
                key, _, value = item.partition("\n")
                if value.strip():
                    found[key if key.startswith("filter.") else key.lower()] = value.strip()
            self._config_values = found
        return self._config_values

    def _argv(self, args: Sequence[str]) -> list[str]:
        """git_command(args), with every filter the configuration defines turned off: a filter's clean and
        smudge commands run on add, status, diff and checkout of the paths .gitattributes gives it."""
        if self._filter_off is None:
            names = {
                key[len("filter.") :].rsplit(".", 1)[0] for key in self._config() if key.startswith("filter.")
            }
            self._filter_off = filters_off(names)
        return git_command(args, self._filter_off)

    def _run(
        self,
        args: Sequence[str],
        data: bytes | None = None,
        env: dict[str, str] | None = None,
        lowest: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """git with `args`, its output captured; `lowest`: at the lowest priority (_lowest)."""
        full_env = {**os.environ, **GIT_ENV, **(env or {})}
        argv = _lowest(self._argv(args)) if lowest else self._argv(args)
        try:
            return subprocess.run(argv, cwd=self.root, input=data, capture_output=True, env=full_env)
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None

    def _read(self, args: Sequence[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """A git call that reads objects only (log without patches, rev-list, cat-file --batch without
        --filters or --textconv): no filter can run, so none is turned off."""
        try:
            return subprocess.run(
                git_command(args),
                cwd=self.root,
                input=data,
                capture_output=True,
                env={**os.environ, **GIT_ENV},
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None

    def _start(
        self, args: Sequence[str], env: dict[str, str] | None = None, quiet: bool = False
    ) -> subprocess.Popen[bytes]:
        """git running, its stdout on a pipe; its stdin and stderr on pipes too, or (`quiet`) on nothing."""
        other = subprocess.DEVNULL if quiet else subprocess.PIPE
        try:
            return subprocess.Popen(
                self._argv(args),
                cwd=self.root,
                stdin=other,
                stdout=subprocess.PIPE,
                stderr=other,
                env={**os.environ, **GIT_ENV, **(env or {})},
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None

    def _git(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
        return self._git_input(list(args), None if stdin is None else stdin.encode("utf-8"), env)

    def _git_input(self, args: list[str], data: bytes | None, env: dict[str, str] | None = None) -> str:
        proc = self._run(args, data, env)
        if proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {last_line(proc.stderr.decode('utf-8', 'replace'))}")
        return proc.stdout.decode("utf-8", "replace")


_FALSE = ("false", "no", "off", "0")
# Settings under which git writes objects otherwise than kb.history.trees does (permissions for a group,
# an fsync, another hash): set to anything but false, git's write-tree writes the trees.
_OBJECT_SETTINGS = (
    "core.sharedrepository",
    "core.fsync",
    "core.fsyncobjectfiles",
    "core.fsyncmethod",
    "extensions.objectformat",
)
_Hashed = tuple[dict[str, tuple[bytes, bytes] | None], dict[str, "trees.Signature | None"]]
TREES_MOST = 100  # paths at most a commit makes its trees of from images (more: git's write-tree)
_OBJECTS_ELSEWHERE = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_INDEX_FILE", "GIT_DIR")
_BACKGROUND: list[subprocess.Popen[bytes]] = []  # packings started: kept until done, then reaped


def _split_sizes(git_dir: Path) -> tuple[int, int]:
    """The sizes of git's index file and, with a split index, of the shared index written or used last
    (git freshens the one it uses; older ones stay two weeks); 0 for one that is not there."""
    own = 0
    newest = (0, 0)  # (mtime, size)
    with contextlib.suppress(OSError):
        own = os.stat(git_dir / "index").st_size
        with os.scandir(git_dir) as entries:
            for entry in entries:
                if entry.name.startswith("sharedindex."):
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        newest = max(newest, (st.st_mtime_ns, st.st_size))
    return own, newest[1]


def _index_bytes(git_dir: Path) -> int:
    """The size of git's index: the index file and, with a split index, its shared index."""
    return sum(_split_sizes(git_dir))


def _lowest(args: list[str]) -> list[str]:
    """`args` run at the lowest priority, and the processes they start too (`nice -n 19`, where there is a
    `nice`)."""
    nice = shutil.which("nice")
    return [nice, "-n", "19", *args] if nice else args


def _loose_bytes(objects: Path) -> int:
    """The bytes of the loose objects under `objects` (its folders 00 to ff)."""
    total = 0
    try:
        with os.scandir(objects) as found:
            folders = [e.path for e in found if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def _alongside(
    work: Callable[[], tuple[bool, str | None]], meanwhile: Callable[[], None]
) -> tuple[bool, str | None]:
    """`work` (git's processes, waited for) in a thread while `meanwhile` runs in this one; work's result or
    its exception, once both are done. Held signals stay with the main thread."""
    import threading

    result: list[tuple[bool, str | None]] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # raised in the caller's thread below
            failed.append(exc)

    worker = threading.Thread(target=run, name="kb-commit")
    worker.start()
    try:
        meanwhile()
    finally:
        worker.join()
    if failed:
        raise failed[0]
    return result[0]


_STATUS = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]


def status_changes(out: bytes) -> list[Change]:
    """The output of status_process as changes."""
    return _changes(out)


def _changes(out: bytes) -> list[Change]:
    """`git status --porcelain=v1 -z` output as changes. A path that is not UTF-8 keeps its bytes as lone
    surrogates (as os.listdir gives it), never a stand-in character that names no file."""
    changes: list[Change] = []
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        changes.append(Change(entry[:2], entry[3:]))
    return changes


def _git_dir(root: Path) -> Path:
    """The repository's git folder: .git, or where a .git file ("gitdir: ...") points."""
    dot = root / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():
        try:
            text = dot.read_text().strip()
        except OSError as exc:
            raise GitError(f"cannot read {dot}: {exc.strerror}") from None
        if text.startswith("gitdir:"):
            target = Path(text[7:].strip())
            target = target if target.is_absolute() else root / target
            if target.is_dir():
                return target
    if not root.exists():
        raise GitError(f"{root} does not exist")
    raise GitError(f"{root} is not a git repository")


def as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def git_date(moment: datetime) -> str:
    return f"@{int(moment.timestamp())} +0000"


def message_for_git(message: str) -> str:
    """`message` with each character git does not take for UTF-8 text replaced by U+FFFD: the noncharacters
    (U+FDD0..U+FDEF, U+xFFFE and U+xFFFF of every plane) and a lone surrogate (a file name's undecodable
    byte). On any of them git's check (verify_utf8) reads the whole message as Latin-1 and records it
    re-encoded, every other non-ASCII character garbled."""
    if message.isascii():
        return message
    return "".join("\ufffd" if _refused(ch) else ch for ch in message)


def _refused(ch: str) -> bool:
    code = ord(ch)
    return 0xFDD0 <= code <= 0xFDEF or 0xD800 <= code <= 0xDFFF or code & 0xFFFE == 0xFFFE


def clean_message(message: str) -> str:
    """A commit message as `git commit -F` records it (git stripspace): trailing whitespace off every
    line, runs of empty lines made one, none at the start or the end, a final newline."""
    lines: list[str] = []
    for line in message.split("\n"):
        line = line.rstrip(" \t\n\v\f\r")
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "".join(f"{line}\n" for line in lines)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().strip("'").splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def moments(dates: Sequence[datetime], counted: Sequence[bool] | None = None) -> list[datetime]:
    """The moments of the commits of a line, given their author dates oldest first: each the latest date
    among it and the commits before it. Author dates can go back along a line (a commit rebased or
    cherry-picked onto newer ones keeps its own); the moments never do. A commit `counted` leaves out (one
    that changed no note) has its own date and moves no later one."""
    result: list[datetime] = []
    latest: datetime | None = None
    for i, date in enumerate(dates):
        if counted is not None and not counted[i]:
            result.append(date)
            continue
        latest = date if latest is None or date > latest else latest
        result.append(latest)
    return result


# ---------------------------------------------------------------- reading history


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author_date: datetime
    subject: str
    body: str
    path: str  # the note's path in this commit
    blob: str | None = None  # the path's blob id at this commit, where known ("" where it was deleted)


Recent = list[tuple[CommitInfo, list[tuple[str, str]]]]  # History.recent: commits, each with (status, path)


def _commit(row: Row, path: str) -> CommitInfo:
    return CommitInfo(row.sha, datetime.fromisoformat(row.date), row.subject, row.body, path, row.blob or "")


class History(_Repository):
    """The repository, with reading: a note's commits (following renames), file contents at revisions,
    recent changes, and earlier revisions recorded beside the current one. A note's commits come from
    the revision cache (kb/revcache.py), brought up to HEAD first; from git where it cannot be used."""

    _cache: RevisionCache | None = None

    def path_log(self, path: str, until: str | None = None) -> list[tuple[CommitInfo, str]]:
        """Commits that touched `path` (side branches included; a merge when its result differs from every
        parent's), newest first, each with the path's status letter in it (A added, M modified, D deleted)."""
        head = self.head()
        if head is None:
            return []
        if until is None:
            cache = self._revision_cache()
            try:
                rows = cache.path_log(head, path)
                return [(_commit(r, path), r.status) for r in rows]
            except CacheUnavailable:
                pass
        self.ensure_commit_graph()
        args = [
            "log",
            "--full-history",
            "--diff-merges=combined",
            "--no-renames",
            "--raw",
            "--no-abbrev",
            "-z",
        ]
        if until:
            args.append(until)
        out = self._git(*args, LOG_FORMAT, "--", path)
        result: list[tuple[CommitInfo, str]] = []
        for sha, date, subject, body, changes in parse_log(out):
            status = next((status for changed, status, _ in changes if changed == path), None)
            if status is None:
                continue  # a merge that took this path from one of its parents
            result.append((CommitInfo(sha, datetime.fromisoformat(date), subject, body, path), status))
        return result

    def _revision_cache(self) -> RevisionCache:
        if self._cache is None:

            def run(args: list[str]) -> tuple[int, str]:
                proc = self._read(args)
                return proc.returncode, proc.stdout.decode("utf-8", "replace")

            self._cache = RevisionCache(self.git_dir, run)
        return self._cache

    def revision_cache(self) -> RevisionCache:
        """The revision cache (kb.history.revcache); its methods raise CacheUnavailable where it cannot be
        used."""
        return self._revision_cache()

    def commits_since(self, known: str, head: str) -> list[str] | None:
        """The commits reachable from `head` and not from `known` (the caller knows `head` descends from
        it), or None when git cannot tell (`known` is gone)."""
        proc = self._read(["rev-list", head, f"^{known}", "--"])
        if proc.returncode != 0:
            return None
        return proc.stdout.decode("ascii", "replace").split()

    def resolve_commit(self, text: str) -> str | None:
        """The full id of the commit `text` names (an id or a prefix of one), or None."""
        proc = self._run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{text}^{{commit}}"])
        sha = proc.stdout.decode("ascii", "replace").strip()
        return sha if proc.returncode == 0 and sha else None

    def ensure_commit_graph(self, refresh: bool = False) -> None:
        """git's commit-graph with changed-path Bloom filters makes `git log -- path` several times faster
        on long histories. Written once (and added to on sync); commits made since are walked as usual.
        A read-only repository simply goes without."""
        info = self.git_dir / "objects" / "info"
        present = (info / "commit-graph").exists() or (info / "commit-graphs").is_dir()
        if present and not refresh:
            return
        self._run(["commit-graph", "write", "--reachable", "--changed-paths", "--split"])

    def commit_count(self, pathspec: str | None = None) -> int:
        """Commits reachable from HEAD (that change something under `pathspec`, when given)."""
        if not self.has_commits():
            return 0
        out = self._git("rev-list", "--count", "HEAD", *(("--", pathspec) if pathspec else ())).strip()
        return int(out) if out.isdigit() else 0

    def trailer_values(self, key: str) -> set[str]:
        """Every value of a commit-message trailer (`Key: value`) in the history."""
        if not self.has_commits():
            return set()
        out = self._git("log", f"--format=%(trailers:key={key},valueonly,separator=%x00)%x00")
        return {value.strip() for value in out.split("\0") if value.strip()}

    def path_dates(self, until: str | None = None) -> dict[str, tuple[str, str]]:
        """Every committed path's first and last commit dates (up to the commit `until`, when given);
        empty where history cannot be read."""
        head = self.head()
        if head is None:
            return {}
        try:
            return self._revision_cache().path_dates(head, until)
        except CacheUnavailable:
            return {}

    def commit_rows(self) -> list[tuple[int, str, str, str, str]]:
        """Every commit reachable from HEAD as (n, sha, author date, subject, body), oldest first, n its
        place in the revision cache (changes_between and blob_before take it)."""
        head = self.head()
        return [] if head is None else self._revision_cache().commits(head)

    def commits_changing(self, globs: list[str]) -> dict[int, str]:
        """The commits (their n, as commit_rows gives it: their id) that changed a path matching one of these
        patterns (SQLite's GLOB: `*` matches `/` too)."""
        head = self.head()
        return {} if head is None else self._revision_cache().changing(head, globs)

    def changes_between(self, low: int, high: int) -> list[tuple[int, str, str, str | None]]:
        head = self.head()
        return [] if head is None else self._revision_cache().changes_between(head, low, high)

    def blobs_before(self, paths: list[str], n: int) -> dict[str, str | None]:
        head = self.head()
        return {} if head is None else self._revision_cache().blobs_before(head, paths, n)

    def blob_before(self, path: str, n: int) -> tuple[bool, str | None]:
        head = self.head()
        return (False, None) if head is None else self._revision_cache().blob_before(head, path, n)

    def renamed_from(self, commit: CommitInfo) -> str | None:
        """The path this commit renamed its note from: kb's trailer, else git's rename detection."""
        for line in commit.body.splitlines():
            if line.startswith("Kb-Renamed-From: "):
                return line.split(": ", 1)[1].strip()
        head = self.head()
        if head is not None:
            try:
                if not self._revision_cache().deletes_any(head, commit.sha):
                    return None
            except CacheUnavailable:
                pass
        return next((old for old, new in self._git_renames(commit.sha) if new == commit.path), None)

    def renamed_away(self, commit: CommitInfo) -> bool:
        """Whether this commit, which deleted `commit.path`, renamed that note to another path: kb's
        trailer naming the path, else git's rename detection."""
        return self._moved(commit.sha, commit.body, commit.path)

    def moved_away(self, deletions: list[tuple[str, str]]) -> set[str]:
        """Of these (commit, path) deletions, the paths whose commit renamed that note to another path
        (renamed_away): the revision cache tells a commit that added no path (`kb rm`'s), which renamed
        nothing, without asking git."""
        head = self.head()
        shapes: dict[str, tuple[str, bool]] = {}
        if head is not None:
            with contextlib.suppress(CacheUnavailable):
                shapes = self._revision_cache().shapes(head, sorted({sha for sha, _ in deletions}))
        renames: dict[str, list[tuple[str, str]]] = {}
        moved = set()
        for sha, path in deletions:
            body, adds = shapes.get(sha) or (self._git("log", "-1", "--format=%B", sha, "--"), True)
            if self._moved(sha, body, path, adds, renames):
                moved.add(path)
        return moved

    def _moved(
        self,
        sha: str,
        body: str,
        path: str,
        adds: bool = True,
        renames: dict[str, list[tuple[str, str]]] | None = None,
    ) -> bool:
        mark = "Kb-Renamed-From: "
        trailers = [line.removeprefix(mark).strip() for line in body.splitlines() if line.startswith(mark)]
        if trailers:
            return path in trailers
        if not adds:
            return False
        found = renames.get(sha) if renames is not None else None
        if found is None:
            found = self._git_renames(sha)
            if renames is not None:
                renames[sha] = found
        return any(old == path for old, _ in found)

    def _git_renames(self, sha: str) -> list[tuple[str, str]]:
        """(from, to) of each rename git's rename detection finds in this commit."""
        out = self._git("diff-tree", "-r", "-M", "--name-status", "-z", "--no-commit-id", "--root", sha)
        fields = out.split("\0")
        found = []
        i = 0
        while i < len(fields):
            status = fields[i]
            if status.startswith(("R", "C")) and i + 2 < len(fields):
                if status.startswith("R"):
                    found.append((fields[i + 1], fields[i + 2]))
                i += 3
            else:
                i += 2
        return found

    def renames(self) -> list[tuple[str, str, str]]:
        """Every rename in the history of HEAD, oldest first, as (commit, from, to): kb's own (its
        Kb-Renamed-From trailer and the one file the commit added) and those git's rename detection finds."""
        if self.head() is None:
            return []
        out = self._git(
            "log", "--reverse", "-M", "--name-status", "-z",
            "--format=%x1e%H%x1f%(trailers:key=Kb-Renamed-From,valueonly)%x1f",
        )  # fmt: skip
        found: list[tuple[str, str, str]] = []
        for record in out.split("\x1e")[1:]:
            parts = record.split("\x1f", 2)
            if len(parts) < 3:
                continue
            trailer = parts[1].strip().splitlines()
            fields = [f for f in parts[2].lstrip("\0\n").split("\0")]
            renamed: list[tuple[str, str]] = []
            added: list[str] = []
            i = 0
            while i < len(fields) and fields[i]:
                status = fields[i]
                if status.startswith(("R", "C")) and i + 2 < len(fields):
                    if status.startswith("R"):
                        renamed.append((fields[i + 1], fields[i + 2]))
                    i += 3
                    continue
                if status.startswith("A") and i + 1 < len(fields):
                    added.append(fields[i + 1])
                i += 2
            if trailer and not renamed and len(added) == 1:
                renamed.append((trailer[0].strip(), added[0]))
            found.extend((parts[0], a, b) for a, b in renamed)
        return found

    def read_blobs(self, specs: Sequence[str | None]) -> list[bytes | None]:
        """Contents of `REV:path` specs (or blob ids) through one `git cat-file --batch`; None where there
        is none, and for a None spec."""
        wanted = [spec for spec in specs if spec is not None]
        if len(wanted) < len(specs):
            found = iter(self.read_blobs(wanted))
            return [None if spec is None else next(found) for spec in specs]
        if not specs:
            return []
        proc = self._read(["cat-file", "--batch"], "".join(spec + "\n" for spec in wanted).encode("utf-8"))
        if proc.returncode != 0:
            raise GitError(f"git cat-file failed: {last_line(proc.stderr.decode('utf-8', 'replace'))}")
        out = proc.stdout
        results: list[bytes | None] = []
        pos = 0
        for _ in specs:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) == 3 and header[1] == b"blob":
                size = int(header[2])
                results.append(out[pos : pos + size])
                pos += size + 1
            else:
                results.append(None)
        return results

    def blob_sizes(self, blobs: Sequence[str]) -> list[int]:
        """The size of each blob, through one `git cat-file --batch-check` (0 for one git does not have)."""
        if not blobs:
            return []
        proc = self._read(
            ["cat-file", "--batch-check=%(objectsize)"], "".join(f"{b}\n" for b in blobs).encode()
        )
        if proc.returncode != 0:
            raise GitError(f"git cat-file failed: {last_line(proc.stderr.decode('utf-8', 'replace'))}")
        lines = proc.stdout.decode("ascii", "replace").split("\n")
        return [int(line) if line.isdigit() else 0 for line in lines[: len(blobs)]]

    def stream_blobs(self, specs: Sequence[str]) -> Generator[bytes | None, None, None]:
        """read_blobs() one at a time, as `git cat-file --batch` writes them: the caller works on each
        while git reads the next (a thread feeds git the ids)."""
        if not specs:
            return
        import threading

        try:
            proc = subprocess.Popen(
                git_command(["cat-file", "--batch"]),
                cwd=self.root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, **GIT_ENV},
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def feed() -> None:
            try:
                stdin.write("".join(spec + "\n" for spec in specs).encode("utf-8"))
                stdin.close()
            except OSError:
                pass  # git stopped early: its exit status says so

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        done = False
        try:
            for _ in specs:
                header = stdout.readline().split()
                if len(header) == 3 and header[1] == b"blob":
                    size = int(header[2])
                    data = stdout.read(size)
                    stdout.read(1)
                    if len(data) != size:
                        raise GitError("git cat-file stopped in the middle of a blob")
                    yield data
                elif not header:
                    raise GitError("git cat-file stopped early")
                else:
                    yield None
            done = True
        finally:
            if not done:
                proc.kill()
            feeder.join()
            stdout.close()
            if proc.wait() != 0 and done:
                raise GitError("git cat-file failed")

    def recent(self, limit: int, pathspec: str) -> Recent:
        """The latest commits under `pathspec`, newest first, each with its (status, path) changes, as
        `git log -M --raw -- pathspec` gives them (read from the revision cache where it can say the same)."""
        if not self.has_commits():
            return []
        cached = self.recent_cached(limit, pathspec)
        return cached if cached is not None else self._recent_logged(limit, pathspec)

    def _recent_logged(self, limit: int, pathspec: str, *revisions: str) -> Recent:
        # --root and -O/dev/null: the root commit's changes and git's order of paths, whatever the user's
        # log.showRoot and diff.orderFile say (the revision cache records them so)
        out = self._git(
            "log", f"-n{limit}", "-M", "--root", "-O/dev/null", "--raw", "--no-abbrev", "-z", LOG_FORMAT,
            *revisions, "--", pathspec,
        )  # fmt: skip
        return [
            (
                CommitInfo(sha, datetime.fromisoformat(date), subject, body, ""),
                [(status, path) for path, status, _ in changes],
            )
            for sha, date, subject, body, changes in parse_log(out)
        ]

    def recent_cached(self, limit: int, pathspec: str) -> Recent | None:
        """recent() from the revision cache, or None where the cache cannot say exactly what git log would.

        `git log -- PATH` diffs every commit's tree with its parent's to find the ones under PATH, and again
        for --raw: with 100,000 notes in one folder, 50-100 ms a commit, 3 s for the last 30. The cache has
        each commit's changed paths already. It is used when it exists (it is not built for this) and holds
        HEAD or a commit among the newest (bringing it up to date reads just those), and when no commit
        looked at is a merge (git log's simplification of merges under a path is not redone here). A
        commit that both adds and deletes a path is read from git again (`-M`: renames as git finds them)."""
        head = self.head()
        cache = self._revision_cache()
        if head is None or not cache.exists():
            return None
        window = 4 * limit
        listed = self._git("rev-list", "--parents", f"-n{window}", head)
        walked = [line.split() for line in listed.splitlines()]
        if any(len(shas) > 2 for shas in walked):
            return None  # a merge
        try:
            known = cache.known_head()
            if known != head and known not in {shas[0] for shas in walked}:
                return None  # an older cache: bringing it up to date would cost more than git log
            found = cache.commit_changes(head, [shas[0] for shas in walked])
        except CacheUnavailable:
            return None
        folder = "" if pathspec in ("", ".") else pathspec.rstrip("/") + "/"
        result: Recent = []
        for sha, *_ in walked:
            if sha not in found:
                return None
            date, subject, body, changes = found[sha]
            if any("\ufffd" in path for path, _ in changes):
                return None  # a file name that is not UTF-8: the cache holds it decoded, git its bytes
            under = [(status, path) for path, status in changes if path.startswith(folder)]
            if not under:
                continue
            if {"A", "D"} <= {status for status, _ in under}:
                logged = self._recent_logged(1, pathspec, sha)  # git's own renames
                if len(logged) != 1 or logged[0][0].sha != sha:
                    return None
                under = logged[0][1]
            result.append((CommitInfo(sha, datetime.fromisoformat(date), subject, body, ""), under))
            if len(result) == limit:
                return result
        return result if len(walked) < window else None

    def deleted_paths(self, pathspec: str) -> list[tuple[str, str]]:
        """(commit, path) of every deletion under `pathspec`, newest first."""
        head = self.head()
        if head is None:
            return []
        try:
            return self._revision_cache().deleted(head, pathspec.rstrip("/").removeprefix("."))
        except CacheUnavailable:
            pass
        out = self._git(
            "log",
            "--diff-filter=D",
            "--no-renames",
            "--raw",
            "--no-abbrev",
            "-z",
            LOG_FORMAT,
            "--",
            pathspec or ".",
        )
        return [
            (sha, path)
            for sha, _, _, _, changes in parse_log(out)
            for path, status, _ in changes
            if status == "D"
        ]

    def first_parent_dates(self) -> list[tuple[str, datetime]]:
        """HEAD and its first parents, newest first, each with its author date (the notes' own time:
        kb dates a commit by the note's `modified`, an import replays its source's dates)."""
        if self.head() is None:
            return []
        out = self._git("log", "--first-parent", "--format=%H %aI")
        result = []
        for line in out.splitlines():
            sha, _, date = line.partition(" ")
            try:
                result.append((sha, datetime.fromisoformat(date)))
            except ValueError:
                continue
        return result

    def commit_of(self, text: str) -> tuple[str, datetime] | None:
        """The commit a commit id or prefix names (reachable or not), with its author date; None if none."""
        proc = self._run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{text}^{{commit}}"])
        sha = proc.stdout.decode("ascii", "replace").strip()
        if proc.returncode != 0 or not sha:
            return None
        date = self._git("show", "-s", "--format=%aI", sha, "--").strip()
        try:
            return sha, datetime.fromisoformat(date)
        except ValueError:
            return None

    def tree(self, sha: str, prefix: str = "") -> list[tuple[str, str]]:
        """(path, blob id) of every file in the commit's tree (under `prefix`/, when given)."""
        args = ["ls-tree", "-r", "-z", "--full-tree", sha]
        if prefix:
            args += ["--", prefix + "/"]
        out = self._git(*args)
        files = []
        for entry in out.split("\0"):
            meta, tab, path = entry.partition("\t")
            parts = meta.split()
            if tab and len(parts) == 3 and parts[1] == "blob":
                files.append((path, parts[2]))
        return files

    def commit_beside(self, path: str, content: bytes, message: str, author_date: datetime) -> str:
        """Record `content` as an earlier revision of `path` without touching the working tree or the
        current version: a commit on a side branch from HEAD, merged back keeping HEAD's tree."""
        import tempfile

        message = message_for_git(message)
        blob = self._git_input(["hash-object", "-w", "--stdin"], content).strip()
        head = self._git("rev-parse", "HEAD").strip()
        branch = self._git("symbolic-ref", "HEAD").strip()
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", head, env=env)
            self._git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self._git("write-tree", env=env).strip()
        dates = {"GIT_AUTHOR_DATE": git_date(author_date), "GIT_COMMITTER_DATE": git_date(author_date)}
        env = {**self._identity(), **dates}
        side = self._git_input(["commit-tree", tree, "-p", head], message.encode(), env).strip()
        head_tree = self._git("rev-parse", "HEAD^{tree}").strip()
        merge_message = f"Merge: {message.splitlines()[0]}".encode()
        merged = self._git_input(
            ["commit-tree", head_tree, "-p", head, "-p", side], merge_message, self._identity()
        ).strip()
        self._git("update-ref", "-m", "kb: earlier revision", branch, merged, head)
        return side


def _packed_ref(path: Path, ref: str) -> str:
    """The commit id `ref` has in a packed-refs file ("" when it is not there)."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            sha, _, name = line.rstrip("\n").partition(" ")
            if name == ref:
                return sha
    return ""
