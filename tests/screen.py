"""kb on a real pseudo-terminal, read from the screen as a terminal draws it (pyte): what a user sees."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pyte


class Terminal:
    """kb on a pseudo-terminal, its output drawn on a pyte screen."""

    def __init__(
        self, args: list[str], root: Path, rows: int = 24, cols: int = 90, env: dict[str, str] | None = None
    ) -> None:
        """`env` is added to a clean one: no colour or pager settings, `cat` as kb's pager (a key of
        `env` set to "" is removed)."""
        full = {**os.environ, "TERM": "xterm-256color", "KB_HOME": str(root), "KB_PAGER": "cat"}
        for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "PAGER", "LESS"):
            full.pop(name, None)
        for name, value in (env or {}).items():
            if value:
                full[name] = value
            else:
                full.pop(name, None)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(sys.executable, ["-m", "kb", *args], env=full, dimensions=(rows, cols))
        self.output = b""

    def _read(self, wait: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            time.sleep(wait)
            return
        self.output += data
        self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, words: str, seconds: float = 30) -> str:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if words in self.text():
                return self.text()
            self._read(0.1)
        raise AssertionError(f"{words!r} never appeared on the screen:\n{self.text()}")

    def settle(self) -> str:
        """The screen once kb has stopped drawing for a moment."""
        before = None
        while before != self.output:
            before = self.output
            self._read(0.3)
        return self.text()

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def finish(self) -> tuple[str, int]:
        while self.child.isalive() or not self.child.eof():
            self._read(0.2)
            if not self.child.isalive() and self.child.eof():
                break
        self.child.close()
        code = self.child.exitstatus if self.child.exitstatus is not None else -1
        return self.output.decode("utf-8", "replace"), code
