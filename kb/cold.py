"""The cold path: the whole command line in this process (kb.client comes here when the warm server does
not answer). For `kb search`, a child process scans the notes (kb.store.scan_early) while this one imports
the command line (typer, whoosh: most of a cold search's time), so the freshness check finds that scan
made; a writer in this process (a dead run's recovery) forgets it."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.platform == "linux":
        _scan_early(sys.argv[1:])
    from kb.cli import main as run

    run()


def _scan_early(argv: list[str]) -> None:
    from kb.client import command_of, resolve_root

    command, kb = command_of(argv)
    if command != "search" or os.environ.get("_KB_COMPLETE"):
        return
    if any(a in ("-h", "--help", "--history", "--version") or a.startswith("--as-of") for a in argv):
        return
    try:
        root = resolve_root(kb, dict(os.environb), os.getcwdb())
    except OSError:
        return
    if root is None:
        return
    from pathlib import Path

    from kb.store import scan_early

    try:
        scan_early(Path(os.fsdecode(root)))
    except OSError:
        return
