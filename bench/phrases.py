"""Exact phrases searched with kb's way of finding their places (kb.index.phrases) and with Whoosh's own
SpanNear2 method, in one process on one index, runs interleaved:

    python bench/phrases.py KB [--runs 5] [--count] '"bri bri"' '"bri bri bri"' ...

For each phrase: whether both ways give the same hits (paths and scores, top 10), and the median time of
`service.search` (top 10, snippets, as `kb search` asks) with each; with `--count`, every matching note
counted too (every document that holds the words is looked at: the most work a phrase makes), and the
counts compared. The process is cold (KB_SERVER plays no
part: the search runs here), so each search also checks the notes for outside edits as a cold command
does; that part is the same for both ways. Nothing is asserted but that the hits are the same.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kb", type=Path)
    parser.add_argument("phrases", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", action="store_true", help="count every matching note too")
    args = parser.parse_args()

    from whoosh.query.spans import SpanNear2

    from kb import service
    from kb.index import phrases, postings

    postings.fast_postings()
    matcher = SpanNear2.SpanNear2Matcher
    ways = {"kb": matcher._get_spans, "Whoosh": phrases.REPLACED["SpanNear2Matcher._get_spans"]}
    service.search(args.kb, "warmup", limit=10)  # the index opened once, the notes checked once
    counted = "; every match counted" if args.count else ""
    print(f"# Exact phrases, kb's way against Whoosh's ({args.runs} runs each, interleaved{counted})")
    print()
    print("| phrase | hits | same hits and scores | kb ms | Whoosh ms | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    try:
        for phrase in args.phrases:
            times: dict[str, list[float]] = {name: [] for name in ways}
            found: dict[str, object] = {}
            for _ in range(args.runs):
                for name, way in ways.items():
                    matcher._get_spans = way
                    start = time.perf_counter()
                    result = service.search(args.kb, phrase, limit=10, snippets=True, count=args.count)
                    times[name].append((time.perf_counter() - start) * 1000)
                    found[name] = ([(hit.path, round(hit.score, 9)) for hit in result.hits], result.total)
            same = found["kb"] == found["Whoosh"]
            ours, theirs = statistics.median(times["kb"]), statistics.median(times["Whoosh"])
            total = found["kb"][1] if isinstance(found["kb"], tuple) and found["kb"][1] is not None else "-"
            print(f"| `{phrase}` | {total} | {'yes' if same else 'NO'} | {ours:.1f} | {theirs:.1f} | "
                  f"{ours / theirs:.2f} |")  # fmt: skip
    finally:
        matcher._get_spans = ways["kb"]


if __name__ == "__main__":
    main()
