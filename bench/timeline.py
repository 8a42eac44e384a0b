"""The knowledge base in time, measured beside its plain counterparts and git in one run.

    python bench/timeline.py --notes 10000 --commits 5000 --revisions 200 [--runs 5] [--out bench/results]
        [--before TREE]

Generates N notes (bench/generate.py), `kb init`, then adds `--commits` commits with git fast-import (edits
of random notes, `--revisions - 1` of them edits of one note; bench/run.py's build_history). Then measures
whole processes (median of --runs, after one unmeasured warm-up run; peak RSS): `kb list` against
`kb list --as-of` (a date in the middle of the added history; also the first look, before the per-version
records are cached), `kb tags` against `kb tags --as-of`, `kb show --as-of`, `kb changes` over the whole
added history against `git log --since --raw`, and `kb blame` of the note with many revisions against
`git blame`. `kb changes` is measured twice: as a second look (the per-note summaries kept in
index/versions.sqlite3) and as a first one (that table emptied before each run). With `--before TREE` (a
folder holding another version's `kb` package, e.g. `git archive REV kb | tar -x -C TREE`), `kb changes` and
`kb blame` are also measured with that version (PYTHONPATH=TREE), right before the current one, on the same
repository. Writes a Markdown table and a JSON file; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from run import Figure, _timed, build_history, isolated_env, kb_cmd, measure


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--before", type=Path, help="another version's kb package is in this folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kb-timeline-"))
    root = work / "kb"
    env = isolated_env(work)
    print(f"generating {args.notes} notes in {root} ...", file=sys.stderr)
    titles = generate(root, args.notes)
    # the first commit (every generated note) dated before the history build_history adds (from 2025-01-01)
    dated = {**env, "KB_NOW": "2024-12-31T00:00:00.000Z"}
    subprocess.run(kb_cmd(root, "init"), check=True, capture_output=True, env=dated)
    target = titles[len(titles) // 2]
    print(f"adding {args.commits} commits ...", file=sys.stderr)
    count = build_history(root, target, args.commits, args.revisions)
    dates = subprocess.run(
        ["git", "log", "--format=%aI", f"-n{args.commits}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    newest, oldest = dates[0], dates[-1]
    middle = dates[len(dates) // 2]
    # the revision cache, and the index's catalog brought up to the files fast-import rewrote
    subprocess.run(kb_cmd(root, "search", "zzzz"), capture_output=True, env=env)
    subprocess.run(kb_cmd(root, "log", target), check=True, capture_output=True, env=env)
    figures: list[Figure] = []

    def add(name: str, argv: list[str], shown: str | None = None, before: bool = False) -> None:
        if before and args.before is not None:
            print(f"  before: {name} ...", file=sys.stderr)
            old = {**env, "PYTHONPATH": str(args.before.resolve())}
            make = lambda i: (argv, None)  # noqa: E731
            figures.append(measure(f"before: {name}", shown or " ".join(argv), args.runs, make, old, root))
        print(f"  {name} ...", file=sys.stderr)
        figures.append(measure(name, shown or " ".join(argv), args.runs, lambda i: (argv, None), env, root))

    def forget_summaries(argv: list[str]) -> tuple[list[str], None]:
        try:
            with sqlite3.connect(root / "index" / "versions.sqlite3") as db:
                db.execute("DELETE FROM summaries")
        except sqlite3.Error:
            pass  # a version without the table
        return argv, None

    versions = root / "index" / "versions.sqlite3"
    versions.unlink(missing_ok=True)
    seconds, rss = _timed(kb_cmd(root, "list", "--as-of", middle), None, env)
    figures.append(
        Figure.of(
            "kb list --as-of, first look (records parsed and cached)",
            f"kb list --as-of {middle}",
            [seconds * 1000],
            [rss],
        )
    )
    add("kb list", kb_cmd(root, "list"), "kb list")
    add("kb list --as-of", kb_cmd(root, "list", "--as-of", middle), f"kb list --as-of {middle}")
    add("kb tags", kb_cmd(root, "tags"), "kb tags")
    add("kb tags --as-of", kb_cmd(root, "tags", "--as-of", middle), f"kb tags --as-of {middle}")
    add(
        "kb show --as-of",
        kb_cmd(root, "show", target, "--as-of", middle, "--raw"),
        f"kb show NOTE --as-of {middle}",
    )
    changes = kb_cmd(root, "changes", "--since", oldest, "--until", newest, "--json")
    shown = f"kb changes --since {oldest} --until {newest} --json"
    add(f"kb changes over {args.commits} commits", changes, shown, before=True)
    name = f"kb changes over {args.commits} commits, first look (no summaries kept)"
    print(f"  {name} ...", file=sys.stderr)
    figures.append(measure(name, shown, args.runs, lambda i: forget_summaries(changes), env, root))
    add(
        f"baseline: git log --raw over {args.commits} commits",
        ["git", "log", f"--since={oldest}", "--raw", "--no-abbrev"],
    )
    add("kb blame (note with many revisions)", kb_cmd(root, "blame", target), "kb blame NOTE", before=True)
    add("baseline: git blame", ["git", "blame", "--porcelain", "--", f"notes/{target}.md"])
    revisions = subprocess.run(kb_cmd(root, "log", target, "--json"), capture_output=True, text=True, env=env)
    shown_revisions = len(json.loads(revisions.stdout)["revisions"]) if revisions.returncode == 0 else 0

    by_name = {f.name: f for f in figures}
    lines = [
        f"# Time machine: {args.notes:,} notes, {count:,} commits, one note with {shown_revisions} revisions",
        "",
        f"`python bench/timeline.py --notes {args.notes} --commits {args.commits}"
        f" --revisions {args.revisions} --runs {args.runs}` on {platform.machine()},"
        f" Python {platform.python_version()},"
        f" {time.strftime('%Y-%m-%d')}. Whole processes, median of {args.runs} after a warm-up run.",
        "",
        "| figure | command | median ms | min | max | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.name} | `{f.command}` | {f.median_ms} | {f.min_ms} | {f.max_ms} | {f.peak_rss_mib} |"
        )
    for a, b in (("kb list --as-of", "kb list"), ("kb tags --as-of", "kb tags")):
        if by_name[b].median_ms:
            lines.append(f"\n`{a}` / `{b}`: {by_name[a].median_ms / by_name[b].median_ms:.2f}x")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"timeline-{args.notes}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps([asdict(f) for f in figures], indent=2))


if __name__ == "__main__":
    main()
