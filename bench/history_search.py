"""Search over every revision, measured beside a plain search and git's own ways of searching history.

    python bench/history_search.py --notes 10000 --revisions 50000 [--words 100 1500] [--runs 5]

Generates N notes (bench/generate.py), makes them a knowledge base (`kb init`: one commit), then adds
commits with `git fast-import` until there are about R revisions of notes in all: each commit rewrites one
line of one random note (a new sentence in place of an old one, so text is removed as well as added) and
its `modified`. Then, in one run, the medians of: `kb search WORD`, `kb search --history WORD`,
`kb search --as-of DATE WORD` (a date in the middle of the history), `git log -S WORD --oneline | wc -l`,
and `git grep -l WORD` over the last C commits (all of them is too long for one command line); the update
of the history index after 1 and after 10 new commits (in-process: `HistoryIndex.ensure_fresh`, which
each `kb search --history` calls first); the first build of the history index (the first
`kb search --history`, the revision cache built before) against `kb reindex`. Writes
bench/results/history-N.md and .json; nothing is asserted.

    python bench/history_search.py --make KB [--notes N --revisions R --words MIN MAX]

makes the knowledge base the full run measures (notes, `kb init`, the commits, the revision cache) in the
folder KB, and stops there. Then:

    python bench/history_search.py --build-on KB [--runs 3]

measures only the first build against `kb reindex` on an existing knowledge base (one made by this script
with `--keep`): the two whole commands alternated, the history index deleted before each build; then
`kb search WORD` against `kb search --history WORD`.

    python bench/history_search.py --updates-on KB [--runs 7]

measures only the index updates after 1 and after 10 new commits, in-process, on an existing knowledge base
whose history index is built (a kept one, `--keep`): run it with PYTHONPATH naming another checkout's
tree to compare two versions of kb on the same repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from generate import generate, vocabulary, zipf_cumulative
from run import Figure, isolated_env, kb_cmd, measure

MODIFIED = re.compile(r"^modified: .*$", re.MULTILINE)


BEFORE = "2023-12-31T00:00:00.000Z"  # the first commit's date: before every commit add_history makes


def add_history(root: Path, commits: int, seed: int = 7) -> tuple[int, str]:
    """`commits` commits on top of HEAD by git fast-import, each rewriting one line of one random note.
    Returns the commit count and the date in the middle of the new commits."""
    rng = random.Random(seed)
    vocab = vocabulary(random.Random(1), 20000)
    weights = zipf_cumulative(len(vocab))
    run = {"cwd": root, "capture_output": True, "text": True, "check": True}
    head = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()  # type: ignore[call-overload]
    branch = subprocess.run(["git", "symbolic-ref", "HEAD"], **run).stdout.strip()  # type: ignore[call-overload]
    names = sorted(p.name for p in (root / "notes").iterdir() if p.suffix == ".md")
    contents: dict[str, str] = {}
    when = datetime(2024, 1, 1, tzinfo=UTC)  # after BEFORE
    middle = ""
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--force"], cwd=root, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for n in range(commits):
        when += timedelta(minutes=7)
        if n == commits // 2:
            middle = when.strftime("%Y-%m-%d")
        name = rng.choice(names)
        text = contents.get(name) or (root / "notes" / name).read_text()
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        text = MODIFIED.sub(f"modified: '{stamp}'", text, count=1)
        lines = text.split("\n")
        body = [i for i, line in enumerate(lines) if len(line.split()) > 8 and line[:1].isalpha()]
        sentence = " ".join(rng.choices(vocab, cum_weights=weights, k=rng.randint(10, 40))).capitalize() + "."
        if body:
            lines[rng.choice(body)] = sentence
        else:
            lines.append(sentence)
        text = "\n".join(lines)
        contents[name] = text
        data = text.encode()
        message = f"Edit: {name[:-3]}".encode()
        seconds = int(when.timestamp())
        parent = f"from {head}\n" if n == 0 else f"from :{n}\n"
        proc.stdin.write(
            f"commit {branch}\nmark :{n + 1}\nauthor kb <kb@localhost> {seconds} +0000\n"
            f"committer kb <kb@localhost> {seconds} +0000\ndata {len(message)}\n".encode()
            + message
            + f'\n{parent}M 100644 inline "notes/{name}"\ndata {len(data)}\n'.encode()
            + data
            + b"\n"
        )
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=root, check=True)
    count = subprocess.run(["git", "rev-list", "--count", "HEAD"], **run).stdout  # type: ignore[call-overload]
    return int(count.strip()), middle


def pick_word(root: Path) -> str:
    """A word of a few dozen notes now: rare enough to be a real search, common enough to have history."""
    counts: dict[str, int] = {}
    for path in sorted((root / "notes").iterdir())[:2000]:
        for word in set(re.findall(r"[a-z]{6,}", path.read_text().lower())):
            counts[word] = counts.get(word, 0) + 1
    return min(counts, key=lambda w: (abs(counts[w] - 10), w))


def commit_edit(root: Path, env: dict[str, str], n: int) -> None:
    """One commit made by git itself: a line added to a note."""
    note = sorted((root / "notes").iterdir())[n % 50]
    with note.open("a") as f:
        f.write(f"\nan edit outside kb, number {n}\n")
    subprocess.run(["git", "commit", "-q", "-am", f"outside {n}"], cwd=root, env=env, check=True)


def in_process_update(root: Path, env: dict[str, str], commits: int, runs: int) -> list[float]:
    """Milliseconds HistoryIndex.ensure_fresh takes after `commits` new commits, `runs` times."""
    os.environ.update(env)
    from kb.history import History
    from kb.index.history import HistoryIndex

    times = []
    for r in range(runs):
        for k in range(commits):
            commit_edit(root, env, r * commits + k + 1000 * commits)
        index = HistoryIndex(root, History(root))
        start = time.perf_counter()
        update = index.ensure_fresh()
        times.append((time.perf_counter() - start) * 1000)
        assert update.commits == commits and not update.rebuilt, update
    return times


def make_only(root: Path, notes: int, revisions: int, words: tuple[int, int]) -> None:
    env = isolated_env(root.parent)
    env.update({"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"})
    env.update({"GIT_COMMITTER_EMAIL": "b@x"})
    generate(root, notes, words[0], words[1])
    # the first commit (every generated note) dated before the history add_history adds (from 2024-01-01)
    subprocess.run(kb_cmd(root, "init"), check=True, capture_output=True, env={**env, "KB_NOW": BEFORE})
    commits, _ = add_history(root, max(0, revisions - notes))
    subprocess.run(kb_cmd(root, "log", "-n", "1"), check=True, capture_output=True, env=env)
    print(f"{root}: {notes} notes, {commits} commits", file=sys.stderr)


def build_only(root: Path, runs: int) -> None:
    env = isolated_env(root.parent)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    word = pick_word(root)
    builds: list[float] = []
    reindexes: list[float] = []
    for run in range(runs):
        shutil.rmtree(root / "index" / "history", ignore_errors=True)
        for name, argv, times in (
            ("kb reindex", kb_cmd(root, "reindex"), reindexes),
            ("first kb search --history", kb_cmd(root, "search", "--history", word), builds),
        ):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - start)
            print(f"run {run + 1}: {name}: {times[-1]:.1f} s", file=sys.stderr)
    plain = measure(
        "kb search WORD", "", runs * 3, lambda i: (kb_cmd(root, "search", word), None), env, root, True
    )
    history = measure(
        "kb search --history WORD", "", runs * 3, lambda i: (kb_cmd(root, "search", "--history", word), None),
        env, root, True,
    )  # fmt: skip
    build, reindex = statistics.median(builds), statistics.median(reindexes)
    ratios = ", ".join(f"{b / r:.2f}" for b, r in zip(builds, reindexes, strict=True))
    print(
        f"first build (the first kb search --history {word}): median {build:.1f} s"
        f" ({', '.join(f'{b:.1f}' for b in builds)})\n"
        f"kb reindex: median {reindex:.1f} s ({', '.join(f'{r:.1f}' for r in reindexes)})\n"
        f"build / reindex: {build / reindex:.2f}x (each run: {ratios}; target < 2x)\n"
        f"kb search {word}: {plain.median_ms} ms; kb search --history {word}: {history.median_ms} ms"
        f" ({history.median_ms / plain.median_ms:.2f}x; target <= 2x)"
    )


def updates_only(root: Path, runs: int) -> None:
    env = dict(os.environ)
    env.update({"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"})
    env.update({"GIT_COMMITTER_EMAIL": "b@x"})
    # PYTHONPATH goes before this checkout (put first on sys.path above): it names the kb to measure
    sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    import kb

    for commits in (1, 10):
        times = in_process_update(root, env, commits, runs)
        print(
            f"{Path(kb.__file__).parent}: update after {commits} new commit(s): median"
            f" {statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f}, {runs} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10000)
    parser.add_argument("--revisions", type=int, default=50000, help="revisions of notes in all (about)")
    parser.add_argument("--words", type=int, nargs=2, default=(100, 1500), metavar=("MIN", "MAX"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--grep-commits", type=int, default=200, help="commits git grep searches")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--updates-on", type=Path, metavar="KB", help="only the updates, on this kb")
    parser.add_argument("--build-on", type=Path, metavar="KB", help="only the first build, on this kb")
    parser.add_argument("--make", type=Path, metavar="KB", help="only make the knowledge base, here")
    args = parser.parse_args()
    if args.make is not None:
        make_only(args.make, args.notes, args.revisions, tuple(args.words))
        return
    if args.build_on is not None:
        build_only(args.build_on, args.runs)
        return
    if args.updates_on is not None:
        updates_only(args.updates_on, args.runs)
        return

    work = Path(tempfile.mkdtemp(prefix="kb-bench-history-"))
    root = work / "kb"
    env = isolated_env(work)
    env.update({"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"})
    env.update({"GIT_COMMITTER_EMAIL": "b@x"})
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: kb's modules compiled once, not on every run
    log: dict[str, float | int | str] = {}
    step = time.perf_counter()
    print(f"generating {args.notes} notes in {root} ...", file=sys.stderr)
    generate(root, args.notes, args.words[0], args.words[1])
    # the first commit (every generated note) dated before the history add_history adds (from 2024-01-01)
    subprocess.run(kb_cmd(root, "init"), check=True, capture_output=True, env={**env, "KB_NOW": BEFORE})
    log["init_s"] = round(time.perf_counter() - step, 1)
    step = time.perf_counter()
    extra = max(0, args.revisions - args.notes)
    print(f"adding {extra} commits with git fast-import ...", file=sys.stderr)
    commits, middle = add_history(root, extra)
    log["fast_import_s"] = round(time.perf_counter() - step, 1)
    word = pick_word(root)
    print(f"word {word!r}, {commits} commits, as-of {middle}", file=sys.stderr)

    # The revision cache first (kb log builds it too), so that the first build below is the index's own.
    os.environ.update(env)
    from kb.history import History

    step = time.perf_counter()
    History(root).revision_cache().bring_up_to(History(root).head() or "")
    log["revision_cache_s"] = round(time.perf_counter() - step, 1)
    figures: list[Figure] = []

    def add(name: str, shown: str, argv: list[str], runs: int = args.runs, warm: bool = True) -> None:
        print(f"  {name} ...", file=sys.stderr)
        figures.append(measure(name, shown, runs, lambda i: (argv, None), env, root, warm))

    add("first kb search --history (build)", f"kb search --history {word}",
        kb_cmd(root, "search", "--history", word), runs=1, warm=False)  # fmt: skip
    add("kb reindex", "kb reindex", kb_cmd(root, "reindex"), runs=1, warm=False)
    blobs = int(
        subprocess.run(
            [sys.executable, "-c", "import sys; from whoosh import index; "
             "print(index.open_dir(sys.argv[1]).doc_count())", str(root / "index" / "history")],
            capture_output=True, text=True, env=env,
        ).stdout.strip() or 0
    )  # fmt: skip
    add("kb search WORD", f"kb search {word}", kb_cmd(root, "search", word))
    add("kb search --history WORD", f"kb search --history {word}", kb_cmd(root, "search", "--history", word))
    add("kb search --as-of DATE WORD", f"kb search --as-of {middle} {word}",
        kb_cmd(root, "search", "--as-of", middle, word))  # fmt: skip
    add("git log -S WORD", f"git log -S {word} --oneline | wc -l",
        ["sh", "-c", f"git log -S {word} --oneline | wc -l"])  # fmt: skip
    grep = f"git grep -l {word} $(git rev-list -n {args.grep_commits} HEAD)"
    add(f"git grep over {args.grep_commits} commits", grep, ["sh", "-c", f"{grep} | wc -l"])

    updates = {k: in_process_update(root, env, k, args.runs) for k in (1, 10)}
    update_ms = {k: round(statistics.median(v), 1) for k, v in updates.items()}

    by_name = {f.name: f for f in figures}
    plain = by_name["kb search WORD"].median_ms
    history = by_name["kb search --history WORD"].median_ms
    reindex = by_name["kb reindex"].median_ms
    first = by_name["first kb search --history (build)"].median_ms
    lines = [
        f"# History search: {args.notes:,} notes, {commits:,} commits",
        "",
        f"Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"notes of {args.words[0]}-{args.words[1]} words; "
        f"{blobs:,} distinct note versions indexed; word `{word}`; as-of {middle}.",
        f"Set-up: kb init {log['init_s']} s, git fast-import {log['fast_import_s']} s, revision cache "
        f"{log['revision_cache_s']} s (built before the first search, as any kb log would).",
        "",
        "| figure | command | median ms | min | max | peak RSS MiB | runs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        cmd = f.command.replace("|", "\\|")
        spread = f"{f.min_ms:,} | {f.max_ms:,}"
        lines.append(f"| {f.name} | `{cmd}` | {f.median_ms:,} | {spread} | {f.peak_rss_mib} | {f.runs} |")
    lines += [
        f"| update after 1 new commit | `HistoryIndex.ensure_fresh()` | {update_ms[1]} | "
        f"{min(updates[1]):.1f} | {max(updates[1]):.1f} | | {args.runs} |",
        f"| update after 10 new commits | `HistoryIndex.ensure_fresh()` | {update_ms[10]} | "
        f"{min(updates[10]):.1f} | {max(updates[10]):.1f} | | {args.runs} |",
        "",
        f"- search --history / plain search: {history / plain:.2f}× (target ≤ 2×)",
        f"- update per new commit: {update_ms[1]} ms after 1, {update_ms[10] / 10:.1f} ms each after 10 "
        "(target < 50 ms)",
        f"- first build (the first kb search --history) / kb reindex: {first / reindex:.2f}× (target < 2×)",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"history-{args.notes}.md").write_text(text)
    data = {
        "notes": args.notes, "commits": commits, "blobs": blobs, "word": word, "as_of": middle, "setup": log,
"update_ms": updates, "figures": [f.__dict__ for f in figures],
    }  # fmt: skip
    (args.out / f"history-{args.notes}.json").write_text(json.dumps(data, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {root}", file=sys.stderr)


if __name__ == "__main__":
    main()
