"""The program's entry point. A Tab on a NOTE or a tag is answered here before the command line (typer,
rich) is imported (kb.quickcomplete.quick: a Tab is one process, and most of its time was importing);
everything else goes to kb.client (the warm server, else the whole command line)."""

from __future__ import annotations

import os
import sys


def main(warm: bool = True) -> None:
    """The `kb` program (warm: through kb.client); `python -m kb` passes warm=False (always cold)."""
    if os.environ.get("_KB_COMPLETE"):
        from kb.quickcomplete import quick

        answer = quick()
        if answer is not None:
            sys.stdout.write(answer[0])
            sys.stdout.flush()
            sys.exit(answer[1])
    if not warm:
        from kb.cli import main as cold

        cold()
        return
    from kb.client import main as run

    run()
