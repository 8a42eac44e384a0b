"""The best hits of a query by relevance, found with less scoring where the query allows it.

Whoosh finds the top N by scoring the notes in order and skipping the blocks of postings that cannot beat
the N-th best score so far. A word searched as `title:w OR body:w` is in a few titles and many bodies:
the best hits are notes with the word in both, but until N of those are found, the N-th best score is
low and every note with the word in its body is scored. A note's score for the word is the sum of its
title part and its body part (neither below zero), so the N-th best title score alone is a floor under
the N-th best score: N notes reach it. Scoring the few titles first gives that floor: when no note can
reach it by its body alone, the notes that have the word only in their body are skipped from the first
block on (at 100,000 notes, a word in 45 titles and 11,316 bodies: 12 ms of scoring down to 2).

Such a word is scored here, block by block (word_top), with or without a filter (a tag, a set of notes):
Whoosh's matchers and collector cost several method calls per posting. The hits, their scores and their
order are those of every note scored and ranked (by score, then in the order of the documents), as those of
Whoosh's top-N search of any other query (its skips made sound by kb.index.quality).
"""

from __future__ import annotations

from typing import Any


def top_hits(searcher: Any, query: Any, wanted: int, filter_q: Any) -> Any:
    """searcher.search(query, limit=wanted, filter=filter_q), by relevance: Results of the same hits (the
    same notes, scores and order: for one word, those of every note scored and ranked; not the count of
    notes the filter left out, which kb does not read)."""
    word = _one_word(query) if not searcher.weighting.use_final else None
    if word is not None:
        allowed = None if filter_q is None else sorted(searcher.docs_for_query(filter_q))
        top = word_top(searcher, word, wanted, allowed)
        if top is not None:
            from whoosh.searching import Results

            return Results(searcher, query, top)
    return searcher.search(query, limit=wanted, filter=filter_q)


def _one_word(query: Any) -> str | None:
    """The word of a query `title:w OR body:w` (as kb.index.query makes of one word, unboosted), else None."""
    from whoosh import query as wq

    if type(query) is not wq.Or or query.boost != 1 or getattr(query, "scale", None) is not None:
        return None
    if len(query.subqueries) != 2:
        return None
    title, body = query.subqueries
    if not (type(title) is wq.Term and type(body) is wq.Term) or title.boost != 1 or body.boost != 1:
        return None
    if (title.fieldname, body.fieldname) != ("title", "body") or title.text != body.text:
        return None
    return title.text if isinstance(title.text, str) else None


def word_top(
    searcher: Any, word: str, wanted: int, allowed: list[int] | None = None
) -> list[tuple[float, int]] | None:
    """The `wanted` best (score, document number) of `title:word OR body:word` among the documents
    `allowed` (document numbers, ascending; None: all), best first: every matching document scored and
    ranked (a document's score is its title part plus its body part, each the weighting's score of the
    posting; of equal scores, the first document first), found with less work per posting; None for a
    weighting other than one of weights and lengths (Whoosh's own search then).

    The titles first, in every segment: their scores, and from them a floor (the `wanted`-th best: the
    best hits score at least that, a body part being never below zero). Then each segment's body postings
    block by block, in the documents' order, keeping the `wanted` best scores so far. A document scoring
    below the floor cannot be among the best, nor one scoring no more than the `wanted`-th best so far
    (those came first). A block whose best possible body score (from its header: Whoosh's block quality)
    is that low is not read, unless a title of its range has the word and that title's score with it may
    not be (only those are scored then)."""
    import heapq
    from bisect import bisect_left, bisect_right

    from whoosh.codec.whoosh3 import W3LeafMatcher

    weighting = searcher.weighting
    leaves = []
    titles: list[float] = []
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        scored: dict[int, float] = {}
        among = None  # the documents of this segment allowed (its own numbers), when not all are
        if allowed is not None:
            first, end = bisect_left(allowed, offset), bisect_left(allowed, offset + reader.doc_count_all())
            among = {doc - offset for doc in allowed[first:end]}
        postings = _postings(weighting, sub, "title", word)
        if postings is None:
            return None
        if postings:
            scorer, m, deleted = postings
            dfl, score_of = scorer.dfl, scorer._score
            if isinstance(m, W3LeafMatcher):  # a block at a time
                while m.is_active():
                    ids, weights = _block(m)
                    for i in range(m._i, m._blocklength):
                        doc = ids[i]
                        if doc not in deleted and (among is None or doc in among):
                            scored[doc] = score_of(weights[i], dfl(doc))
                    m._next_block()
            else:
                while m.is_active():
                    doc = m.id()
                    if doc not in deleted and (among is None or doc in among):
                        scored[doc] = score_of(m.weight(), dfl(doc))
                    m.next()
        titles.extend(scored.values())
        leaves.append((sub, offset, scored, among))
    floor = heapq.nlargest(wanted, titles)[-1] if len(titles) >= wanted else None

    best: list[float] = []  # the `wanted` best scores so far (a heap)
    found: list[tuple[float, int]] = []  # (score, document number) of the documents that may be among them

    def beaten(score: float) -> bool:
        return (floor is not None and score < floor) or (len(best) == wanted and score <= best[0])

    for sub, offset, scored, among in leaves:
        in_title = sorted(scored)
        seen: set[int] = set()
        postings = _postings(weighting, sub, "body", word)
        if postings is None:
            return None
        if postings:
            scorer, m, deleted = postings
            dfl, score_of = scorer.dfl, scorer._score
            if isinstance(m, W3LeafMatcher):
                last = -1  # the last document of the block before
                while m.is_active():
                    top = m.block_max_id()
                    quality = scorer.block_quality(m)
                    only_titles = beaten(quality)
                    if only_titles:  # and those of its titles too, at best (max title + quality)?
                        in_range = in_title[bisect_right(in_title, last) : bisect_right(in_title, top)]
                        if not in_range or beaten(max(scored[doc] for doc in in_range) + quality):
                            seen.update(in_range)
                            last = top
                            m._next_block()
                            continue
                    ids, weights = _block(m)
                    for i in range(m._i, m._blocklength):
                        doc = ids[i]
                        title = scored.get(doc)
                        if title is not None:
                            seen.add(doc)
                        elif only_titles or doc in deleted or (among is not None and doc not in among):
                            continue
                        score = score_of(weights[i], dfl(doc))
                        if title is not None:
                            score = title + score
                        if not beaten(score):
                            found.append((score, offset + doc))
                            if len(best) < wanted:
                                heapq.heappush(best, score)
                            elif score > best[0]:
                                heapq.heapreplace(best, score)
                    last = top
                    m._next_block()
            else:
                while m.is_active():
                    doc = m.id()
                    title = scored.get(doc)
                    if title is not None:
                        seen.add(doc)
                    if doc not in deleted and (among is None or doc in among):
                        score = scorer.score(m)
                        score = score if title is None else title + score
                        if not beaten(score):
                            found.append((score, offset + doc))
                            if len(best) < wanted:
                                heapq.heappush(best, score)
                            elif score > best[0]:
                                heapq.heapreplace(best, score)
                    m.next()
        # the notes with the word in their title only (not deleted: their postings leave those out)
        found.extend((scored[doc], offset + doc) for doc in in_title if doc not in seen)
    found.sort(key=lambda hit: (-hit[0], hit[1]))
    return found[:wanted]


def _postings(weighting: Any, sub: Any, field: str, word: str) -> tuple[Any, ...] | None:
    """The scorer (of `weighting`) of the word in the field of a segment's searcher, its postings (Whoosh's
    block reader itself when it has one, not the filter Whoosh puts round it when the segment has deleted
    notes) and the deleted notes to leave out; () when the segment does not have the word there; None when the
    weighting's scorer is not one of weights and lengths."""
    from whoosh.codec.whoosh3 import W3LeafMatcher
    from whoosh.scoring import WeightLengthScorer

    reader = sub.reader()
    if (field, word) not in reader:
        return ()
    scorer = weighting.scorer(sub, field, word)
    if not isinstance(scorer, WeightLengthScorer):
        return None
    m = reader.postings(field, word)
    deleted = reader.deleted_docs_set if reader.has_deletions() else frozenset()
    while not isinstance(m, W3LeafMatcher) and hasattr(m, "child"):
        m = m.child
    return scorer, m, deleted


def _block(m: Any) -> tuple[Any, Any]:
    """The document numbers and weights of the block a W3LeafMatcher is in."""
    if m._ids is None:
        m._read_ids()
    if m._weights is None:
        m._read_weights()
    return m._ids, m._weights
