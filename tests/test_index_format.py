"""How the index's postings are stored and read: every block of postings kb writes is pickled with protocol
4 (kb.index.postings.fast_postings), whichever way it was written (a note added, a rebuild, the history
index built and extended), a word's block with positions in two parts (the positions read only when asked
for), and an index whose blocks an earlier kb wrote in one part (protocol 2 or 4) is still read; the
fields' lengths a search reads from memory (kb.index.lengths_in_memory) score every note as Whoosh's own
column readers do; a skip to a document within a block of postings (by bisection) lands where stepping
through the postings would; and the best hits of a word, scored block by block from a floor under their
scores (kb.index.top), with or without a filter, are those of every note scored and ranked."""

from __future__ import annotations

import pickle
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from whoosh import index
from whoosh.codec import whoosh3

from kb.index import lengths_in_memory
from kb.index.postings import BLOCK_PICKLE_PROTOCOL, REPLACED, fast_postings
from tests.conftest import Run, kb_subprocess


def protocols(folder: Path) -> Counter[tuple[str, int]]:
    """How many postings pickles of each kind ("block"; "split": either part of a block split in two; or
    "inline": a rare word's postings kept in its term info) carry each protocol, over the title and body
    words of every segment of the index in `folder`."""
    found: Counter[tuple[str, int]] = Counter()
    with index.open_dir(str(folder)).searcher() as searcher:
        for leaf, _base in searcher.reader().leaf_readers():
            terms = leaf._terms
            for field in ("title", "body"):
                for btext in leaf.lexicon(field):
                    raw = terms._tindex[terms._keycoder(field, btext)]
                    size = whoosh3.W3TermInfo._struct.size
                    if raw[0]:  # inlined
                        kind, data = "inline", raw[size:]
                    else:
                        m = leaf.postings(field, btext)
                        while not hasattr(m, "_postfile"):  # deleted notes: a matcher wrapped round it
                            m = m.child
                        blob = m._postfile.get(m._dataoffset, m._nextoffset - m._dataoffset)
                        if m._compression < 0:  # split: numbers and weights, then positions
                            for part in (blob[: -m._compression], blob[-m._compression :]):
                                data = zlib.decompress(part)
                                assert data[:1] == b"\x80", "not a pickle with a protocol"
                                found["split", data[1]] += 1
                            continue
                        kind, data = "block", zlib.decompress(blob) if m._compression else blob
                    assert data[:1] == b"\x80", "not a pickle with a protocol"
                    found[kind, data[1]] += 1
    return found


ALL_4 = {
    ("block", BLOCK_PICKLE_PROTOCOL),
    ("split", BLOCK_PICKLE_PROTOCOL),
    ("inline", BLOCK_PICKLE_PROTOCOL),
}


def run(*args: str) -> None:
    """One command in a process of its own, cold: what it writes is pickled as that process sets up."""
    proc = kb_subprocess(*args)
    assert proc.returncode == 0, proc.stderr.decode()


def test_every_way_of_writing_the_index_pickles_postings_with_protocol_4(root: Path):
    run("add", "First note", "-b", "alpha beta gamma alpha\n\nalpha again" + " and alpha" * 30)
    run("add", "Second note", "-b", "alpha delta and alpha")
    kinds = protocols(root / "index")
    assert kinds and set(kinds) <= ALL_4 and ("split", BLOCK_PICKLE_PROTOCOL) in kinds

    run("search", "--history", "alpha")  # builds the history index
    run("edit", "Second note", "-a", "alpha epsilon")
    run("search", "--history", "epsilon")  # extends it
    kinds = protocols(root / "index" / "history")
    assert kinds and set(kinds) <= ALL_4 and ("split", BLOCK_PICKLE_PROTOCOL) in kinds

    run("reindex")
    kinds = protocols(root / "index")
    assert kinds and set(kinds) <= ALL_4 and ("split", BLOCK_PICKLE_PROTOCOL) in kinds


def test_an_index_written_with_protocol_2_is_read_and_grows_with_protocol_4(
    root: Path, kb: Callable[..., Run], cold_kb: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
):
    fast_postings()  # first (once per process): what is patched below is then not replaced
    with monkeypatch.context() as patched:  # as an earlier kb wrote its blocks
        patched.setattr(whoosh3, "dumps", lambda obj, protocol=None: pickle.dumps(obj, 2))
        patched.setattr(whoosh3.W3PostingsWriter, "_write_block", REPLACED["W3PostingsWriter._write_block"])
        assert cold_kb("add", "Old note", "-b", "alpha beta alpha, words of an older index").exit_code == 0
    assert set(protocols(root / "index")) == {("block", 2)}

    found = kb("search", "alpha")
    assert found.exit_code == 0 and "Old note" in found.stdout
    assert kb("add", "New note", "-b", "alpha and more alpha").exit_code == 0
    found = kb("search", "alpha")
    assert "Old note" in found.stdout and "New note" in found.stdout
    phrase = kb("search", '"alpha beta"').stdout  # positions, read from the old blocks
    assert phrase.startswith("1. Old note\t") and "\n2. " not in phrase
    kinds = protocols(root / "index")
    assert ("block", BLOCK_PICKLE_PROTOCOL) in kinds


def test_lengths_read_into_memory_score_as_whooshs_column_readers(root: Path, cold_kb: Callable[..., Run]):
    # (in this process: a warm server's worker would update and merge the index after answering, between
    # the two searchers opened below)
    words = ["alpha", "beta", "gamma", "delta"]
    for n in range(12):
        body = " ".join(words[(n + i) % 4] for i in range(3 + n * 7))
        assert cold_kb("add", f"Note {n} {words[n % 4]}", "-b", body, "-t", f"t{n % 3}").exit_code == 0
    assert cold_kb("edit", "Note 3 delta", "-a", "alpha " * 40).exit_code == 0  # a second segment, a deletion
    ix = index.open_dir(str(root / "index"))
    queries = ["alpha", "beta gamma", "title:delta", "tags:t1 alpha", '"alpha beta"']
    from whoosh import qparser

    parser = qparser.MultifieldParser(["title", "body"], ix.schema)
    with ix.searcher() as plain, ix.searcher() as loaded:
        lengths_in_memory(loaded)
        replaced = [leaf._perdoc._readers.get("_body_len") for leaf, _ in loaded.reader().leaf_readers()]
        assert replaced and all(type(r).__name__ == "_Lengths" for r in replaced)
        for text in queries:
            q = parser.parse(text)
            expected = [(h.docnum, h.score) for h in plain.search(q, limit=None)]
            assert expected, text
            assert [(h.docnum, h.score) for h in loaded.search(q, limit=None)] == expected
            assert [(h.docnum, h.score) for h in loaded.search(q, limit=3)] == expected[:3]
        for (a, _), (b, _) in zip(plain.reader().leaf_readers(), loaded.reader().leaf_readers(), strict=True):
            for field in ("title", "body", "tags"):
                every = range(a.doc_count_all() + 1)
                assert [b.doc_field_length(d, field) for d in every] == [
                    a.doc_field_length(d, field) for d in every
                ]
                assert b.min_field_length(field) == a.min_field_length(field)
                assert b.max_field_length(field) == a.max_field_length(field)


def test_skipping_to_a_document_finds_the_first_posting_at_or_after_it(tmp_path: Path):
    import random

    from whoosh import fields
    from whoosh.matching import ReadTooFar

    fast_postings()
    folder = tmp_path / "ix"
    folder.mkdir()
    ix = index.create_in(str(folder), fields.Schema(body=fields.TEXT(phrase=True)))
    writer = ix.writer()
    for n in range(700):  # "common" in two notes of three: blocks of 128 postings, and a short last one
        words = ["common"] * (1 + n % 4) + [f"w{n}"] if n % 3 else [f"w{n}"]
        writer.add_document(body=" ".join(words))
    writer.commit()
    with ix.searcher() as searcher:
        reader = searcher.reader()
        every = reader.postings("body", "common")
        postings = []
        while every.is_active():
            postings.append((every.id(), every.weight(), every.value()))
            every.next()
        assert len(postings) > 3 * 128
        rng = random.Random(7)
        for _walk in range(60):
            m = reader.postings("body", "common")
            target = 0
            while True:
                target += rng.choice([0, 1, 2, 3, 5, 40, 130, 300])
                m.skip_to(target)
                at = next((p for p in postings if p[0] >= target), None)
                if at is None:
                    assert not m.is_active()
                    with pytest.raises(ReadTooFar):
                        m.skip_to(target + 1)
                    break
                assert (m.id(), m.weight(), m.value()) == at
                if rng.random() < 0.3:
                    m.next()
                    target = m.id() if m.is_active() else target
                    if not m.is_active():
                        break


def test_the_best_hits_of_a_word_with_and_without_a_filter_are_whooshs_own(tmp_path: Path):
    import random

    from whoosh import query as wq

    from kb.index import top
    from kb.index.document import schema

    rng = random.Random(11)
    words = [f"word{n}" for n in range(24)]
    folder = tmp_path / "ix"
    folder.mkdir()
    ix = index.create_in(str(folder), schema())
    for batch in range(3):  # three segments
        writer = ix.writer()
        for n in range(300):
            # word0-7 in a few titles and most bodies; the others anywhere
            title = " ".join(rng.choice(words[: 8 if rng.random() < 0.08 else 24]) for _ in range(2))
            body = " ".join(rng.choice(words[:8] * 3 + words) for _ in range(rng.randint(1, 60)))
            writer.add_document(
                path=f"notes/{batch}-{n}.md", title=title, body=body, tags=f"t{n % 3}", tag_list=[f"t{n % 3}"]
            )
        writer.commit(merge=False)
    with ix.searcher() as searcher:
        assert len(list(searcher.reader().leaf_readers())) == 3
        for word in words:
            q = wq.Or([wq.Term("title", word), wq.Term("body", word)])
            for wanted in (1, 3, 11, 40):
                for filter_q in (None, wq.Term("tags", "t1")):
                    expected = [
                        (h.docnum, h.score) for h in searcher.search(q, limit=wanted, filter=filter_q)
                    ]
                    got = top.top_hits(searcher, q, wanted, filter_q)
                    assert [(h.docnum, h.score) for h in got] == expected, (word, wanted, filter_q)
                    assert got.scored_length() == len(expected)


def test_a_parallel_build_writes_protocol_4_whatever_pythons_default_start_method(
    root: Path, cold_kb: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
):
    import multiprocessing
    import os

    import kb.index as kb_index

    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("a parallel build needs two cores and fork")
    assert cold_kb("add", "Note", "-b", "alpha beta alpha").exit_code == 0
    for n in range(250):  # Whoosh hands its second process a batch of 100 notes at a time
        (root / "notes" / f"Note {n}.md").write_text(f"# Note {n}\n\nbeta gamma {n} words\n")
    monkeypatch.setattr(kb_index, "BULK", 4)  # two processes from 4 notes on
    default = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)  # as on macOS (forkserver on newer Pythons)
    try:
        assert cold_kb("reindex").exit_code == 0
    finally:
        multiprocessing.set_start_method(default, force=True)
    kinds = protocols(root / "index")
    assert kinds and set(kinds) <= ALL_4 and ("split", BLOCK_PICKLE_PROTOCOL) in kinds
    assert len(list(index.open_dir(str(root / "index")).searcher().reader().leaf_readers())) >= 2
    found = cold_kb("search", "alpha")
    assert found.exit_code == 0 and found.stdout.startswith("1. Note\t") and "\n2. " not in found.stdout
    gamma = cold_kb("search", "gamma", "-n", "300", "--paths").stdout.splitlines()
    assert len(gamma) == 250  # every note of both processes' segments is found


def test_a_floor_keeps_the_notes_tied_at_it(tmp_path: Path):
    from whoosh import query as wq

    from kb.index import top
    from kb.index.document import schema

    folder = tmp_path / "ix"
    folder.mkdir()
    ix = index.create_in(str(folder), schema())
    writer = ix.writer()
    for n in range(20):  # the word in long bodies only: they score below the titles
        writer.add_document(path=f"notes/b{n}.md", title=f"other {n}", body="filler " * 200 + "word")
    for n in range(3):  # then in three titles alike, and no body: three notes of the same score
        writer.add_document(path=f"notes/t{n}.md", title="word", body="nothing")
    writer.commit()
    q = wq.Or([wq.Term("title", "word"), wq.Term("body", "word")])
    with ix.searcher() as searcher:
        expected = [(h.docnum, h.score) for h in searcher.search(q, limit=3)]
        assert len(expected) == 3 and len({score for _, score in expected}) == 1
        assert [(h.docnum, h.score) for h in top.top_hits(searcher, q, 3, None)] == expected


def test_lengths_in_memory_answer_for_the_notes_a_column_ends_before(tmp_path: Path):
    from kb.index.document import schema

    folder = tmp_path / "ix"
    folder.mkdir()
    ix = index.create_in(str(folder), schema())
    writer = ix.writer()
    writer.add_document(path="notes/a.md", title="one two", body="three four five", tags="x")
    writer.add_document(path="notes/b.md", title="six", body="seven")
    writer.add_document(path="notes/c.md", title="only a title")  # the last notes: no body, no tags
    writer.add_document(path="notes/d.md", title="another")
    writer.commit()
    with ix.searcher() as plain, ix.searcher() as loaded:
        lengths_in_memory(loaded)
        (a, _), (b, _) = next(iter(plain.reader().leaf_readers())), next(iter(loaded.reader().leaf_readers()))
        assert type(b._perdoc._readers["_body_len"]).__name__ == "_Lengths"
        for field in ("title", "body", "tags"):
            every = range(a.doc_count_all() + 1)
            assert [b.doc_field_length(d, field) for d in every] == [
                a.doc_field_length(d, field) for d in every
            ]
            assert b.min_field_length(field) == a.min_field_length(field)
            assert (
                field == "title" or a.min_field_length(field) == 0
            )  # the column ended before the last notes
            assert b.max_field_length(field) == a.max_field_length(field)


def _corpus_index(folder: Path, notes: int = 600) -> index.Index:
    """A Whoosh index of `notes` documents in `folder`: "common" in most (blocks of 128 postings, each
    document with its positions), "common thread" in one of five, weights from 1 to 3."""
    from whoosh import fields

    folder.mkdir()
    ix = index.create_in(
        str(folder), fields.Schema(key=fields.STORED, body=fields.TEXT(phrase=True), title=fields.TEXT())
    )
    writer = ix.writer()
    for n in range(notes):
        words = ["common"] * (1 + n % 3) + (["thread"] if n % 5 == 0 else ["other", "words"]) + [f"w{n}"]
        if n % 7 == 0:
            words = [f"w{n}", "thread", "common"]  # both words, not as the phrase
        title = f"note {n} common" if n % 4 == 0 else f"note {n}"
        writer.add_document(key=n, body=" ".join(words), title=title)
    writer.commit()
    return ix


def _answers(ix: index.Index) -> list[list[tuple[int, float]]]:
    """Each query's hits: (the document's number as written, score)."""
    from whoosh import qparser

    parser = qparser.MultifieldParser(["title", "body"], ix.schema)
    queries = ["common", '"common thread"', "common thread", "thread -common", "comm*", '"thread common"']
    with ix.searcher() as searcher:
        return [[(h["key"], h.score) for h in searcher.search(parser.parse(q), limit=None)] for q in queries]


def test_a_block_of_positions_is_split_in_two_and_its_positions_read_only_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fast_postings()
    split = _corpus_index(tmp_path / "split")
    with monkeypatch.context() as patched:  # as Whoosh writes it: one pickle, compressed
        patched.setattr(whoosh3.W3PostingsWriter, "_write_block", REPLACED["W3PostingsWriter._write_block"])
        whole = _corpus_index(tmp_path / "whole")

    with split.searcher() as searcher:
        m = searcher.postings("body", "common")  # (with a scorer)
        blocks = 0
        while m.is_active():  # the numbers and weights of every posting: the positions are not loaded
            assert m._compression < 0, "a block of postings with positions that is not split"
            m.id(), m.weight(), m.score()
            assert m._data[2] is None
            blocks += 1
            m._next_block()
        assert blocks >= 4
        m = searcher.reader().postings("body", "common")
        m.skip_to(300)
        assert m.value() is not None and m._data[2] is not None  # loaded when asked for
    with whole.searcher() as searcher:
        m = searcher.reader().postings("body", "common")
        assert m._compression > 0

    expected = _answers(whole)
    assert all(expected) and _answers(split) == expected
    # the phrase: exactly the notes with "common thread" (n % 5 == 0 and not n % 7 == 0)
    assert sorted(d for d, _ in expected[1]) == [n for n in range(600) if n % 5 == 0 and n % 7]

    writer = split.writer()  # a merge reads every posting's positions, and writes them split again
    writer.add_document(key=600, body="common thread once more", title="late")
    writer.commit(optimize=True)
    assert len(split._segments()) == 1
    with split.searcher() as searcher:
        m = searcher.reader().postings("body", "common")
        assert m._compression < 0
    again = _answers(split)
    assert sorted(d for d, _ in again[1]) == [*sorted(d for d, _ in expected[1]), 600]


def test_a_split_block_whose_first_part_would_end_past_the_block_is_damage(tmp_path: Path):
    from kb.index import damage_errors

    fast_postings()
    ix = _corpus_index(tmp_path / "ix", notes=300)
    with ix.searcher() as searcher:
        m = searcher.reader().postings("body", "common")
        assert m._compression < 0
        m._compression = -(m._nextoffset - m._dataoffset + 1)
        with pytest.raises(damage_errors()):
            m.id()
        m._goto(m._baseoffset)
        m._compression = -3  # a part that is no pickle of numbers and weights
        with pytest.raises(damage_errors()):
            m.id()


def test_an_index_of_an_earlier_version_is_read_as_it_is_and_grows_with_split_blocks(
    root: Path, kb: Callable[..., Run], cold_kb: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
):
    import sqlite3

    from kb.index.catalog import CATALOG

    fast_postings()
    body = "alpha beta " + "alpha gamma " * 30  # a block of one posting, its positions worth compressing
    with monkeypatch.context() as patched:  # as the kb of catalog version 10 wrote its blocks
        patched.setattr(whoosh3.W3PostingsWriter, "_write_block", REPLACED["W3PostingsWriter._write_block"])
        assert cold_kb("add", "Old note", "-b", body).exit_code == 0
    catalog = root / "index" / CATALOG
    with sqlite3.connect(catalog) as db:
        db.execute("UPDATE meta SET value = '10' WHERE key = 'version'")
        made = db.execute("SELECT value FROM meta WHERE key = 'made'").fetchone()
    assert "split" not in {kind for kind, _ in protocols(root / "index")}

    phrase = kb("search", '"alpha beta"')
    assert phrase.exit_code == 0 and phrase.stdout.startswith("1. Old note\t")
    assert kb("add", "New note", "-b", "alpha beta and " + "alpha delta " * 30).exit_code == 0
    phrase = kb("search", '"alpha beta"').stdout
    assert "Old note" in phrase and "New note" in phrase
    assert "split" in {kind for kind, _ in protocols(root / "index")}
    with sqlite3.connect(catalog) as db:  # read as it was (not rebuilt), and marked as this version's
        assert db.execute("SELECT value FROM meta WHERE key = 'made'").fetchone() == made
        assert db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone() == ("11",)


def _best_first(hit: tuple[float, int]) -> tuple[float, int]:
    return -hit[0], hit[1]


def test_the_best_hits_of_one_word_scored_block_by_block_are_those_of_every_note_scored(tmp_path: Path):
    """kb.index.top.word_top against every note Whoosh scores for the word (its search without a limit,
    ranked by score, then by document): four segments, notes deleted in three, words in titles only, in
    bodies only and in both, many notes alike (equal scores at every limit), limits from one to more than
    there are hits. (Whoosh's own top-N search, which skips blocks, is not the reference: it is checked
    against the same ranking in tests/test_index_quality.py.)"""
    import random

    from whoosh import query as wq

    from kb.index import top
    from kb.index.document import schema

    fast_postings()
    rng = random.Random(5)
    words = [f"word{n}" for n in range(16)]
    folder = tmp_path / "ix"
    folder.mkdir()
    ix = index.create_in(str(folder), schema())
    for batch in range(4):
        writer = ix.writer()
        for n in range(400):
            if n % 5 == 0:  # alike: the same title and body as others of its kind
                title, body = f"word{n % 3} same", "word0 word1 word2 " * (1 + n % 2)
            else:
                title = " ".join(rng.choice(words[:4] if rng.random() < 0.1 else words) for _ in range(2))
                body = " ".join(rng.choice(words[:4] * 4 + words[4:12]) for _ in range(rng.randint(1, 90)))
            tag = f"t{n % 3}"
            writer.add_document(
                path=f"notes/{batch}-{n}.md", title=title, body=body, tags=tag, tag_list=[tag]
            )
        writer.commit(merge=False)
        if batch:
            writer = ix.writer()
            for n in range(0, 400, 7):
                writer.delete_by_term("path", f"notes/{batch - 1}-{n}.md")
            writer.commit(merge=False)
    with_hits = tied = 0
    with ix.searcher() as searcher:
        leaves = [leaf for leaf, _ in searcher.reader().leaf_readers()]
        assert len(leaves) == 4 and sum(leaf.has_deletions() for leaf in leaves) == 3
        lengths_in_memory(searcher)
        for word in [*words, "same", "missing"]:  # word12-15 in titles only; "same" in titles only
            q = wq.Or([wq.Term("title", word), wq.Term("body", word)])
            every = sorted(((h.score, h.docnum) for h in searcher.search(q, limit=None)), key=_best_first)
            tagged = sorted(
                ((h.score, h.docnum) for h in searcher.search(q, limit=None, filter=wq.Term("tags", "t1"))),
                key=_best_first,
            )
            for wanted in (1, 2, 3, 11, 80, 2000):
                expected = every[:wanted]
                assert top.word_top(searcher, word, wanted) == expected, (word, wanted)
                got = top.top_hits(searcher, q, wanted, None)
                assert [(h.score, h.docnum) for h in got] == expected
                got = top.top_hits(searcher, q, wanted, wq.Term("tags", "t1"))
                assert [(h.score, h.docnum) for h in got] == tagged[:wanted], (word, wanted, "t1")
                with_hits += bool(expected)
                tied += len(expected) >= 2 and expected[-1][0] == expected[-2][0]
    assert with_hits >= 90 and tied >= 10  # hits found, and equal scores at the cut


def test_a_note_scoring_the_floor_by_its_body_alone_comes_before_a_later_one_of_that_score(tmp_path: Path):
    from whoosh import fields
    from whoosh import query as wq

    from kb.index import top

    fast_postings()
    folder = tmp_path / "ix"
    folder.mkdir()
    ix = index.create_in(str(folder), fields.Schema(title=fields.TEXT(), body=fields.TEXT()))
    writer = ix.writer()  # fields alike (lengths, counts): the word scores the same in a title as in a body
    writer.add_document(title="filler", body="word")
    writer.add_document(title="word", body="filler")
    writer.commit()
    q = wq.Or([wq.Term("title", "word"), wq.Term("body", "word")])
    with ix.searcher() as searcher:
        expected = [(h.score, h.docnum) for h in searcher.search(q, limit=1)]
        both = [(h.score, h.docnum) for h in searcher.search(q, limit=2)]
        assert expected == [both[0]] and both[0][0] == both[1][0] and expected[0][1] == 0
        assert top.word_top(searcher, "word", 1) == expected  # the floor (the title's score) is its score
        assert top.word_top(searcher, "word", 2) == both
