"""Output of a line per note on a terminal, two versions of kb side by side:

    python bench/terminal.py --kb KB --before TREE [--runs 3]

Runs `kb list` and `kb changes --since 2000-01-01` cold (KB_SERVER=0) on a pseudo-terminal of 40 rows of
120 columns with `cat` as kb's pager, from TREE (a checkout of another commit, e.g. `git worktree add
/tmp/old COMMIT`, run as `python -m kb` from it) and from this checkout, alternately; prints the medians.
Nothing is asserted but that every command succeeds.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def once(tree: Path, root: Path, args: list[str], env: dict[str, str]) -> float:
    """Milliseconds of one run from `tree`, its output read to the end as a terminal takes it."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    start = time.perf_counter()
    argv = [sys.executable, "-m", "kb", "--kb", str(root), *args]
    proc = subprocess.Popen(
        argv, cwd=tree, stdin=side, stdout=side, stderr=side, env=env, start_new_session=True
    )
    os.close(side)
    while True:
        try:
            if not os.read(main, 1 << 16):
                break
        except OSError:  # EIO: the terminal's other end is closed
            break
    code = proc.wait()
    os.close(main)
    if code != 0:
        raise SystemExit(f"kb {' '.join(args)} from {tree} failed: exit status {code}")
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(KB_SERVER="0", KB_PAGER="cat", TERM="xterm-256color")
    for command in (["list"], ["changes", "--since", "2000-01-01"]):
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.runs):
            for label, tree in (("before", args.before), ("after", HERE)):
                times[label].append(once(tree, args.kb.absolute(), command, env))
        medians = ", ".join(f"{label} {statistics.median(values):,.0f} ms" for label, values in times.items())
        print(f"kb {' '.join(command)} on a terminal (cold): {medians}")


if __name__ == "__main__":
    main()
