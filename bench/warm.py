"""The warm server against the cold path, side by side in one run:

    python bench/warm.py --notes 10000 [--runs 10] [--pause 0.3] [--reuse KB] [--out bench/results]

Makes N notes (bench/generate.py) a knowledge base (or measures `--reuse KB`), then times whole processes as
a user runs them (the `kb` program next to this interpreter, the thin client): `kb search WORD` cold
(KB_SERVER=0) and warm, `rg -l -i WORD` on the same notes, and warm searches of a rare word, a common word,
a phrase, a prefix and a word no note has, `kb list` (piped, and on a pseudo-terminal through `cat` as
its pager, warm and cold), `kb show NOTE`, `kb log NOTE` (a note of LOGGED revisions), `kb tags`, `kb add`
and `kb edit -a`; the server's resident memory when idle; and an outside edit (a new word appended to a
note in place) followed at once by `kb search` of that word, which must find it. Each warm figure is
measured twice: with `--pause` seconds between runs (a person's pace: the server's spare worker is ready
when the command comes) and back to back. Bytecode caching is on (PYTHONDONTWRITEBYTECODE is removed), as
on a user's machine. Prints a Markdown table with the targets and writes warm-N.json (N: --notes, or the
notes of the reused knowledge base to the nearest power of ten). Nothing is asserted but that every
command succeeds.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from run import Figure, Missing, timed

from kb.index import NoteIndex

TARGETS = {
    "kb search WORD (warm)": "≤ 25 ms and ≤ 0.5× rg",
    "kb search RARE (warm)": "≤ 25 ms",
    "kb search WORD (cold, KB_SERVER=0)": "≤ 100 ms",
    "kb list (warm)": "≤ 25 ms",
    "kb show NOTE (warm)": "≤ 25 ms",
    "kb log NOTE (warm)": "≤ 25 ms",
    "kb tags (warm)": "≤ 25 ms",
    "kb add (warm)": "≤ 60 ms",
    "kb edit -a (warm)": "≤ 60 ms",
}


def kb_program() -> list[str]:
    script = Path(sys.executable).parent / "kb"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from kb.client import main; main()"]


_RUN = itertools.count()  # "{i}" in a command: a new number each run (titles of added notes)
LOGGED = 10  # revisions of the note `kb log NOTE` shows


def measure(
    name: str, shown: str, argv: list[str], env: dict[str, str], runs: int, pause: float = 0.0
) -> Figure:
    """Median of `runs` runs of argv, `pause` seconds apart; "{i}" in an argument is a new number each run."""
    ok = (0, 1) if "NOMATCH" in name else (0,)  # "no notes match" exits 1
    timed([a.replace("{i}", str(next(_RUN))) for a in argv], None, env, ok=ok)  # untimed: caches, first look
    walls, peaks = [], []
    for _ in range(runs):
        time.sleep(pause)
        wall, peak = timed([a.replace("{i}", str(next(_RUN))) for a in argv], None, env, ok=ok)
        walls.append(wall * 1000)
        peaks.append(peak)
    return Figure.of(name, shown, walls, peaks)


def on_terminal(
    name: str, shown: str, argv: list[str], env: dict[str, str], runs: int, pause: float
) -> Figure:
    """Median of `runs` runs of argv on a pseudo-terminal of 40 rows of 120 columns, its output read as a
    terminal would take it, through `cat` as kb's pager (the output is taller than the terminal)."""
    import fcntl
    import pty
    import struct
    import termios

    env = {**env, "KB_PAGER": "cat", "TERM": "xterm-256color"}
    walls = []
    for n in range(runs + 1):  # the first one untimed
        time.sleep(pause)
        main, side = pty.openpty()
        fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=side, stdout=side, stderr=side, env=env, start_new_session=True)
        os.close(side)
        while True:
            try:
                if not os.read(main, 1 << 16):
                    break
            except OSError:  # EIO: every copy of the terminal's other end is closed
                break
        code = proc.wait()
        wall = (time.perf_counter() - start) * 1000
        os.close(main)
        if code != 0:
            raise SystemExit(f"{shown} failed on a terminal: exit status {code}")
        if n:
            walls.append(wall)
    return Figure.of(name, shown, walls, [0.0] * len(walls))


MADE_BY_BENCHMARKS = ("Bench ", "AB ")  # notes that runs of this script and of bench/warm_ab.py add


def corpus_notes(notes: Path) -> list[Path]:
    """The notes of the corpus, sorted: not those earlier benchmark runs added."""
    return [p for p in sorted(notes.iterdir()) if not p.name.startswith(MADE_BY_BENCHMARKS)]


def word_of(notes: Path) -> str:
    """A word of the corpus that some notes have: the longest word of the first note's body."""
    first = corpus_notes(notes)[0].read_text(encoding="utf-8")
    body = first.split("---", 2)[-1]
    words = [w for w in body.split() if w.isalpha()]
    return max(words, key=len).lower()


def phrase_of(note: Path) -> tuple[str, str]:
    """Two words that follow each other in the note's body (a phrase it has), neither a stop word."""
    from whoosh.analysis import STOP_WORDS

    words = [w.lower() for w in note.read_text(encoding="utf-8").split("---", 2)[-1].split()]
    for a, b in itertools.pairwise(words):
        if a.isalpha() and b.isalpha() and len(a) > 2 and len(b) > 2 and not {a, b} & STOP_WORDS:
            return a, b
    raise SystemExit(f"no phrase of two words in {note}: choose a note with text")


def rare_word_of(root: Path, note: Path, avoid: str | None) -> str:
    """The word of `note` that the fewest notes (at least 2) have, other than `avoid` (the word the server's
    spare worker rehearses with: a figure for it would flatter)."""
    from whoosh import index

    words = {w.lower() for w in note.read_text(encoding="utf-8").split("---", 2)[-1].split() if w.isalpha()}
    ix = index.open_dir(str(root / "index"))
    with ix.searcher() as searcher:
        reader = searcher.reader()
        counts = [(reader.doc_frequency("body", w), w) for w in sorted(words) if w != avoid and len(w) > 3]
    found = sorted((n, w) for n, w in counts if n >= 2)
    if not found:
        raise SystemExit(f"no word of {note} is in two notes")
    return found[0][1]


def server_rss(status: str) -> tuple[float, float, float]:
    """The server's resident memory, its spare worker's, and the spare's own (private) part, in MiB: the
    spare is a forked copy, most of its pages shared with the server."""
    server = spare = private = float("nan")
    for line in status.splitlines():
        if line.startswith("pid:"):
            server = _vm(line.split(":", 1)[1].strip(), "VmRSS:")
        elif line.startswith("spare:") and "pid" in line:
            pid = line.split("pid", 1)[1].split(",")[0].strip()
            spare = _vm(pid, "VmRSS:")
            private = _private(pid)
    return server, spare, private


def _vm(pid: str, key: str) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(key):
            return int(row.split()[1]) / 1024
    return float("nan")


def _private(pid: str) -> float:
    total = 0
    for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if row.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(row.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--pause", type=float, default=0.3, help="seconds between warm runs (a person's pace)"
    )
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
        made = corpus_notes(notes)
        note = max(made[:20], key=lambda p: p.stat().st_size)  # one with text
        title = note.stem
        base = [*kb, "--kb", str(root)]
        figures = [
            measure("kb search WORD (cold, KB_SERVER=0)", f"kb search {word}", [*base, "search", word],
                    cold_env, args.runs),
        ]  # fmt: skip
        subprocess.run([*base, "server", "start"], env=env, check=True, capture_output=True, timeout=120)
        other = max(made[20:40] or made, key=lambda p: p.stat().st_size)  # not the note kb edit -a changes
        rare = rare_word_of(root, other, avoid=NoteIndex(root).rare_word())
        # `kb log NOTE` of a note with LOGGED revisions (made here, cold, when it has fewer): not the note the
        # edits below change, whose history grows with every run on a reused knowledge base.
        logged = other.stem
        rel = other.relative_to(root).as_posix()
        count = subprocess.run(
            ["git", "-C", str(root), "rev-list", "--count", "HEAD", "--", rel], capture_output=True, text=True
        ).stdout.strip()
        for i in range(int(count or 0), LOGGED):
            edit = [*base, "edit", logged, "-a", f"Line {i} of its history."]
            subprocess.run(edit, env=cold_env, check=True, capture_output=True)
        first, second = phrase_of(note)
        stamp = f"{os.getpid()}"
        warm = [
            ("kb search WORD (warm)", f"kb search {word}", ["search", word]),
            ("kb search RARE (warm)", f"kb search {rare}", ["search", rare]),
            ("kb search COMMON (warm)", f"kb search {first}", ["search", first]),
            (
                "kb search PHRASE (warm)",
                f"kb search '\"{first} {second}\"'",
                ["search", f'"{first} {second}"'],
            ),
            ("kb search PREFIX* (warm)", f"kb search {first[:3]}*", ["search", f"{first[:3]}*"]),
            ("kb search NOMATCH (warm)", "kb search zzqxnothing", ["search", "zzqxnothing"]),
            ("kb list (warm)", "kb list", ["list"]),
            ("kb show NOTE (warm)", f"kb show '{title}'", ["show", title]),
            ("kb log NOTE (warm)", f"kb log '{logged}'", ["log", logged]),
            ("kb tags (warm)", "kb tags", ["tags"]),
            ("kb add (warm)", "kb add TITLE -b TEXT", ["add", f"Bench {stamp} {{i}}", "-b", "A new note."]),
            ("kb edit -a (warm)", "kb edit NOTE -a TEXT", ["edit", title, "-a", "Another line {i}."]),
        ]
        for name, shown, rest, where in (
            ("kb list on a terminal (warm)", "kb list", ["list"], env),
            ("kb list on a terminal (cold, KB_SERVER=0)", "kb list", ["list"], cold_env),
        ):
            figures.append(on_terminal(name, shown, [*base, *rest], where, args.runs, args.pause))
        for name, shown, rest in warm:
            figures.append(measure(name, shown, [*base, *rest], env, args.runs, args.pause))
            again = measure(name, shown, [*base, *rest], env, args.runs)
            again.name = name.replace("(warm)", "(warm, back to back)")
            figures.append(again)
        # Writes 2 s apart: time for the server's own git status after the one before (a few hundred ms at
        # 100k), so that each is made on its word (no git status, no walk under the lock).
        for name, shown, rest in warm[-2:]:
            slow = measure(name, shown, [*base, *rest], env, args.runs, max(args.pause, 2.0))
            slow.name = name.replace("(warm)", "(warm, 2 s apart)")
            figures.append(slow)
        cold_writes = [
            (
                "kb add (cold)",
                "kb add TITLE -b TEXT",
                ["add", f"Bench cold {stamp} {{i}}", "-b", "A new note."],
            ),
            ("kb edit -a (cold)", "kb edit NOTE -a TEXT", ["edit", title, "-a", "Another cold line {i}."]),
        ]
        for name, shown, rest in cold_writes:
            figures.append(measure(name, shown, [*base, *rest], cold_env, args.runs, args.pause))
        with contextlib.suppress(Missing):
            rg = ["rg", "-l", "-i", word, str(notes)]
            figures.append(measure("rg -l -i WORD", f"rg -l -i {word} notes/", rg, env, args.runs))
        # After the cold writes: one warm command (the server catches up, then forks a spare), then idle.
        subprocess.run([*base, "search", word], env=env, capture_output=True)
        time.sleep(2.0)
        status = subprocess.run([*base, "server", "status"], env=env, capture_output=True, text=True).stdout
        rss = server_rss(status)
        # the warm writes the server vouched for (writes of the same server only: it ran since the start)
        key = "writes on the server's word (no git status, no walk):"
        word = next((line[len(key) :].strip() for line in status.splitlines() if line.startswith(key)), "?")
        key = "commits whose trees came from the images kept:"
        imaged = next((line[len(key) :].strip() for line in status.splitlines() if line.startswith(key)), "?")
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
        figures.append(Figure.of("outside edit, then kb search (warm)", "kb search NEWWORD", edits))
        subprocess.run([*base, "server", "stop"], env=env, capture_output=True, timeout=60)
    finally:
        if not args.reuse:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(runtime, ignore_errors=True)

    by = {fig.name: fig for fig in figures}
    # --reuse: the notes the knowledge base holds, not --notes (its default)
    count = sum(1 for p in notes.rglob("*.md")) if args.reuse else args.notes
    print(f"# Warm server at {count} notes ({args.runs} runs each; medians, min-max)\n")
    print("| figure | command | median ms | min-max ms | peak RSS MiB | target |")
    print("|---|---|---:|---:|---:|---|")
    for fig in figures:
        print(
            f"| {fig.name} | `{fig.command}` | {fig.median_ms} | {fig.min_ms}-{fig.max_ms} | "
            f"{fig.peak_rss_mib} | {TARGETS.get(fig.name, '')} |"
        )
    print(f"| server RSS when idle | | | | {rss[0]:.1f} | ≤ 60 MB |")
    print(f"| its spare worker's RSS (private part) | | | | {rss[1]:.1f} ({rss[2]:.1f}) | |")
    writes = ("kb add (warm", "kb edit -a (warm")
    warm_writes = sum(1 + args.runs for fig in figures if fig.name.startswith(writes))
    print(f"\nwarm writes made on the server's word (no git status, no walk): {word} of {warm_writes}")
    print(f"their commits whose trees came from the images the server keeps: {imaged}")
    if "rg -l -i WORD" in by:
        ratio = by["kb search WORD (warm)"].median_ms / by["rg -l -i WORD"].median_ms
        print(f"\nwarm search / rg: {ratio:.2f}×")
    args.out.mkdir(parents=True, exist_ok=True)
    data = {
        "notes": count,
        "runs": args.runs,
        "server_rss_mib": rss[0],
        "spare_rss_mib": rss[1],
        "spare_private_mib": rss[2],
        "writes_on_the_servers_word": word,
        "commits_with_trees_from_images": imaged,
        "figures": [asdict(fig) for fig in figures],
    }
    size = 10 ** round(math.log10(count)) if args.reuse and count > 0 else args.notes  # 100,335 notes: 100000
    (args.out / f"warm-{size}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
