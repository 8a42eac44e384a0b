"""The best hits of a query by relevance, found with less scoring where the query allows it.

Whoosh finds the top N by scoring the notes in order and skipping the blocks of postings that cannot beat
the N-th best score so far. A word searched as `title:w OR body:w` is in a few titles and many bodies:
the best hits are notes with the word in both, but until N of those are found, the N-th best score is
low and every note with the word in its body is scored. A note's score for the word is the sum of its
title part and its body part (neither below zero), so the N-th best title score alone is a floor under
the N-th best score: N notes reach it. Searching the few titles first gives that floor, and Whoosh starts
from it: when no note can reach it by its body alone, the notes that have the word only in their body are
skipped from the first block on (at 100,000 notes, a word in 45 titles and 11,316 bodies: 12 ms of
scoring down to 2). The hits, their scores and their order are those Whoosh finds without it.
"""

from __future__ import annotations

import functools
from typing import Any

# The floor is worth its own search when the word's bodies outnumber its titles at least this much: for a
# word in nearly as many titles as bodies, the title search costs more than it saves.
BODIES_PER_TITLE = 4


def top_hits(searcher: Any, query: Any, wanted: int, filter_q: Any) -> Any:
    """searcher.search(query, limit=wanted, filter=filter_q), by relevance: Results with the same hits (the
    same notes, scores and order; not the same count of notes the filter left out, which kb does not
    read)."""
    floor = _title_floor(searcher, query, wanted, filter_q)
    if floor is None:
        return searcher.search(query, limit=wanted, filter=filter_q)
    from whoosh import collectors

    top = _floored()(wanted, floor)
    collector = collectors.FilterCollector(top, filter_q) if filter_q is not None else top
    searcher.search_with_collector(query, collector)
    return collector.results()


def _title_floor(searcher: Any, query: Any, wanted: int, filter_q: Any) -> float | None:
    """For a query `title:w OR body:w` (as kb.index.query makes of one word) whose word is in at least
    `wanted` titles and in BODIES_PER_TITLE times as many bodies: the `wanted`-th best score of the word in
    titles (among the notes `filter_q` allows), made a billionth smaller; None otherwise. (Smaller: Whoosh
    skips a block whose best possible score is at or below the floor, and a note scoring exactly the
    `wanted`-th best is among the best.)"""
    from whoosh import query as wq

    if type(query) is not wq.Or or query.boost != 1 or getattr(query, "scale", None) is not None:
        return None
    if len(query.subqueries) != 2 or wanted >= searcher.doc_count():
        return None
    title, body = query.subqueries
    if not (type(title) is wq.Term and type(body) is wq.Term):
        return None
    if (title.fieldname, body.fieldname) != ("title", "body") or title.text != body.text:
        return None
    titles = searcher.doc_frequency("title", title.text)
    if titles < wanted or searcher.doc_frequency("body", body.text) < BODIES_PER_TITLE * titles:
        return None
    found = searcher.search(title, limit=wanted, filter=filter_q)
    if found.scored_length() < wanted:
        return None
    floor = float(found.score(wanted - 1))
    return floor - abs(floor) * 1e-9 if floor > 0 else None


@functools.cache
def _floored() -> type:
    from whoosh import collectors

    class Floored(collectors.TopCollector):
        """Whoosh's TopCollector starting from a floor: the score a note must beat to be among the best
        (minscore, which lets Whoosh skip) is never below it, though notes below it may fill the heap
        first (they are replaced: N notes reach the floor)."""

        def __init__(self, limit: int, floor: float) -> None:
            super().__init__(limit)
            self.floor = floor

        def prepare(self, top_searcher: Any, q: Any, context: Any) -> None:
            super().prepare(top_searcher, q, context)
            self.minscore = self.floor  # type: ignore[assignment]  # (Whoosh keeps floats here too)

        def _collect(self, global_docnum: int, score: float) -> Any:
            key = super()._collect(global_docnum, score)
            if self.minscore < self.floor:
                self.minscore = self.floor  # type: ignore[assignment]
            return key

    return Floored
