"""Whoosh's top-N search of queries of several words, with Whoosh's own skips and with kb's
(kb.index.quality), against every matching note scored and ranked, side by side in one run:

    python bench/top_n.py KB [--queries 150] [--seed 7]

Reads the search index of the knowledge base KB (nothing is written). Makes queries from the words of its
bodies that are in 50 to 30,000 notes: QUERIES of two words (`a b`), QUERIES of two words ORed (`a OR b`),
ten phrases of one word and `bri*`, each parsed as `kb search` parses it. For each query and each limit (1,
3, 10): the hits of Whoosh's search with a limit, with Whoosh's skips, then with kb's (alternating), are
compared with the first hits of its search without a limit (which skips nothing), ranked by score and then
by document; a list that differs (other notes, another order, another score) is wrong. Prints the number of
wrong lists and the time of the searches with a limit (median and total, in ms, by kind of query) for each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb.index.postings import fast_postings
from kb.index.quality import REPLACED, replacements
from kb.index.query import parse_query


def _methods(whoosh: bool) -> None:
    """Put Whoosh's own methods back (whoosh) or kb's."""
    for cls, name, method in replacements():
        setattr(cls, name, REPLACED[f"{cls.__name__}.{name}"] if whoosh else method)


def _kind(text: str) -> str:
    if text.startswith('"'):
        return "phrase"
    if text.endswith("*"):
        return "prefix"
    return "a OR b" if " OR " in text else "a b"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kb", type=Path)
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    fast_postings()
    from whoosh import index

    from kb.index import lengths_in_memory

    ix = index.open_dir(str(args.kb / "index"))
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    with ix.searcher() as searcher:
        lengths_in_memory(searcher)
        reader = searcher.reader()
        segments = len(reader.leaf_readers()) if hasattr(reader, "leaf_readers") else 1
        deleted = reader.doc_count_all() - reader.doc_count()
        words = [w.decode() if isinstance(w, bytes) else w for w in reader.lexicon("body")]
        words = [w for w in words if w.isalpha() and len(w) > 3]
        words = [
            w
            for w in rng.sample(words, min(len(words), 3000))
            if 50 <= reader.doc_frequency("body", w) <= 30000
        ]
        words = words[:300]
        queries = [" ".join(rng.sample(words, 2)) for _ in range(args.queries)]
        queries += [" OR ".join(rng.sample(words, 2)) for _ in range(args.queries)]
        queries += [f'"{w}"' for w in rng.sample(words, 10)] + ["bri*"]
        wrong = {True: 0, False: 0}
        times: dict[bool, dict[str, list[float]]] = {True: defaultdict(list), False: defaultdict(list)}
        for text in queries:
            _methods(False)
            hits = searcher.search(parse_query(text, now), limit=None)  # a query reads on a budget: one each
            every = sorted(((h.score, h.docnum) for h in hits), key=lambda hit: (-hit[0], hit[1]))
            for limit in (1, 3, 10):
                for whoosh in (True, False):
                    _methods(whoosh)
                    query: Any = parse_query(text, now)
                    start = time.perf_counter()
                    got = [(h.score, h.docnum) for h in searcher.search(query, limit=limit)]
                    times[whoosh][_kind(text)].append(time.perf_counter() - start)
                    expected = [(round(s, 9), doc) for s, doc in every[:limit]]
                    wrong[whoosh] += [(round(s, 9), doc) for s, doc in got] != expected
        print(f"{args.kb}: {reader.doc_count()} notes, {segments} segments, {deleted} deleted; "
              f"{len(queries)} queries x 3 limits")  # fmt: skip
        print(
            "| skips | wrong lists | median ms | " + " | ".join(f"{k} total ms" for k in times[True]) + " |"
        )
        for whoosh in (True, False):
            every_time = [t for kind in times[whoosh].values() for t in kind]
            cells = " | ".join(f"{sum(t) * 1000:.0f}" for t in times[whoosh].values())
            name = "Whoosh's" if whoosh else "kb's"
            print(f"| {name} | {wrong[whoosh]} | {statistics.median(every_time) * 1000:.2f} | {cells} |")
    _methods(False)


if __name__ == "__main__":
    main()
