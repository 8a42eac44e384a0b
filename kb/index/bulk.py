"""Writing many versions of the same notes into a Whoosh index at once (the history index's first build).

Whoosh's writer analyses the whole text of every document and passes each of its postings through a
sorting pool, pickled to disk past its memory limit. For thousands of versions that differ by a line,
nearly all of that work is the same again and again. Here the body of each document is analysed a line
at a time (a word never spans a line), a line seen before is not analysed again, and the body's postings
are kept per term and written term by term when the segment is written; every other field goes through
Whoosh's writer as usual. The segment written is the one Whoosh's own writer makes of the same documents:
the same terms, postings, weights, positions and lengths (a test compares them posting by posting).

When the body postings held in memory pass a bound, the segment is written and a new one begun, so memory
stays bounded whatever the number of versions.
"""

from __future__ import annotations

import mmap
import os
import select
import shutil
import signal
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

BODY = "body"
LINE_CACHE = 200_000  # lines whose tokens are kept
ENCODED_CACHE = 500_000  # lists of positions whose encoding is kept
SEGMENT_POSTINGS = 2_500_000  # body postings held in memory before the segment is written
PARALLEL = 2000  # rows; from here two processes share the work (on two cores or more)

Row = TypeVar("Row")
Progress = Callable[[int, int], None]


class BulkError(Exception):
    """The second process of a build failed (its message says why)."""


Tokens = tuple[tuple[bytes, int], ...]


class BulkWriter:
    """Adds documents to `ix` (a Whoosh FileIndex) as one or more new segments. Used like Whoosh's writer:
    `add` each document's fields, then `commit` (or `cancel`). The index's own write lock is taken per
    segment; the caller holds kb's lock around the whole."""

    def __init__(self, ix: Any, **options: Any) -> None:
        self.ix = ix
        self.options = options
        self.field = ix.schema[BODY]
        self.analyzer = self.field.analyzer
        self.encode = self.field.format.encode
        self.boost = float(self.field.format.field_boost)
        self.scorable = bool(self.field.scorable)
        self.lines: dict[str, Tokens] = {}
        self.encoded: dict[tuple[int, ...], bytes] = {}
        self.writer: Any = None
        self.postings: dict[bytes, tuple[list[int], list[int], list[bytes]]] = {}
        self.lengths: list[int] = []
        self.held = 0

    def add(self, fields: dict[str, Any]) -> None:
        if self.writer is None:
            self.writer = _segment_writer(self.ix, self.options)
            self.postings, self.lengths, self.held = {}, [], 0
        fields = dict(fields)
        body = fields.pop(BODY, None)
        writer = self.writer
        docnum = writer.docnum
        writer.add_document(**fields)
        length = self._add_body(docnum, body) if isinstance(body, str) else 0
        self.lengths.append(length)
        if length and self.scorable:
            # the body's length, recorded as Whoosh's writer records it for an analysed field
            writer.perdocwriter.add_field(BODY, self.field, None, length)
        if self.held >= SEGMENT_POSTINGS:
            self._write_segment()

    def commit(self, adopt: Sequence[Any] = ()) -> None:
        """Write what is held; `adopt`: segments of another index whose files were moved into this one's
        folder, made part of the index by the same commit."""
        if self.writer is None and adopt:
            self.writer = _segment_writer(self.ix, self.options)
            self.postings, self.lengths, self.held = {}, [], 0
        if self.writer is not None:
            self.writer.segments = list(self.writer.segments) + list(adopt)
            self._write_segment()

    def cancel(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            self.postings = {}
            writer.cancel()

    # ------------------------------------------------------------ internals

    def _tokens(self, line: str) -> Tokens:
        """A line's words (as the index stores them: UTF-8) and their positions in the line."""
        tokens = tuple(
            (t.text.encode("utf-8"), t.pos) for t in self.analyzer(line, positions=True, mode="index")
        )
        if len(self.lines) >= LINE_CACHE:
            self.lines.clear()
        self.lines[line] = tokens
        return tokens

    def _add_body(self, docnum: int, body: str) -> int:
        """The body's postings kept; its length (words) returned."""
        poses: dict[bytes, list[int]] = {}
        found_in = poses.get
        lines = self.lines
        offset = 0
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
            offset += len(tokens)
        postings = self.postings
        encoded = self.encoded
        if len(encoded) >= ENCODED_CACHE:
            encoded.clear()
        for term, positions in poses.items():
            # Most words of a version are where they were in the version before: their positions were
            # encoded already.
            key = tuple(positions)
            value = encoded.get(key)
            if value is None:
                value = encoded[key] = self.encode(positions)
            entry = postings.get(term)
            if entry is None:
                postings[term] = ([docnum], [len(positions)], [value])
            else:
                entry[0].append(docnum)
                entry[1].append(len(positions))
                entry[2].append(value)
        self.held += len(poses)
        return offset

    def _write_segment(self) -> None:
        writer, self.writer = self.writer, None
        writer.body_postings = (self.postings, self.lengths, self.boost)
        self.postings, self.lengths, self.held = {}, [], 0
        writer.commit(merge=False)


def _segment_writer(ix: Any, options: dict[str, Any]) -> Any:
    from whoosh.codec.whoosh3 import W3PostingsWriter
    from whoosh.util.numeric import byte_to_length, length_to_byte
    from whoosh.writing import SegmentWriter

    class Writer(SegmentWriter):
        """Whoosh's writer, whose segment gets the body's postings from the BulkWriter (written between the
        fields before "body" and those after it, in Whoosh's order: field, term, document)."""

        body_postings: tuple[dict[bytes, tuple[list[int], list[int], list[bytes]]], list[int], float]

        def _flush_segment(self) -> None:
            self.perdocwriter.close()
            lengths = self.per_document_reader() if self.codec.length_stats else None
            items = iter(self.pool.iter_postings())
            after: list[Any] = []

            def before() -> Any:
                for item in items:
                    if item[0] > BODY:
                        after.append(item)
                        return
                    yield item

            fieldwriter = self.fieldwriter
            fieldwriter.add_postings(self.schema, lengths, before())
            postings, doc_lengths, boost = self.body_postings
            if postings:
                # the length a posting carries is the document's length as the segment stores it (one byte)
                stored = [byte_to_length(length_to_byte(n)) for n in doc_lengths]
                base = self.docbase
                fieldwriter.start_field(BODY, self.schema[BODY])
                for term in sorted(postings):
                    docs, freqs, values = postings[term]
                    fieldwriter.start_term(term)
                    weights = [freq * boost for freq in freqs]
                    sizes = [stored[docnum - base] for docnum in docs]
                    blocks = getattr(fieldwriter, "_postwriter", None)
                    if isinstance(blocks, W3PostingsWriter):
                        _add_blocks(blocks, docs, weights, values, sizes)
                    else:
                        for posting in zip(docs, weights, values, sizes, strict=True):
                            fieldwriter.add(*posting)
                    fieldwriter.finish_term()
                fieldwriter.finish_field()
            if after:
                fieldwriter.add_postings(self.schema, lengths, _chain(after, items))
            fieldwriter.close()
            if lengths is not None:
                lengths.close()

    return Writer(ix, **options)


def _add_blocks(
    writer: Any, docs: list[int], weights: list[float], values: list[bytes], lengths: list[int]
) -> None:
    """One term's postings given to Whoosh's postings writer a block at a time: the blocks and statistics
    its add_posting() would gather one posting at a time (the last block left for finish_postings())."""
    from array import array

    limit = writer._blocklimit
    count = len(docs)
    for start in range(0, count, limit):
        end = min(start + limit, count)
        block_weights = weights[start:end]
        block_lengths = [length for length in lengths[start:end] if length]
        writer._ids = array("I", docs[start:end])
        writer._weights = array("f", block_weights)
        writer._values = [value for value in values[start:end] if value]
        writer._maxweight = max(0, max(block_weights))
        writer._minlength = min(block_lengths, default=None)
        writer._maxlength = max(block_lengths, default=0)
        if end < count:
            writer._write_block()


def _chain(first: list[Any], rest: Any) -> Any:
    yield from first
    yield from rest


def write(
    ix: Any,
    folder: Path,
    rows: Sequence[Row],
    documents: Callable[[Sequence[Row]], Iterator[dict[str, Any] | None]],
    share: Callable[[Row], int],
    progress: Progress | None = None,
    **options: Any,
) -> int:
    """Every document `documents` makes of `rows` (one per row, None for a row that has none) added to `ix`,
    whose folder is `folder`; returns how many. From PARALLEL rows on a machine of two cores or more, the
    rows whose `share` is odd are written by a forked process into an index beside `folder`, whose
    segments then join this one's (rows of one note should share a share: its lines are analysed once)."""
    if len(rows) < PARALLEL or (os.cpu_count() or 1) < 2:
        writer = BulkWriter(ix, **options)
        try:
            count = _add_all(writer, documents(rows), len(rows), 0, progress, None)
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        if progress is not None:
            progress(len(rows), len(rows))
        return count
    mine = [row for row in rows if share(row) % 2 == 0]
    theirs = [row for row in rows if share(row) % 2 == 1]
    part = folder.with_name(folder.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    counter = mmap.mmap(-1, 8)
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the second process: its rows into an index of its own, then out (never returns)
        os.close(reading)
        _second(ix.schema, part, documents(theirs), counter, writing, options)
    os.close(writing)
    writer = BulkWriter(ix, **options)
    try:
        count = _add_all(writer, documents(mine), len(rows), 0, progress, counter)
        message = _wait_for(reading, counter, len(rows), progress, len(mine))
        _, status = os.waitpid(pid, 0)
        pid = 0
        if status != 0 or not message.isdigit():
            raise BulkError(message or "the second writer stopped without a word")
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


def _add_all(
    writer: BulkWriter,
    docs: Iterable[dict[str, Any] | None],
    total: int,
    base: int,
    progress: Progress | None,
    counter: mmap.mmap | None,
) -> int:
    count = 0
    done = base
    for doc in docs:
        done += 1
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
    docs: Iterator[dict[str, Any] | None],
    counter: mmap.mmap,
    writing: int,
    options: dict[str, Any],
) -> None:
    """The forked process: writes its documents into a new index in `part`, counting rows done in
    `counter`; says how many documents (or what went wrong) on `writing`; exits, whatever happens."""
    code = 1
    parent = os.getppid()
    try:
        from whoosh import index

        writer = BulkWriter(index.create_in(str(part), schema), **options)
        count = done = 0
        for doc in docs:
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
