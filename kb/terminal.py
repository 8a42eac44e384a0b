"""What the terminal gets: colour and the pager, decided in one place (light: no rich, no service).

The command line records the global options here (`--color`, `--no-pager`); kb.render asks.

Colour, first rule that applies: `--color always|never`; `$NO_COLOR` (non-empty) turns it off;
`$FORCE_COLOR` (non-empty) turns it on; else colour when the stream is a terminal. Styled output (tables,
rendered Markdown, coloured diffs) is printed when colour is on, so `--color always` colours a pipe too.

The pager, as git does it: `$KB_PAGER`, else `$PAGER`, else `less -FRX`; only when stdout is a terminal, the
output is taller than it, and `--no-pager` was not given. An empty value or `cat` means no pager.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from typing import Literal, TextIO

ColorMode = Literal["auto", "always", "never"]
COLOR_MODES: tuple[ColorMode, ...] = ("auto", "always", "never")
DEFAULT_PAGER = "less -FRX"


# Runs the pager (argv with its executable resolved, environment, text): True when it ran. Set in the warm
# server's worker, whose pager runs in the client on the user's terminal; None: kb.render starts it here.
PagerRunner = Callable[[list[str], dict[str, str], bytes], bool]


class _Settings:
    color: ColorMode = "auto"
    pager: bool = True
    run_pager: PagerRunner | None = None
    # Called before anything needs the terminal itself (the note picker, $EDITOR). Set in the warm
    # server's worker, where it hands the command back to the client to run cold (nothing has been printed
    # or changed yet); it does not return there.
    before_terminal: Callable[[], None] | None = None


SETTINGS = _Settings()


def configure(color: ColorMode = "auto", pager: bool = True) -> None:
    SETTINGS.color = color
    SETTINGS.pager = pager


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed or detached
        return False


def color(stream: TextIO | None) -> bool:
    """Whether output to `stream` is coloured (and styled)."""
    if SETTINGS.color != "auto":
        return SETTINGS.color == "always"
    if os.environ.get("NO_COLOR", ""):
        return False
    if os.environ.get("FORCE_COLOR", ""):
        return True
    return is_terminal(stream)


def styled() -> bool:
    """Whether stdout gets kb's terminal form (tables, rendered Markdown) rather than the plain one:
    on a terminal, or when colour is forced into a pipe."""
    return is_terminal(sys.stdout) or color(sys.stdout)


def terminal_lines() -> int:
    """The height of the terminal on stdout; 0 when unknown or not a terminal."""
    if not is_terminal(sys.stdout):
        return 0
    try:
        return os.get_terminal_size(sys.stdout.fileno()).lines
    except (OSError, ValueError):
        return 0


def pager_command() -> list[str] | None:
    """The pager to run for output taller than the terminal, or None: no paging."""
    if not SETTINGS.pager or not is_terminal(sys.stdout):
        return None
    for name in ("KB_PAGER", "PAGER"):
        raw = os.environ.get(name)
        if raw is not None:
            break
    else:
        raw = DEFAULT_PAGER
    try:
        argv = shlex.split(raw)
    except ValueError:
        return None
    if not argv or argv == ["cat"]:
        return None
    return argv
