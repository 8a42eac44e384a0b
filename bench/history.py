"""Time `kb log` and `kb diff` on a note with many revisions in a long history.

    python bench/history.py [--commits 5000] [--revisions 200] [--notes 1000] [--runs 7]

Builds the history with `git fast-import` (seconds instead of hours): --notes notes are added, then
--commits commits edit them, --revisions of which edit the one measured note ("Target note"), each
with kb's commit messages and Notable front matter. Then times whole `kb` processes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def note_text(title: str, created: datetime, modified: datetime, lines: list[str]) -> bytes:
    head = f"---\ntitle: {title}\ncreated: '{stamp(created)}'\nmodified: '{stamp(modified)}'\n---\n\n"
    head += f"# {title}\n\n"
    return (head + "\n".join(lines) + "\n").encode()


def build(root: Path, notes: int, commits: int, revisions: int) -> None:
    rng = random.Random(3)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "notes").mkdir()
    (root / ".gitignore").write_text("index/\n")
    start = datetime(2020, 1, 1, tzinfo=UTC)
    stream: list[bytes] = []
    mark = 0
    contents: dict[str, list[str]] = {}

    def commit(path: str, title: str, message: str, when: datetime, created: datetime) -> None:
        nonlocal mark
        mark += 1
        data = note_text(title, created, when, contents[path])
        seconds = int(when.timestamp())
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"mark :{mark}\n".encode())
        stream.append(f"author kb <kb@localhost> {seconds} +0000\n".encode())
        stream.append(f"committer kb <kb@localhost> {seconds} +0000\n".encode())
        msg = message.encode()
        stream.append(f"data {len(msg)}\n".encode() + msg + b"\n")
        if mark > 1:
            stream.append(f"from :{mark - 1}\n".encode())
        stream.append(f'M 100644 inline "{path}"\n'.encode())
        stream.append(f"data {len(data)}\n".encode() + data + b"\n")

    when = start
    titles = [f"Note {i}" for i in range(notes)] + ["Target note"]
    for title in titles:
        path = f"notes/{title}.md"
        contents[path] = [f"line {j} of {title}" for j in range(30)]
        when += timedelta(minutes=1)
        commit(path, title, f"Add: {title}", when, when)
    target_edits = set(rng.sample(range(commits), revisions - 1))
    for n in range(commits):
        when += timedelta(minutes=7)
        title = "Target note" if n in target_edits else rng.choice(titles[:-1])
        path = f"notes/{title}.md"
        lines = contents[path]
        lines[rng.randrange(len(lines))] = f"edited {n} " + " ".join(
            rng.choice("abcdefgh") * 3 for _ in range(6)
        )
        if rng.random() < 0.3:
            lines.append(f"appended {n}")
        commit(path, title, f"Edit: {title}", when, start)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=b"".join(stream), check=True)
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], cwd=root, check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=root, check=True)


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float, float]:
    subprocess.run(argv, capture_output=True, env=env, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=env, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1), round(min(times), 1), round(max(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kb-history-bench-"))
    root = work / "kb"
    build(root, args.notes, args.commits, args.revisions)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(work / "none"), HOME=str(work))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: kb's modules compiled once, not on every run
    count = subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=root, capture_output=True, text=True)
    kb = [sys.executable, "-m", "kb", "--kb", str(root)]
    rows = [
        ("kb log NOTE", timed([*kb, "log", "Target note"], env, args.runs)),
        ("kb log NOTE --json", timed([*kb, "log", "Target note", "--json"], env, args.runs)),
        ("kb diff NOTE (previous vs current)", timed([*kb, "diff", "Target note"], env, args.runs)),
        ("kb diff NOTE 1 200", timed([*kb, "diff", "Target note", "1", str(args.revisions)], env, args.runs)),
        ("kb show NOTE --rev 100", timed([*kb, "show", "Target note", "--rev", "100"], env, args.runs)),
        (
            "git log -- path (baseline)",
            timed(["git", "-C", str(root), "log", "--", "notes/Target note.md"], env, args.runs),
        ),
    ]
    print(
        f"{count.stdout.strip()} commits, {args.notes + 1} notes, {args.revisions} revisions of the note; "
        f"{args.runs} runs each\n"
    )
    print("| command | median ms | min ms | max ms |\n|---|---:|---:|---:|")
    for name, (median, low, high) in rows:
        print(f"| `{name}` | {median} | {low} | {high} |")


if __name__ == "__main__":
    main()
