"""kb's query language: checked, parsed into a Whoosh query (plain words without Whoosh's parser),
prefix/wildcard/fuzzy terms read as bounded unions of postings, and the body terms a query matches."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from kb.errors import UsageError
from kb.index.document import analyzer, schema


class QueryError(UsageError):
    """A query that cannot be parsed (exit 2)."""


def body_terms(parsed: Any, reader: Any, most: int = 5000) -> frozenset[str]:
    """The body terms the query matches, prefixes and fuzzy terms expanded, for highlighting.
    (Query.existing_terms in whoosh3 3.54 skips every leaf after the first.)"""
    terms: set[str] = set()
    for leaf in parsed.leaves():
        if leaf.field() != "body":
            continue
        for field, text in leaf.expanded_terms(reader, phrases=True):
            word = text.decode("utf-8") if isinstance(text, bytes) else str(text)
            if field == "body" and (field, word) in reader:
                terms.add(word)
                if len(terms) >= most:
                    return frozenset(terms)
    return frozenset(terms)


_DATE_VALUE = re.compile(r"\b(created|modified):(>=|<=|>|<)?(?=[^\s\['\"(])([^\s)]+)")
_FUZZY = re.compile(r"~(\d+)")
_EMPTY_FIELD = re.compile(r"\b(title|body|tag|tags|folder|created|modified):(?=\s|$|\))")
_OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}


def _check_syntax(text: str) -> None:
    if not text.strip():
        raise QueryError("the query is empty")
    if text.count('"') % 2:
        raise QueryError('unbalanced " in the query')
    outside = re.sub(r'"[^"]*"', " ", text)
    depth = 0
    for ch in outside:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise QueryError("a ')' without its '(' in the query")
    if depth:
        raise QueryError("a '(' without its ')' in the query")
    if outside.count("[") != outside.count("]"):
        raise QueryError("unbalanced [ ] in the query")
    words = outside.replace("(", " ( ").replace(")", " ) ").split()
    for i, word in enumerate(words):
        if word in _OPERATORS:
            before = words[i - 1] if i else None
            after = words[i + 1] if i + 1 < len(words) else None
            needs_before = word != "NOT"
            if after is None or after in _OPERATORS or after == ")":
                raise QueryError(f"'{word}' needs a word after it")
            if needs_before and (before is None or before in _OPERATORS or before == "("):
                raise QueryError(f"'{word}' needs a word before it")
    empty = _EMPTY_FIELD.search(outside)
    if empty:
        raise QueryError(f"'{empty.group(1)}:' needs a value")
    for match in _FUZZY.finditer(outside):
        if int(match.group(1)) > 2:
            raise QueryError("a fuzzy distance can be 1 or 2 (word~ or word~2)")


def _constant_union(query: Any) -> Any:
    """Prefix, wildcard and fuzzy queries as one constant-score list of documents per segment.

    Whoosh ORs one scored matcher per expanded term; with hundreds of expansions its skipping logic
    takes seconds. Collecting the expansions' postings into one sorted list takes milliseconds."""
    from whoosh import query as wq

    if isinstance(query, (wq.Prefix, wq.Wildcard, wq.FuzzyTerm)) and not isinstance(query, _UnionOfPostings):
        clone = query.copy()
        clone.__class__ = type(f"Union{type(query).__name__}", (_UnionOfPostings, type(query)), {})
        return clone
    return query.apply(_constant_union)


POSTINGS_BUDGET = 100_000  # postings one prefix, wildcard or fuzzy term may read per index segment


class _UnionOfPostings:
    """Mixed into a Whoosh multi-term query: its matcher lists every document of every expansion.

    Bounded: expansions are read most frequent first, and reading stops once every document matches
    (nothing more to find) or once POSTINGS_BUDGET postings have been read; the expansions left unread then
    are counted in `unread` (the search says so: its results may miss notes that hold only those)."""

    unread = 0
    expansions = 0

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        from whoosh.matching import ListMatcher, NullMatcher

        reader = searcher.reader()
        field = self.field()  # type: ignore[attr-defined]
        every = reader.doc_count_all()
        expansions = sorted(
            ((reader.doc_frequency(field, btext), btext) for btext in self._btexts(reader)),  # type: ignore[attr-defined]
            reverse=True,
        )
        self.expansions = max(self.expansions, len(expansions))
        ids: set[int] = set()
        read = 0
        for n, (frequency, btext) in enumerate(expansions):
            if len(ids) >= every:
                break
            if read and read + frequency > POSTINGS_BUDGET:
                self.unread = max(self.unread, len(expansions) - n)
                break
            ids.update(_posting_ids(reader.postings(field, btext)))
            read += frequency
        if not ids:
            return NullMatcher()
        return ListMatcher(sorted(ids), all_weights=float(self.boost))  # type: ignore[attr-defined]


def _posting_ids(matcher: Any) -> Any:
    """A posting list's document numbers, a block at a time where the format allows."""
    from whoosh.codec.whoosh3 import W3LeafMatcher

    if type(matcher) is not W3LeafMatcher:
        return matcher.all_ids()
    ids: list[int] = []
    while not matcher._atend:
        matcher._read_ids()
        ids.extend(matcher._ids)
        matcher._next_block()
    return ids


def bound_notices(parsed: Any) -> list[str]:
    from whoosh import query as wq

    notices: dict[str, None] = {}
    for leaf in parsed.leaves():
        if isinstance(leaf, _UnionOfPostings) and leaf.unread:
            text: str = getattr(leaf, "text", "")
            shown = text + (
                "*" if isinstance(leaf, wq.Prefix) else "~" if isinstance(leaf, wq.FuzzyTerm) else ""
            )
            notices[
                f"{shown} matches {leaf.expansions:,} words; the {leaf.unread:,} rarest were not searched "
                "(notes holding only those may be missing from the results): make it longer to search them"
            ] = None
    return list(notices)


def _without_andnot(query: Any) -> Any:
    """`a -b` parses to AndNot(a, b), whose matcher returns excluded documents in some segment layouts
    (seen with whoosh3 3.54); the equivalent And([a, Not(b)]) does not."""
    from whoosh import query as wq

    if isinstance(query, wq.AndNot):
        return wq.And([_without_andnot(query.a), wq.Not(_without_andnot(query.b))])
    return query.apply(_without_andnot)


_PLAIN_WORD = re.compile(r"[^\W_]+")


def _plain_query(text: str) -> Any:
    """The query for a few plain words (the common case), built directly: the same query the parser
    gives (a test checks that), without importing Whoosh's parser (~90 ms). None for anything else."""
    words = text.split()
    if not 0 < len(words) <= 8 or any(w in _OPERATORS or not _PLAIN_WORD.fullmatch(w) for w in words):
        return None
    from whoosh import query as wq

    analyze = analyzer()
    parts = []
    for word in words:
        tokens = [token.text for token in analyze(word)]
        if len(tokens) != 1:
            return None
        parts.append(wq.Or([wq.Term("title", tokens[0]), wq.Term("body", tokens[0])]))
    return parts[0] if len(parts) == 1 else wq.And(parts)


def parse_query(text: str, now: datetime) -> Any:
    """Parse kb's query language into a Whoosh query, or raise QueryError."""
    _check_syntax(text)
    plain = _plain_query(text)
    return plain if plain is not None else _parse_with_parser(text, now)


def _parse_with_parser(text: str, now: datetime) -> Any:
    from whoosh import qparser
    from whoosh.qparser.dateparse import DateParserPlugin

    _check_syntax(text)
    # Dates contain '-', which the parser would read as "not": quote bare date values.
    prepared = _DATE_VALUE.sub(lambda m: f"{m.group(1)}:{m.group(2) or ''}'{m.group(3)}'", text)
    bad_dates: list[str] = []
    parser = qparser.MultifieldParser(["title", "body"], schema(), group=qparser.AndGroup)
    parser.remove_plugin_class(qparser.PlusMinusPlugin)
    parser.add_plugin(qparser.PlusMinusPlugin(minusexpr=r"(?:(?<=\s)|(?<=\()|^)-(?=\S)"))
    parser.add_plugin(qparser.FuzzyTermPlugin())
    parser.add_plugin(qparser.GtLtPlugin())
    parser.add_plugin(qparser.FieldAliasPlugin({"tags": ["tag"]}))
    parser.add_plugin(
        DateParserPlugin(
            basedate=now.astimezone(UTC).replace(tzinfo=None), callback=bad_dates.append, free=False
        )
    )
    try:
        query = parser.parse(prepared)
    except Exception as exc:
        raise QueryError(f"cannot parse the query: {exc}") from None
    query = _constant_union(_without_andnot(query))
    if bad_dates:
        raise QueryError(
            f"cannot read the date '{bad_dates[0]}' (try 2021-11-25, 2021-11, yesterday, "
            "or a range like [2021-11-01 to 2021-11-30])"
        )
    return query
