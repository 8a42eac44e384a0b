"""Whole-process timings of kb commands on a generated corpus, with baselines measured in the same run.

    python bench/run.py --notes 1000|10000|100000 [--runs 5] [--out bench/results]

Generates N notes (bench/generate.py), makes them a knowledge base, then times each command as a user runs
it (a new process each time, without the warm server: KB_SERVER=0; bench/warm.py measures the server)
and reports the median, min and max wall time and the peak RSS of the child:
--help, add, edit, show, list, tags, seven kinds of search, the freshness check after 0, 1 and 100
outside edits, log/diff/show --rev on a note with 200 revisions after 5,000 more commits (made with
git fast-import), reindex, and the import of the whole corpus into an empty knowledge base. Baselines
(rg, git grep, grep, git add + commit, git log) run in the same run on the same files; kb's figures are
also given as ratios to them. Writes a Markdown table and a JSON file. Nothing here is asserted: the
figures are for BENCHMARKS.md. A baseline tool that is not installed is left out (its row says so).
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

    @classmethod
    def of(cls, name: str, command: str, ms: list[float], peaks_mib: list[float] | None = None) -> Figure:
        """The figure of these runs' wall times in ms (median, min, max) and their highest peak RSS."""
        peak = max(peaks_mib) if peaks_mib else 0.0
        return cls(
            name,
            command,
            round(statistics.median(ms), 1),
            round(min(ms), 1),
            round(max(ms), 1),
            round(peak, 1),
            len(ms),
        )


def cell(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|")


def kb_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kb", "--kb", str(root), *args]


def timed(
    argv: list[str],
    stdin: bytes | None,
    env: dict[str, str],
    cwd: Path | None = None,
    ok: tuple[int, ...] = (0,),
) -> tuple[float, float]:
    found = program(argv[0])
    if found is None:
        raise Missing(argv[0])
    return _timed([found, *argv[1:]], stdin, env, cwd, ok)


def program(name: str) -> str | None:
    """A program on PATH, or beside this interpreter (where `pip install -e '.[bench]'` puts `rg`)."""
    found = shutil.which(name)
    if found is None and "/" not in name:
        beside = Path(sys.executable).parent / name
        found = str(beside) if os.access(beside, os.X_OK) and beside.is_file() else None
    return found


def isolated_env(work: Path) -> dict[str, str]:
    """This environment with `work` as $HOME, no git configuration of the machine's or the user's, and
    the real clock (no KB_NOW)."""
    env = dict(os.environ)
    env.update(
        {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(work / "no-gitconfig"), "HOME": str(work)}
    )
    env.pop("KB_NOW", None)
    return env


class Missing(Exception):
    """A baseline tool that is not installed."""


def _timed(
    argv: list[str],
    stdin: bytes | None,
    env: dict[str, str],
    cwd: Path | None = None,
    ok: tuple[int, ...] = (0,),
) -> tuple[float, float]:
    """Wall seconds and the command's own peak RSS in MiB for one run.

    Linux counts a child's peak RSS from before its exec, so a child of this (large) process would
    report at least this process's size. GNU time, a small process, runs the command as its own
    child and reports the command's true peak; without it the figures are upper bounds."""
    report = None
    if GNU_TIME:
        fd, report = tempfile.mkstemp(prefix="kb-bench-rss-")
        os.close(fd)
        argv = [GNU_TIME, "-q", "-f", "%M", "-o", report, *argv]
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
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode()[-500:]}")
    peak_kib = float(usage.ru_maxrss)
    if report is not None:
        text = Path(report).read_text().strip().splitlines()
        os.unlink(report)
        peak_kib = float(text[-1]) if text and text[-1].isdigit() else peak_kib
    return elapsed, peak_kib / 1024


def _gnu_time() -> str | None:
    path = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if path is None:
        return None
    probe = subprocess.run([path, "-q", "-f", "%M", "true"], capture_output=True, text=True)
    return path if probe.returncode == 0 and probe.stderr.strip().isdigit() else None


GNU_TIME = _gnu_time()


def ratios(figures: list[Figure]) -> list[str]:
    """kb's figures against the baselines of the same run."""
    by_name = {f.name: f for f in figures if f.runs}
    pairs = [
        ("kb search, rare word", ["baseline: rg, rare word", "baseline: git grep, rare word",
                                  "baseline: grep -r, rare word"]),
        ("kb search, common word", ["baseline: rg, common word", "baseline: git grep, common word",
                                    "baseline: grep -r, common word"]),
        ("kb add (stdin body)", ["baseline: git add + git commit"]),
        ("kb edit -a", ["baseline: git add + git commit"]),
        ("kb log (200 revisions)", ["baseline: git log -- path"]),
    ]  # fmt: skip
    out = []
    for name, bases in pairs:
        if name not in by_name:
            continue
        kb = by_name[name].median_ms
        parts = [
            f"{kb / by_name[b].median_ms:.3g}× {by_name[b].command.split(' -')[0].split(' ')[0]}"
            for b in bases
            if b in by_name and by_name[b].median_ms
        ]
        if parts:
            out.append(f"`{by_name[name].command}` ({kb} ms): " + ", ".join(parts))
    return out


def build_history(root: Path, target: str, commits: int, revisions: int) -> int:
    """`commits` more commits on top of HEAD, made with git fast-import: edits of random notes, and
    `revisions - 1` of them edits of the note `target` (which then has at least `revisions` revisions).
    Each edit changes a line and `modified`. Returns the repository's commit count."""
    import random
    import re
    from datetime import UTC, datetime, timedelta

    rng = random.Random(5)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
    branch = subprocess.run(
        ["git", "symbolic-ref", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    names = sorted(p.name for p in (root / "notes").iterdir() if p.suffix == ".md")
    target_name = f"{target}.md"
    edits_of_target = set(rng.sample(range(commits), min(commits, revisions - 1)))
    contents: dict[str, str] = {}
    when = datetime(2025, 1, 1, tzinfo=UTC)
    stream: list[bytes] = []
    modified = re.compile(r"^modified: .*$", re.MULTILINE)
    for n in range(commits):
        when += timedelta(minutes=7)
        name = target_name if n in edits_of_target else rng.choice(names)
        text = contents.get(name) or (root / "notes" / name).read_text()
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        text = modified.sub(f"modified: '{stamp}'", text, count=1) + f"\nedited in commit {n}\n"
        contents[name] = text
        data = text.encode()
        message = f"Edit: {name[:-3]}".encode()
        seconds = int(when.timestamp())
        stream.append(f"commit {branch}\nmark :{n + 1}\n".encode())
        stream.append(f"author kb <kb@localhost> {seconds} +0000\n".encode())
        stream.append(f"committer kb <kb@localhost> {seconds} +0000\n".encode())
        stream.append(f"data {len(message)}\n".encode() + message + b"\n")
        stream.append(f"from {head.stdout.strip()}\n".encode() if n == 0 else f"from :{n}\n".encode())
        stream.append(f'M 100644 inline "notes/{name}"\n'.encode())
        stream.append(f"data {len(data)}\n".encode() + data + b"\n")
    subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=root, input=b"".join(stream), check=True)
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=root, check=True)
    count = subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=root, capture_output=True, text=True)
    return int(count.stdout.strip())


def measure(
    name: str,
    shown: str,
    runs: int,
    make: Callable[[int], tuple[list[str], bytes | None]],
    env: dict[str, str],
    cwd: Path | None = None,
    warm: bool = True,
) -> Figure:
    times, rss = [], []
    if warm:
        argv, stdin = make(-1)  # one unmeasured run warms the page cache
        try:
            timed(argv, stdin, env, cwd)
        except Missing:
            return Figure(name, shown, 0.0, 0.0, 0.0, 0.0, 0)
    for i in range(runs):
        argv, stdin = make(i)
        seconds, peak = timed(argv, stdin, env, cwd)
        times.append(seconds * 1000)
        rss.append(peak)
    return Figure.of(name, shown, times, rss)


def pick_words(root: Path) -> dict[str, str]:
    """Query words chosen from the corpus itself: the most common word, one in about 1% of notes, one in
    a handful of notes, an adjacent pair for a phrase, a prefix and a title word."""
    import collections
    import re

    word = re.compile(r"[a-z]+")
    df: collections.Counter[str] = collections.Counter()
    files = sorted((root / "notes").iterdir())
    sentence = ""
    for path in files:
        text = path.read_text()
        body = text.split("---\n", 2)[-1]
        if not sentence:  # the first line of 9+ words (notes added by an earlier run are shorter)
            long = (line for line in body.splitlines() if len(line.split()) > 8 and line[0].isalpha())
            sentence = next(long, "")
        df.update(set(word.findall(body.lower())))
    n = len(files)
    by_df = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
    common = by_df[0][0]
    mid = min(by_df, key=lambda kv: (abs(kv[1] - max(2, n // 100)), kv[0]))[0]
    rare = min((kv for kv in by_df if len(kv[0]) > 5), key=lambda kv: (abs(kv[1] - 3), kv[0]))[0]
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
        figures.append(Figure.of(f"freshness check, {label}", f"freshness check ({label})", times))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--keep", action="store_true", help="keep the generated knowledge base")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="measure this knowledge base (bench/generate.py's notes after kb init) instead of making "
        "a new one; the run changes it",
    )
    parser.add_argument("--reindex-runs", type=int, default=3)
    parser.add_argument("--import-runs", type=int, default=3)
    parser.add_argument("--commits", type=int, default=5000, help="commits added for the history figures")
    parser.add_argument(
        "--revisions", type=int, default=200, help="revisions of the note whose history is read"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    root = work / "kb"
    env = isolated_env(work)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: kb's modules compiled once, not on every run
    env["KB_SERVER"] = "0"  # every command cold, as these figures always were (bench/warm.py: the server)
    if args.reuse:
        root = args.reuse.resolve()
        titles = sorted(p.stem for p in (root / "notes").iterdir() if p.suffix == ".md")
        init_seconds = 0.0
    else:
        print(f"generating {args.notes} notes in {root} ...", file=sys.stderr)
        titles = generate(root, args.notes)
        start = time.perf_counter()
        subprocess.run(kb_cmd(root, "init"), check=True, capture_output=True, env=env)
        init_seconds = time.perf_counter() - start
    target = titles[len(titles) // 2]
    words = pick_words(root)
    figures: list[Figure] = []
    counter = iter(range(10**9))
    run_tag = format(int(time.time()), "x")  # new names even in a reused knowledge base

    def add(
        name: str, shown: str, make: Callable[[int], tuple[list[str], bytes | None]], cwd: Path | None = None
    ):
        print(f"  {name} ...", file=sys.stderr)
        figures.append(measure(name, shown, args.runs, make, env, cwd))

    add("kb --help", "kb --help", lambda i: ([sys.executable, "-m", "kb", "--help"], None))
    add(
        "kb add (stdin body)",
        "echo body | kb add TITLE",
        lambda i: (kb_cmd(root, "add", f"Bench note {run_tag} {next(counter)}"), b"A body from stdin.\n"),
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
        rel = f"notes/baseline {run_tag} {n}.md"
        (root / rel).write_text(f"---\ntitle: baseline {run_tag} {n}\n---\n\nbody\n")
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

    print(f"  history: {args.commits} commits, {args.revisions} revisions of one note ...", file=sys.stderr)
    commits = build_history(root, target, args.commits, args.revisions)
    # the notes edited by those commits are indexed by the next search, as after a sync
    subprocess.run(kb_cmd(root, "search", words["rare"]), capture_output=True, env=env)
    print(
        "  kb log, first run after the new commits (brings the revision cache up to date) ...",
        file=sys.stderr,
    )
    figures.append(
        measure(
            "kb log, first run after the history was written",
            f"kb log NOTE (first, {args.commits} new commits)",
            1,
            lambda i: (kb_cmd(root, "log", target), None),
            env,
            warm=False,
        )
    )
    add("kb log (200 revisions)", "kb log NOTE", lambda i: (kb_cmd(root, "log", target), None))
    add("kb diff (previous vs current)", "kb diff NOTE", lambda i: (kb_cmd(root, "diff", target), None))
    add(
        "kb diff (first vs last)",
        f"kb diff NOTE 1 {args.revisions}",
        lambda i: (kb_cmd(root, "diff", target, "1", str(args.revisions), "--no-color"), None),
    )
    add(
        "kb show --rev (middle revision)",
        f"kb show NOTE --rev {args.revisions // 2}",
        lambda i: (kb_cmd(root, "show", target, "--rev", str(args.revisions // 2)), None),
    )
    add(
        "baseline: git log -- path",
        "git log -- path",
        lambda i: (["git", "log", "--", f"notes/{target}.md"], None),
        cwd=root,
    )

    if args.reindex_runs:
        print("  kb reindex ...", file=sys.stderr)
        figures.append(
            measure(
                "kb reindex",
                "kb reindex",
                args.reindex_runs,
                lambda i: (kb_cmd(root, "reindex"), None),
                env,
                warm=False,
            )
        )
    if args.import_runs:
        print("  kb import (the whole corpus into an empty knowledge base) ...", file=sys.stderr)
        corpus = work / "corpus"
        generate(corpus, args.notes)

        def import_run(i: int) -> tuple[list[str], bytes | None]:
            target_kb = work / f"imported-{i}"
            shutil.rmtree(target_kb, ignore_errors=True)
            subprocess.run(kb_cmd(target_kb, "init"), check=True, capture_output=True, env=env)
            return kb_cmd(target_kb, "import", str(corpus / "notes")), None

        figures.append(
            measure(
                "kb import", "kb import FOLDER (all notes)", args.import_runs, import_run, env, warm=False
            )
        )

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "history_commits": commits,
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
        f"Words queried: {words}; `kb init` (git commit of every note + index build): "
        + (f"{init_seconds:.1f} s" if not args.reuse else "not measured (an earlier one was reused)"),
        "",
        f"Notes: {args.notes} ({meta['corpus_mib']} MiB), {args.runs} runs each, {meta['machine']}, "
        f"Python {meta['python']}",
        "",
        "| figure | median ms | min ms | max ms | peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `{cell(f.command)}` | {f.median_ms} | {f.min_ms} | {f.max_ms} | {f.peak_rss_mib} |"
        if f.runs
        else f"| `{cell(f.command)}` | not installed | | | |"
        for f in figures
    ]
    lines += ["", "Ratios of medians, measured side by side in this run:", ""]
    lines += [f"- {line}" for line in ratios(figures)]
    table = "\n".join(lines) + "\n"
    (args.out / f"results-{args.notes}.md").write_text(table)
    print(table)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
