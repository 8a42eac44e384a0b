"""What of a note the index holds, and how its words are read: the schema, the analyzer, a note's
fields, and the snippets shown with a hit."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kb.index.postings import fast_postings
from kb.notes import ParsedNote, parse_note, parse_timestamp, split_document, split_text, tag_with_parents

MAX_INDEXED_CHARS = 1_000_000  # of one note's text; the rest of a huge note is not searchable
DATE_FIELDS = ("created", "modified")
# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer; Chinese and Japanese): a run of
# them is read as its pairs of characters (Pairs), so that a word inside a longer run is found.
DENSE = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u303c\u3040-\u30ff"
    "\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
# Combining marks (vowel signs, viramas, diacritics) are part of the word they are in: Python's \w leaves
# them out, which splits Hindi, Bengali or Thai words at every vowel sign. (Blocks of scripts whose marks
# sit between letters, taken whole but for their sentence punctuation.)
MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0711\u0730-\u074a"
    "\u07a6-\u07b0\u0900-\u0963\u0966-\u096f\u0971-\u0dff\u0e00-\u0eff\u0f18-\u0f19\u0f35\u0f37\u0f39"
    "\u0f3e-\u0f3f\u0f71-\u0f84\u0f86-\u0f87\u0f8d-\u0fbc\u1000-\u109f\u1780-\u17ff\u1ab0-\u1aff"
    "\u1dc0-\u1dff\u20d0-\u20f0\ufe20-\ufe2f"
)
_LETTERS = rf"[{MARKS}]*[^\W_]+(?:[{MARKS}]+[^\W_]*)*"
WORD_PATTERN = rf"{_LETTERS}(?:\.{_LETTERS})*"


@functools.cache
def _dense_run() -> re.Pattern[str]:
    """A run of DENSE characters. (Made when first needed: a class this large takes milliseconds to
    compile, and a text of ASCII never needs it.)"""
    return re.compile(f"[{DENSE}]+")


@functools.cache
def _pieces() -> re.Pattern[str]:
    """A word's runs of DENSE characters and of others."""
    return re.compile(f"[{DENSE}]+|[^{DENSE}]+")


def analyzer() -> Any:
    from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter
    from whoosh.lang.porter2 import stem
    from whoosh.support.charset import accent_map

    # Words are runs of letters and digits, their combining marks included (dots inside kept: "e.g",
    # "example.org"); Markdown's `*` and `_` markup is not part of a word. No stop words: a phrase matches
    # exactly what was typed. Stemmed by Porter's second stemmer (Snowball's English): Whoosh's default,
    # the first, keeps a doubled consonant ("running" is "runn", never "run"). Runs of scripts written
    # without spaces become their pairs of characters (Pairs), before stemming.
    return (
        RegexTokenizer(WORD_PATTERN)
        | LowercaseFilter()
        | __getattr__("Pairs")()
        | StemFilter(stemfn=stem, cachesize=50000)
        | CharsetFilter(accent_map)
    )


# After NFKC: letters that fold to two (ß, æ, œ), and the combining accents no letter took in
_FOLDS: dict[int, str | None] = {ord("ß"): "ss", ord("æ"): "ae", ord("œ"): "oe"}
_FOLDS.update({code: None for code in range(0x300, 0x370)})


def fold(word: str) -> str:
    """A lower-cased word in one form: NFKC (an accent typed as a letter and a combining mark, as macOS
    writes names, is the accented letter; ﬁ is fi, full-width ＡＢＣ is abc, half-width ｶﾅ is カナ), ß as ss,
    æ as ae, œ as oe, combining accents left alone dropped (accent folding takes the others)."""
    return word if word.isascii() else unicodedata.normalize("NFKC", word).translate(_FOLDS)


def parts(word: str) -> list[tuple[str, int]]:
    """The parts of a word with dots (docs.python.org: docs, python, org), each with its offset in it
    (see Pairs: a part is found as grep finds it)."""
    found = []
    at = 0
    for part in word.split("."):
        if part:
            found.append((part, at))
        at += len(part) + 1
    return found


def dense(word: str) -> bool:
    """Whether `word` has characters of a script written without spaces (see Pairs)."""
    return not word.isascii() and _dense_run().search(word) is not None


def __getattr__(name: str) -> Any:
    """`Pairs`, made when first asked for (Whoosh's analysis module is imported then, not with this one):
    the index's schema names it, so unpickling an index's schema asks this module for it."""
    if name == "Pairs":
        made = globals().get("Pairs")
        if made is None:
            globals()["Pairs"] = made = _pairs_class()
        return made
    raise AttributeError(name)


def _pairs_class() -> type:
    from whoosh.analysis import Filter

    class Pairs(Filter):
        """A run of characters of a script written without spaces (DENSE), as its pairs of characters:
        `数据库` is `数据` and `据库` at two positions one after the other, so that a word of two characters
        is one term and a longer one a phrase of its pairs (the text fields' `multitoken_query`), found
        inside any longer run. Each character is indexed too, at the position of the pair it begins (the
        last at the last pair's), so that one character alone finds a note; a query reads only the pairs.
        Letters of other scripts in the same word stay a word of their own. Later words' positions are
        moved along (a run of n characters takes n - 1 positions, one at least). A word that is not ASCII
        is put in one form first (fold)."""

        def __eq__(self, other: object) -> bool:
            return type(other) is type(self)

        def __hash__(self) -> int:
            return hash(type(self))

        def __call__(self, tokens: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            shift = 0
            for t in tokens:
                if t.positions:
                    t.pos += shift
                text = t.text
                if not text.isascii():
                    t.text = text = fold(text)
                if "*" in text or "?" in text:  # a query's wildcard (never in a word of a note)
                    core = text.strip("*")
                    if not _dense_run().fullmatch(core):
                        yield t
                        continue
                    text = core  # *据*: a run is found inside longer ones anyway
                whole = getattr(t, "original", None) is not None  # a prefix's text, not tokenized
                if "." in text and not whole and "*" not in text and "?" not in text and not dense(text):
                    # docs.python.org: its parts, one after the other, as a phrase a query reads (so
                    # that python, or obsidian.md in help.obsidian.md, is found); the word whole too
                    # in the index, at the first part's position (for a prefix: docs.py*)
                    first = t.pos if t.positions else 0
                    start = t.startchar if t.chars else 0
                    if t.mode != "query":
                        yield t
                    pieces = parts(text)
                    for n, (part, begin) in enumerate(pieces):
                        t.text = part
                        if t.positions:
                            t.pos = first + n
                        if t.chars:
                            t.startchar, t.endchar = start + begin, start + begin + len(part)
                        yield t
                    shift += len(pieces) - 1
                    continue
                if not dense(text):
                    yield t
                    continue
                first = t.pos if t.positions else 0
                start = t.startchar if t.chars else 0
                found, after = pairs(text, first, t.mode != "query")
                for text, pos, begin, end in found:
                    t.text = text
                    if t.positions:
                        t.pos = pos
                    if t.chars:
                        t.startchar, t.endchar = start + begin, start + end
                    yield t
                shift += after - first - 1

    Pairs.__qualname__ = "Pairs"  # pickled by name with the schema: kb.index.document.Pairs
    Pairs.__module__ = __name__
    return Pairs


def pairs(word: str, pos: int, index: bool) -> tuple[list[tuple[str, int, int, int]], int]:
    """What Pairs makes of a word that has characters of a script written without spaces, from position
    `pos`: (text, position, start, end) each (start and end: offsets in `word`), and the position of the
    word after it. `index`: for the index (pairs and single characters), else for a query (pairs only)."""
    found: list[tuple[str, int, int, int]] = []
    for piece in _pieces().finditer(word):
        text, begin = piece.group(), piece.start()
        n = len(text)
        if n == 1 or _dense_run().match(text) is None:
            found.append((text, pos, begin, begin + n))
            pos += 1
            continue
        for i in range(n - 1):
            if index:
                found.append((text[i], pos + i, begin + i, begin + i + 1))
            found.append((text[i : i + 2], pos + i, begin + i, begin + i + 2))
        if index:
            found.append((text[n - 1], pos + n - 2, begin + n - 1, begin + n))
        pos += n - 1
    return found, pos


def schema() -> Any:
    from whoosh import fields

    fast_postings()

    analyze = analyzer()
    return fields.Schema(
        path=fields.ID(unique=True, stored=True),
        title=fields.TEXT(analyzer=analyze, field_boost=3.0, stored=True, multitoken_query="phrase"),
        title_sort=fields.ID(sortable=True),
        body=fields.TEXT(analyzer=analyze, multitoken_query="phrase"),
        tags=fields.KEYWORD(lowercase=True, commas=True, scorable=True),
        folder=fields.KEYWORD(lowercase=True, commas=True),
        tag_list=fields.STORED(),
        created=fields.DATETIME(sortable=True),
        modified=fields.DATETIME(sortable=True),
        dates=fields.STORED(),
    )


def _naive_utc(value: str | None) -> datetime | None:
    moment = parse_timestamp(value) if value else None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


DatesFallback = Callable[[str], tuple[str | None, str | None]]


def dated(
    dates: tuple[str | None, str | None], path: str, fallback: DatesFallback | None
) -> tuple[str | None, str | None]:
    """A note's (created, modified) as indexed: its front matter's, each missing one from `fallback`."""
    created, modified = dates
    if fallback is not None and (created is None or modified is None):
        found = fallback(path)
        created, modified = created or found[0], modified or found[1]
    return created, modified


def document(
    path: str, raw: bytes, fallback: DatesFallback | None = None, folder: str = "", links: bool = True
) -> dict[str, Any] | None:
    """The fields of one note, or None for a file that is not text. `fallback`: (created, modified) of a
    note whose front matter has no dates (from git, else the file's times). `folder`: the note's folder
    relative to the notes root. `links`: whether its links are read too (`_links`, for the catalog)."""
    parsed = parse_note(raw, with_extra=False)
    body = indexed_body(parsed, raw)
    if body is None:
        return None
    title = parsed.title_for(path)
    expanded: list[str] = []
    tags = parsed.all_tags
    for tag in tags:
        expanded.extend(t for t in tag_with_parents(tag) if t not in expanded)
    created, modified = dated(parsed.dates, path, fallback)
    if links:
        from kb.links import note_links  # only where a note is indexed: a search loads no link code
    fields: dict[str, Any] = {
        "path": path,
        "title": title,
        "title_sort": title.casefold(),
        "body": body[:MAX_INDEXED_CHARS],
        "tags": ",".join(t.replace(",", " ") for t in expanded),
        "tag_list": list(tags),
        "folder": ",".join(tag_with_parents(folder)) if folder else "",
        "dates": [created, modified],
        "_problem": parsed.problem,
        "_warnings": tuple(parsed.warnings),
        "_links": note_links(parsed) if links else [],
    }
    for key, value in zip(DATE_FIELDS, (created, modified), strict=True):
        moment = _naive_utc(value)
        if moment is not None:
            fields[key] = moment
    return fields


def plain_body(raw: bytes) -> str | None:
    """indexed_body() of a note known to have nothing wrong with it (its front matter read without a
    problem, or none): the text after the front matter, found without reading the YAML. None when the
    bytes say otherwise (not UTF-8 text, a front matter not closed)."""
    split = split_text(raw)
    if split is None or split[1] is not None:
        return None
    return split[0].body


def indexed_body(parsed: ParsedNote, raw: bytes) -> str | None:
    """The text of a note that is indexed as its body (all of it when its front matter cannot be read);
    None for a file that is not text."""
    if parsed.problem and parsed.doc is None and parsed.problem.startswith("binary"):
        return None
    if parsed.doc is not None:
        return parsed.body if not parsed.problem else parsed.doc.render()
    return raw.decode("utf-8", "replace")


def writable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


_WORD = re.compile(WORD_PATTERN, re.UNICODE)  # as Whoosh's tokenizer compiles it: one compile for both


@functools.lru_cache(maxsize=1 << 16)
def normal_word(word: str) -> str:
    """A word as the index stores it: lower case, accents folded, stemmed (the analyzer's steps)."""
    from whoosh.lang.porter2 import stem
    from whoosh.support.charset import accent_map

    return stem(fold(word.lower())).translate(accent_map) if len(word) <= 64 else ""


def unstemmed_word(word: str) -> str:
    """normal_word without the stemming: the word as typed, lower case, in one form, accents folded."""
    from whoosh.support.charset import accent_map

    table: Any = accent_map  # keyed by code point
    return fold(word.lower()).translate(table) if len(word) <= 64 else ""


def _matches(text: str, terms: frozenset[str]) -> Iterator[tuple[int, int]]:
    """The [start, end) offsets of the words of `text` the index stores as one of `terms` (and of the
    parts of words with dots: document.parts), in order; in a run of a script written without spaces,
    each place a term of that script is (body_terms gives such a term as the characters typed: `数据库`,
    not its pairs)."""
    if not terms:
        return  # a query of fields only (title:, tag:, *): no word of the body is one
    phrases = [term for term in terms if PHRASE in term]
    if phrases:
        singles = terms.difference(phrases)
        found = list(_matches(text, singles)) if singles else []
        for phrase in phrases:
            found.extend(_phrase_matches(text, phrase.split(PHRASE)))
        yield from sorted(set(found))
        return
    if text.isascii():
        yield from _ascii_matches(text, terms)
        return
    runs = tuple(term for term in terms if dense(term))
    for match in _WORD.finditer(text):
        word = match.group()
        if normal_word(word) in terms:
            yield match.span()
        elif runs and dense(word):
            yield from _run_matches(word, match.start(), terms, runs)
        elif "." in word:
            for piece, begin in parts(word):
                if normal_word(piece) in terms:
                    yield match.start() + begin, match.start() + begin + len(piece)


PHRASE = "\x00"  # between the words of a phrase in a term of _matches (query.body_terms)


def _phrase_matches(text: str, words: list[str]) -> list[tuple[int, int]]:
    """Where the words of a phrase (as the index stores them) are one after the other in `text`: from
    each place its first word is, the words that follow (the parts of a name with dots one by one)."""
    found = []
    for start, _ in _matches(text, frozenset(words[:1])):
        following = _words_from(text, start)
        end = start
        for word in words:
            token = next(following, None)
            if token is None or token[0] != word:
                break
            end = token[1]
        else:
            found.append((start, end))
    return found


def _words_from(text: str, at: int) -> Iterator[tuple[str, int]]:
    """The words of `text` from `at` as the index stores them, each with the offset of its end; a name
    with dots by its parts."""
    for match in _WORD.finditer(text, at):
        word = match.group()
        if "." in word and not dense(word):
            for part, begin in parts(word):
                yield normal_word(part), match.start() + begin + len(part)
        else:
            yield normal_word(word), match.end()


# The words whose stem does not begin as the word does (Porter2's exceptional forms): dying is die.
_STEM_UNLIKE_WORD = {"die": "dy", "lie": "ly", "tie": "ty"}


def _heads(terms: frozenset[str]) -> tuple[str, ...]:
    """How the ASCII words that the index stores as one of `terms` begin, in lower case. A word's stem is
    the word but for its last letters: Porter2 deletes endings and replaces them with ones that differ in
    at most their last two letters (-biliti is -ble), and the words of _STEM_UNLIKE_WORD; so such a word
    begins with the term but for its last two letters, or with its first two when it is shorter. (Checked
    on 2.2 million words: the notes and source of several projects, with 31 endings added to each.)"""
    heads = set()
    for term in terms:
        if not term.isascii() or not term[:1].isalnum():
            continue  # a term an ASCII word never is
        head = term[:-2] if len(term) >= 4 else term[:2]
        # up to a dot (a name with dots): the regular expression must not step over where a part begins
        heads.add(head[: next((i for i, c in enumerate(head) if not c.isalnum()), len(head))])
        if term in _STEM_UNLIKE_WORD:
            heads.add(_STEM_UNLIKE_WORD[term])
    return tuple(sorted(heads))


def _ascii_matches(text: str, terms: frozenset[str]) -> Iterator[tuple[int, int]]:
    """_matches of a text that is all ASCII (most notes), looking only at the words that begin as a term
    does (_heads): one regular expression skips the others at C speed, and stemming the words it finds
    is most of the time. It looks in the text in lower case (the same offsets, in ASCII), where a head is
    plain letters: Python's regular expressions search for one of those far faster (20x for one head)
    than for letters in any case after a look behind."""
    heads = _heads(terms)
    if not heads:
        return
    word_at = _WORD.match
    lower = text.lower()
    end = 0  # of the last word found: a part of it is not found again
    for first in _ascii_starting(heads).finditer(lower):
        start = first.start()
        if start < end or (start and lower[start - 1].isalnum()):
            # Inside a word: not where a word begins. A head is letters and digits only, so no other
            # head begins inside this one either (the search goes on after it).
            continue
        if start and text[start - 1] == "." and not _begins_a_word(text, start):
            part = _part().match(text, start)  # a part of a word with dots, after its dot (example.org)
            if part is not None and normal_word(part.group()) in terms:
                yield part.span()
            continue
        match = word_at(text, start)
        if match is None:
            continue
        if normal_word(match.group()) in terms:
            end = match.end()
            yield match.span()
        elif "." in match.group():  # the first part of a word with dots
            part = _part().match(text, start)
            if part is not None and normal_word(part.group()) in terms:
                yield part.span()


@functools.lru_cache(maxsize=64)
def _ascii_starting(heads: tuple[str, ...]) -> re.Pattern[str]:
    """Where one of `heads` (lower case) is, in ASCII text in lower case: _ascii_matches keeps the places
    not after a letter or a digit (after a dot, it looks closer)."""
    return re.compile("|".join(map(re.escape, heads)))


@functools.cache
def _part() -> re.Pattern[str]:
    """A word's letters up to a dot."""
    return re.compile(_LETTERS)


@functools.cache
def _mark() -> re.Pattern[str]:
    return re.compile(f"[{MARKS}]")


def _wordy(char: str) -> bool:
    """Whether `char` may be part of a word of _WORD: what `[\\w.]` matches (a letter, a digit, `_`, a dot)
    or a combining mark. (The class of marks is compiled for text that is not ASCII only: a millisecond.)"""
    return char.isalnum() or char in "_." or (not char.isascii() and _mark().match(char) is not None)


def _begins_a_word(text: str, at: int) -> bool:
    """Whether a word of _WORD begins at `at` (after a dot, it may be the end of a word with dots)."""
    back = at
    while back and _wordy(text[back - 1]):
        back -= 1
    return any(m.start() == at for m in _WORD.finditer(text, back, at + 1))


def _run_matches(
    word: str, offset: int, terms: frozenset[str], runs: tuple[str, ...]
) -> list[tuple[int, int]]:
    """Where `runs` (and, between them, the words of other scripts of `terms`) are in `word`, one span
    where they overlap."""
    spans = []
    for piece in _pieces().finditer(word):
        text, begin = piece.group(), offset + piece.start()
        if _dense_run().match(text) is None:
            if normal_word(text) in terms:
                spans.append((begin, begin + len(text)))
            continue
        for run in runs:
            at = text.find(run)
            while at >= 0:
                spans.append((begin + at, begin + at + len(run)))
                at = text.find(run, at + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class Snippet:
    """A passage of a note around matches: its text as the note has it (white space folded, `…` where it
    is cut) and the [start, end) character offsets of the matched words in that text."""

    text: str
    matches: tuple[tuple[int, int], ...]


_SPACE = re.compile(r"\s+")
_MARKS_AND_SPACE = " \t\r\n#>*-+"  # Markdown's marks at the start of a line, and white space


def snippets_of(body: str, terms: frozenset[str], top: int = 2, width: int = 160) -> tuple[Snippet, ...]:
    """Up to `top` passages of about `width` characters around the first matches. Scans only as far as
    it needs to."""
    spans: list[tuple[int, int]] = []
    fragments: list[tuple[int, int]] = []
    # A first line `# Heading` is the title (kb and Notable write it so): a passage after it starts below it.
    first = len(body) - len(body.lstrip())
    heading = body.find("\n", first) + 1 if body.startswith("# ", first) else 0
    for start, end in _matches(body, terms):
        if fragments and start < fragments[-1][1]:
            spans.append((start, end))
            continue
        if len(fragments) == top:
            break
        floor = fragments[-1][1] if fragments else heading if start >= heading else 0
        begin = max(0, start - width // 3, floor)
        space = body.rfind(" ", floor, begin + 1) if begin > floor else -1
        begin = space + 1 if space >= 0 and begin - space < 20 else begin
        if not body[floor:begin].strip(_MARKS_AND_SPACE):
            begin = floor  # only marks (`# `, `- `) before it: nothing cut
        # never from or to the middle of a link, whose marks could not be taken out then
        link = _link_at(body, begin)
        if link is not None:
            if link[0] >= floor and (start < link[1] or start - link[0] <= width * 2 // 3):
                begin = link[0]
            elif link[1] <= start:
                begin = link[1]
        finish = min(len(body), begin + width)
        link = _link_at(body, finish)
        if link is not None and link[1] - finish <= width:
            finish = link[1]
        fragments.append((begin, finish))
        spans.append((start, end))
    out = []
    for begin, finish in fragments:
        text = "…" if body[heading if begin >= heading else 0 : begin].strip(_MARKS_AND_SPACE) else ""
        matches: list[tuple[int, int]] = []
        pos = begin
        for start, end in spans:
            if start >= begin and end <= finish and start >= pos:
                gap = _SPACE.sub(" ", body[pos:start])
                text += gap.lstrip() if pos == begin else gap
                matches.append((len(text), len(text) + end - start))
                text += body[start:end]
                pos = end
        tail = _SPACE.sub(" ", body[pos:finish])
        text += (tail.lstrip() if pos == begin else tail).rstrip()
        out.append(Snippet(text + ("…" if body[finish:].strip() else ""), tuple(matches)))
    return tuple(out)


_LINKS = re.compile(r"!?\[\[[^\]\n]*\]\]|!?\[[^\]\n]*\]\([^)\n]*\)")  # [[wiki]], [text](url)


def _link_at(body: str, at: int) -> tuple[int, int] | None:
    """The [start, end) of the link `at` is inside of (not at its start), or None."""
    if "[" not in body[max(0, at - 400) : at]:
        return None
    for match in _LINKS.finditer(body, max(0, at - 400), min(len(body), at + 400)):
        if match.start() < at < match.end():
            return match.span()
        if match.start() >= at:
            break
    return None


@dataclass(frozen=True)
class Line:
    """A line of a note's file shown with a search hit: its number in the file (from 1), its text, and the
    [start, end) offsets of the matched words in it (none: a context line)."""

    number: int
    text: str
    matches: tuple[tuple[int, int], ...]


def matching_lines(text: str, terms: frozenset[str], context: int | None) -> tuple[int, tuple[Line, ...]]:
    """How many lines of the note's body hold a matched word, and (with `context`, as grep -C does) those
    lines with `context` lines before and after each, in order. Front matter is not searched; line numbers
    are the file's."""
    doc, _ = split_document(text)
    first = 1 + (doc.open_line + doc.fm_text + doc.close_line).count("\n")
    lines = doc.body.splitlines()
    found: dict[int, tuple[tuple[int, int], ...]] = {}
    for n, line in enumerate(lines):
        spans = tuple(_matches(line, terms))
        if spans:
            found[n] = spans
    if context is None:
        return len(found), ()
    shown: set[int] = set()
    for n in found:
        shown.update(range(max(0, n - context), min(len(lines), n + context + 1)))
    return len(found), tuple(Line(first + n, lines[n], found.get(n, ())) for n in sorted(shown))
