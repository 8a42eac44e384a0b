"""The Whoosh index in index/: schema (versioned), incremental updates, freshness, query parsing, search.

The index is derived data: it can always be rebuilt from notes/. Next to Whoosh's files the catalog
(kb.catalog) records, for every indexed note, the (mtime_ns, size, inode) it was indexed at; comparing that
with notes/ tells what changed outside kb without reading unchanged files. A catalog row is written only
after the index commit that covers it, so a failed or interrupted update simply leaves the note "changed"
for next time.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb.catalog import CATALOG, Catalog, CatalogError, Entry, Signature
from kb.errors import KbError, UsageError
from kb.notes import parse_note, parse_timestamp, tag_with_parents, title_from_stem
from kb.store import INDEX_DIR, Store

MAX_INDEXED_CHARS = 1_000_000  # of one note's text; the rest of a huge note is not searchable
WRITER_TIMEOUT = 10.0
# Segments are written as separate files, not one compound file: whoosh3 reads a compound segment's term
# dictionary into memory on every open (a copy of tens of MB at 10k notes: ~60 ms and ~100 MB per segment
# for every search and every change); separate files are read where needed.
COMPOUND = False
MERGE_AFTER_SEGMENTS = 8
BULK = 2000  # notes; from here a build uses two processes
FIELDS = ("title", "body", "tag", "tags", "created", "modified")
DATE_FIELDS = ("created", "modified")
WORD_PATTERN = r"[^\W_]+(?:\.[^\W_]+)*"

Progress = Callable[[int, int], None]  # (done, total)


def _entry(sig: Signature, doc: dict[str, Any]) -> Entry:
    created, modified = doc["dates"]
    return Entry(
        sig, doc["title"], tuple(doc["tag_list"]), created, modified, doc["_problem"], doc["_warnings"]
    )


class NeedsRebuild(Exception):
    """The index must be built anew."""


class QueryError(UsageError):
    """A query that cannot be parsed (exit 2)."""


@dataclass(frozen=True)
class Hit:
    rank: int
    path: str
    title: str
    tags: tuple[str, ...]
    created: str | None
    modified: str | None
    score: float | None  # None when sorted by something other than relevance
    snippets: tuple[str, ...]  # matched words marked with ** (Markdown bold)


@dataclass(frozen=True)
class SearchResult:
    query: str
    total: int | None  # None: more than shown match, not counted
    hits: tuple[Hit, ...]
    refreshed: int  # notes indexed because they changed outside kb
    rebuilt: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RefreshReport:
    added: int
    updated: int
    removed: int
    rebuilt: bool

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.removed


def _analyzer() -> Any:
    from whoosh.analysis import CharsetFilter, StemmingAnalyzer
    from whoosh.support.charset import accent_map

    # Words are runs of letters and digits (dots inside kept: "e.g", "example.org"); Markdown's `*` and `_`
    # markup is not part of a word. No stop words: a phrase matches exactly what was typed. Tokens over
    # 64 characters are dropped.
    return StemmingAnalyzer(expression=WORD_PATTERN, stoplist=None, minsize=1, maxsize=64) | CharsetFilter(
        accent_map
    )


def schema() -> Any:
    from whoosh import fields

    analyzer = _analyzer()
    return fields.Schema(
        path=fields.ID(unique=True, stored=True),
        title=fields.TEXT(analyzer=analyzer, field_boost=3.0, stored=True),
        title_sort=fields.ID(sortable=True),
        body=fields.TEXT(analyzer=analyzer),
        tags=fields.KEYWORD(lowercase=True, commas=True, scorable=True),
        tag_list=fields.STORED(),
        created=fields.DATETIME(sortable=True),
        modified=fields.DATETIME(sortable=True),
        dates=fields.STORED(),
    )


def _naive_utc(value: str | None) -> datetime | None:
    moment = parse_timestamp(value) if value else None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


def document(path: str, raw: bytes) -> dict[str, Any] | None:
    """The fields of one note, or None for a file that is not text."""
    parsed = parse_note(raw, with_extra=False)
    if parsed.problem and parsed.doc is None and parsed.problem.startswith("binary"):
        return None
    if parsed.doc is not None:
        body = parsed.body if not parsed.problem else parsed.doc.render()
    else:
        body = raw.decode("utf-8", "replace")
    title = parsed.title or title_from_stem(Path(path).stem)
    expanded: list[str] = []
    for tag in parsed.tags:
        expanded.extend(t for t in tag_with_parents(tag) if t not in expanded)
    fields: dict[str, Any] = {
        "path": path,
        "title": title,
        "title_sort": title.casefold(),
        "body": body[:MAX_INDEXED_CHARS],
        "tags": ",".join(t.replace(",", " ") for t in expanded),
        "tag_list": list(parsed.tags),
        "dates": [parsed.created, parsed.modified],
        "_problem": parsed.problem,
        "_warnings": tuple(parsed.warnings),
    }
    for key in DATE_FIELDS:
        moment = _naive_utc(getattr(parsed, key))
        if moment is not None:
            fields[key] = moment
    return fields


def _fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


class NoteIndex:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = Store(root)
        self.folder = root / INDEX_DIR

    # ------------------------------------------------------------ state

    def exists(self) -> bool:
        return (self.folder / CATALOG).is_file()

    def catalog(self) -> Catalog | None:
        """The catalog of every indexed note (None when there is no usable index)."""
        return Catalog.open(self.folder)

    def _open(self) -> Any:
        from whoosh import index

        return index.open_dir(str(self.folder))

    # ------------------------------------------------------------ building

    def rebuild(self, progress: Progress | None = None) -> int:
        """Build a new index from notes/; a broken one is moved aside first. Returns the note count."""
        from whoosh import index

        self._move_aside()
        self.folder.mkdir(parents=True, exist_ok=True)
        ix = index.create_in(str(self.folder), schema())
        sigs = self.store.scan()[0]
        paths = sorted(sigs)
        procs = 2 if len(paths) >= BULK and (os.cpu_count() or 1) >= 2 else 1
        options: dict[str, Any] = {"limitmb": 256, "compound": COMPOUND}
        if procs > 1:
            options.update(procs=procs, multisegment=True)
        writer = ix.writer(timeout=WRITER_TIMEOUT, **options)
        indexed: dict[str, Entry] = {}
        try:
            for done, path in enumerate(paths, 1):
                doc = self._read_document(path)
                if doc is not None:
                    indexed[path] = _entry(sigs[path], doc)
                    writer.add_document(**_fields(doc))
                if progress and (done % 50 == 0 or done == len(paths)):
                    progress(done, len(paths))
            writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.cancel()
            raise
        Catalog.create(self.folder, indexed)
        return len(indexed)

    def _read_document(self, path: str) -> dict[str, Any] | None:
        try:
            raw = self.store.read(path)
        except KbError:
            return None
        return document(path, raw)

    def _move_aside(self) -> None:
        """A broken or outdated index goes to .git/kb-index-broken (the last one is kept for inspection)."""
        if not self.folder.exists():
            return
        git_dir = self.root / ".git"
        target = git_dir / "kb-index-broken" if git_dir.is_dir() else self.root / ".kb-index-broken"
        shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(self.folder, target)
        except OSError:
            shutil.rmtree(self.folder, ignore_errors=True)

    def update(self, paths: Iterable[str]) -> None:
        """Index exactly these notes (a missing file is removed from the index). No index yet: nothing."""
        wanted = set(paths)
        catalog = self.catalog()
        if catalog is None or not wanted:
            return
        with catalog:
            if len(wanted) >= BULK and len(wanted) > catalog.count():
                catalog.close()
                self.rebuild()  # more new than indexed (a large import): building anew is faster
                return
            self._apply(catalog, wanted)

    def _apply(self, catalog: Catalog, paths: set[str]) -> None:
        ix = self._open()
        writer = ix.writer(timeout=WRITER_TIMEOUT, compound=COMPOUND)
        put: dict[str, Entry] = {}
        drop: list[str] = []
        try:
            for path in sorted(paths):
                full = self.root / path
                st = os.lstat(full) if full.exists() and not full.is_symlink() else None
                doc = self._read_document(path) if st is not None else None
                if doc is None:
                    writer.delete_by_term("path", path)
                    drop.append(path)
                else:
                    writer.update_document(**_fields(doc))
                    assert st is not None
                    put[path] = _entry((st.st_mtime_ns, st.st_size, st.st_ino), doc)
            if len(ix._segments()) > MERGE_AFTER_SEGMENTS:
                writer.commit()
            else:
                writer.commit(merge=False)
        except BaseException:
            with contextlib.suppress(Exception):
                writer.cancel()
            raise
        try:
            catalog.apply(put, drop)
        except CatalogError as exc:
            raise KbError(f"cannot write the search catalog: {exc}") from None

    def refresh(self) -> RefreshReport:
        """Index what was added, changed or removed in notes/ since the last update. Raises NeedsRebuild
        when the index is missing, broken or of another schema version."""
        catalog = self.catalog()
        if catalog is None or not self._has_toc():
            raise NeedsRebuild("the search index is missing, unreadable or of another version")
        with catalog:
            try:
                known = catalog.signatures()
            except CatalogError:
                raise NeedsRebuild("the search catalog is damaged") from None
            current = self.store.scan()[0]
            if current == known:  # the common case, compared without a Python loop
                return RefreshReport(0, 0, 0, False)
            added = {p for p in current if p not in known}
            removed = {p for p in known if p not in current}
            updated = {p for p, sig in current.items() if p in known and known[p] != sig}
            if added or removed or updated:
                self._apply(catalog, added | removed | updated)
        return RefreshReport(len(added), len(updated), len(removed), False)

    def _has_toc(self) -> bool:
        """Whoosh's table of contents is there (a damaged index is found when it is read, and rebuilt)."""
        try:
            return any(name.endswith(".toc") for name in os.listdir(self.folder))
        except OSError:
            return False

    # ------------------------------------------------------------ searching

    def search(
        self,
        parsed: Any,
        *,
        limit: int | None,
        tag: str | None,
        sort: str,
        snippets: bool,
        count: bool = False,
    ) -> tuple[int | None, list[Hit], list[str]]:
        """Run a query made by parse_query. Snippets come from the note files of the hits shown. Returns
        the count (None: more than `limit`, not counted), the hits, and notices about the query."""
        from whoosh import query as wq

        ix = self._open()
        with ix.searcher() as searcher:
            filter_q = wq.Term("tags", tag.lower()) if tag else None
            sortedby: Any = None
            reverse = False
            if sort in ("modified", "created"):
                sortedby, reverse = sort, True
            elif sort == "title":
                sortedby = "title_sort"
            elif sort != "relevance":
                raise UsageError(f"unknown sort order '{sort}' (relevance, modified, created or title)")
            # One more than asked tells whether there are more without counting them all (an exact count
            # costs a second pass over every match: slow for phrases and prefixes). `count` asks for it.
            wanted = None if limit is None else limit + 1
            results = searcher.search(
                parsed, limit=wanted, filter=filter_q, sortedby=sortedby, reverse=reverse
            )
            found = results.scored_length()
            if limit is None or found <= limit:
                total: int | None = found
            else:
                total = len(results) if count else None
            shown = min(found, limit) if limit is not None else found
            terms = _body_terms(parsed, searcher.reader()) if snippets and shown else frozenset()
            hits = []
            for rank, hit in enumerate(results[:shown], 1):
                stored = hit.fields()
                created, modified = (stored.get("dates") or [None, None])[:2]
                hits.append(
                    Hit(
                        rank=rank,
                        path=stored["path"],
                        title=stored["title"],
                        tags=tuple(stored.get("tag_list") or ()),
                        created=created,
                        modified=modified,
                        score=round(float(hit.score or 0.0), 4) if sortedby is None else None,
                        snippets=self._snippets(stored["path"], terms) if snippets else (),
                    )
                )
            notices = _bound_notices(parsed)
        return total, hits, notices

    def _snippets(self, path: str, terms: frozenset[str]) -> tuple[str, ...]:
        try:
            raw = self.store.read(path)
        except KbError:
            return ()
        doc = document(path, raw)
        if doc is None:
            return ()
        body: str = doc["body"]
        found = snippets_of(body, terms) if terms else ()
        if found:
            return found
        lines = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
        return (" ".join(lines[0].split())[:160],) if lines else ()


_WORD = re.compile(WORD_PATTERN)


@functools.lru_cache(maxsize=1 << 16)
def _normal(word: str) -> str:
    """A word as the index stores it: lower case, accents folded, stemmed (the analyzer's steps)."""
    from whoosh.lang.porter import stem
    from whoosh.support.charset import accent_map

    return stem(word.lower()).translate(accent_map) if len(word) <= 64 else ""


def _first_letter(word: str) -> str:
    """The first letter of _normal(word) (stemming only changes endings), without stemming."""
    from whoosh.support.charset import accent_map

    table: Any = accent_map
    return word[:1].lower().translate(table)[:1]


def snippets_of(body: str, terms: frozenset[str], top: int = 2, width: int = 160) -> tuple[str, ...]:
    """Up to `top` fragments of about `width` characters around the first matches, matched words in **.
    Scans only as far as it needs to."""
    spans: list[tuple[int, int]] = []
    fragments: list[tuple[int, int]] = []
    firsts = {term[:1] for term in terms}
    for match in _WORD.finditer(body):
        word = match.group()
        if _first_letter(word) not in firsts or _normal(word) not in terms:
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
        pieces, pos = [], begin
        for start, end in spans:
            if start >= begin and end <= finish and start >= pos:
                pieces += [body[pos:start], "**", body[start:end], "**"]
                pos = end
        pieces.append(body[pos:finish])
        text = " ".join("".join(pieces).split())
        out.append(("…" if begin else "") + text + ("…" if finish < len(body) else ""))
    return tuple(out)


def _body_terms(parsed: Any, reader: Any, most: int = 5000) -> frozenset[str]:
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


# ---------------------------------------------------------------- query language

_DATE_VALUE = re.compile(r"\b(created|modified):(>=|<=|>|<)?(?=[^\s\['\"(])([^\s)]+)")
_FUZZY = re.compile(r"~(\d+)")
_EMPTY_FIELD = re.compile(r"\b(title|body|tag|tags|created|modified):(?=\s|$|\))")
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


def _bound_notices(parsed: Any) -> list[str]:
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

    analyzer = _analyzer()
    parts = []
    for word in words:
        tokens = [token.text for token in analyzer(word)]
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
