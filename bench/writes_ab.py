"""Writes run back to back through the warm server, two trees side by side: bursts of `kb add` and of
`kb edit -a`, one burst of each tree in turn, each after a pause long enough for the server's own git status
(so that every burst starts on its word); the median of every write of a kind.

    python bench/writes_ab.py --rounds 3 --burst 6 new=/work/main:KB old=/tmp/wold:KB_COPY

`--gap S` puts S seconds between the writes of a burst (0.3: a person's quick edits, a script that waits
a little); `--listed` asks each server for `kb list` and `kb tags` first, as after a person's reads (it
then keeps every note's listing up to date after each write); `--outside` appends a line to a note (one
the benchmark added) before each burst, as another program would: the burst's first write is then off the
server's word (its own git status commits that edit first), and the medians of the writes after it are
printed apart too. Each server's count of the writes made on its word is printed at the end.

A tree is run as `PYTHONPATH=TREE kb ...` with the `kb` program beside this interpreter (a worktree of an
earlier commit, say); each knowledge base gets its own server (a copy of one, for the earlier tree).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KB = Path(sys.executable).parent / "kb"


def run(tree: str, kb: str, args: list[str], env: dict[str, str]) -> float:
    """One command's whole-process time in ms."""
    return timed_run(tree, kb, args, env)[0]


def timed_run(tree: str, kb: str, args: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    """One command's whole-process time in ms, and what it printed (stdout, then stderr)."""
    start = time.perf_counter()
    proc = subprocess.run([str(KB), "--kb", kb, *args], env={**env, "PYTHONPATH": tree}, capture_output=True)
    took = (time.perf_counter() - start) * 1000
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed in {kb}: {proc.stderr.decode(errors='replace')}")
    return took, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=6)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds before each burst")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between the writes of a burst")
    parser.add_argument("--listed", action="store_true", help="kb list and kb tags before the writes")
    parser.add_argument("--outside", action="store_true", help="an outside edit before each burst")
    parser.add_argument("trees", nargs="+", help="NAME=TREE:KNOWLEDGE_BASE")
    args = parser.parse_args()
    trees = []
    for spec in args.trees:
        name, _, rest = spec.partition("=")
        tree, _, kb = rest.partition(":")
        trees.append((name, tree, kb))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "KB_SERVER")}
    env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="kb-writes-ab-")
    stamp = int(time.time())
    outside: dict[str, Path] = {}  # each knowledge base's note edited by "another program"
    for name, tree, kb in trees:
        subprocess.run([str(KB), "--kb", kb, "server", "start"], env={**env, "PYTHONPATH": tree}, check=True)
        run(tree, kb, ["add", f"AB warm {name} {stamp}", "-b", "A note to edit."], env)
        if args.outside:
            said = timed_run(tree, kb, ["add", f"AB outside {name} {stamp}", "-b", "Edited outside."], env)[1]
            found = re.search(rb"\(([^()]*\.md)\)", said)
            if found is None:
                raise SystemExit(f"no file named in what kb add printed: {said!r}")
            outside[name] = Path(kb) / found.group(1).decode()
        if args.listed:
            for reading in (["list"], ["tags"]):
                run(tree, kb, reading, env)
    time.sleep(20)  # warmed up, and the notes found all committed
    times: dict[tuple[str, str], list[float]] = {(n, k): [] for n, _, _ in trees for k in ("add", "edit")}
    try:
        for r in range(args.rounds):
            for name, tree, kb in trees:
                for kind in ("add", "edit"):
                    time.sleep(args.pause)
                    if args.outside:
                        with outside[name].open("a", encoding="utf-8") as note:
                            note.write(f"A line written outside kb, {r} {kind}.\n")
                    for i in range(args.burst):
                        time.sleep(args.gap if i else 0.0)
                        if kind == "add":
                            argv = ["add", f"AB {name} {stamp} {r} {i}", "-b", "A new note."]
                        else:
                            argv = ["edit", f"AB warm {name} {stamp}", "-a", f"Line {r} {i}."]
                        times[(name, kind)].append(run(tree, kb, argv, env))
    finally:
        key = "writes on the server's word (no git status, no walk): "
        for name, tree, kb in trees:
            status = subprocess.run(
                [str(KB), "--kb", kb, "server", "status"],
                env={**env, "PYTHONPATH": tree},
                capture_output=True,
                text=True,
            ).stdout
            word = next((line[len(key) :] for line in status.splitlines() if line.startswith(key)), "?")
            made = 1 + args.outside + args.rounds * args.burst * 2
            print(f"{name}: {word} writes on the server's word (of {made})")
            subprocess.run([str(KB), "--kb", kb, "server", "stop"], env={**env, "PYTHONPATH": tree})
    for (name, kind), took in times.items():
        low, high = min(took), max(took)
        print(f"{name} {kind}: median {statistics.median(took):.1f} ms, {low:.1f}-{high:.1f}, n={len(took)}")
        if args.outside and args.burst > 1:
            rest = [t for n, t in enumerate(took) if n % args.burst]  # not the first of a burst
            first = [t for n, t in enumerate(took) if not n % args.burst]
            print(
                f"{name} {kind}: first of a burst median {statistics.median(first):.1f} ms; "
                f"the others median {statistics.median(rest):.1f} ms, {min(rest):.1f}-{max(rest):.1f}"
            )


if __name__ == "__main__":
    main()
