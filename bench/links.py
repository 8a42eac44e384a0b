"""Links at scale: `kb backlinks`, `kb links` and a rename that rewrites the links in 100 notes.

    python bench/links.py --notes 10000 --folders 100 [--runs 5] [--out bench/results]

Generates an Obsidian vault of N notes in F folders (bench/generate.py: a wiki link to another note in
most), adds links to one target note in 100 other notes (wiki links with and without alias and heading,
embeds, relative Markdown links, URL-encoded), commits it, runs `kb init` (the index with its links
table), then times whole processes: `kb backlinks` and `kb links` of the target, `grep -rl` for the same
name as a baseline (a text search, which finds the name, not the links that resolve to the note), and
`kb mv` renaming the target back and forth (a new title: each run rewrites the links in the 100 notes
and commits the 101 files), `kb search links:TARGET` and `NOT links:TARGET`, and `kb mv` renaming an image
that 100 other notes embed or link to (`![[diagram.png]]`, `![[diagram.png|300]]`, relative `![](...)`)
back and forth. Writes a Markdown table and a JSON file; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_vault
from run import _timed, kb_cmd

FORMS = [
    "See [[{title}]].",
    "As said in [[{title}|the target]].",
    "Details: [[{title}#Heading]].",
    "![[{title}]]",
    "A [relative link]({rel}).",
]


def add_links(root: Path, paths: list[str], target: str, count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    title = Path(target).stem
    others = [p for p in paths if p != target]
    chosen = rng.sample(others, count)
    for i, path in enumerate(chosen):
        rel = os.path.relpath(target, os.path.dirname(path) or ".").replace(" ", "%20")
        line = FORMS[i % len(FORMS)].format(title=title, rel=rel)
        with open(root / path, "a", encoding="utf-8") as handle:
            handle.write(f"\n{line}\n")
    return chosen


FILE_FORMS = ["![[{name}]]", "![[{name}|300]]", "![diagram]({rel})"]


def add_file_links(root: Path, paths: list[str], file: str, count: int, seed: int = 11) -> list[str]:
    """`file` written, and embedded or linked in `count` notes."""
    rng = random.Random(seed)
    (root / file).parent.mkdir(parents=True, exist_ok=True)
    (root / file).write_bytes(b"\x89PNG bench")
    name = Path(file).name
    chosen = rng.sample(paths, count)
    for i, path in enumerate(chosen):
        rel = os.path.relpath(file, os.path.dirname(path) or ".")
        line = FILE_FORMS[i % len(FILE_FORMS)].format(name=name, rel=rel)
        with open(root / path, "a", encoding="utf-8") as handle:
            handle.write(f"\n{line}\n")
    return chosen


def timed_rows(name: str, argvs: list[list[str]], env: dict[str, str]) -> dict[str, object]:
    """One row from running each command once (a rename back and forth: each run undoes the one before)."""
    times, peaks = [], []
    for argv in argvs:
        seconds, rss = _timed(argv, None, env)
        times.append(seconds * 1000)
        peaks.append(rss)
    return {
        "name": name,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "peak_rss_mib": round(max(peaks), 1),
        "runs": len(argvs),
    }


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        check=True,
        capture_output=True,
    )


def row(name: str, argv: list[str], env: dict[str, str], runs: int) -> dict[str, object]:
    times, peaks = [], []
    for _ in range(runs):
        seconds, rss = _timed(argv, None, env)
        times.append(seconds * 1000)
        peaks.append(rss)
    return {
        "name": name,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "peak_rss_mib": round(max(peaks), 1),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10000)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--linking", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    with tempfile.TemporaryDirectory(prefix="kb-bench-links-") as tmp:
        root = Path(tmp) / "vault"
        paths = generate_vault(root, args.notes, args.folders)
        target = paths[len(paths) // 2]
        add_links(root, paths, target, args.linking)
        image = "Assets/diagram.png"
        add_file_links(root, paths, image, args.linking)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        git(root, "add", "-A")
        git(root, "commit", "-qm", "vault")
        start = time.perf_counter()
        subprocess.run(kb_cmd(root, "init"), check=True, capture_output=True, env=env)
        init_s = time.perf_counter() - start
        rows = [
            row("kb backlinks TARGET", kb_cmd(root, "backlinks", target), env, args.runs),
            row("kb links TARGET", kb_cmd(root, "links", target), env, args.runs),
            row("grep -rl NAME (baseline)", ["grep", "-rlF", Path(target).stem, str(root)], env, args.runs),
        ]
        folder = os.path.dirname(target)
        titles = ["Renamed target", Path(target).stem]  # renamed to the first, back to the second...
        times, peaks = [], []
        for i in range(args.runs):
            now, then = titles[(i + 1) % 2], titles[i % 2]
            argv = kb_cmd(root, "mv", f"{folder}/{now}.md", then)
            seconds, rss = _timed(argv, None, env)
            times.append(seconds * 1000)
            peaks.append(rss)
        final = f"{folder}/{titles[(args.runs + 1) % 2]}.md"
        rows.append(
            {
                "name": f"kb mv (rewrites the links in {args.linking} notes)",
                "median_ms": round(statistics.median(times), 1),
                "min_ms": round(min(times), 1),
                "max_ms": round(max(times), 1),
                "peak_rss_mib": round(max(peaks), 1),
                "runs": args.runs,
            }
        )
        rows.append(
            row("kb search links:TARGET", kb_cmd(root, "search", f'links:"{final}"', "-l"), env, args.runs)
        )
        rows.append(
            row(
                "kb search NOT links:TARGET",
                kb_cmd(root, "search", f'NOT links:"{final}"', "-l"),
                env,
                args.runs,
            )
        )
        images = [image, "Assets/chart.png"]
        rows.append(
            timed_rows(
                f"kb mv FILE (an image: rewrites its links in {args.linking} notes)",
                [kb_cmd(root, "mv", images[i % 2], images[(i + 1) % 2]) for i in range(args.runs)],
                env,
            )
        )
        check = subprocess.run(kb_cmd(root, "backlinks", final), capture_output=True, text=True, env=env)
        kept = len(check.stdout.splitlines())
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"links-{args.notes}"
    meta = {
        "notes": args.notes,
        "folders": args.folders,
        "linking_notes": args.linking,
        "backlinks_after_renames": kept,
        "kb_init_s": round(init_s, 1),
        "python": platform.python_version(),
    }
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        f"Links at {args.notes:,} notes in {args.folders} folders, {args.linking} notes linking to one "
        f"(`kb init` {init_s:.1f} s; backlinks found after the renames: {kept})",
        "",
        "| command | median ms | min | max | peak RSS MiB | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['median_ms']} | {r['min_ms']} | {r['max_ms']} | {r['peak_rss_mib']} "
            f"| {r['runs']} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
