"""How kb writes and reads a block of postings (Whoosh's whoosh3 codec, changed where it was slow), set up
once per process by fast_postings() before an index is created or opened.

A block holds up to 128 postings of one word: their document numbers, weights (how often the word is in
each document) and values (the positions of the word in each, for phrases). Whoosh pickles the three
together and compresses the pickle, so that scoring a block (which reads only numbers and weights) also
decompresses and loads every position. kb writes a block of a word with positions in two parts, each
pickled and compressed on its own: the numbers and weights, then the values, read only when asked for (a
phrase, a merge). The block's header says which: Whoosh keeps the compression level there (0 or more); a
split block has minus the length of its first part.

Old blocks (one part, protocol 2 or 4) are read as before, so an index written by an earlier kb keeps
working, and its segments are written anew when they are merged or rebuilt. An earlier kb could not read
a split block's positions: the search catalog's version (kb.index.catalog.VERSION, and the history
index's) says that an index may hold them, and an earlier kb rebuilds such an index.
"""

from __future__ import annotations

import functools
import pickle
import zlib
from itertools import accumulate
from typing import Any

from kb.index.phrases import exact_phrases
from kb.index.quality import sound_skips

BLOCK_PICKLE_PROTOCOL = 4
# Whoosh's own methods that fast_postings replaced, by "Class.name" (what an earlier kb ran: its tests write
# an index as an earlier kb did with them).
REPLACED: dict[str, Any] = {}


@functools.cache
def fast_postings() -> None:
    """Set up Whoosh's postings writer and reader (whoosh.codec.whoosh3) as kb writes and reads them:

    - blocks split in two (write_block, read_data, read_values);
    - every pickle with protocol 4, not 2. Protocol 2 has no opcode for bytes: each posting's positions
      (a bytes object) are pickled as a call to `_codecs.encode` of a latin-1 string, and loading a block
      makes one such call per posting; protocol 4 stores them as they are (the blocks of a common word load
      8-12 times faster). Readers load either (`pickle.loads` reads the protocol from the data);
    - the document numbers of a block summed up in C (read_ids), not one generator step each;
    - a skip to a document within a block by bisection (skip_to_in_block), not one posting at a time with
      three method calls each;
    - the top-N search's skips of blocks made sound (kb.index.quality.sound_skips);
    - and an exact phrase's places found with sets of positions (kb.index.phrases.exact_phrases).

    Called before an index is created or opened (schema(), and where kb.index and kb.index.history open
    one); once per process. (The parallel build's sub-writer is forked, and has it: NoteIndex._build.)"""
    from whoosh.codec import whoosh3

    def dumps(obj: object, protocol: int | None = None) -> bytes:
        return pickle.dumps(obj, BLOCK_PICKLE_PROTOCOL)

    for cls, name in ((whoosh3.W3PostingsWriter, "_write_block"), (whoosh3.W3LeafMatcher, "_read_data"),
                      (whoosh3.W3LeafMatcher, "_read_ids"), (whoosh3.W3LeafMatcher, "_read_values"),
                      (whoosh3.W3LeafMatcher, "skip_to")):  # fmt: skip
        REPLACED[f"{cls.__name__}.{name}"] = getattr(cls, name)
    whoosh3.dumps = dumps  # type: ignore[assignment]
    whoosh3.W3PostingsWriter._write_block = write_block  # type: ignore[method-assign]
    matcher = whoosh3.W3LeafMatcher
    matcher._read_data = read_data  # type: ignore[method-assign]
    matcher._read_ids = read_ids  # type: ignore[method-assign]
    matcher._read_values = functools.partialmethod(read_values, matcher._read_values)  # type: ignore[method-assign,assignment]
    matcher.skip_to = skip_to_in_block  # type: ignore[method-assign]
    sound_skips()
    exact_phrases()


def write_block(writer: Any, last: bool = False) -> None:
    """W3PostingsWriter._write_block: the postings buffered in `writer` written as a block (the last of
    its word when `last`), as Whoosh writes it but for its data: the numbers and weights, then (when the
    block has positions and is compressed) the positions, each a pickle compressed on its own."""
    from whoosh.codec.whoosh3 import COMPRESSION_MIN_SIZE, WHOOSH3_HEADER_MAGIC
    from whoosh.util.numeric import length_to_byte

    if not writer._blockcount:
        writer._postfile.write(WHOOSH3_HEADER_MAGIC)
    writer._terminfo.add_block(writer)
    ids, weights, values = writer._mini_ids(), writer._mini_weights(), writer._mini_values()
    comp = writer._compression
    data = pickle.dumps((ids, weights, values), BLOCK_PICKLE_PROTOCOL)
    if len(data) < COMPRESSION_MIN_SIZE:
        comp = 0  # (zlib's header and checksum would make it longer)
    if comp and values is not None:
        head = zlib.compress(pickle.dumps((ids, weights), BLOCK_PICKLE_PROTOCOL), comp)
        data = head + zlib.compress(pickle.dumps(values, BLOCK_PICKLE_PROTOCOL), comp)
        comp = -len(head)
    elif comp:
        data = zlib.compress(data, comp)
    info = (
        len(writer._ids),
        writer._ids[-1],
        writer._maxweight,
        comp,
        length_to_byte(writer._minlength),
        length_to_byte(writer._maxlength),
    )
    infobytes = pickle.dumps(info, BLOCK_PICKLE_PROTOCOL)
    postfile = writer._postfile
    length = len(infobytes) + len(data)
    postfile.write_int(-length if last else length)  # (negative: the word's last block)
    postfile.write(infobytes)
    postfile.write(data)
    writer._blockcount += 1
    writer._new_block()


def read_data(matcher: Any) -> None:
    """W3LeafMatcher._read_data: the block's numbers and weights (and, in a block of one part, its values)."""
    from whoosh.reading import CorruptIndexError

    comp = matcher._compression
    if type(comp) is not int or comp >= 0:
        data = matcher._postfile.get(matcher._dataoffset, matcher._nextoffset - matcher._dataoffset)
        matcher._data = pickle.loads(zlib.decompress(data) if comp else data)
        return
    if matcher._dataoffset - comp > matcher._nextoffset:
        raise CorruptIndexError("a block of postings shorter than its header says")
    head = pickle.loads(zlib.decompress(matcher._postfile.get(matcher._dataoffset, -comp)))
    if type(head) is not tuple or len(head) != 2:
        raise CorruptIndexError("a block of postings that is not what its header says")
    matcher._data = (*head, None)


def read_ids(matcher: Any) -> None:
    """W3LeafMatcher._read_ids: the block's document numbers (stored as the differences between them)."""
    if matcher._data is None:
        matcher._read_data()
    ids = matcher._data[0]
    matcher._ids = ids if matcher._byteids else tuple(accumulate(ids))


def read_values(matcher: Any, whooshs: Any) -> None:
    """W3LeafMatcher._read_values: the second part of a split block read first (Whoosh's own reads the
    values from the data then)."""
    if matcher._data is None:
        matcher._read_data()
    comp = matcher._compression
    if type(comp) is int and comp < 0 and matcher._data[2] is None:
        start = matcher._dataoffset - comp
        values = pickle.loads(zlib.decompress(matcher._postfile.get(start, matcher._nextoffset - start)))
        matcher._data = (matcher._data[0], matcher._data[1], values)
    whooshs(matcher)


def skip_to_in_block(matcher: Any, targetid: int) -> None:
    """W3LeafMatcher.skip_to: move to the first posting at or after document `targetid` (the end of the
    postings when there is none). Whole blocks are skipped as Whoosh skips them (by their last document);
    within the block that holds it, the posting is found by bisecting its document numbers (ascending)."""
    from bisect import bisect_left

    from whoosh.matching import ReadTooFar

    if not matcher.is_active():
        raise ReadTooFar
    if targetid <= matcher.id():
        return
    block_max_id = matcher.block_max_id
    if targetid > block_max_id():
        matcher._skip_to_block(lambda: targetid > block_max_id())
        if not matcher.is_active():
            return
    if matcher._ids is None:
        matcher._read_ids()
    found = bisect_left(matcher._ids, targetid, matcher._i)
    if found < matcher._blocklength:
        matcher._i = found
    else:  # past the block's last document (its header said otherwise): step on as Whoosh does
        matcher._i = matcher._blocklength - 1
        matcher.next()
        while matcher.is_active() and matcher.id() < targetid:
            matcher.next()
