"""kb.forked: work done in a forked copy of the process, its answer sent back."""

from __future__ import annotations

import os
import time

from kb.forked import fork


def test_the_copy_answers_with_what_the_work_returned() -> None:
    child = fork(lambda: {"pid": os.getpid(), "items": list(range(100_000))})
    assert child is not None
    made = child.result()
    assert made is not None
    assert made["items"] == list(range(100_000))  # more than a pipe holds at once
    assert made["pid"] != os.getpid()


def test_a_failing_copy_gives_none_and_leaves_this_process_alone() -> None:
    def fails() -> int:
        raise ValueError("broken")

    child = fork(fails)
    assert child is not None
    assert child.result() is None


def test_a_cancelled_copy_is_gone() -> None:
    child = fork(lambda: time.sleep(60))
    assert child is not None
    pid = child.pid
    child.cancel()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("the copy still runs")
