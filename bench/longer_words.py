"""What a word finding the longer words it begins (`postgres` finds `PostgreSQL`) costs a search.

    python bench/longer_words.py --kb KB [--runs 5] WORD...

In one process, on a knowledge base with its index (bench/completion.py or bench/run.py --keep make one):
the best of N runs of parsing and running each query, with the longer words and without them (as before),
for a page of 10 results with snippets (what `kb search WORD` shows) and for every match (`kb search WORD
-l`). Prints a Markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from kb.index import NoteIndex
from kb.index import query as kb_query


def best_of(runs: int, index: NoteIndex, words: str, limit: int | None) -> tuple[float, int | None]:
    best, total = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        parsed = kb_query.parse_query(words, datetime.now(UTC))
        total, _, _ = index.search(
            parsed, limit=limit, tag=None, sort="relevance", snippets=limit is not None
        )
        best = min(best, time.perf_counter() - start)
    return best * 1000, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("words", nargs="+")
    args = parser.parse_args()
    index = NoteIndex(args.kb)
    shortest = kb_query.MIN_PREFIX
    print(f"best of {args.runs}, milliseconds (matches)\n")
    print("| query | page of 10: the word | page of 10: longer words too | -l: the word | -l: longer too |")
    print("|---|---|---|---|---|")
    for words in args.words:
        cells = []
        for limit in (10, None):
            for prefix in (10**6, shortest):
                kb_query.MIN_PREFIX = prefix
                ms, total = best_of(args.runs, index, words, limit)
                cells.append(f"{ms:.0f}" + (f" ({total})" if limit is None else ""))
        kb_query.MIN_PREFIX = shortest
        print(f"| `{words}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
