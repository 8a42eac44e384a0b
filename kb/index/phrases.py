"""A phrase's places in a document found with sets of positions, set up once per process by exact_phrases()
(from kb.index.postings.fast_postings, before an index is opened).

Whoosh matches `"a b c"` with SpanNear2: in every document that holds all of the words, a Span object for
each position of each word, then, for each position of one word, a bisection into the next word's spans
and a distance worked out for each candidate, in Python. At 100,000 notes `kb search '"bri bri"'`, a
phrase of a word in every note, spent most of its 0.8 s there. The phrase scores as its words do (the
intersection's score); its spans say whether it is in the document, and where.

For a phrase whose words must follow each other (slop 1, in order, at least one apart: as kb parses every
quoted phrase) and whose parts are words read from the postings (leaf matchers of a field with positions
and no characters, or the filters of deleted documents around them), the places it begins are the
positions p of its first word such that its k-th word is at p + k for every k: one set intersection per
word, in C. The spans are Whoosh's (p to p + len - 1, by position). Anything else (a phrase with slop,
nested span queries, characters stored) keeps Whoosh's way.
"""

from __future__ import annotations

import functools
from typing import Any

# Whoosh's own method that exact_phrases replaced, by "Class.name".
REPLACED: dict[str, Any] = {}


@functools.cache
def exact_phrases() -> None:
    """Replace SpanNear2Matcher._get_spans by phrase_spans (Whoosh's method kept for the other cases);
    once per process."""
    from whoosh.query.spans import SpanNear2

    matcher = SpanNear2.SpanNear2Matcher
    REPLACED["SpanNear2Matcher._get_spans"] = whooshs = matcher._get_spans
    matcher._get_spans = functools.partialmethod(phrase_spans, whooshs)  # type: ignore[method-assign,assignment]


def phrase_spans(self: Any, whooshs: Any) -> list[Any]:
    """The spans of an exact phrase at the current document of its intersection (see the module's
    docstring), or what Whoosh's `whooshs(self)` gives for any other."""
    exact = self.__dict__.get("_kb_exact")
    if exact is None:
        exact = self._kb_exact = _exact(self)
    if not exact:
        return whooshs(self)
    from whoosh.query.spans import Span

    ms = self.ms
    starts = set(ms[0].value_as("positions"))
    for k in range(1, len(ms)):
        if not starts:
            return []
        starts.intersection_update(map((-k).__add__, ms[k].value_as("positions")))
    last = len(ms) - 1
    return [Span(p, p + last) for p in sorted(starts)]


def _exact(matcher: Any) -> bool:
    """Whether the phrase's words must follow each other and each is read from the postings with its
    positions only (a leaf matcher, or the filter of a segment's deleted documents around one, whose
    positions are its leaf's)."""
    from whoosh.matching.mcore import LeafMatcher
    from whoosh.matching.wrappers import FilterMatcher

    if matcher.slop != 1 or not matcher.ordered or matcher.mindist != 1 or len(matcher.ms) < 2:
        return False
    for m in matcher.ms:
        leaf = m.child if type(m) is FilterMatcher else m
        if not isinstance(leaf, LeafMatcher) or not leaf.supports("positions") or leaf.supports("characters"):
            return False
    return True
