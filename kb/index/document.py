"""What of a note the index holds, and how its words are read: the schema, the analyzer, a note's
fields, and the snippets shown with a hit."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kb.notes import ParsedNote, parse_note, parse_timestamp, split_document, split_text, tag_with_parents

MAX_INDEXED_CHARS = 1_000_000  # of one note's text; the rest of a huge note is not searchable
DATE_FIELDS = ("created", "modified")
WORD_PATTERN = r"[^\W_]+(?:\.[^\W_]+)*"


def analyzer() -> Any:
    from whoosh.analysis import CharsetFilter, StemmingAnalyzer
    from whoosh.lang.porter2 import stem
    from whoosh.support.charset import accent_map

    # Words are runs of letters and digits (dots inside kept: "e.g", "example.org"); Markdown's `*` and `_`
    # markup is not part of a word. No stop words: a phrase matches exactly what was typed. Tokens over
    # 64 characters are dropped. Stemmed by Porter's second stemmer (Snowball's English): Whoosh's default,
    # the first, keeps a doubled consonant ("running" is "runn", never "run").
    stemmed = StemmingAnalyzer(expression=WORD_PATTERN, stoplist=None, minsize=1, maxsize=64, stemfn=stem)
    return stemmed | CharsetFilter(accent_map)


def schema() -> Any:
    from whoosh import fields

    analyze = analyzer()
    return fields.Schema(
        path=fields.ID(unique=True, stored=True),
        title=fields.TEXT(analyzer=analyze, field_boost=3.0, stored=True),
        title_sort=fields.ID(sortable=True),
        body=fields.TEXT(analyzer=analyze),
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


_WORD = re.compile(WORD_PATTERN)


@functools.lru_cache(maxsize=1 << 16)
def normal_word(word: str) -> str:
    """A word as the index stores it: lower case, accents folded, stemmed (the analyzer's steps)."""
    from whoosh.lang.porter2 import stem
    from whoosh.support.charset import accent_map

    return stem(word.lower()).translate(accent_map) if len(word) <= 64 else ""


_FIRST_LETTERS: dict[str, str] = {}


def _first_letter(word: str) -> str:
    """The first letter of normal_word(word) (stemming only changes endings), without stemming: it depends
    on the word's first character only, so it is worked out once per character."""
    first = word[:1]
    letter = _FIRST_LETTERS.get(first)
    if letter is None:
        from whoosh.support.charset import accent_map

        table: Any = accent_map
        letter = _FIRST_LETTERS[first] = first.lower().translate(table)[:1]
    return letter


@dataclass(frozen=True)
class Snippet:
    """A passage of a note around matches: its text as the note has it (white space folded, `…` where it
    is cut) and the [start, end) character offsets of the matched words in that text."""

    text: str
    matches: tuple[tuple[int, int], ...]


_SPACE = re.compile(r"\s+")


def snippets_of(body: str, terms: frozenset[str], top: int = 2, width: int = 160) -> tuple[Snippet, ...]:
    """Up to `top` passages of about `width` characters around the first matches. Scans only as far as
    it needs to."""
    spans: list[tuple[int, int]] = []
    fragments: list[tuple[int, int]] = []
    firsts = {term[:1] for term in terms}
    for match in _WORD.finditer(body):
        word = match.group()
        if _first_letter(word) not in firsts or normal_word(word) not in terms:
            continue
        start, end = match.span()
        if fragments and start < fragments[-1][1]:
            spans.append((start, end))
            continue
        if len(fragments) == top:
            break
        begin = max(0, start - width // 3, fragments[-1][1] if fragments else 0)
        space = body.rfind(" ", 0, begin + 1) if begin else -1
        begin = space + 1 if space >= 0 and begin - space < 20 else begin
        fragments.append((begin, min(len(body), begin + width)))
        spans.append((start, end))
    out = []
    for begin, finish in fragments:
        text = "…" if begin else ""
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
        out.append(Snippet(text + ("…" if finish < len(body) else ""), tuple(matches)))
    return tuple(out)


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
    firsts = {term[:1] for term in terms}
    found: dict[int, tuple[tuple[int, int], ...]] = {}
    for n, line in enumerate(lines):
        spans = tuple(
            m.span()
            for m in _WORD.finditer(line)
            if _first_letter(m.group()) in firsts and normal_word(m.group()) in terms
        )
        if spans:
            found[n] = spans
    if context is None:
        return len(found), ()
    shown: set[int] = set()
    for n in found:
        shown.update(range(max(0, n - context), min(len(lines), n + context + 1)))
    return len(found), tuple(Line(first + n, lines[n], found.get(n, ())) for n in sorted(shown))
