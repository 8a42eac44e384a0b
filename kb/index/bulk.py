"""Writing many versions of the same notes into a Whoosh index at once (the history index's first build).

Whoosh's writer analyses the whole text of every document and passes each of its postings through a
sorting pool, pickled to disk past its memory limit. For thousands of versions that differ by a line,
nearly all of that work is the same again and again. Here each document's fields are written as Whoosh's
add_document() writes them (stored fields, columns, lengths), but its postings are held per field and term
in typed arrays and written a block at a time when the segment is written: the body analysed a line at a
time (a word never spans a line; a line seen before is not analysed again, nor a list of positions
encoded again), the other fields by Whoosh's own code (a note's title, tags and path once for all its
versions). The segment is the one Whoosh's writer makes of the same documents: the same terms, postings,
weights, positions, lengths, columns and stored fields (a test compares them one by one).

When the postings held pass a bound, the segment is written and a new one begun, so memory stays bounded
whatever the number of versions. `write` shares the work between two processes.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import select
import shutil
import signal
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from kb.forked import spawn

BODY = "body"
LINE_CACHE = 20_000  # lines whose tokens are kept (a note's versions come one after another)
ENCODED_CACHE = 100_000  # lists of positions whose encoding is kept
ITEMS_CACHE = 50_000  # values of other fields whose terms are kept
WEIGHTS = 1024  # a body word's weight for each frequency below this, made once
SEGMENT_POSTINGS = 5_000_000  # postings held in memory (about 20 bytes each) before a segment is written
PARALLEL = 2000  # rows; from here two processes share the work (on two cores or more)

Row = TypeVar("Row")
Progress = Callable[[int, int], None]


class BulkError(Exception):
    """The second process of a build failed (its message says why)."""


Tokens = tuple[tuple[bytes, int], ...]
Items = tuple[tuple[bytes, int, float, bytes], ...]  # a field's (term, frequency, weight, encoded value)
# a term's documents, weights (as Whoosh keeps them: 32-bit floats), encoded values and document lengths
Postings = tuple["array[int]", "array[float]", list[bytes], "array[int]"]


class BulkWriter:
    """Adds documents to `ix` (a Whoosh FileIndex) as one or more new segments. Used like Whoosh's writer:
    `add` each document's fields, then `commit` (or `cancel`). The index's own write lock is taken per
    segment; the caller holds kb's lock around the whole."""

    def __init__(self, ix: Any, **options: Any) -> None:
        self.ix = ix
        self.options = options
        self.schema = ix.schema
        for name, field in self.schema.items():
            if field.separate_spelling() or field.vector:
                raise TypeError(f"field {name!r}: spelling words and vectors are not written here")
        body = self.schema[BODY]
        self.analyse = line_analyser(body.analyzer)
        self.encode = body.format.encode
        self.weights = [float(freq) * body.format.field_boost for freq in range(WEIGHTS)]
        self.lines: dict[str, Tokens] = {}
        self.encoded: dict[tuple[int, ...], bytes] = {}
        self.single: dict[int, bytes] = {}  # the encoding of a word's one position
        self.items: dict[tuple[str, object], tuple[Items, int]] = {}
        self.writer: Any = None
        self.postings: dict[str, dict[bytes, Postings]] = {}
        self.held = 0

    def add(self, fields: dict[str, Any]) -> None:
        """One document, as Whoosh's add_document() adds it: its stored fields, columns and lengths now,
        its postings held for the segment."""
        if self.writer is None:
            self._begin()
        writer = self.writer
        docnum = writer.docnum
        perdoc = writer.perdocwriter
        perdoc.start_doc(docnum)
        for name in sorted(name for name in fields if not name.startswith("_")):
            value = fields[name]
            if value is None:
                continue
            field = self.schema[name]
            length = 0
            if field.indexed:
                if name == BODY:
                    length = self._add_body(docnum, value)
                else:
                    length = self._add_items(name, field, docnum, value)
            perdoc.add_field(name, field, value if field.stored else None, length)
            if field.column_type is not None:
                perdoc.add_column_value(name, field.column_type, field.to_column_value(value))
        perdoc.finish_doc()
        writer.docnum += 1
        writer._added = True
        if self.held >= SEGMENT_POSTINGS:
            self._write_segment()

    def commit(self, adopt: Sequence[Any] = ()) -> None:
        """Write what is held; `adopt`: segments of another index whose files were moved into this one's
        folder, made part of the index by the same commit."""
        if self.writer is None and adopt:
            self._begin()
        if self.writer is not None:
            self.writer.segments = list(self.writer.segments) + list(adopt)
            self._write_segment()

    def cancel(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            self.postings = {}
            writer.cancel()

    # ------------------------------------------------------------ internals

    def _begin(self) -> None:
        self.writer = _segment_writer(self.ix, self.options)
        self.postings, self.held = {}, 0

    def _record(self, name: str, term: bytes, docnum: int, weight: float, value: bytes, length: int) -> None:
        terms = self.postings.get(name)
        if terms is None:
            terms = self.postings[name] = {}
        entry = terms.get(term)
        if entry is None:
            terms[term] = (array("I", (docnum,)), array("f", (weight,)), [value], array("I", (length,)))
        else:
            entry[0].append(docnum)
            entry[1].append(weight)
            entry[2].append(value)
            entry[3].append(length)

    def _add_items(self, name: str, field: Any, docnum: int, value: object) -> int:
        """A field other than the body: Whoosh's own terms of it, recorded (those of a text value kept: a
        note's versions share their title, tags and path); its length returned."""
        keep = isinstance(value, (str, datetime)) and not field.unique
        known = self.items.get((name, value)) if keep else None
        if known is None:
            items = tuple(
                (term, freq, weight, vbytes or b"") for term, freq, weight, vbytes in field.index(value)
            )
            known = (items, sum(freq for _, freq, _, _ in items) if field.scorable else 0)
            if keep:
                if len(self.items) >= ITEMS_CACHE:
                    self.items.clear()
                self.items[(name, value)] = known
        items, length = known
        stored = _stored_length(length)
        for term, _, weight, vbytes in items:
            self._record(name, term, docnum, weight, vbytes, stored)
        self.held += len(items)
        return length

    def _tokens(self, line: str) -> Tokens:
        """A line's words (as the index stores them: UTF-8) and their positions in the line."""
        tokens = self.analyse(line)
        if len(self.lines) >= LINE_CACHE:
            self.lines.clear()
        self.lines[line] = tokens
        return tokens

    def _add_body(self, docnum: int, body: str) -> int:
        """The body's postings recorded; its length (words) returned."""
        poses: dict[bytes, list[int]] = {}
        found_in = poses.get
        lines = self.lines
        offset = length = 0
        for line in body.split("\n"):
            tokens = lines.get(line)
            if tokens is None:
                tokens = self._tokens(line)
            for term, pos in tokens:
                found = found_in(term)
                if found is None:
                    poses[term] = [pos + offset]
                else:
                    found.append(pos + offset)
            if tokens:
                length += len(tokens)
                offset += tokens[-1][1] + 1  # positions the line took: fewer than its words in a run of pairs
        encoded = self.encoded
        if len(encoded) >= ENCODED_CACHE:
            encoded.clear()
        stored = _stored_length(length)
        weights = self.weights
        terms = self.postings.get(BODY)
        if terms is None:
            terms = self.postings[BODY] = {}
        single = self.single
        one = weights[1]
        for term, positions in poses.items():
            # Most words of a version are where they were in the version before: their positions were
            # encoded already (most words are once in a version: those by their one position).
            if len(positions) == 1:
                position = positions[0]
                value = single.get(position)
                if value is None:
                    value = single[position] = self.encode(positions)
                weight = one
            else:
                key = tuple(positions)
                value = encoded.get(key)
                if value is None:
                    value = encoded[key] = self.encode(positions)
                freq = len(positions)
                weight = weights[freq] if freq < WEIGHTS else float(freq) * one
            entry = terms.get(term)
            if entry is None:
                terms[term] = (array("I", (docnum,)), array("f", (weight,)), [value], array("I", (stored,)))
            else:
                docs, held_weights, values, lengths = entry
                docs.append(docnum)
                held_weights.append(weight)
                values.append(value)
                lengths.append(stored)
        self.held += len(poses)
        return length

    def _write_segment(self) -> None:
        writer, self.writer = self.writer, None
        writer.held_postings = self.postings
        self.postings, self.held = {}, 0
        writer.commit(merge=False)


def line_analyser(analyzer: Any) -> Callable[[str], Tokens]:
    """What `analyzer` makes of a line, as (word, position) pairs. The analyser of kb's text fields (a
    regular expression's matches, lower-cased, runs of scripts written without spaces made pairs, stemmed,
    accents folded) is run here as one loop, without the chain of generators of Whoosh's (four times
    faster; a test compares them); any other analyser as Whoosh runs it."""
    from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter
    from whoosh.analysis.analyzers import CompositeAnalyzer

    from kb.index.document import Pairs, dense, fold, pairs, parts

    items: list[Any] = list(analyzer.items) if isinstance(analyzer, CompositeAnalyzer) else []
    kinds = [type(item) for item in items]
    if kinds != [RegexTokenizer, LowercaseFilter, Pairs, StemFilter, CharsetFilter] or items[0].gaps:
        return lambda line: tuple(
            (t.text.encode("utf-8"), t.pos) for t in analyzer(line, positions=True, mode="index")
        )
    finditer = items[0].expression.finditer
    stem = items[3]._stem
    ignore = items[3].ignore
    charmap = items[4].charmap

    def indexed(word: str) -> bytes:
        """A word (lower case, folded) as the index stores it: stemmed, accents folded, UTF-8."""
        return (word if word in ignore else stem(word)).translate(charmap).encode("utf-8")

    def analyse(line: str) -> Tokens:
        found: list[tuple[bytes, int]] = []
        position = 0
        for match in finditer(line):
            word = match.group(0).lower()
            if not word.isascii():
                word = fold(word)
            if dense(word):
                words, position = pairs(word, position, True)
                found.extend((indexed(text), pos) for text, pos, _, _ in words)
                continue
            if "." in word:  # its parts at one position each, the word whole at the first (Pairs)
                found.append((indexed(word), position))
                for part, _ in parts(word):
                    found.append((indexed(part), position))
                    position += 1
                continue
            if word not in ignore:
                word = stem(word)
            found.append((word.translate(charmap).encode("utf-8"), position))
            position += 1
        return tuple(found)

    return analyse


@functools.cache
def _stored_length(length: int) -> int:
    """A document's field length as a segment stores it (one byte) and a posting carries it."""
    from whoosh.util.numeric import byte_to_length, length_to_byte

    return int(byte_to_length(length_to_byte(length))) if length else 0


def _segment_writer(ix: Any, options: dict[str, Any]) -> Any:
    from whoosh.codec.whoosh3 import W3PostingsWriter
    from whoosh.writing import SegmentWriter

    class Writer(SegmentWriter):
        """Whoosh's writer, whose segment's postings are those the BulkWriter held (its own pool is left
        empty), written in Whoosh's order: field, term, document."""

        held_postings: dict[str, dict[bytes, Postings]]

        def _flush_segment(self) -> None:
            self.perdocwriter.close()
            fieldwriter = self.fieldwriter
            for name in sorted(self.held_postings):
                terms = self.held_postings[name]
                fieldwriter.start_field(name, self.schema[name])
                for term in sorted(terms):
                    docs, weights, values, lengths = terms[term]
                    fieldwriter.start_term(term)
                    blocks = getattr(fieldwriter, "_postwriter", None)
                    if isinstance(blocks, W3PostingsWriter):
                        _add_blocks(blocks, docs, weights, values, lengths)
                    else:
                        for posting in zip(docs, weights, values, lengths, strict=True):
                            fieldwriter.add(*posting)
                    fieldwriter.finish_term()
                fieldwriter.finish_field()
            fieldwriter.close()

    return Writer(ix, **options)


def _add_blocks(
    writer: Any, docs: array[int], weights: array[float], values: list[bytes], lengths: array[int]
) -> None:
    """One term's postings given to Whoosh's postings writer a block at a time: the blocks and statistics
    its add_posting() would gather one posting at a time (the last block left for finish_postings())."""
    limit = writer._blocklimit
    count = len(docs)
    for start in range(0, count, limit):
        end = min(start + limit, count)
        block_weights = weights[start:end]
        block_lengths = lengths[start:end]
        writer._ids = docs[start:end]
        writer._weights = block_weights
        writer._values = [value for value in values[start:end] if value]
        writer._maxweight = max(0, max(block_weights))
        writer._minlength = min(filter(None, block_lengths), default=None)
        writer._maxlength = max(block_lengths)
        if end < count:
            writer._write_block()


def write(
    ix: Any,
    folder: Path,
    rows: Sequence[Row],
    documents: Callable[[Sequence[Row]], Iterator[dict[str, Any] | None]],
    weigh: Callable[[Sequence[Row]], Sequence[int]],
    progress: Progress | None = None,
    **options: Any,
) -> int:
    """Every document `documents` makes of `rows` (one per row, None for a row that has none) added to `ix`,
    whose folder is `folder`; returns how many. From PARALLEL rows on a machine of two cores or more, the
    rows are cut in two where the weights `weigh` gives them (their sizes, say) add up to half, and the
    second part is written by a forked process into an index beside `folder`, whose segments then join this
    one's (rows in the order the caller gives: a note's versions one after another are analysed line by
    line once; only the note cut in two is analysed by both)."""
    if len(rows) < PARALLEL or (os.cpu_count() or 1) < 2:
        return _write_one(ix, rows, documents, progress, options)
    cut = _half(weigh(rows))
    mine, theirs = rows[:cut], rows[cut:]
    part = folder.with_name(folder.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    counter = mmap.mmap(-1, 8)
    writer = BulkWriter(ix, **options)
    reading, writing = os.pipe()
    parent = os.getpid()
    # the second process: its rows into an index of its own, then out
    pid = spawn(
        lambda: _second(
            ix.schema, part, lambda: documents(theirs), counter, reading, writing, parent, options
        )
    )
    os.close(writing)
    if pid < 0:  # no second process to be had (a limit on processes, memory): all of it here
        os.close(reading)
        shutil.rmtree(part, ignore_errors=True)
        return _write_one(ix, rows, documents, progress, options)
    try:
        count = _add_all(writer, documents(mine), len(rows), progress, counter)
        writer.commit()  # this part's segment written while the second process writes its own
        message = _wait_for(reading, counter, len(rows), progress, len(mine))
        _, status = os.waitpid(pid, 0)
        pid = 0
        if status != 0 or not message.isdigit():
            how = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"status {status}"
            raise BulkError(message or f"the second writer stopped without a word ({how})")
        from whoosh import index

        adopted = index.open_dir(str(part))._segments()
        for segment in adopted:
            prefix = segment.segment_id() + "."
            for name in os.listdir(part):
                if name.startswith(prefix):
                    os.replace(part / name, folder / name)
        writer.commit(adopt=adopted)
        if progress is not None:
            progress(len(rows), len(rows))
        return count + int(message)
    except BaseException:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        writer.cancel()
        raise
    finally:
        os.close(reading)
        shutil.rmtree(part, ignore_errors=True)


def _write_one(
    ix: Any,
    rows: Sequence[Row],
    documents: Callable[[Sequence[Row]], Iterator[dict[str, Any] | None]],
    progress: Progress | None,
    options: dict[str, Any],
) -> int:
    writer = BulkWriter(ix, **options)
    try:
        count = _add_all(writer, documents(rows), len(rows), progress, None)
        writer.commit()
    except BaseException:
        writer.cancel()
        raise
    if progress is not None:
        progress(len(rows), len(rows))
    return count


def _half(weights: Sequence[int]) -> int:
    """Where to cut rows of these weights in two parts of about the same weight (neither empty)."""
    total = sum(weights)
    running = 0
    for n, weight in enumerate(weights):
        running += weight
        if 2 * running >= total:
            return min(max(n + 1, 1), len(weights) - 1)
    return len(weights) // 2


def _add_all(
    writer: BulkWriter,
    docs: Iterable[dict[str, Any] | None],
    total: int,
    progress: Progress | None,
    counter: mmap.mmap | None,
) -> int:
    count = 0
    for done, doc in enumerate(docs, 1):
        if doc is not None:
            writer.add(doc)
            count += 1
        if progress is not None and done % 100 == 0:
            progress(done + _read(counter), total)
    return count


def _read(counter: mmap.mmap | None) -> int:
    return 0 if counter is None else int(struct.unpack_from("q", counter, 0)[0])


def _second(
    schema: Any,
    part: Path,
    docs: Callable[[], Iterator[dict[str, Any] | None]],
    counter: mmap.mmap,
    reading: int,
    writing: int,
    parent: int,
    options: dict[str, Any],
) -> None:
    """The forked process (kb.forked.spawn: it dies with the first, whose lock it holds a copy of): writes
    its documents into a new index in `part`, counting rows done in `counter`; says how many documents (or
    what went wrong) on `writing`; exits, whatever happens."""
    code = 1
    try:
        os.close(reading)
        from whoosh import index

        writer = BulkWriter(index.create_in(str(part), schema), **options)
        count = done = 0
        for doc in docs():
            done += 1
            if doc is not None:
                writer.add(doc)
                count += 1
            if done % 100 == 0:
                struct.pack_into("q", counter, 0, done)
                if os.getppid() != parent:
                    return  # the first process is gone (killed): its build will be made anew
        writer.commit()
        struct.pack_into("q", counter, 0, done)
        os.write(writing, str(count).encode())
        code = 0
    except BaseException as exc:  # reported to the first process, which raises it as a BulkError
        with contextlib.suppress(OSError):
            os.write(writing, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:2000])
    finally:
        os._exit(code)


def _wait_for(reading: int, counter: mmap.mmap, total: int, progress: Progress | None, mine: int) -> str:
    """The second process's last word (read until it closes the pipe), progress shown meanwhile."""
    chunks = []
    while True:
        ready, _, _ = select.select([reading], [], [], 0.25)
        if ready:
            chunk = os.read(reading, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        elif progress is not None:
            progress(mine + _read(counter), total)
    return b"".join(chunks).decode("utf-8", "replace")
