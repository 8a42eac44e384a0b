"""Remotes: URLs checked before git sees them, and fetch, merge and push with the real git and no prompts
(through GitPython's command layer)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from kb.errors import GitError
from kb.history import GIT_ENV, History, as_bytes, git_command, git_date, last_line, message_for_git

SAFE_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")


def check_remote_url(url: str) -> str:
    """Refuse URLs that would make git run a command or read an option: `ext::…`, other `helper::…`
    transports, and anything that starts with '-'."""
    text = url.strip()
    if not text or any(ch in text for ch in "\0\n\r"):
        raise GitError("the remote URL is empty or has control characters")
    if text.startswith("-"):
        raise GitError(f"refusing the remote '{text}': it looks like an option")
    if "::" in text:
        raise GitError(f"refusing the remote '{text}': 'transport::address' URLs can run commands")
    if "://" in text and not text.lower().startswith(SAFE_SCHEMES):
        raise GitError(f"refusing the remote '{text}': use https, ssh, git, file or a path")
    return text


SYNC_CONFIG = ["-c", "protocol.ext.allow=never", "-c", "core.askPass=", "-c", "credential.interactive=never"]


class Syncing(History):
    """Fetch, merge and push, with the real git and no prompts, run through GitPython's command layer."""

    def __init__(self, root: Path) -> None:
        import git

        super().__init__(root)
        try:
            self.repo = git.Repo(root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(f"{root} is not a git repository") from None

    def _run(
        self,
        args: Sequence[str],
        data: bytes | None = None,
        env: dict[str, str] | None = None,
        lowest: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        if data is not None or lowest:
            return super()._run(args, data, env, lowest)
        try:
            status, out, err = self.repo.git.execute(
                self._argv(args),
                env={**GIT_ENV, **(env or {})},
                with_extended_output=True,
                with_exceptions=False,
                strip_newline_in_stdout=False,
                stdout_as_string=False,
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None
        return subprocess.CompletedProcess(["git", *args], int(status or 0), as_bytes(out), as_bytes(err))

    def remote_url(self, name: str = "origin") -> str | None:
        try:
            return self._git("remote", "get-url", "--", name).strip() or None
        except GitError:
            return None

    def set_remote(self, url: str, name: str = "origin") -> None:
        url = check_remote_url(url)
        if self.remote_url(name) is None:
            self._git("remote", "add", "--", name, url)
        else:
            self._git("remote", "set-url", "--", name, url)

    def branch(self) -> str:
        return self._git("symbolic-ref", "--short", "HEAD").strip()

    def network(self, *args: str) -> str:
        """A git command that talks to the remote, with a deadline (`$KB_SYNC_TIMEOUT`): ssh gives up on
        a host that does not answer, and the whole step (git and its ssh) is stopped at the deadline."""
        from kb import config

        url = check_remote_url(self.remote_url() or "")
        deadline = config.sync_timeout()
        connect = max(1, min(30, int(deadline)))
        ssh = (
            f"ssh -oBatchMode=yes -oConnectTimeout={connect} "
            f"-oServerAliveInterval={max(1, connect // 3)} -oServerAliveCountMax=3"
        )
        env = {
            **os.environ,
            **GIT_ENV,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", ssh),
            # Set (even empty), it wins over a core.gitProxy command in the repository's configuration.
            "GIT_PROXY_COMMAND": os.environ.get("GIT_PROXY_COMMAND", ""),
        }
        command = args[0]
        try:
            proc = subprocess.Popen(
                self._argv([*SYNC_CONFIG, *args]),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # git and its ssh, stopped together
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None
        try:
            out, err = proc.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise GitError(
                f"git {command} timed out: {url} did not answer within {deadline:g} s "
                "(KB_SYNC_TIMEOUT sets the limit)"
            ) from None
        except BaseException:
            _stop(proc)
            raise
        if proc.returncode != 0:
            message = " ".join(
                line.strip() for line in err.decode("utf-8", "replace").splitlines() if line.strip()
            )
            raise GitError(f"git {command} failed: {message or f'exit status {proc.returncode}'}")
        return out.decode("utf-8", "replace")

    def remove_remote(self, name: str = "origin") -> None:
        self._git("remote", "remove", "--", name)

    def has_notes(self, rev: str, pathspec: str, is_note: Callable[[str], bool]) -> bool:
        """Whether `rev` holds any note under `pathspec`."""
        out = self._git("ls-tree", "-r", "-z", "--name-only", rev, "--", pathspec)
        return any(is_note(path) for path in out.split("\0") if path)

    def merge_base(self, a: str, b: str) -> str | None:
        proc = self._run(["merge-base", a, b])
        return proc.stdout.decode("ascii", "replace").strip() or None if proc.returncode == 0 else None

    def rev(self, ref: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip() or None
        except GitError:
            return None

    def is_ancestor(self, a: str, b: str) -> bool:
        try:
            self._git("merge-base", "--is-ancestor", a, b)
        except GitError:
            return False
        return True

    def merge_no_commit(self, ref: str) -> bool:
        """Start a merge of `ref`; True when git merged cleanly (still uncommitted)."""
        proc = subprocess.run(
            self._argv(["merge", "--no-ff", "--no-commit", "--allow-unrelated-histories", "--no-edit", ref]),
            cwd=self.root, capture_output=True, env={**os.environ, **self._identity()},
        )  # fmt: skip
        if proc.returncode != 0 and not self.unmerged():
            raise GitError(f"git merge failed: {last_line(proc.stderr.decode('utf-8', 'replace'))}")
        return proc.returncode == 0

    def unmerged(self) -> list[str]:
        out = self._git("diff", "--name-only", "--diff-filter=U", "-z")
        return sorted(p for p in out.split("\0") if p)

    def stage_blob(self, stage: int, path: str) -> bytes | None:
        [blob] = self.read_blobs([f":{stage}:{path}"])
        return blob

    def merge_texts(self, ours: bytes, base: bytes, theirs: bytes) -> bytes | None:
        """A three-way merge of three texts with `git merge-file`; None when they conflict."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
                path = Path(tmp) / name
                path.write_bytes(data)
                paths.append(str(path))
            proc = subprocess.run(git_command(["merge-file", "-p", *paths]), capture_output=True)
        return proc.stdout if proc.returncode == 0 else None

    def commit_merge(self, message: str, moment: datetime) -> str:
        env = {
            **self._identity(),
            "GIT_AUTHOR_DATE": git_date(moment),
            "GIT_COMMITTER_DATE": git_date(moment),
        }
        self._git("commit", "-q", "--no-verify", "-m", message_for_git(message), env=env)
        sha = self.head()
        if sha is None:
            raise GitError("git commit left no commit behind")
        return sha

    def changed_between(self, a: str | None, b: str, pathspec: str) -> list[str]:
        if a is None:
            out = self._git("ls-tree", "-r", "--name-only", "-z", b, "--", pathspec)
        else:
            out = self._git("diff", "--name-only", "--no-renames", "-z", a, b, "--", pathspec)
        return [p for p in out.split("\0") if p]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill a network step's process group (git and the ssh it started) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.communicate()
