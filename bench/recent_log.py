"""`kb log` (the last changes) from the revision cache against git log, side by side:

    python bench/recent_log.py --kb KB [--runs 7] [--rounds 2]

Starts the knowledge base's server, then times `kb log` warm and cold (KB_SERVER=0), 0.3 s apart, with the
revision cache (.git/kb-revisions.sqlite3) and with it moved aside (kb then asks `git log -M --raw`), in
`--rounds` alternating rounds; prints the medians. The cache must exist (any `kb log NOTE` makes it). The
server is stopped at the end. Nothing is asserted but that every command succeeds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

KB = [str(Path(sys.executable).parent / "kb")]


def median_ms(root: Path, env: dict[str, str], runs: int) -> float:
    times = []
    for n in range(runs + 1):  # the first one untimed
        time.sleep(0.3)
        start = time.perf_counter()
        subprocess.run([*KB, "--kb", str(root), "log"], env=env, capture_output=True, check=True)
        if n:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = args.kb.absolute()
    cache = root / ".git" / "kb-revisions.sqlite3"
    if not cache.exists():
        raise SystemExit(f"no revision cache at {cache}: run `kb log NOTE` once")
    aside = cache.with_name(cache.name + ".aside")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "KB_SERVER")}
    cold = {**env, "KB_SERVER": "0"}
    subprocess.run([*KB, "--kb", str(root), "server", "start"], env=env, capture_output=True, check=True)
    time.sleep(3)
    try:
        for _ in range(args.rounds):
            for label in ("revision cache", "git log (cache moved aside)"):
                if label.startswith("git"):
                    cache.rename(aside)
                try:
                    warm, plain = median_ms(root, env, args.runs), median_ms(root, cold, args.runs)
                finally:
                    if aside.exists():
                        aside.rename(cache)
                print(f"kb log from the {label}: warm {warm:.1f} ms, cold {plain:.1f} ms", flush=True)
    finally:
        subprocess.run([*KB, "--kb", str(root), "server", "stop"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
