"""An exact phrase's places found with sets of positions (kb.index.phrases) are Whoosh's: the same spans in
every document, the same hits and scores, over segments with deleted notes (the filter around each word's
postings) and without; a phrase with slop keeps Whoosh's way."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from whoosh import index
from whoosh import query as wq
from whoosh.matching.wrappers import FilterMatcher
from whoosh.query.spans import SpanNear2

from kb.index import phrases
from kb.index.document import schema
from kb.index.postings import fast_postings

WORDS = ["a", "b", "c"]


def _index(folder: Path, seed: int) -> tuple[Any, int]:
    """Two segments of random bodies of a, b, c and y (the words repeated, in every order), some notes of
    the first deleted; how many notes are left."""
    fast_postings()
    folder.mkdir()
    ix = index.create_in(str(folder), schema())
    rng = random.Random(seed)
    n = 0
    for _ in range(2):
        writer = ix.writer()
        for _ in range(300):
            body = " ".join(rng.choice([*WORDS, "y"]) for _ in range(rng.randint(1, 30)))
            writer.add_document(path=f"notes/{n}.md", title="t", body=body, tags="t", tag_list=["t"])
            n += 1
        writer.commit(merge=False)
    writer = ix.writer()
    for k in range(0, 300, 7):
        writer.delete_by_term("path", f"notes/{k}.md")
    writer.commit(merge=False)
    return ix, n - len(range(0, 300, 7))


def _spans_everywhere(searcher: Any, query: Any) -> list[tuple[int, list[tuple[int, int]]]]:
    """Every document the phrase matches, with its spans (start, end), segment by segment."""
    found = []
    for sub, offset in searcher.leaf_searchers():
        matcher = query.matcher(sub, None)
        while matcher.is_active():
            found.append((offset + matcher.id(), [(s.start, s.end) for s in matcher.spans()]))
            matcher.next()
    return found


PHRASES = [["a", "b"], ["b", "a"], ["a", "a"], ["a", "a", "a"], ["a", "b", "c"], ["c", "b", "a", "b"]]


@pytest.mark.parametrize("seed", [1, 2])
def test_exact_phrases_have_whooshs_spans_hits_and_scores(tmp_path: Path, seed: int):
    ix, _ = _index(tmp_path / "ix", seed)
    matcher = SpanNear2.SpanNear2Matcher
    mine, whooshs = matcher._get_spans, phrases.REPLACED["SpanNear2Matcher._get_spans"]
    filtered = 0
    with ix.searcher() as searcher:
        for words in PHRASES:
            query = wq.Phrase("body", words)
            seen: dict[str, Any] = {}
            for name, method in (("kb", mine), ("whoosh", whooshs)):
                matcher._get_spans = method
                try:
                    spans = _spans_everywhere(searcher, query)
                    hits = [(h.docnum, h.score) for h in searcher.search(query, limit=None)]
                    top = [(h.docnum, h.score) for h in searcher.search(query, limit=5)]
                finally:
                    matcher._get_spans = mine
                seen[name] = (spans, hits, top)
            assert seen["kb"] == seen["whoosh"], words
            assert seen["kb"][0], words  # the phrase is somewhere: the comparison is not of nothing
        for sub, _ in searcher.leaf_searchers():
            m = wq.Phrase("body", ["a", "b"]).matcher(sub, None)
            assert m._kb_exact is True  # kb's way was the one taken
            filtered += any(type(x) is FilterMatcher for x in m.ms)
    assert filtered == 1  # the segment with deleted notes: the filter around each word's postings


def test_a_phrase_with_slop_keeps_whooshs_way(tmp_path: Path):
    ix, _ = _index(tmp_path / "ix", 3)
    with ix.searcher() as searcher:
        for sub, _ in searcher.leaf_searchers():
            m = wq.Phrase("body", ["a", "c"], slop=2).matcher(sub, None)
            assert m._kb_exact is False
            while m.is_active():  # Whoosh's spans: any within two of each other, in order
                assert all(s.end - s.start <= 2 for s in m.spans())
                m.next()
