"""Time hostile queries as whole `kb search` processes on a generated corpus.

    .venv/bin/python bench/hostile_queries.py DIR [--notes 1000] [--timeout 120]

DIR is created with `bench/generate.py` and indexed on first use. Each query prints its exit code, the
wall time, the peak RSS and the first line of stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path


def queries(words: list[str]) -> dict[str, str]:
    """Hostile queries built from the corpus's own words (rarest last), so every term has postings."""
    common = words[0]
    pairs = sorted({w[i : i + 2] for w in words for i in range(len(w) - 1)})
    return {
        "200 NOT": " ".join(f"NOT zz{i}" for i in range(200)),
        "300 NOT": " ".join(f"NOT zz{i}" for i in range(300)),
        "1000 NOT": " ".join(f"NOT zz{i}" for i in range(1000)),
        "200 *xy* OR": " OR ".join(f"*{pair}*" for pair in pairs[:200]),
        "500 word~2 OR": " OR ".join(f"{w}~2" for w in words[:500]),
        "250 NOT": " ".join(f"NOT zz{i}" for i in range(250)),
        "16 *xy* OR": " OR ".join(f"*{pair}*" for pair in pairs[:16]),
        "16 word~2 OR": " OR ".join(f"{w}~2" for w in words[:16]),
        "16 word* OR": " OR ".join(f"{w[:2]}*" for w in words[:16]),
        "32 nested ( )": "(" * 32 + common + ")" * 32,
        "5000 nested ( )": "(" * 5000 + common + ")" * 5000,
        "created:>1": "created:>1",
        "modified:[1 to 2]": "modified:[1 to 2]",
        "created:2021-99": "created:2021-99",
    }


def corpus_words(notes: Path, n: int = 1200) -> list[str]:
    counts: dict[str, int] = {}
    for path in sorted(notes.rglob("*.md"))[:300]:
        for word in re.findall(r"[a-z]{4,}", path.read_text().split("---", 2)[-1]):
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    root = args.folder.absolute()
    env = {**os.environ, "KB_HOME": str(root)}
    if not (root / "notes").is_dir():
        here = Path(__file__).parent
        subprocess.run([sys.executable, str(here / "generate.py"), str(root / "notes"), "--notes",
                        str(args.notes)], check=True)  # fmt: skip
        subprocess.run([sys.executable, "-m", "kb", "init"], env=env, check=True, capture_output=True)
    for name, query in queries(corpus_words(root / "notes")).items():
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "kb", "search", "-l", "--", query], env=env,
                                  capture_output=True, timeout=args.timeout)  # fmt: skip
            code: object = proc.returncode
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        except subprocess.TimeoutExpired:
            code, err = "timeout", []
        seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
        first = err[0][:110] if err else ""
        print(f"{name:18} exit {code!s:8} {seconds:7.2f} s  peak {rss} MB  {first}", flush=True)


if __name__ == "__main__":
    main()
