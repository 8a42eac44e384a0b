"""Whole-process timings of kb commands on a generated corpus, with baselines measured in the same run.

    python bench/run.py --notes 1000 [--runs 7] [--out bench/results]

Generates N notes (bench/generate.py), makes them a knowledge base, then times each command as a user runs
it (a new process each time) and reports the median, min and max wall time and the peak RSS of the child.
Writes a Markdown table and a JSON file. Nothing here is asserted: the figures are for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate


@dataclass
class Figure:
    name: str
    command: str
    median_ms: float
    min_ms: float
    max_ms: float
    peak_rss_mib: float
    runs: int


def cell(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|")


def kb_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kb", "--kb", str(root), *args]


def timed(
    argv: list[str], stdin: bytes | None, env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float]:
    """Wall seconds and this child's own peak RSS in MiB for one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    assert proc.stdin is not None and proc.stderr is not None
    if stdin:
        proc.stdin.write(stdin)
    proc.stdin.close()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def measure(
    name: str,
    shown: str,
    runs: int,
    make: Callable[[int], tuple[list[str], bytes | None]],
    env: dict[str, str],
    cwd: Path | None = None,
) -> Figure:
    times, rss = [], []
    argv, stdin = make(-1)  # one unmeasured run warms the page cache
    timed(argv, stdin, env, cwd)
    for i in range(runs):
        argv, stdin = make(i)
        seconds, peak = timed(argv, stdin, env, cwd)
        times.append(seconds * 1000)
        rss.append(peak)
    return Figure(
        name,
        shown,
        round(statistics.median(times), 1),
        round(min(times), 1),
        round(max(times), 1),
        round(max(rss), 1),
        runs,
    )


def pick_words(root: Path) -> dict[str, str]:
    """Query words chosen from the corpus itself: the most common word, one in about 1% of notes, one in
    a handful of notes, an adjacent pair for a phrase, a prefix and a title word."""
    import collections
    import re

    word = re.compile(r"[a-z]+")
    df: collections.Counter[str] = collections.Counter()
    files = sorted((root / "notes").iterdir())
    first_body = ""
    for path in files:
        text = path.read_text()
        body = text.split("---\n", 2)[-1]
        first_body = first_body or body
        df.update(set(word.findall(body.lower())))
    n = len(files)
    by_df = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
    common = by_df[0][0]
    mid = min(by_df, key=lambda kv: (abs(kv[1] - max(2, n // 100)), kv[0]))[0]
    rare = min((kv for kv in by_df if len(kv[0]) > 5), key=lambda kv: (abs(kv[1] - 3), kv[0]))[0]
    sentence = next(line for line in first_body.splitlines() if len(line.split()) > 8 and line[0].isalpha())
    pair = " ".join(sentence.lower().rstrip(".").split()[3:5])
    title = files[len(files) // 3].stem.split()[0].lower()
    return {"common": common, "mid": mid, "rare": rare, "phrase": pair, "prefix": common[:3], "title": title}


def freshness(root: Path, runs: int) -> list[Figure]:
    """The check before every search, in-process: nothing changed, then 1 and 100 notes changed outside."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from kb.index import NoteIndex

    figures = []
    notes = sorted((root / "notes").iterdir())
    for label, changed in (
        ("nothing changed", 0),
        ("1 note changed outside", 1),
        ("100 notes changed outside", 100),
    ):
        times = []
        for run in range(runs + 1):
            for path in notes[:changed]:
                with open(path, "a") as handle:
                    handle.write(f"\nappended {run}\n")
            start = time.perf_counter()
            NoteIndex(root).refresh()
            if run:
                times.append((time.perf_counter() - start) * 1000)
        figures.append(
            Figure(
                f"freshness check, {label}",
                f"freshness check ({label})",
                round(statistics.median(times), 1),
                round(min(times), 1),
                round(max(times), 1),
                0.0,
                runs,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--keep", action="store_true", help="keep the generated knowledge base")
    parser.add_argument("--reindex-runs", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    root = work / "kb"
    env = dict(os.environ)
    env.update(
        {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(work / "no-gitconfig"), "HOME": str(work)}
    )
    env.pop("KB_NOW", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: kb's modules compiled once, not on every run
    print(f"generating {args.notes} notes in {root} ...", file=sys.stderr)
    titles = generate(root, args.notes)
    start = time.perf_counter()
    subprocess.run(kb_cmd(root, "init"), check=True, capture_output=True, env=env)
    init_seconds = time.perf_counter() - start
    target = titles[len(titles) // 2]
    words = pick_words(root)
    figures: list[Figure] = []
    counter = iter(range(10**9))

    def add(
        name: str, shown: str, make: Callable[[int], tuple[list[str], bytes | None]], cwd: Path | None = None
    ):
        print(f"  {name} ...", file=sys.stderr)
        figures.append(measure(name, shown, args.runs, make, env, cwd))

    add("kb --help", "kb --help", lambda i: ([sys.executable, "-m", "kb", "--help"], None))
    add(
        "kb add (stdin body)",
        "echo body | kb add TITLE",
        lambda i: (kb_cmd(root, "add", f"Bench note {next(counter)}"), b"A body from stdin.\n"),
    )
    add(
        "kb edit -a",
        "kb edit NOTE -a TEXT",
        lambda i: (kb_cmd(root, "edit", target, "-a", f"line {next(counter)}"), None),
    )
    add(
        "kb edit (stdin body)",
        "echo body | kb edit NOTE",
        lambda i: (kb_cmd(root, "edit", target), f"# {target}\n\nreplaced {next(counter)}\n".encode()),
    )
    add("kb show", "kb show NOTE", lambda i: (kb_cmd(root, "show", target), None))
    add("kb list", "kb list", lambda i: (kb_cmd(root, "list"), None))
    add("kb tags", "kb tags", lambda i: (kb_cmd(root, "tags"), None))

    def git_commit(i: int) -> tuple[list[str], bytes | None]:
        n = next(counter)
        rel = f"notes/baseline {n}.md"
        (root / rel).write_text(f"---\ntitle: baseline {n}\n---\n\nbody\n")
        script = 'git add -- "$1" && git -c user.name=b -c user.email=b@b commit -q -m "$2"'
        return ["sh", "-c", script, "sh", rel, f"Add: baseline {n}"], None

    add("baseline: git add + git commit", "git add -- one && git commit", git_commit, cwd=root)

    searches = [
        ("rare word", [words["rare"]]),
        ("common word", [words["common"]]),
        ("two words", [words["common"], words["mid"]]),
        ("phrase", [f'"{words["phrase"]}"']),
        ("prefix", [words["prefix"] + "*"]),
        ("field", [f"title:{words['title']}"]),
        ("date range", ["created:[2018-01-01 to 2018-12-31]"]),
    ]
    for label, query in searches:
        add(
            f"kb search, {label}",
            f"kb search {' '.join(query)}",
            lambda i, q=query: (kb_cmd(root, "search", *q), None),
        )
    for label, word in (("rare word", words["rare"]), ("common word", words["common"])):
        add(
            f"baseline: rg, {label}",
            f"rg -l -i {word} notes/",
            lambda i, w=word: (["rg", "-l", "-i", w, "notes/"], None),
            cwd=root,
        )
        add(
            f"baseline: git grep, {label}",
            f"git grep -l -i {word}",
            lambda i, w=word: (["git", "grep", "-l", "-i", w], None),
            cwd=root,
        )
        add(
            f"baseline: grep -r, {label}",
            f"grep -rli {word} notes/",
            lambda i, w=word: (["grep", "-rli", w, "notes/"], None),
            cwd=root,
        )
    figures.extend(freshness(root, args.runs))
    print("  kb reindex ...", file=sys.stderr)
    figures.append(
        measure("kb reindex", "kb reindex", args.reindex_runs, lambda i: (kb_cmd(root, "reindex"), None), env)
    )

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "init_seconds": round(init_seconds, 1),
        "words": words,
        "notes": args.notes,
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "corpus_mib": round(sum(p.stat().st_size for p in (root / "notes").iterdir()) / 2**20, 1),
    }
    (args.out / f"results-{args.notes}.json").write_text(
        json.dumps({"meta": meta, "figures": [asdict(f) for f in figures]}, indent=2) + "\n"
    )
    lines = [
        f"Words queried: {words}; `kb init` (git commit of every note + index build): {init_seconds:.1f} s",
        "",
        f"Notes: {args.notes} ({meta['corpus_mib']} MiB), {args.runs} runs each, {meta['machine']}, "
        f"Python {meta['python']}",
        "",
        "| figure | median ms | min ms | max ms | peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `{cell(f.command)}` | {f.median_ms} | {f.min_ms} | {f.max_ms} | {f.peak_rss_mib} |"
        for f in figures
    ]
    table = "\n".join(lines) + "\n"
    (args.out / f"results-{args.notes}.md").write_text(table)
    print(table)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
