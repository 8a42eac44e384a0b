"""Shell completion at scale: how long one Tab takes, as bash runs it (one `kb` process per Tab).

    python bench/completion.py --notes 10000 [--runs 15] [--kb EXISTING_KB]

Generates N notes (bench/generate.py) and runs `kb init` (which builds the index and its catalog), unless
--kb names a knowledge base that has them. Then, for each case, times whole processes of the installed
`kb` program with bash's completion variables set (medians with min and max), beside the same Tab through
typer's completion (the command line imported in full: what every Tab cost before kb.completion.quick),
and checks both print the same. Prints a Markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate

CASES = [
    ("`kb show Bri` (a common prefix)", "kb show Bri"),
    ("`kb show Zalfen` (one note)", "kb show Zalfen"),
    ("`kb show ` (nothing typed)", "kb show "),
    ("`kb edit -a text Bri` (after an option's value)", "kb edit -a text Bri"),
    ("`kb list -t Notebooks/` (tags)", "kb list -t Notebooks/"),
    ("`kb sh` (a command: typer answers)", "kb sh"),
]


def run(argv: list[str], words: str, env: dict[str, str]) -> tuple[float, bytes]:
    parts = words.split(" ")
    cword = len(parts) - 1 - sum(1 for p in parts if p.endswith("\\"))
    full = {**env, "_KB_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    start = time.perf_counter()
    proc = subprocess.run(argv, env=full, capture_output=True, check=True)
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--kb", type=Path, help="an existing knowledge base with its index")
    args = parser.parse_args()
    root = args.kb
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="kb-bench-completion-")) / "kb"
        generate(root, args.notes)
        subprocess.run([sys.executable, "-m", "kb", "--kb", str(root), "init"], check=True)
    env = {**os.environ, "KB_HOME": str(root)}
    program = [str(Path(sys.executable).parent / "kb")]
    through_typer = [sys.executable, "-c", "from kb.cli import main; main()"]
    print(f"{args.runs} runs each, {root}; milliseconds: median (min-max)\n")
    print("| completing | kb (quick path) | through typer | candidates | same answer |")
    print("|---|---|---|---|---|")
    for label, words in CASES:
        quick, slow = [], []
        out_quick = out_slow = b""
        for _ in range(args.runs):
            seconds, out_quick = run(program, words, env)
            quick.append(seconds * 1000)
            seconds, out_slow = run(through_typer, words, env)
            slow.append(seconds * 1000)
        count = len([line for line in out_quick.decode().split("\n") if line])
        print(
            f"| {label} | {statistics.median(quick):.0f} ({min(quick):.0f}-{max(quick):.0f}) "
            f"| {statistics.median(slow):.0f} ({min(slow):.0f}-{max(slow):.0f}) | {count} "
            f"| {'yes' if out_quick == out_slow else 'NO'} |"
        )
    start = [run([sys.executable, "-c", "pass"], "kb ", env)[0] * 1000 for _ in range(args.runs)]
    print(f"\nStarting Python alone (`python -c pass`): {statistics.median(start):.0f} ms")


if __name__ == "__main__":
    main()
