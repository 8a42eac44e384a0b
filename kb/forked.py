"""Work done in a forked copy of this process, its answer sent back pickled through a pipe.

A copy starts at once with everything this process has imported and read, so a large piece of work can be
shared between two cores without starting another interpreter. The copy resets the signals a user sends
(Ctrl-C ends it without unwinding anything of this process's) and is killed when this process ends (it may
hold a copy of a lock). Whatever goes wrong in the copy, it leaves with `os._exit`: nothing of this
process's (its `finally` blocks, its atexit handlers, buffered output) runs twice.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


class Forked(Generic[T]):
    """A running copy; `result()` waits for its answer."""

    def __init__(self, pid: int, reading: int) -> None:
        self.pid = pid
        self._reading = reading

    def fileno(self) -> int:
        """Readable once the answer is there (or the copy is gone): select on it, then call result()."""
        return self._reading

    def result(self) -> T | None:
        """What the work returned, or None if the copy failed (the caller then does the work itself)."""
        chunks = []
        try:
            while chunk := os.read(self._reading, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(self._reading)
            _, status = os.waitpid(self.pid, 0)
        if status != 0 or not chunks:
            return None
        try:
            made: T = pickle.loads(b"".join(chunks))  # our own copy's, over a pipe
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError):
            return None
        return made

    def cancel(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.close(self._reading)
        os.waitpid(self.pid, 0)


def fork(work: Callable[[], T], nice: int = 0) -> Forked[T] | None:
    """`work` run in a forked copy of this process (`nice`: at that much lower a priority, for work done
    ahead, which the commands that come meanwhile go before); None when no process could be forked."""
    try:
        reading, writing = os.pipe()
    except OSError:
        return None
    pid = spawn(lambda: _answer(work, reading, writing, nice))
    os.close(writing)
    if pid < 0:
        os.close(reading)
        return None
    return Forked(pid, reading)


def spawn(run: Callable[[], None]) -> int:
    """A copy of this process that runs `run` and leaves (os._exit: 1 if `run` returns or raises without
    leaving itself); here, its pid, or -1 when no process could be forked. No signal comes between the
    fork and the copy's own handling of it (a Ctrl-C there would unwind the copy through this process's
    callers): in the copy they are reset and unblocked, and the copy dies with this process."""
    parent = os.getpid()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:
        try:
            if in_copy(parent, held):
                run()
        finally:
            os._exit(1)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return pid


def in_copy(parent: int, held: set[int | signal.Signals]) -> bool:
    """In a just-forked copy whose signals are blocked: the signals reset and unblocked, the copy made to
    die with `parent`; False if `parent` is already gone."""
    for number in SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    die_with_parent()
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return os.getppid() == parent


def _answer(work: Callable[[], T], reading: int, writing: int, nice: int = 0) -> None:
    code = 1
    try:
        os.close(reading)
        if nice:
            with contextlib.suppress(OSError):
                os.nice(nice)
        data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(writing, view) :]
        code = 0
    finally:
        os._exit(code)


def die_with_parent() -> None:
    """Linux: this process is killed when the one that forked it ends (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own symbols: libc's among them
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
