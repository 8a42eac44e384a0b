"""Cold `kb search WORD` (no warm server: KB_SERVER=0) against a baseline and rg, runs interleaved:

    python bench/cold.py --reuse KB [--runs 20] [--baseline SRC] [--word WORD] [--command add|edit]

`--command add` times `kb add TITLE -b TEXT` (a new title each run), `--command edit` times
`kb edit NOTE -a TEXT` on one note, in place of the search (rg is then left out): each changes the
knowledge base.

Times whole processes as a user runs them: the `kb` program next to this interpreter (the current tree),
with `--baseline SRC` (a folder holding a `kb` package, e.g. `git archive COMMIT kb | tar -x -C SRC`) this
tree and SRC started alike (`python -P -c`, the tree first on PYTHONPATH, the working folder not on the
path), and `rg -l -i WORD` on the same notes. One run of each in turn, so that a busy
machine slows all of them alike; medians, min-max, and the CPU time of each (user + system of the process
and its children). Bytecode caching is on (PYTHONDONTWRITEBYTECODE is removed). The knowledge base must
exist (bench/warm.py makes one; `kb init` on bench/generate.py's notes).
Nothing is asserted but that every command succeeds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import program
from warm import kb_program, word_of


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reuse", type=Path, required=True, help="the knowledge base to search")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline", type=Path, help="a source tree of kb to compare with")
    parser.add_argument("--word", help="the word searched (default: as bench/warm.py picks it)")
    parser.add_argument("--command", choices=("search", "add", "edit"), default="search")
    args = parser.parse_args()

    root = args.reuse.absolute()
    notes = root / "notes" if (root / "notes").is_dir() else root
    word = args.word or word_of(notes)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "KB_SERVER")}
    env["KB_SERVER"] = "0"
    kb_args = ["--kb", str(root), "search", word]
    shown = f"kb search {word}"
    if args.command == "add":
        kb_args = ["--kb", str(root), "add", "Cold bench {i}", "-b", "A new note."]
        shown = "kb add TITLE -b TEXT"
    elif args.command == "edit":
        made = (p for p in sorted(notes.glob("*.md")) if not p.name.startswith(("Bench ", "Cold bench ")))
        kb_args = ["--kb", str(root), "edit", next(made).stem, "-a", "Another line {i}."]
        shown = "kb edit NOTE -a TEXT"
    variants: dict[str, tuple[list[str], dict[str, str]]] = {}
    variants["kb (the kb program)"] = ([*kb_program(), *kb_args], env)
    if args.baseline:  # both trees started alike (an editable install's import hook costs ~10 ms)
        code = "from kb.entry import main; main()"
        here = str(Path(__file__).resolve().parent.parent)
        for name, tree in (
            ("kb (this tree, -P -c)", here),
            ("kb (baseline, -P -c)", str(args.baseline.absolute())),
        ):
            variants[name] = ([sys.executable, "-P", "-c", code, *kb_args], {**env, "PYTHONPATH": tree})
    rg = program("rg")
    if rg is not None and args.command == "search":
        variants["rg -l -i"] = ([rg, "-l", "-i", word, str(notes)], env)
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    stamp = time.strftime("%H%M%S")
    count = iter(range(1_000_000))

    def numbered(argv: list[str]) -> list[str]:
        """The argument list with a new number each run in place of "{i}" (titles of added notes)."""
        n = f"{stamp}-{next(count)}"
        return [a.replace("{i}", n) for a in argv]

    for argv, run_env in variants.values():  # once untimed: caches, bytecode
        subprocess.run(numbered(argv), env=run_env, capture_output=True, check=True)
    for _ in range(args.runs):
        for name, (argv, run_env) in variants.items():
            line = numbered(argv)
            before = os.times()
            start = time.perf_counter()
            subprocess.run(line, env=run_env, capture_output=True, check=True)
            walls[name].append((time.perf_counter() - start) * 1000)
            after = os.times()
            cpus[name].append(
                (after.children_user - before.children_user + after.children_system - before.children_system)
                * 1000
            )
    load = os.getloadavg()[0]
    print(f"# Cold `{shown}` ({args.runs} runs each, interleaved; load average {load:.1f})")
    print()
    print("| command | median ms | min-max ms | CPU ms (median) |")
    print("|---|---:|---:|---:|")
    for name in variants:
        w = walls[name]
        print(
            f"| {name} | {statistics.median(w):.1f} | {min(w):.1f}-{max(w):.1f} | "
            f"{statistics.median(cpus[name]):.0f} |"
        )


if __name__ == "__main__":
    main()
