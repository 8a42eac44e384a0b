"""The warm server against the cold path, side by side in one run:

    python bench/warm.py --notes 10000 [--runs 10] [--reuse KB] [--out bench/results]

Makes N notes (bench/generate.py) a knowledge base (or measures `--reuse KB`), then times whole processes as
a user runs them (the `kb` program next to this interpreter, the thin client): `kb search WORD` cold
(KB_SERVER=0) and warm, `rg -l -i WORD` on the same notes, and warm `kb list`, `kb show NOTE`,
`kb log NOTE`, `kb tags`; the server's resident memory when idle; and an outside edit (a new word appended
to a note in place) followed at once by `kb search` of that word, which must find it. Bytecode caching is on
(PYTHONDONTWRITEBYTECODE is removed), as on a user's machine. Prints a Markdown table with the targets and
writes warm-N.json. Nothing is asserted but that every command succeeds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from run import Figure, Missing, timed

TARGETS = {
    "kb search WORD (warm)": "≤ 25 ms and ≤ 0.5× rg",
    "kb search WORD (cold, KB_SERVER=0)": "≤ 100 ms",
    "kb list (warm)": "≤ 25 ms",
    "kb show NOTE (warm)": "≤ 25 ms",
    "kb log NOTE (warm)": "≤ 25 ms",
    "kb tags (warm)": "≤ 25 ms",
}


def kb_program() -> list[str]:
    script = Path(sys.executable).parent / "kb"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from kb.client import main; main()"]


def measure(name: str, shown: str, argv: list[str], env: dict[str, str], runs: int) -> Figure:
    timed(argv, None, env)  # once untimed: caches and (warm) the server's first look at this command
    walls, peaks = [], []
    for _ in range(runs):
        wall, peak = timed(argv, None, env)
        walls.append(wall * 1000)
        peaks.append(peak)
    return Figure(
        name,
        shown,
        round(statistics.median(walls), 1),
        round(min(walls), 1),
        round(max(walls), 1),
        round(max(peaks), 1),
        runs,
    )


def word_of(notes: Path) -> str:
    """A word of the corpus that some notes have: the longest word of the first note's body."""
    first = sorted(notes.iterdir())[0].read_text(encoding="utf-8")
    body = first.split("---", 2)[-1]
    words = [w for w in body.split() if w.isalpha()]
    return max(words, key=len).lower()


def server_rss(status: str) -> float:
    for line in status.splitlines():
        if line.startswith("pid:"):
            pid = line.split(":", 1)[1].strip()
            for row in Path(f"/proc/{pid}/status").read_text().splitlines():
                if row.startswith("VmRSS:"):
                    return int(row.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--reuse", type=Path, help="measure this knowledge base instead of making one")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kb-warm-"))
    runtime = work / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "KB_SERVER")}
    env.update(XDG_RUNTIME_DIR=str(runtime), KB_SERVER_IDLE="600", GIT_TERMINAL_PROMPT="0")
    cold_env = {**env, "KB_SERVER": "0"}
    kb = kb_program()
    try:
        if args.reuse:
            root = args.reuse.absolute()
        else:
            root = work / "kb"
            generate(root, args.notes)
            subprocess.run([*kb, "--kb", str(root), "init"], env=cold_env, check=True, capture_output=True)
        notes = root / "notes" if (root / "notes").is_dir() else root
        word = word_of(notes)
        note = sorted(notes.iterdir())[3]
        title = note.stem
        base = [*kb, "--kb", str(root)]
        figures = [
            measure("kb search WORD (cold, KB_SERVER=0)", f"kb search {word}", [*base, "search", word],
                    cold_env, args.runs),
        ]  # fmt: skip
        subprocess.run([*base, "server", "start"], env=env, check=True, capture_output=True, timeout=120)
        warm = [
            ("kb search WORD (warm)", f"kb search {word}", ["search", word]),
            ("kb list (warm)", "kb list", ["list"]),
            ("kb show NOTE (warm)", f"kb show '{title}'", ["show", title]),
            ("kb log NOTE (warm)", f"kb log '{title}'", ["log", title]),
            ("kb tags (warm)", "kb tags", ["tags"]),
        ]
        for name, shown, rest in warm:
            figures.append(measure(name, shown, [*base, *rest], env, args.runs))
        with contextlib.suppress(Missing):
            rg = ["rg", "-l", "-i", word, str(notes)]
            figures.append(measure("rg -l -i WORD", f"rg -l -i {word} notes/", rg, env, args.runs))
        status = subprocess.run([*base, "server", "status"], env=env, capture_output=True, text=True).stdout
        time.sleep(1.0)
        rss = server_rss(status)
        # An outside edit, then at once a search for the word it added.
        edits = []
        for i in range(args.runs):
            new = f"zzqx{i}outside"
            with open(note, "a", encoding="utf-8") as f:
                f.write(f"\n{new}\n")
            start = time.perf_counter()
            proc = subprocess.run([*base, "search", new, "-l"], env=env, capture_output=True)
            edits.append((time.perf_counter() - start) * 1000)
            if proc.returncode != 0 or note.name.encode() not in proc.stdout:
                raise SystemExit(f"the outside edit was not found: {proc.stdout!r} {proc.stderr!r}")
        middle = round(statistics.median(edits), 1)
        low, high = round(min(edits), 1), round(max(edits), 1)
        figures.append(
            Figure(
                "outside edit, then kb search (warm)", "kb search NEWWORD", middle, low, high, 0.0, args.runs
            )
        )
        subprocess.run([*base, "server", "stop"], env=env, capture_output=True, timeout=60)
    finally:
        if not args.reuse:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(runtime, ignore_errors=True)

    by = {f.name: f for f in figures}
    print(f"# Warm server at {args.notes} notes ({args.runs} runs each; medians, min-max)\n")
    print("| figure | command | median ms | min-max ms | peak RSS MiB | target |")
    print("|---|---|---:|---:|---:|---|")
    for f in figures:
        print(
            f"| {f.name} | `{f.command}` | {f.median_ms} | {f.min_ms}-{f.max_ms} | {f.peak_rss_mib} | "
            f"{TARGETS.get(f.name, '')} |"
        )
    print(f"| server RSS when idle | | | | {rss:.1f} | ≤ 60 MB |")
    if "rg -l -i WORD" in by:
        ratio = by["kb search WORD (warm)"].median_ms / by["rg -l -i WORD"].median_ms
        print(f"\nwarm search / rg: {ratio:.2f}×")
    args.out.mkdir(parents=True, exist_ok=True)
    data = {
        "notes": args.notes,
        "runs": args.runs,
        "server_rss_mib": rss,
        "figures": [asdict(f) for f in figures],
    }
    (args.out / f"warm-{args.notes}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
