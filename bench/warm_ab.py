"""Warm commands of this tree against a baseline tree, side by side, runs interleaved:

    python bench/warm_ab.py --reuse KB --baseline SRC --baseline-kb KB2 [--runs 15] [--pause 0.5] [--log NOTE]
        [--search QUERY]...

SRC is a folder holding a `kb` package (`git worktree add SRC COMMIT`, or `git archive COMMIT kb | tar -x
-C SRC`); KB2 a copy of KB (`cp -a KB KB2`) made for it: each tree's server keeps its own knowledge base
(one server per knowledge base, and a server of another build is replaced). Both trees run through the
`kb` program next to this interpreter, the baseline with SRC first on PYTHONPATH (and so its server too).
Times whole processes as a user runs them, warm, `--pause` seconds before each (a person's pace: the
server's spare worker is ready): `kb add TITLE -b TEXT` (a new title each run), `kb edit NOTE -a TEXT`
(the note that run added), `kb list` (piped: its output made ahead), `kb show NOTE`, `kb log NOTE` (`--log`,
or the note shown), `kb search WORD`, and `kb search QUERY` for each `--search QUERY` (a phrase, say).
One run of each command in one tree, then in the other, then the next command: a busy machine slows
both alike. Medians, min-max, and the ratio of the medians. Bytecode caching is on. Writes change both
knowledge bases alike. Nothing is asserted but that every command succeeds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm import kb_program, word_of


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reuse", type=Path, required=True, help="the knowledge base of this tree")
    parser.add_argument("--baseline", type=Path, required=True, help="a source tree of kb to compare with")
    parser.add_argument("--baseline-kb", type=Path, required=True, help="a copy of KB for the baseline")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--log", help="the note `kb log` shows (default: the one `kb show` shows)")
    parser.add_argument(
        "--search", action="append", default=[], metavar="QUERY", help="a search timed too (repeatable)"
    )
    args = parser.parse_args()

    runtime = tempfile.mkdtemp(prefix="kb-ab-")  # the servers' sockets, apart from any other
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "KB_SERVER")}
    base["XDG_RUNTIME_DIR"] = runtime
    trees = {
        "this tree": (args.reuse.absolute(), dict(base)),
        "baseline": (args.baseline_kb.absolute(), {**base, "PYTHONPATH": str(args.baseline.absolute())}),
    }
    notes = args.reuse / "notes" if (args.reuse / "notes").is_dir() else args.reuse
    word = word_of(notes)
    shown = next(p.stem for p in sorted(notes.glob("*.md")) if not p.name.startswith("AB "))
    logged = args.log or shown
    program = kb_program()

    def run(root: Path, env: dict[str, str], *argv: str) -> float:
        time.sleep(args.pause)
        start = time.perf_counter()
        done = subprocess.run([*program, "--kb", str(root), *argv], env=env, capture_output=True)
        took = (time.perf_counter() - start) * 1000
        if done.returncode != 0:
            raise SystemExit(f"kb {' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
        return took

    try:
        for root, env in trees.values():  # servers started and ready; the list made ahead
            run(root, env, "list")
        time.sleep(10)
        for root, env in trees.values():
            run(root, env, "list")
        time.sleep(5)

        stamp = int(time.time())
        commands = ["kb add TITLE -b TEXT", "kb edit NOTE -a TEXT", "kb list"]
        commands += [f"kb show {shown}", f"kb log {logged}", f"kb search {word}"]
        commands += [f"kb search {query}" for query in args.search]
        times: dict[tuple[str, str], list[float]] = {(c, t): [] for c in commands for t in trees}
        for n in range(args.runs):
            title = f"AB {stamp} {n}"
            argvs = [
                ("add", title, "-b", "A new note."),
                ("edit", title, "-a", "Another line."),
                ("list",),
                ("show", shown),
                ("log", logged),
                ("search", word),
                *(("search", query) for query in args.search),
            ]
            for command, argv in zip(commands, argvs, strict=True):
                for name, (root, env) in trees.items():
                    times[(command, name)].append(run(root, env, *argv))
    finally:  # a command that failed ends the run: its servers go too (their sockets' folder goes)
        for root, env in trees.values():
            subprocess.run([*program, "--kb", str(root), "server", "stop"], env=env, capture_output=True)
        shutil.rmtree(runtime, ignore_errors=True)

    print(f"# Warm, this tree against {args.baseline} ({args.runs} runs, {args.pause} s apart; medians)")
    print()
    print("| command | this tree ms | baseline ms | ratio |")
    print("|---|---:|---:|---:|")
    for command in commands:
        ours, theirs = times[(command, "this tree")], times[(command, "baseline")]
        a, b = statistics.median(ours), statistics.median(theirs)
        print(
            f"| `{command}` | {a:.1f} ({min(ours):.1f}-{max(ours):.1f}) "
            f"| {b:.1f} ({min(theirs):.1f}-{max(theirs):.1f}) | {a / b:.2f} |"
        )


if __name__ == "__main__":
    main()
