"""Whoosh's top-N search made to return the best notes, set up once per process by sound_skips() (from
kb.index.postings.fast_postings, before an index is opened).

To find the N best notes, Whoosh scores the documents in order and, once it has N, skips what cannot beat
the N-th best score so far (the bar): blocks of postings (up to 128 documents of one word) whose best
possible score (the block's quality, from its header) is too low, and parts of a query that cannot reach it
(`a OR b` becomes "a, and b where it is there too" once b alone cannot). Its matchers got that wrong in
three ways, each returning worse notes than some it left out:

- Two parts (`a OR b`, `a AND b`, a required and an optional part) skipped a block of one part when its
  quality plus the quality of the other part's *current* block could not beat the bar. The skipped block
  spans a range of documents, and the other part's next blocks, of a higher quality, may hold the same
  documents. Here a block of one part is skipped only when its quality plus the best the other part can
  still give (its max quality, over all its postings) cannot beat the bar.
- A required part with an optional one (AndMaybeMatcher), sent on to a document, left the optional part
  at that document when the required one had none there and went further: the note it stopped at was
  scored without its optional part. At 100,000 notes, `kb search "bribriquadra brixenshiyor" -n 1`
  returned a note scoring 20.34 and left out one scoring 21.52 (16.74 without `brixenshiyor` in its
  body). Here the optional part follows the required one to its document, after a skip too; and only
  the required part skips blocks (the optional one skipping alone left later notes without their part in
  it).
- The filter of a segment's deleted documents (FilterMatcher) could be left on a deleted document after a
  skip, and did not say when it entered a new block (so a segment with deleted notes was scored without
  a skip after its first document). Here it moves on to a document it keeps, and says so.

The hits, their scores and their order are then those of every matching note scored and ranked (by score,
then in the order of the documents), as tests/test_index_quality.py checks against the exhaustive ranking.
"""

from __future__ import annotations

import functools
from typing import Any

# Whoosh's own methods that sound_skips replaced, by "Class.name" (bench/top_n.py puts them back).
REPLACED: dict[str, Any] = {}


def replacements() -> list[tuple[type, str, Any]]:
    """(Whoosh's class, the name of its method, kb's method in its place) for every method sound_skips
    replaces."""
    from whoosh.matching import binary, wrappers

    return [
        (binary.UnionMatcher, "skip_to_quality", union_skip_to_quality),
        (binary.IntersectionMatcher, "skip_to_quality", intersection_skip_to_quality),
        (binary.AndMaybeMatcher, "skip_to_quality", and_maybe_skip_to_quality),
        (binary.AndMaybeMatcher, "skip_to", and_maybe_skip_to),
        (wrappers.FilterMatcher, "next", filter_next),
        (wrappers.FilterMatcher, "skip_to_quality", filter_skip_to_quality),
    ]


@functools.cache
def sound_skips() -> None:
    """Replace the block skips of Whoosh's union, intersection and and-maybe matchers and its filter of
    deleted documents (skip_to_quality, AndMaybeMatcher.skip_to, FilterMatcher.next) by the sound ones of
    this module; once per process."""
    for cls, name, method in replacements():
        REPLACED[f"{cls.__name__}.{name}"] = getattr(cls, name)
        setattr(cls, name, method)


def _skip_one_side(a: Any, b: Any, minquality: float) -> int:
    """Skip the blocks of `a`, or else of `b`, whose documents cannot beat `minquality` whatever the other
    side adds to them (at most its max quality); the number of blocks skipped (0: neither could skip)."""
    a_most, b_most = a.max_quality(), b.max_quality()
    if a.block_quality() + b_most <= minquality:
        return int(a.skip_to_quality(minquality - b_most))
    if b.block_quality() + a_most <= minquality:
        return int(b.skip_to_quality(minquality - a_most))
    return 0


def union_skip_to_quality(self: Any, minquality: float) -> int:
    """UnionMatcher.skip_to_quality: a document is in `a`, in `b` or in both, and scores the sum."""
    from whoosh.matching.mcore import ReadTooFar

    self._id = None
    a, b = self.a, self.b
    if not (a.is_active() or b.is_active()):
        raise ReadTooFar
    skipped = 0
    while a.is_active() and b.is_active():
        moved = _skip_one_side(a, b, minquality)
        if not moved:
            return skipped
        skipped += moved
    # one side is done: the documents still to come are those of the other alone
    return skipped + int((a if a.is_active() else b).skip_to_quality(minquality))


def intersection_skip_to_quality(self: Any, minquality: float) -> int:
    """IntersectionMatcher.skip_to_quality: a document is in both, and scores the sum; the two sides are
    left on the same document."""
    a, b = self.a, self.b
    skipped = 0
    while a.is_active() and b.is_active():
        moved = _skip_one_side(a, b, minquality)
        if not moved:
            break
        skipped += moved
        if a.is_active() and b.is_active() and a.id() != b.id():
            self._find_next()
    return skipped


def and_maybe_skip_to_quality(self: Any, minquality: float) -> int:
    """AndMaybeMatcher.skip_to_quality: a document is in `a`, and scores the sum with `b` when in `b` too.
    Only `a` skips (skipping `b` alone would score later documents of `a` without their part in `b`); `b`
    then follows `a` to its document."""
    from whoosh.matching.mcore import ReadTooFar

    a, b = self.a, self.b
    if not a.is_active():
        raise ReadTooFar
    if not b.is_active():
        return int(a.skip_to_quality(minquality))
    most = b.max_quality()
    if a.block_quality() + most > minquality:
        return 0
    skipped = int(a.skip_to_quality(minquality - most))
    if a.is_active() and b.is_active() and b.id() < a.id():
        b.skip_to(a.id())
    return skipped


def and_maybe_skip_to(self: Any, docnum: int) -> bool:
    """AndMaybeMatcher.skip_to: `a` to the document, then `b` to where `a` is (Whoosh's took `b` to the
    document asked for, behind `a` when `a` had no posting there, and `a`'s next document was scored
    without its part in `b`)."""
    from whoosh.matching.mcore import ReadTooFar

    a, b = self.a, self.b
    if not a.is_active():
        raise ReadTooFar
    moved = a.skip_to(docnum)
    if a.is_active() and b.is_active() and b.id() < a.id():
        moved = b.skip_to(a.id()) or moved
    return bool(moved)


def filter_next(self: Any) -> bool:
    """FilterMatcher.next: whether the wrapped matcher entered a new block (its block quality may have
    changed)."""
    moved = self.child.next()
    return bool(self._find_next() or moved)


def filter_skip_to_quality(self: Any, minquality: float) -> int:
    """FilterMatcher.skip_to_quality: the wrapped matcher's skip, then on to a document the filter keeps."""
    skipped = self.child.skip_to_quality(minquality / self.boost)
    self._find_next()
    return int(skipped)
