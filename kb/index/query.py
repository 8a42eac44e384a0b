"""kb's query language: checked, parsed into a Whoosh query (plain words without Whoosh's parser),
prefix/wildcard/fuzzy terms read as bounded unions of postings, and the body terms a query matches.

Every query is bounded before any work: at most MAX_TERMS words, MAX_DEPTH nested parentheses and
MAX_EXPANDING prefix, wildcard or fuzzy terms (each of which reads the field's word list), or it is a usage
error. Negations are folded into one matcher (`NOT a NOT b` excludes a OR b). The prefix, wildcard and
fuzzy terms of one query share one budget of words and postings read, on top of each term's own."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

from kb.errors import UsageError
from kb.index.document import DENSE, PHRASE, WORD_PATTERN, analyzer, dense, schema


class QueryError(UsageError):
    """A query that cannot be parsed (exit 2)."""


def body_terms(parsed: Any, reader: Any, most: int = 5000) -> frozenset[str]:
    """The body terms the query matches, prefixes and fuzzy terms expanded, for highlighting.
    (Query.existing_terms in whoosh3 3.54 skips every leaf after the first.)"""
    from whoosh import query as wq

    terms: set[str] = set()
    for leaf in parsed.leaves():
        if leaf.field() != "body":
            continue
        if isinstance(leaf, wq.Phrase) and any(dense(word) for word in leaf.words):
            terms.update(_typed(leaf.words))
            continue
        if isinstance(leaf, wq.Phrase) and len(leaf.words) > 1:  # its words one after the other only
            terms.add(PHRASE.join(str(word) for word in leaf.words))
            continue
        listed = isinstance(leaf, wq.Prefix)  # its expansions are read from the index's words: all there
        for field, text in leaf.expanded_terms(reader, phrases=True):
            word = text.decode("utf-8") if isinstance(text, bytes) else str(text)
            if field == "body" and (listed or (field, word) in reader):
                terms.add(word)
                if len(terms) >= most:
                    return frozenset(terms)
    return frozenset(terms)


def _typed(words: list[str]) -> list[str]:
    """A phrase's words with each run of pairs (document.Pairs: `数据`, `据库`) joined back into the
    characters typed (`数据库`)."""
    out: list[str] = []
    joining = False
    for word in words:
        pair = len(word) == 2 and dense(word)
        if pair and joining and out[-1][-1] == word[0]:
            out[-1] += word[1]
        else:
            out.append(word)
        joining = pair
    return out


_QUOTED = re.compile(r'"[^"]*"')


def _spaced_or_not(match: re.Match[str]) -> str:
    phrase = match.group()
    if phrase.isascii():
        return phrase
    joined = _dense_gap().sub("", phrase)
    return phrase if joined == phrase else f"({phrase} OR {joined})"


@functools.cache
def _dense_gap() -> re.Pattern[str]:
    """Spaces between two characters of scripts written without spaces (made when first needed)."""
    return re.compile(f"(?<=[{DENSE}])\\s+(?=[{DENSE}])")


_TAG_MARK = re.compile(r"\b(tags?:)#(?=[^\s#)])")
_DATE_VALUE = re.compile(r"\b(created|modified):(>=|<=|>|<)?(?=[^\s\['\"(])([^\s)]+)")
_FUZZY = re.compile(r"~(\d+)")
_EMPTY_FIELD = re.compile(r"\b(title|body|tag|tags|folder|created|modified):(?=\s|$|\))")
_OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}
FIELDS = ("title", "body", "tag", "tags", "folder", "created", "modified", "links", "linkedby")
# name: before a value (not a URL's scheme, not a time like 10:30)
_FIELD = re.compile(r"(?:^|(?<=[\s(]))-?([A-Za-z_][\w-]*):(?!//)(?=\S)")
_EXPANDING = re.compile(r"[*?]|~")
_FUZZY_PREFIX = re.compile(r"~\d*/")
_DATE_HINT = "try 2021-11-25, 2021-11, yesterday, or a range like [2021-11-01 to 2021-11-30]"

MAX_TERMS = 256  # words in a query (phrases' words and excluded words too)
MAX_DEPTH = 32  # nested parentheses
MAX_EXPANDING = 16  # prefix, wildcard and fuzzy terms: each one reads the word list of its fields


def _check_syntax(text: str) -> None:
    if not text.strip():
        raise QueryError("the query is empty")
    if text.count('"') % 2:
        raise QueryError('unbalanced " in the query')
    words = [w for w in text.replace("(", " ").replace(")", " ").split() if w not in _OPERATORS]
    if len(words) > MAX_TERMS:
        raise QueryError(f"the query has {len(words):,} words; at most {MAX_TERMS} are searched at once")
    outside = re.sub(r'"[^"]*"', " ", text)
    expanding = sum(1 for w in outside.split() if _EXPANDING.search(w))
    if expanding > MAX_EXPANDING:
        raise QueryError(
            f"the query has {expanding} prefix, wildcard or fuzzy terms; at most {MAX_EXPANDING} "
            "are searched at once"
        )
    if _FUZZY_PREFIX.search(outside):
        raise QueryError("a fuzzy term is word~ or word~2 (no '/')")
    depth = 0
    for ch in outside:
        if ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise QueryError(f"the query nests parentheses more than {MAX_DEPTH} deep")
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
    # A quoted value is a value: `title:"Note 007"`.
    fields = re.sub(r'"[^"]*"', "Q", text)
    empty = _EMPTY_FIELD.search(fields)
    if empty:
        raise QueryError(f"'{empty.group(1)}:' needs a value")
    for match in _FIELD.finditer(fields):
        name = match.group(1)
        if name not in FIELDS:
            raise QueryError(f"unknown field '{name}:' (the fields are {', '.join(f + ':' for f in FIELDS)})")
    for match in _FUZZY.finditer(outside):
        if int(match.group(1)) > 2:
            raise QueryError("a fuzzy distance can be 1 or 2 (word~ or word~2)")


def _constant_union(query: Any, budget: _Budget | None = None) -> Any:
    """Prefix, wildcard and fuzzy queries as one constant-score list of documents per segment, all
    drawing on one budget for the query.

    Whoosh ORs one scored matcher per expanded term; with hundreds of expansions its skipping logic
    takes seconds. Collecting the expansions' postings into one sorted list takes milliseconds."""
    from whoosh import query as wq

    budget = budget if budget is not None else _Budget()
    if isinstance(query, (wq.Prefix, wq.Wildcard, wq.FuzzyTerm)) and not isinstance(query, _UnionOfPostings):
        clone: Any = query.copy()
        kind: Any = type(query)
        clone.__class__ = _union_class(kind)
        clone.budget = budget
        return clone
    return query.apply(lambda q: _constant_union(q, budget))


@functools.cache
def _union_class(kind: Any) -> type:
    """One class per kind of query (queries of the same class compare equal)."""
    return type(f"Union{kind.__name__}", (_UnionOfPostings, kind), {})


def _any_word(query: Any) -> Any:
    """A bare `*` (`title:*`, `bri *`) as the notes whose field has any word, read from the field lengths
    Whoosh keeps per note. Whoosh's own `Every(field)` reads the posting list of every word of the field
    (15 s for `*` at 10,000 notes)."""
    from whoosh import query as wq

    if type(query) is wq.Every and query.fieldname in _LENGTHS_KEPT:
        return _any_word_class()(query.fieldname, boost=query.boost)
    return query.apply(_any_word)


_LENGTHS_KEPT = frozenset({"title", "body"})  # text fields: Whoosh keeps each note's length of them


@functools.cache
def _any_word_class() -> type:
    from whoosh import query as wq
    from whoosh.matching import ListMatcher

    class AnyWord(wq.Every):
        """The notes (not deleted) whose field has at least one word."""

        def matcher(self, searcher: Any, context: Any = None) -> Any:
            reader = searcher.reader()
            field = self.fieldname
            ids = [n for n in reader.all_doc_ids() if reader.doc_field_length(n, field, 0) > 0]
            return ListMatcher(ids, all_weights=self.boost)

    return AnyWord


_TYPED_WORD = re.compile(WORD_PATTERN, re.UNICODE)  # kb.index.document's flags: re compiles it once for both
PREFIX_BOOST = 0.001  # a note that holds only a longer word ranks below every note that holds the word
MIN_PREFIX = 4  # letters of a word (as indexed) before it finds longer words too
MIN_HANGUL_PREFIX = 2  # Korean syllables: a word of two is a word, and its particles follow it (설정을)
HANGUL = ("\uac00", "\ud7a3")  # the first and last of the Korean syllables
MAX_PREFIXED = 8  # words of a query that find longer words
LONGER_WORDS_POSTINGS = 20_000  # postings the longer words of one word may read (the most frequent first)


def _also_longer_words(query: Any, typed: dict[str, tuple[str, ...]]) -> Any:
    """Each title or body word of the query (not an excluded one, not in a phrase) finds the longer words
    it begins as well (`postgres` finds `PostgreSQL`), scored far below the word itself: the words that
    begin as it was typed, as grep finds them (`happy`, stored as `happi`, finds `happyland`; `starred`,
    stored as `star`, does not find `start`). `typed`: see typed_forms."""
    from whoosh import query as wq

    count = [0]

    def widen(q: Any) -> Any:
        if isinstance(q, wq.Not):
            return q
        if type(q) is wq.Term and q.fieldname in ("title", "body"):
            text = str(q.text)
            least = MIN_HANGUL_PREFIX if HANGUL[0] <= text[:1] <= HANGUL[1] else MIN_PREFIX
            begins = _beginnings(list(typed.get(text, (text,))), least)
            if not begins or count[0] >= 2 * MAX_PREFIXED:
                return q
            count[0] += 1
            longer = _longer_words()(q.fieldname, begins[0], boost=PREFIX_BOOST)
            longer.also = tuple(begins[1:])
            return wq.Or([q, longer], boost=q.boost)
        if type(q) is wq.Prefix and q.fieldname in ("title", "body") and typed.get(str(q.text)):
            # `happy*` is `happi*` (the stem): the words that begin as typed too
            begins = _beginnings([str(q.text), *typed[str(q.text)]], 1)[1:]
            if begins:
                return wq.Or([q, *(wq.Prefix(q.fieldname, begin, boost=q.boost) for begin in begins)])
        return q.apply(widen)

    return widen(query)


def _beginnings(words: list[str], least: int) -> list[str]:
    """The words of at least `least` characters, but those another of them begins (its longer words are
    among the other's), in order."""
    kept: list[str] = []
    for word in words:
        if len(word) >= least and not any(word.startswith(other) for other in kept):
            kept.append(word)
    return kept


def typed_forms(text: str) -> dict[str, tuple[str, ...]]:
    """For each word of the query text that its stem is not (lower case, in one form): the stem, and that
    word (`happy`: {"happi": ("happy",)}, `running`: {"run": ("running",)})."""
    from kb.index.document import normal_word, unstemmed_word

    found: dict[str, set[str]] = {}
    for match in _TYPED_WORD.finditer(text):
        word = match.group()
        stemmed, plain = normal_word(word), unstemmed_word(word)
        if stemmed and plain != stemmed:
            found.setdefault(stemmed, set()).add(plain)
    return {stemmed: tuple(sorted(words)) for stemmed, words in found.items()}


POSTINGS_BUDGET = 100_000  # postings one prefix, wildcard or fuzzy term may read per index segment
QUERY_POSTINGS_BUDGET = 400_000  # postings all of a query's prefix, wildcard and fuzzy terms may read
QUERY_WORDS_BUDGET = 20_000  # words all of them together may expand to (posting lists opened)


class _Budget:
    """What a query's prefix, wildcard and fuzzy terms may still read, all together."""

    def __init__(self) -> None:
        self.postings = QUERY_POSTINGS_BUDGET
        self.words = QUERY_WORDS_BUDGET


def without_longer_words(query: Any) -> Any:
    """The query as it was before `_also_longer_words`, or None when that added nothing. Search runs it
    first: when the words themselves fill the page, the longer words (ranked below) need not be scored."""
    from whoosh import query as wq

    found = [False]

    def narrow(q: Any) -> Any:
        longer = _longer_words()
        if isinstance(q, wq.Or) and len(q.subqueries) == 2 and isinstance(q.subqueries[1], longer):
            found[0] = True
            return q.subqueries[0]
        return q.apply(narrow)

    narrowed = narrow(query)
    return narrowed if found[0] else None


@functools.cache
def _longer_words() -> type:
    from whoosh import query as wq

    class LongerWords(wq.Prefix):
        """The words a query's word begins, but the word itself: implicit, so never named in a notice, and
        with a smaller budget of postings (its notes rank below the word's anyway). `also`: more
        beginnings (the word as typed, beside its stem), read in the same pass over the words of the
        index when they have MIN_PREFIX - 1 letters in common (one lookup per segment, not one each)."""

        own_budget = LONGER_WORDS_POSTINGS
        skip_own_text = True
        also: tuple[str, ...] = ()

        def __eq__(self, other: object) -> bool:
            return bool(super().__eq__(other)) and self.also == getattr(other, "also", ())

        def __hash__(self) -> int:
            return super().__hash__() ^ hash(self.also)

        def _btexts(self, ixreader: Any) -> Any:
            scan = self._prefix_scan()
            if scan is None:  # far apart (dying, die): each its own lookup
                begins = (self.text, *self.also)
                return (b for begin in begins for b in ixreader.expand_prefix(self.fieldname, begin))
            common, wanted = scan
            found = ixreader.expand_prefix(self.fieldname, common)
            return found if wanted is None else (b for b in found if b.startswith(wanted))

        def _prefix_scan(self) -> tuple[str, tuple[bytes, ...] | None] | None:
            if not self.also:
                return self.text, None
            common = self.text
            for begin in self.also:
                while not begin.startswith(common):
                    common = common[:-1]
            if len(common) < MIN_PREFIX - 1:
                return None
            return common, tuple(begin.encode("utf-8") for begin in (self.text, *self.also))

    return LongerWords


class _UnionOfPostings:
    """Mixed into a Whoosh multi-term query: its matcher lists every document of every expansion.

    Bounded: expansions are read most frequent first, and reading stops once every document matches
    (nothing more to find) or once POSTINGS_BUDGET postings have been read; the expansions left unread then
    are counted in `unread` (the search says so: its results may miss notes that hold only those)."""

    unread = 0
    expansions = 0
    budget: _Budget
    own_budget: int | None = None  # postings this term may read (None: POSTINGS_BUDGET)
    skip_own_text = False  # leave the term's own text out (it is searched beside it)

    _seen: tuple[Any, list[tuple[int, bytes]]] | None = None  # a reader and its _frequencies

    def _frequencies(self, reader: Any) -> list[tuple[int, bytes]]:
        """Each expansion's document frequency in `reader`, with the expansion, worked out once per reader:
        Whoosh asks for them to order an Or (estimate_size), then the matcher does. A prefix's are read in
        one pass over the index's words that begin with it (each word's term info comes with it) rather
        than looked up one word at a time (a hash table lookup each: most of `bri*`'s time at 10,000
        notes, 690 words in each segment, twice)."""
        from whoosh.reading import SegmentReader

        seen = self._seen
        if seen is not None and seen[0] is reader:
            return seen[1]
        field = self.field()  # type: ignore[attr-defined]
        scan = self._prefix_scan()
        if scan is not None and isinstance(reader, SegmentReader):
            begin, wanted = scan
            found = [
                (info.doc_frequency(), btext)
                for btext, info in reader.iter_prefix(field, begin)
                if wanted is None or btext.startswith(wanted)
            ]
        else:
            found = [(reader.doc_frequency(field, b), b) for b in self._btexts(reader)]  # type: ignore[attr-defined]
        self._seen = (reader, found)
        return found

    def _prefix_scan(self) -> tuple[str, tuple[bytes, ...] | None] | None:
        """When the expansions are the index's words that begin with one text: that text, and the
        beginnings each of them must also have (None: any); None for other expansions (a wildcard, a
        fuzzy term)."""
        from whoosh import query as wq

        own: Any = getattr(super(), "_prefix_scan", None)  # the query's own (_longer_words)
        if own is not None:
            return own()
        if isinstance(self, wq.Prefix) and type(self)._btexts is wq.Prefix._btexts:
            return self.text, None
        return None

    def estimate_size(self, ixreader: Any) -> int:
        return sum(frequency for frequency, _ in self._frequencies(ixreader))

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        from whoosh.matching import ListMatcher, NullMatcher

        reader = searcher.reader()
        field = self.field()  # type: ignore[attr-defined]
        every = reader.doc_count_all()
        own = self.text.encode("utf-8") if self.skip_own_text else None  # type: ignore[attr-defined]
        expansions = sorted(((f, b) for f, b in self._frequencies(reader) if b != own), reverse=True)
        self.expansions = max(self.expansions, len(expansions))
        ids: set[int] = set()
        read = 0
        budget = self.budget
        for n, (frequency, btext) in enumerate(expansions):
            if len(ids) >= every:
                break
            most = self.own_budget if self.own_budget is not None else POSTINGS_BUDGET
            over_term = read and read + frequency > most
            if over_term or budget.words <= 0 or (budget.postings < frequency and read):
                self.unread = max(self.unread, len(expansions) - n)
                break
            ids.update(_posting_ids(reader.postings(field, btext)))
            read += frequency
            budget.postings -= frequency
            budget.words -= 1
        if not ids:
            return NullMatcher()
        return ListMatcher(sorted(ids), all_weights=float(self.boost))  # type: ignore[attr-defined]


def _posting_ids(matcher: Any) -> Any:
    """A posting list's document numbers, a block at a time where the format allows; through the filter of
    a segment's deleted documents too (a set difference, not a generator step per posting)."""
    from whoosh.codec.whoosh3 import W3LeafMatcher
    from whoosh.matching.wrappers import FilterMatcher

    leaf = matcher.child if type(matcher) is FilterMatcher else matcher
    if type(leaf) is not W3LeafMatcher:
        return matcher.all_ids()
    ids: list[int] = []
    while not leaf._atend:
        leaf._read_ids()  # the whole block: what a filter stepped past in it is filtered out below
        ids.extend(leaf._ids)
        leaf._next_block()
    if leaf is matcher:
        return ids
    chosen = matcher._ids  # the filter's documents: those left out, or the only ones kept
    return set(ids).difference(chosen) if matcher._exclude else set(ids).intersection(chosen)


NO_WORDS = "the query has no word to search for: kb indexes words and numbers, not punctuation or symbols"


def bound_notices(parsed: Any) -> list[str]:
    """What the results of `parsed` should be read with: a query left with nothing to search for, and the
    words of a prefix or a fuzzy term that were not searched."""
    from whoosh import query as wq

    if parsed is wq.NullQuery:
        return [NO_WORDS]
    notices: dict[str, None] = {}
    for leaf in parsed.leaves():
        if isinstance(leaf, _UnionOfPostings) and leaf.unread and not isinstance(leaf, _longer_words()):
            text: str = getattr(leaf, "text", "")
            shown = text + (
                "*" if isinstance(leaf, wq.Prefix) else "~" if isinstance(leaf, wq.FuzzyTerm) else ""
            )
            notices[
                f"{shown} matches {leaf.expansions:,} words; the {leaf.unread:,} rarest were not searched "
                "(notes holding only those may be missing from the results): make it longer to search them"
            ] = None
    return list(notices)


def _fold_negations(query: Any) -> Any:
    """`a -b -c` and `NOT b NOT c` as one exclusion: And([a, Not(Or([b, c]))]).

    The parser gives AndNot(AndNot(a, b), c) or And([Not(b), Not(c)]): one inverse matcher per negation,
    nested, which costs seconds with a hundred negations (each walks every document of the others); and
    AndNot's own matcher returns excluded documents in some segment layouts (seen with whoosh3 3.54).
    Nested Ands and Ors are flattened on the way."""
    from whoosh import query as wq

    if isinstance(query, wq.AndNot):
        query = wq.And([query.a, wq.Not(query.b)], boost=query.boost)
    if isinstance(query, (wq.And, wq.Or)) and type(query) in (wq.And, wq.Or):
        kind = type(query)
        flat: list[Any] = []
        pending = list(reversed(query.subqueries))
        while pending:  # iterative: a long chain of operators is deep
            sub = pending.pop()
            if isinstance(sub, wq.AndNot) and kind is wq.And:
                pending.extend([wq.Not(sub.b), sub.a])
            elif type(sub) is kind and sub.boost == 1.0:
                pending.extend(reversed(sub.subqueries))
            else:
                flat.append(_fold_negations(sub))
        if kind is wq.And:
            nots = [q for q in flat if isinstance(q, wq.Not)]
            if len(nots) > 1:
                rest = [q for q in flat if not isinstance(q, wq.Not)]
                flat = [*rest, wq.Not(wq.Or([n.query for n in nots]))]
        if len(flat) == 1 and query.boost == 1.0:
            return flat[0]
        return kind(flat, boost=query.boost)
    if isinstance(query, wq.Not):
        return wq.Not(_fold_negations(query.query), boost=query.boost)
    return query.apply(_fold_negations)


_PLAIN_WORD = re.compile(r"[^\W_]+")


def plain_query(text: str) -> Any:
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
    query = parts[0] if len(parts) == 1 else wq.And(parts)
    return _constant_union(_also_longer_words(query, typed_forms(text)))


# `links:NOTE` and `linkedby:NOTE` (NOTE quoted when it has spaces); a phrase in quotes is passed over
_LINK_FIELD = re.compile(r'"[^"]*"|(?<![\w:])(links|linkedby):(?:"([^"]*)"|([^\s()"]+))')
_EMPTY_LINK_FIELD = re.compile(r'"[^"]*"|(?<![\w:])(links|linkedby):(?=\s|$|\))')
# `-word` is `NOT word` (Whoosh's own minus fails inside a group after OR: `a OR (b -c)`); a word that
# starts with `--` (`--force`) is a word; a phrase is passed over.
_NEGATION = re.compile(r'"[^"]*"|(?:(?<=\s)|(?<=\()|^)-(?=[^\s-])')
_LINK_TERM = "kblinkfield"  # the placeholder a link field is parsed as: path:kblinkfieldN


def link_fields(text: str) -> list[tuple[str, str]]:
    """The query's `links:NOTE` and `linkedby:NOTE` terms as (field, NOTE), in order. Each stands for a
    set of notes (see bind_link_fields), and combines with the rest of the query like any other term:
    AND, OR, NOT and `-`, parentheses."""
    for match in _EMPTY_LINK_FIELD.finditer(text):
        if match.group(1) is not None:
            raise QueryError(f"'{match.group(1)}:' needs a note")
    found: list[tuple[str, str]] = []
    for match in _LINK_FIELD.finditer(text):
        if match.group(1) is None:
            continue
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if not value.strip():
            raise QueryError(f"'{match.group(1)}:' needs a note")
        found.append((match.group(1), value))
    return found


def _link_placeholders(text: str) -> str:
    count = 0

    def placeholder(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1) is None:
            return match.group()
        count += 1
        return f"path:{_LINK_TERM}{count - 1}"

    return _LINK_FIELD.sub(placeholder, text)


def bind_link_fields(query: Any, sets: list[frozenset[str]]) -> Any:
    """The parsed query with its N-th link field (in link_fields' order) standing for the notes `sets[N]`
    (their paths)."""
    from whoosh import query as wq

    def bind(sub: Any) -> Any:
        if isinstance(sub, wq.Term) and sub.fieldname == "path" and str(sub.text).startswith(_LINK_TERM):
            paths = sorted(sets[int(str(sub.text)[len(_LINK_TERM) :])])
            if not paths:
                return wq.NullQuery
            return wq.Or([wq.Term("path", p) for p in paths], boost=sub.boost)
        return sub.apply(bind)

    return bind(query)


def parse_query(text: str, now: datetime) -> Any:
    """Parse kb's query language into a Whoosh query, or raise QueryError."""
    _check_syntax(text)
    plain = plain_query(text)
    return plain if plain is not None else parse_with_parser(text, now)


def parse_with_parser(text: str, now: datetime) -> Any:
    from whoosh import qparser
    from whoosh.qparser.dateparse import DateParserPlugin

    _check_syntax(text)
    # Dates are read by kb.when (the one date reader) and handed to Whoosh as absolute ranges; a tag
    # written as kb and Obsidian show it (tag:#ideas) is the tag.
    prepared = _TAG_MARK.sub(r"\1", absolute_dates(text, now))
    prepared = _NEGATION.sub(
        lambda m: "NOT " if m.group() == "-" else m.group(), _link_placeholders(prepared)
    )
    # In a phrase, a space between characters of a script written without spaces may be in the note or
    # not (people type one where the text has none): "数据 库" is that phrase or the phrase 数据库. (After
    # `links:"A B"` became a placeholder.)
    prepared = _QUOTED.sub(_spaced_or_not, prepared)
    bad_dates: list[str] = []
    parser = qparser.MultifieldParser(["title", "body"], schema(), group=qparser.AndGroup)
    parser.remove_plugin_class(qparser.PlusMinusPlugin)
    # `-word` excludes; a word people paste that starts with `--` (`--force`) is searched for.
    parser.add_plugin(qparser.PlusMinusPlugin(minusexpr=r"(?:(?<=\s)|(?<=\()|^)-(?=[^\s-])"))
    parser.add_plugin(qparser.FuzzyTermPlugin())
    parser.add_plugin(qparser.GtLtPlugin())
    parser.add_plugin(qparser.FieldAliasPlugin({"tags": ["tag"]}))
    parser.add_plugin(
        DateParserPlugin(
            basedate=now.astimezone(UTC).replace(tzinfo=None), callback=bad_dates.append, free=False
        )
    )
    from whoosh.qparser.common import QueryParserError
    from whoosh.qparser.dateparse import DateParseError

    errors = (QueryParserError, DateParseError, ValueError, TypeError, IndexError, KeyError, OverflowError,
              RecursionError)  # fmt: skip
    try:
        query = parser.parse(prepared)
    except Exception as exc:
        # Whoosh's date field raises Exception itself for a value it cannot read; anything else unexpected
        # goes on to cli's handler.
        if type(exc) is not Exception and not isinstance(exc, errors):
            raise
        raise _parse_error(text, exc) from None
    query = _constant_union(_also_longer_words(_fold_negations(_any_word(query)), typed_forms(text)))
    if bad_dates:
        raise QueryError(f"cannot read the date '{bad_dates[0]}' ({_DATE_HINT})")
    return query


_DATE_RANGE = re.compile(r"\b(created|modified):\[([^\]]*)\]")
_DATE_TERM = re.compile(r"\b(created|modified):(>=|<=|>|<)?(\"[^\"]*\"|'[^']*'|[^\s\[\"'()][^\s()]*)")
_ISO = "%Y-%m-%dT%H:%M:%S.%f"
# Whoosh's date parser fails on an open-ended range: the ends are written out instead.
_EARLIEST = "1000-01-01T00:00:00.000000"
_LATEST = "9999-12-31T23:59:59.999999"


def absolute_dates(text: str, now: datetime) -> str:
    """The query with every `created:`/`modified:` value read by kb.when and written as an absolute
    range Whoosh reads: `modified:"last week"` -> `modified:[2026-11-23T... to 2026-11-30T...]`."""
    from datetime import timedelta

    from kb.when import parse_when

    tick = timedelta(microseconds=1)

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime(_ISO)

    def value(raw: str) -> str:
        return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'" else raw

    def one_range(match: re.Match[str]) -> str:
        field, inside = match.group(1), match.group(2)
        low, _, high = _split_range(inside)
        start = stamp(parse_when(value(low), now).start) if low else _EARLIEST
        end = stamp(parse_when(value(high), now).last) if high else _LATEST
        return f"{field}:[{start} to {end}]"

    def one_term(match: re.Match[str]) -> str:
        field, op, raw = match.group(1), match.group(2) or "", match.group(3)
        when = parse_when(value(raw), now)
        if op == ">":
            return f"{field}:[{stamp(when.last + tick)} to {_LATEST}]"
        if op == ">=":
            return f"{field}:[{stamp(when.start)} to {_LATEST}]"
        if op == "<":
            return f"{field}:[{_EARLIEST} to {stamp(when.start - tick)}]"
        if op == "<=":
            return f"{field}:[{_EARLIEST} to {stamp(when.last)}]"
        return f"{field}:[{stamp(when.start)} to {stamp(when.last)}]"

    return _DATE_TERM.sub(one_term, _DATE_RANGE.sub(one_range, text))


def _split_range(inside: str) -> tuple[str, str, str]:
    """`A to B`, `A to`, `to B` -> (A, "to", B) with either side possibly empty."""
    found = re.search(r"(?i)(?:^|\s)to(?:\s|$)", inside)
    if found is None:
        return inside.strip(), "", ""
    return inside[: found.start()].strip(), "to", inside[found.end() :].strip()


_NOT_A_DATE = re.compile(r"'(.*)' is not a parseable date")


def _parse_error(text: str, exc: BaseException) -> QueryError:
    """kb's words for what went wrong in Whoosh's parser (never Python's own message)."""
    found = _NOT_A_DATE.search(str(exc))
    if found:
        return QueryError(f"cannot read the date '{found.group(1)}' ({_DATE_HINT})")
    if _DATE_VALUE.search(text) or re.search(r"\b(created|modified):\[", text):
        return QueryError(f"cannot read a date in the query ({_DATE_HINT})")
    return QueryError("cannot parse the query: check its quotes, brackets, operators and field names")
