"""git through GitPython: repository checks, pending changes, commits of exactly the paths a change touched.

Writes use the real git (`repo.git.add`, `repo.git.commit`), never GitPython's own index writer. User text
(paths, messages) always goes after `--` or as the value of `-m`/`-F`, never where git reads options.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kb.errors import GitError, RepositoryStateError

if TYPE_CHECKING:
    import git

FALLBACK_NAME = "kb"
FALLBACK_EMAIL = "kb@localhost"
MIN_GIT = (2, 25)


@dataclass(frozen=True)
class Change:
    status: str  # two-letter porcelain status
    path: str
    old_path: str | None = None


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
        subprocess.run(["git", "init", "-q", "--", str(root)], capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        raise GitError(f"git init failed: {(exc.stderr or '').strip()}") from None


class History:
    """One knowledge base's git repository."""

    def __init__(self, root: Path) -> None:
        import git

        self.root = root
        try:
            self.repo: git.Repo = git.Repo(root)
        except git.InvalidGitRepositoryError:
            raise GitError(f"{root} is not a git repository") from None
        except git.NoSuchPathError:
            raise GitError(f"{root} does not exist") from None
        self.git_dir = Path(self.repo.git_dir)
        self._identity_env: dict[str, str] | None = None

    # ------------------------------------------------------------ state checks

    def check_writable_state(self) -> None:
        """Refuse to write in a repository that is mid-merge, mid-rebase, detached or locked."""
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

    def has_commits(self) -> bool:
        try:
            self.repo.head.commit  # noqa: B018
        except ValueError:
            return False
        return True

    # ------------------------------------------------------------ changes

    def pending(self, pathspecs: Sequence[str]) -> list[Change]:
        """Uncommitted changes (tracked and untracked) under the given paths."""
        out = self._git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames",
                        "--", *pathspecs)  # fmt: skip
        changes: list[Change] = []
        fields = out.split("\0")
        i = 0
        while i < len(fields):
            entry = fields[i]
            i += 1
            if len(entry) < 4:
                continue
            changes.append(Change(entry[:2], entry[3:]))
        return changes

    def commit(
        self,
        paths: Iterable[str],
        message: str,
        author_date: datetime,
        committer_date: datetime,
    ) -> str | None:
        """Commit exactly `paths` (added, changed or deleted). Returns the new commit id, or None if
        there was nothing to commit."""
        paths = sorted(set(paths))
        if not paths:
            return None
        self._git("add", "-A", "--", *paths)
        staged = self._git("diff", "--cached", "--name-only", "-z", "--", *paths)
        if not staged.strip("\0"):
            return None
        env = dict(self._identity())
        env["GIT_AUTHOR_DATE"] = _git_date(author_date)
        env["GIT_COMMITTER_DATE"] = _git_date(committer_date)
        self._git("commit", "-q", "--no-verify", "-F", "-", "--", *paths, env=env, stdin=message)
        return str(self.repo.head.commit.hexsha)

    def head(self) -> str | None:
        return str(self.repo.head.commit.hexsha) if self.has_commits() else None

    # ------------------------------------------------------------ internals

    def _identity(self) -> dict[str, str]:
        """The configured git identity when there is one; kb's fallback otherwise."""
        if self._identity_env is None:
            env: dict[str, str] = {}
            name = self._config("user.name")
            email = self._config("user.email")
            for role in ("AUTHOR", "COMMITTER"):
                if not name and not os.environ.get(f"GIT_{role}_NAME"):
                    env[f"GIT_{role}_NAME"] = FALLBACK_NAME
                if not email and not os.environ.get(f"GIT_{role}_EMAIL"):
                    env[f"GIT_{role}_EMAIL"] = FALLBACK_EMAIL
            self._identity_env = env
        return self._identity_env

    def _config(self, key: str) -> str | None:
        import git

        try:
            value = self.repo.git.config("--get", key)
        except git.GitCommandError:
            return None
        return str(value).strip() or None

    def _git(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
        import git

        try:
            if stdin is None:
                return str(self.repo.git.execute(["git", *args], env=env, strip_newline_in_stdout=False))
            full_env = dict(os.environ)
            full_env.update(env or {})
            proc = subprocess.run(
                ["git", *args],
                cwd=self.root,
                input=stdin.encode("utf-8"),
                capture_output=True,
                env=full_env,
            )
            if proc.returncode != 0:
                raise GitError(f"git {args[0]} failed: {_last_line(proc.stderr.decode('utf-8', 'replace'))}")
            return proc.stdout.decode("utf-8", "replace")
        except git.GitCommandError as exc:
            raise GitError(f"git {args[0]} failed: {_last_line(str(exc.stderr))}") from None


def _git_date(moment: datetime) -> str:
    return f"@{int(moment.timestamp())} +0000"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().strip("'").splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
