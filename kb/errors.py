"""One error hierarchy. `kb.cli.main` turns a KbError into `Error: <message>` and its exit code."""

from __future__ import annotations


class KbError(Exception):
    """A failure kb can explain in one line. Exit code 1 unless a subclass says otherwise."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = " ".join(message.split("\n"))

    def __str__(self) -> str:
        return self.message


class UsageError(KbError):
    """The arguments themselves are wrong (bad title, bad option combination)."""

    exit_code = 2


class InterruptedAfterCommit(KbError):
    """Ctrl-C came while git wrote a change's commit: the commit landed and stays; what came after it (the
    search index's update) is left to the next command."""

    exit_code = 130

    def __init__(self, commit: str) -> None:
        super().__init__(f"interrupted, after the change was committed [{commit[:8]}]; it is kept")


class NoteNotFound(KbError):
    """NOTE matched nothing. `ref`: the NOTE (set where nothing matched it now); `looked_back`: whether its
    deleted and renamed notes were looked for already."""

    def __init__(self, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref
        self.looked_back = False


class AmbiguousNote(KbError):
    """NOTE matched more than one note; `paths` are the notes it matched (a picker offers them)."""

    def __init__(self, message: str, paths: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.paths = paths


class BadLimit(UsageError):
    """-n N below 1."""

    def __init__(self) -> None:
        super().__init__("-n must be at least 1")


class NoteExists(KbError):
    """A note with that title already exists."""

    def __init__(self, title: str, path: str, advice: str = "") -> None:
        more = f"; {advice}" if advice else ""
        super().__init__(f"a note titled '{title}' already exists ({path}){more}")


class FileAppeared(KbError):
    """A file kb was making anew was made meanwhile by another program: left as it is."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} appeared while kb was writing it (made by another program); left as it is")


class BrokenNote(KbError):
    """The note's file cannot be parsed, so kb refuses to rewrite it."""


class RepositoryStateError(KbError):
    """The git repository is in a state kb must not write in (merge, rebase, detached HEAD, lock)."""


class LockTimeout(KbError):
    """Another kb process holds the write lock."""


class RehearsalStopped(KbError):
    """A command the warm server runs to warm itself up came to a change (kb.store.rehearsal)."""


class EditorError(KbError):
    """The editor failed or saved nothing."""


class GitError(KbError):
    """git itself failed or is missing."""


class HeadMoved(GitError):
    """HEAD changed between kb reading it and moving it to kb's new commit: that commit did not land."""
