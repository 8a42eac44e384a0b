"""The history index's bulk writer makes the index Whoosh's own writer makes of the same documents: every
term, posting (document, weight, positions), field length and stored field the same, so searches score
alike."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from whoosh import index

from kb.index import bulk
from kb.index.bulk import BulkWriter
from kb.index.document import document, writable
from kb.index.history import UNUSED_FIELDS, history_schema

LINES = [
    "# A heading",
    "Plain words in a line, and more words.",
    "Café déjà vu: accents folded — naïve façade.",
    "Dots inside words: e.g. example.org and v1.2.3 stay whole.",
    "snake_case and *emphasis* and __strong__ marks",
    "x" * 80 + " a token longer than sixty-four letters",
    "日本語のテキスト and 中文 mixed with latin",
    "Obsidian插件的设置 猫 x 数据库notes 插件",
    "ปลั๊กอินซิงค์ ไทย and हिन्दी में লেখা words",
    "re\u0301sume\u0301 Zu\u0308rich Straße Æther œuvre ﬁnal ｶﾀｶﾅ ＰｏｓｔｇｒｅＳＱＬ",
    "numbers 42 3.14 2021-11-19T16:02:40.897Z",
    "carriage return line\r",
    "tabs\tand\x0bvertical\x0cfeeds",
    "",
    "   ",
    "running runs ran runner: stems",
    "repeated repeated repeated word word",
]


def versions(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """Documents like a note's successive versions: each differs from the one before by a line."""
    rng = random.Random(seed)
    docs = []
    lines = [rng.choice(LINES) for _ in range(12)]
    for n in range(count):
        if n % 7 == 0:
            lines = [rng.choice(LINES) for _ in range(rng.randint(0, 15))]  # another note
        elif lines:
            lines[rng.randrange(len(lines))] = rng.choice(LINES) + f" edit{n}"
        else:
            lines.append(f"first words {n}")
        text = f"---\ntitle: Note {n // 7}\ntags: [a/b, c]\nmodified: '2024-01-0{1 + n % 9}'\n---\n"
        raw = (text + "\n".join(lines)).encode()
        doc = document(f"notes/n{n // 7}.md", raw)
        assert doc is not None
        fields = writable(doc)
        for name in UNUSED_FIELDS:
            del fields[name]
        docs.append({**fields, "blob": bytes.fromhex(f"{n:040x}")})
    return docs


def build(folder: Path, docs: list[dict[str, Any]], bulk_writer: bool, blocks: int = 128) -> Any:
    from whoosh.codec.whoosh3 import W3Codec

    ix = index.create_in(str(folder), history_schema())
    if bulk_writer:
        writer = BulkWriter(ix, compound=False, codec=W3Codec(blocklimit=blocks))
        for doc in docs:
            writer.add(doc)
    else:
        writer = ix.writer(compound=False, codec=W3Codec(blocklimit=blocks))
        for doc in docs:
            writer.add_document(**doc)
    writer.commit()
    return index.open_dir(str(folder))


def contents(ix: Any) -> dict[str, Any]:
    with ix.searcher() as searcher:
        reader = searcher.reader()
        postings = {}
        for field, text in reader.all_terms():
            matcher = reader.postings(field, text)
            found = []
            while matcher.is_active():
                found.append((matcher.id(), matcher.weight(), matcher.value()))
                matcher.next()
            postings[(field, text)] = found
        docs = reader.doc_count_all()
        names = ix.schema.names()
        lengths = {(n, f): reader.doc_field_length(n, f) for n in range(docs) for f in names}
        totals = {f: reader.field_length(f) for f in names}
        stored = [reader.stored_fields(n) for n in range(docs)]
        columns = {
            f: [reader.column_reader(f)[n] for n in range(docs)] for f in names if reader.has_column(f)
        }
    assert {"blob", "modified"} <= set(columns)
    return {
        "postings": postings,
        "lengths": lengths,
        "totals": totals,
        "stored": stored,
        "docs": docs,
        "columns": columns,
    }


@pytest.mark.parametrize(
    ("segment_postings", "blocks"), [(bulk.SEGMENT_POSTINGS, 128), (150, 128), (10**6, 100)]
)
def test_the_bulk_writer_makes_what_whooshs_writer_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segment_postings: int, blocks: int
):
    monkeypatch.setattr(bulk, "SEGMENT_POSTINGS", segment_postings)
    docs = versions(300)
    (tmp_path / "plain").mkdir()
    (tmp_path / "bulk").mkdir()
    plain = build(tmp_path / "plain", docs, bulk_writer=False, blocks=blocks)
    made = build(tmp_path / "bulk", docs, bulk_writer=True, blocks=blocks)
    if segment_postings < 1000:
        assert len(made._segments()) > 3  # several segments, written as memory filled
    expected, got = contents(plain), contents(made)
    assert got["docs"] == expected["docs"] == 300
    assert max(len(found) for found in expected["postings"].values()) > 256  # several blocks of a term
    assert set(got["postings"]) == set(expected["postings"])
    for key, found in expected["postings"].items():
        assert got["postings"][key] == found, key
    assert got["lengths"] == expected["lengths"]
    assert got["totals"] == expected["totals"]
    assert got["stored"] == expected["stored"]
    assert got["columns"] == expected["columns"]
    from whoosh import qparser

    for text in ("words", "accent", '"plain words"', "edit1*", "title:note", "exampl*"):
        query = qparser.QueryParser("body", plain.schema).parse(text)
        with plain.searcher() as a, made.searcher() as b:
            first = [(hit.docnum, round(hit.score, 9)) for hit in a.search(query, limit=None)]
            second = [(hit.docnum, round(hit.score, 9)) for hit in b.search(query, limit=None)]
        if "*" in text and len(made._segments()) > 1:
            # Whoosh scores a prefix term by its segment: compare what matches
            first, second = [(blob, 0.0) for blob, _ in first], [(blob, 0.0) for blob, _ in second]
        assert first and sorted(first) == sorted(second), text


def test_a_cancelled_bulk_write_adds_nothing(tmp_path: Path):
    ix = index.create_in(str(tmp_path), history_schema())
    writer = BulkWriter(ix, compound=False)
    for doc in versions(10):
        writer.add(doc)
    writer.cancel()
    assert index.open_dir(str(tmp_path)).doc_count_all() == 0


def by_blob(ix: Any) -> dict[str, Any]:
    """contents() with each document named by its blob: the same whatever order the documents were added."""
    found = contents(ix)
    blobs = found["columns"]["blob"]
    return {
        "postings": {
            key: sorted((blobs[n], weight, value) for n, weight, value in postings)
            for key, postings in found["postings"].items()
        },
        "lengths": {(blobs[n], f): length for (n, f), length in found["lengths"].items()},
        "totals": found["totals"],
        "stored": sorted(zip(blobs, found["stored"], strict=True)),
        "columns": {
            name: sorted(zip(blobs, values, strict=True)) for name, values in found["columns"].items()
        },
    }


def test_two_processes_write_what_one_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bulk, "PARALLEL", 20)
    monkeypatch.setattr(bulk.os, "cpu_count", lambda: 2)
    docs = versions(90)
    rows = list(range(len(docs)))
    folder = tmp_path / "two" / "history"
    folder.mkdir(parents=True)
    ix = index.create_in(str(folder), history_schema())
    seen: list[tuple[int, int]] = []
    count = bulk.write(
        ix,
        folder,
        rows,
        lambda part: iter([docs[n] for n in part]),
        lambda part: [1 + n % 3 for n in part],
        lambda done, total: seen.append((done, total)),
        compound=False,
    )
    assert count == 90
    made = index.open_dir(str(folder))
    assert len(made._segments()) == 2  # one from each process
    assert sorted(p.name for p in folder.parent.iterdir()) == ["history"]  # the second's folder is gone
    (tmp_path / "one").mkdir()
    plain = build(tmp_path / "one", docs, bulk_writer=False)
    assert by_blob(made) == by_blob(plain)
    assert seen and all(total == 90 for _, total in seen)


def test_when_the_second_process_fails_the_build_says_why_and_adopts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(bulk, "PARALLEL", 20)
    monkeypatch.setattr(bulk.os, "cpu_count", lambda: 2)
    docs = versions(60)

    def documents(part: Any) -> Any:
        for n in part:
            if n == 59:
                raise OSError("the disk is gone")
            yield docs[n]

    folder = tmp_path / "history"
    folder.mkdir()
    ix = index.create_in(str(folder), history_schema())
    with pytest.raises(bulk.BulkError, match="OSError: the disk is gone"):
        bulk.write(ix, folder, list(range(60)), documents, lambda part: [1] * len(part), compound=False)
    assert index.open_dir(str(folder)).doc_count_all() == 30  # the first part's (its caller starts again)
    assert not (tmp_path / "history.part").exists()


@pytest.mark.parametrize(
    ("weights", "cut"),
    [
        ([1, 1, 1, 1], 2),
        ([100, 1, 1, 1], 1),
        ([1, 1, 1, 100], 3),
        ([0, 0, 0], 1),
        ([5, 5], 1),
        ([1, 2, 3, 4], 3),
    ],
)
def test_rows_are_cut_where_their_weights_are_halved(weights, cut):
    assert bulk._half(weights) == cut


def test_the_line_analyser_reads_lines_as_whooshs_analyser_does():
    from kb.index.document import analyzer

    whoosh = analyzer()
    fast = bulk.line_analyser(whoosh)
    rng = random.Random(5)
    pieces = [
        *" ".join(LINES).split(),
        "Ünïcödé",
        "ΣΊΣΥΦΟΣ",
        "straße",
        "İstanbul",
        "ﬁne",
        "e.g.",
        "a..b",
        "x_y",
        "9.9.9",
    ]
    lines = [*LINES, *(" ".join(rng.choices(pieces, k=rng.randint(0, 30))) for _ in range(400))]
    for line in lines:
        expected = tuple((t.text.encode("utf-8"), t.pos) for t in whoosh(line, positions=True, mode="index"))
        assert fast(line) == expected, line
    plain = bulk.line_analyser(whoosh | __import__("whoosh.analysis", fromlist=["StripFilter"]).StripFilter())
    assert plain("Running runs") == tuple(
        (t.text.encode("utf-8"), t.pos) for t in whoosh("Running runs", positions=True, mode="index")
    )


def test_without_a_second_process_one_writes_it_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bulk, "PARALLEL", 20)
    monkeypatch.setattr(bulk.os, "cpu_count", lambda: 2)

    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(bulk.os, "fork", no_fork)
    docs = versions(40)
    folder = tmp_path / "history"
    folder.mkdir()
    ix = index.create_in(str(folder), history_schema())
    count = bulk.write(
        ix, folder, list(range(40)), lambda part: iter([docs[n] for n in part]), lambda part: [1] * len(part)
    )
    assert count == 40 and index.open_dir(str(folder)).doc_count_all() == 40
    assert not (tmp_path / "history.part").exists()
