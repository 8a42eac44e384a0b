"""Commands after every note was touched (new times, the same bytes: `touch notes/*`, a copy without -a, a
restore from a backup), cold, for this tree and optionally a baseline tree:

    python bench/touched.py --kb KB [--baseline SRC] [--word WORD]

KB is copied (`cp -a`) once per tree into a temporary folder; the copy is searched three times so that
its index is in step (a catalog made by an earlier kb gets its digests then, 5,000 a check), then: every
note touched, `kb search WORD` timed (the first command after the touch), and again (the next one);
every note touched again, `kb list` timed twice; touched again, `kb add` timed twice. Whole processes,
`KB_SERVER=0`, as a user runs them. SRC is a folder holding a `kb` package (`git worktree add SRC
COMMIT`); it runs with SRC first on PYTHONPATH. Nothing is asserted but that every
command succeeds (a search may find nothing: exit 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm import kb_program

WARM_UP = 3  # searches before the first touch: a catalog of an earlier kb gets its digests (5,000 a check)


def _touch_all(notes: Path) -> int:
    """Every note's times set to now, as `touch` does (a second after the last time, so that they change)."""
    time.sleep(1.0)
    count = 0
    for folder, _, files in os.walk(notes):
        for name in files:
            if name.endswith(".md"):
                os.utime(os.path.join(folder, name))
                count += 1
    return count


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - start
    if done.returncode not in (0, 1) or b"Traceback" in done.stderr:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return took


def run_tree(name: str, src: Path | None, kb: Path, word: str, scratch: Path) -> list[tuple[str, float]]:
    copy = scratch / name
    shutil.copytree(kb, copy, symlinks=True)
    env = {**os.environ, "KB_SERVER": "0", "KB_HOME": str(copy)}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    program = kb_program()
    for _ in range(WARM_UP):
        _timed([*program, "search", word], env)
    rows: list[tuple[str, float]] = []
    count = _touch_all(copy / "notes")
    rows.append(
        (f"kb search {word}, first after touching {count:,} notes", _timed([*program, "search", word], env))
    )
    rows.append((f"kb search {word}, the next", _timed([*program, "search", word], env)))
    _touch_all(copy / "notes")
    rows.append(("kb list, first after touching them again", _timed([*program, "list"], env)))
    rows.append(("kb list, the next", _timed([*program, "list"], env)))
    _touch_all(copy / "notes")
    for n in (1, 2):
        label = "kb add, first after touching them again" if n == 1 else "kb add, the next"
        rows.append((label, _timed([*program, "add", f"Touched bench {n} {os.getpid()}", "-b", "x"], env)))
    shutil.rmtree(copy, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, help="a source tree of kb to compare with")
    parser.add_argument("--word", default="kiwi")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-touched-") as scratch:
        ours = run_tree("this", None, args.kb, args.word, Path(scratch))
        theirs = (
            run_tree("baseline", args.baseline, args.kb, args.word, Path(scratch)) if args.baseline else None
        )
    print(f"| command ({args.kb}) | this tree (s) |" + (" baseline (s) |" if theirs else ""))
    print("|---|---|" + ("---|" if theirs else ""))
    for i, (label, took) in enumerate(ours):
        extra = f" {theirs[i][1]:.2f} |" if theirs else ""
        print(f"| {label} | {took:.2f} |{extra}")


if __name__ == "__main__":
    main()
