"""kb search: the query language, ranking, output forms, freshness and self-repair, against a real index."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from kb.errors import KbError
from tests.conftest import FIXTURES, NOW, isolate, snapshot
from tests.generated import generate


def paths(kb, *query: str) -> list[str]:
    r = kb("search", *query, "-l")
    assert r.exit_code in (0, 1), r.stderr
    return sorted(r.stdout.split("\n"))[1:] if r.stdout else []


def titles(kb, *query: str) -> list[str]:
    r = kb("search", *query, "--json")
    assert r.exit_code in (0, 1), r.stderr
    return [h["title"] for h in json.loads(r.stdout)["hits"]]


NOTES = [
    (
        "Machine Learning",
        "Notebooks/Skills/Tech",
        "2021-11-19T16:02:40.897Z",
        "2021-12-02T10:37:55.243Z",
        "The chain rule and backpropagation. He was learning about autoencoders.",
    ),
    (
        "Cooking Pasta",
        "Notebooks/Skills/Cooking",
        "2021-11-05T08:00:00.000Z",
        "2021-11-20T09:00:00.000Z",
        "Boil water, add salt. Was he hungry? The sauce was learned from a café in Roma.",
    ),
    (
        "Meeting notes",
        "Notebooks/Work/Meetings",
        "2022-03-01T10:00:00.000Z",
        "2026-01-01T12:00:00.000Z",
        "Discussed the roadmap; machine maintenance was postponed.",
    ),
    ("Zebra", "Animals", "2020-01-01T00:00:00.000Z", "2020-01-02T00:00:00.000Z", "Striped animal."),
    (
        "Savanna",
        "Animals",
        "2020-02-01T00:00:00.000Z",
        "2020-02-02T00:00:00.000Z",
        "Zebra herds, zebra foals and more zebra crossings: zebra zebra.",
    ),
]


@pytest.fixture(scope="module")
def built_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small knowledge base with known words, tags and dates, built once per module. Tests that only
    search use it in place (it is checked to be unchanged at the end); tests that change it get a copy."""
    tmp = tmp_path_factory.mktemp("corpus")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp)
        for title, tag, created, modified, body in NOTES:
            mp.setenv("KB_NOW", created)
            assert runner.invoke(app, ["add", title, "-t", tag, "-b", body]).exit_code == 0
            mp.setenv("KB_NOW", modified)
            assert runner.invoke(app, ["edit", title, "-a", "Edited."]).exit_code == 0
        mp.setenv("KB_NOW", NOW)
        assert runner.invoke(app, ["search", "zebra"]).exit_code == 0  # the index is built and current
    root = tmp / "kb"
    before = snapshot(root)
    yield root
    assert snapshot(root) == before, "a test changed the shared corpus: give it `corpus` instead"


@pytest.fixture
def shared_corpus(built_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The module's corpus in place, for tests that only search."""
    monkeypatch.setenv("KB_HOME", str(built_corpus))
    return NOTES


@pytest.fixture
def corpus(built_corpus: Path, root: Path) -> list[tuple[str, ...]]:
    """A copy of the module's corpus at `root`, for tests that change notes or the index."""
    shutil.copytree(built_corpus, root, symlinks=True)
    return NOTES


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (["machine"], ["Machine Learning", "Meeting notes"]),
        (["machine", "learning"], ["Machine Learning"]),
        (["learned"], ["Cooking Pasta", "Machine Learning"]),  # stemming: learned = learning
        (["cafe"], ["Cooking Pasta"]),  # accents folded
        (["CAFÉ"], ["Cooking Pasta"]),
        (["zebra OR pasta"], ["Cooking Pasta", "Savanna", "Zebra"]),
        (["machine NOT learning"], ["Meeting notes"]),
        (["machine -learning"], ["Meeting notes"]),
        (["zebra OR (machine -learning)"], ["Meeting notes", "Savanna", "Zebra"]),  # `-` in a group
        (["tag:Notebooks (-machine)"], ["Cooking Pasta"]),
        (['"he was"'], ["Machine Learning"]),  # exact phrase: stop words count
        (['"was he"'], ["Cooking Pasta"]),
        (["backprop*"], ["Machine Learning"]),
        (["autoencoder~"], ["Machine Learning"]),  # "autoencoders" stems within one edit
        (["roadmpa~2"], ["Meeting notes"]),
        (["(zebra OR sauce) striped"], ["Zebra"]),
        (["title:zebra"], ["Zebra"]),
        (["body:foals"], ["Savanna"]),
        (["title:striped"], []),
        (["tag:Notebooks"], ["Cooking Pasta", "Machine Learning", "Meeting notes"]),
        (["tag:notebooks/skills"], ["Cooking Pasta", "Machine Learning"]),
        (["tag:Notebooks/Skills/Tech"], ["Machine Learning"]),
        (["created:2021-11"], ["Cooking Pasta", "Machine Learning"]),
        (["created:2021-11-05"], ["Cooking Pasta"]),
        (["modified:>2021-11-25"], ["Machine Learning", "Meeting notes"]),
        (["modified:<2021-01-01"], ["Savanna", "Zebra"]),
        (["created:[2021-11-01 to 2021-11-30]"], ["Cooking Pasta", "Machine Learning"]),
        (["modified:yesterday"], ["Meeting notes"]),  # KB_NOW is 2026-01-02
        (["modified:2026", "machine"], ["Meeting notes"]),
        # the dates people type, read by the one date reader (kb help dates)
        (['modified:"a day ago"'], ["Meeting notes"]),
        (['modified:"2 days ago"'], []),
        (['modified:"last week"'], ["Meeting notes"]),
        (["modified:'this month' OR created:2020-02"], ["Meeting notes", "Savanna"]),
        (["created:[2021-11 to 2021-11-05]"], ["Cooking Pasta"]),
        (["created:[to 2020-01]"], ["Zebra"]),
        (["created:>=2021-11-05", "NOT tag:Notebooks/Skills"], ["Meeting notes"]),
        (["modified:<=2020-02-02"], ["Savanna", "Zebra"]),
    ],
)
def test_query_forms(shared_corpus, kb, query, expected):
    assert sorted(titles(kb, *query)) == expected


def test_tag_option_filters(shared_corpus, kb):
    assert titles(kb, "machine", "-t", "Notebooks/Work") == ["Meeting notes"]


def test_a_title_match_outranks_body_matches(shared_corpus, kb):
    assert titles(kb, "zebra")[:2] == ["Zebra", "Savanna"]


def test_sorting(shared_corpus, kb):
    assert titles(kb, "tag:Notebooks", "--sort", "modified") == [
        "Meeting notes",
        "Machine Learning",
        "Cooking Pasta",
    ]
    assert titles(kb, "tag:Notebooks", "--sort", "created") == [
        "Meeting notes",
        "Machine Learning",
        "Cooking Pasta",
    ]
    assert titles(kb, "tag:Notebooks", "--sort", "title") == [
        "Cooking Pasta",
        "Machine Learning",
        "Meeting notes",
    ]
    assert kb("search", "x", "--sort", "size").exit_code == 2


def test_json_shape_and_snippets(shared_corpus, kb):
    data = json.loads(kb("search", "chain", "--json").stdout)
    assert set(data) == {"version", "query", "total", "hits"}
    assert data["version"] == 1 and data["query"] == "chain" and data["total"] == 1
    [hit] = data["hits"]
    assert set(hit) == {"rank", "title", "path", "tags", "created", "modified", "score", "snippets"}
    assert hit["path"] == "notes/Machine Learning.md"
    assert hit["tags"] == ["Notebooks/Skills/Tech"]
    assert hit["created"] == "2021-11-19T16:02:40.897Z"
    assert hit["modified"] == "2021-12-02T10:37:55.243Z"
    assert hit["score"] > 0
    assert any(s["text"][a:b].lower() == "chain" for s in hit["snippets"] for a, b in s["matches"])


def test_plain_output_limit_and_exit_codes(shared_corpus, kb):
    r = kb("search", "zebra")
    assert r.exit_code == 0
    assert r.stdout.startswith("1. Zebra\tnotes/Zebra.md\t2020-01-02\t#Animals\n")
    r = kb("search", "zebra", "-n", "1")
    assert r.stdout.count("\n1. ") == 0 and "2. " not in r.stdout
    assert "1 note shown, more match" in r.stderr
    data = json.loads(kb("search", "zebra", "-n", "1", "--json").stdout)
    assert data["total"] == 2 and len(data["hits"]) == 1
    r = kb("search", "nothingmatchesthis")
    assert r.exit_code == 1 and r.stdout == ""
    r = kb("search", "nothingmatchesthis", "-l")
    assert r.exit_code == 1 and r.stdout == ""


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "(open",
        "close)",
        "AND",
        "zebra AND",
        "OR zebra",
        "title:",
        "tag: zebra",
        "links:",
        "zebra linkedby: savanna",
        "(links:)",
        "modified:garbage",
        "created:2021-13-45",
        "zebra~9",
        "[2020 to",
    ],
)
def test_bad_queries_exit_2_in_one_line(shared_corpus, kb, query):
    r = kb("search", query)
    assert r.exit_code == 2, (query, r.stdout, r.stderr)
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1 and r.stdout == ""


def test_bounded_wildcards(shared_corpus, kb):
    assert len(paths(kb, "*")) == 5
    assert paths(kb, "z*") == ["notes/Savanna.md", "notes/Zebra.md"]


@pytest.mark.cold_only("it lowers a budget of kb's in this process")
def test_a_prefix_reads_a_bounded_number_of_postings_and_says_what_it_left_out(kb, monkeypatch):
    from kb.index import query

    kb("add", "One", "-b", "prelude prelude")
    kb("add", "Two", "-b", "prelude premise")
    kb("add", "Three", "-b", "preface")
    # one segment holding all three (each add writes a segment of its own; a segment whose every note
    # already matches has nothing more to find, and its expansions are not read on)
    assert kb("reindex").exit_code == 0
    full = kb("search", "pre*", "-l")
    assert sorted(full.stdout.split()) == ["notes/One.md", "notes/Three.md", "notes/Two.md"]
    assert "Warning" not in full.stderr
    monkeypatch.setattr(query, "POSTINGS_BUDGET", 2)  # "prelude" (in 2 notes) is read, then no more
    bounded = kb("search", "pre*", "-l")
    assert sorted(bounded.stdout.split()) == ["notes/One.md", "notes/Two.md"]
    assert "Warning: pre* matches 3 words; the 2 rarest were not searched" in bounded.stderr


@pytest.mark.cold_only("counts the index's word lookups in this process")
def test_a_prefix_reads_how_many_notes_hold_its_words_in_one_pass(kb, monkeypatch):
    """A prefix's words, and how many notes hold each, come from one pass over the index's words that
    begin with it, not from a lookup of each word (Whoosh's ordering of an Or, then the matcher, each
    asked every word in every segment); so do the longer words a word finds."""
    from whoosh.reading import SegmentReader

    for n, body in enumerate(["prelude premise", "preface", "prelude preludeland", "presto", "other"]):
        assert kb("add", f"N{n}", "-b", body).exit_code == 0
    looked_up: list[str] = []
    real = SegmentReader.doc_frequency

    def counted(self: SegmentReader, fieldname: str, text: str | bytes) -> int:
        looked_up.append(text.decode() if isinstance(text, bytes) else text)
        return real(self, fieldname, text)

    monkeypatch.setattr(SegmentReader, "doc_frequency", counted)
    found = kb("search", "pre*", "-l")
    assert sorted(found.stdout.split()) == [f"notes/N{n}.md" for n in range(4)]
    assert looked_up == []
    found = kb("search", "prelude", "-l")  # the stem (prelud) and the longer words (preludeland)
    assert found.stdout.split() == ["notes/N2.md", "notes/N0.md"]
    assert set(looked_up) <= {"prelud"}  # the word's own, for its score


def test_changes_by_kb_are_indexed_in_the_same_run(corpus, kb, root):

    assert titles(kb, "zebra")  # the first search builds the index; from then on every change updates it
    kb("edit", "Zebra", "-a", "quagga")
    manifest = _catalog(root)
    assert manifest is not None
    st = os.lstat(root / "notes" / "Zebra.md")
    assert manifest["notes/Zebra.md"].sig == (st.st_mtime_ns, st.st_size, st.st_ino)
    kb("mv", "Zebra", "Equus")
    manifest = _catalog(root)
    assert manifest is not None and "notes/Zebra.md" not in manifest and "notes/Equus.md" in manifest
    assert titles(kb, "quagga") == ["Equus"]
    kb("rm", "Equus")
    assert "notes/Equus.md" not in (_catalog(root) or {})
    assert titles(kb, "quagga") == []


def test_outside_edits_are_seen_by_the_next_search(corpus, kb, root):
    notes = root / "notes"
    (notes / "Written Outside.md").write_text("---\ntitle: Written Outside\n---\n\nwombat\n")
    pasta = notes / "Cooking Pasta.md"
    pasta.write_text(pasta.read_text().replace("sauce", "pesto"))
    (notes / "Zebra.md").unlink()
    assert titles(kb, "wombat") == ["Written Outside"]
    assert titles(kb, "pesto") == ["Cooking Pasta"]
    assert titles(kb, "sauce") == []
    assert titles(kb, "striped") == []


def _damage_segment(index: Path) -> None:
    damaged = [*index.glob("*.trm"), *index.glob("*.pst"), *index.glob("*.seg")]
    assert damaged
    for seg in damaged:
        seg.write_bytes(seg.read_bytes()[: seg.stat().st_size // 3])


def _delete_toc(index: Path) -> None:
    for toc in index.glob("*.toc"):
        toc.unlink()


def _garbage(index: Path) -> None:
    for item in index.iterdir():
        item.write_bytes(os.urandom(512))


def _remove(index: Path) -> None:
    import shutil

    shutil.rmtree(index)


def _garbage_catalog(index: Path) -> None:
    (index / "kb-catalog.sqlite3").write_text("not a database")


def _truncated_catalog(index: Path) -> None:
    catalog = index / "kb-catalog.sqlite3"
    catalog.write_bytes(catalog.read_bytes()[:1000])


def _catalog_of_another_version(index: Path) -> None:
    import sqlite3

    with sqlite3.connect(index / "kb-catalog.sqlite3") as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'version'")


def _catalog(root: Path) -> dict | None:
    """The catalog's rows once no kb process holds the write lock (a warm server's worker updates the
    index after it has answered, under the lock)."""
    from kb.index import NoteIndex
    from kb.store import exclusive_lock

    if root.is_dir():
        with exclusive_lock(root, 10):
            pass
    catalog = NoteIndex(root).catalog()
    if catalog is None:
        return None
    with catalog:
        return catalog.entries()


@pytest.mark.parametrize(
    "damage",
    [
        _damage_segment,
        _delete_toc,
        _garbage,
        _remove,
        _garbage_catalog,
        _truncated_catalog,
        _catalog_of_another_version,
    ],
)
def test_a_damaged_index_is_rebuilt(corpus, kb, root, damage):
    assert titles(kb, "zebra")  # the index exists
    damage(root / "index")
    r = kb("search", "zebra", "--json")
    assert r.exit_code == 0, r.stderr
    assert [h["title"] for h in json.loads(r.stdout)["hits"]][:2] == ["Zebra", "Savanna"]
    assert "rebuilt" in r.stderr
    assert titles(kb, "zebra")[:2] == ["Zebra", "Savanna"]
    kept = root / ".git" / "kb-index-broken"  # the damaged one, for inspection
    assert kept.is_dir() == (damage is not _remove)


def test_init_builds_the_index_and_writes_keep_it_current(kb, root):

    assert kb("init").exit_code == 0
    assert _catalog(root) == {}
    kb("add", "Fresh", "-b", "okapi")
    assert list(_catalog(root) or {}) == ["notes/Fresh.md"]
    assert titles(kb, "okapi") == ["Fresh"]


def test_reindex(corpus, kb, root):
    r = kb("reindex")
    assert r.exit_code == 0 and "Indexed 5 notes" in r.stderr
    assert titles(kb, "zebra")[:2] == ["Zebra", "Savanna"]
    # the index it replaced was sound: not kept, nothing of it or of the build left beside index/
    assert not (root / ".git" / "kb-index-broken").exists()
    assert sorted(p.name for p in root.iterdir()) == [".git", ".gitignore", "index", "notes"]


def test_search_on_an_empty_or_missing_knowledge_base(kb, root):
    assert kb("search", "x").exit_code == 1
    assert not root.exists()


def test_seed_like_notes_are_found(kb, root):
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "Machine Learning.md").write_bytes((FIXTURES / "newer.md").read_bytes())
    assert titles(kb, "PonderNet") == ["Machine Learning"]
    assert titles(kb, '"activation functions"') == ["Machine Learning"]
    assert titles(kb, "tag:Notebooks/Skills") == ["Machine Learning"]
    assert titles(kb, "modified:2021-12-02") == ["Machine Learning"]


# ---------------------------------------------------------------- recall oracle

WORD = re.compile(r"[^\W_]+(?:\.[^\W_]+)*")


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def test_a_word_finds_its_other_forms_with_a_doubled_consonant(kb, root):
    """ "running" finds "run" and "run" finds "running"; "committed", "commit"; and so on (the first Porter
    stemmer made "runn" of "running")."""
    pairs = [("running", "run"), ("committed", "commit"), ("debugging", "debug"), ("mapping", "map")]
    for n, (long, short) in enumerate(pairs):
        assert kb("add", f"Long {n}", "-b", f"We were {long} it.").exit_code == 0
        assert kb("add", f"Short {n}", "-b", f"We {short} it.").exit_code == 0
    for n, (long, short) in enumerate(pairs):
        for word in (long, short):
            found = sorted(kb("search", word, "-l").stdout.splitlines())
            assert found == sorted([f"notes/Long {n}.md", f"notes/Short {n}.md"]), (word, found)


def test_recall_oracle(kb, root):
    """For many random words, `kb search WORD -l` returns exactly the notes whose title or body holds a
    word with the same stem, or a word whose stem begins with WORD as typed (of 4 letters or more),
    computed here by scanning the files (Porter's second stemmer, our own tokenizer)."""
    from whoosh.lang.porter2 import stem

    generate(root, 300, lo=30, hi=200, seed=7)
    stems_by_path: dict[str, set[str]] = {}
    for path in sorted((root / "notes").iterdir()):
        text = path.read_text()
        _, fm, body = text.split("---\n", 2)
        title = re.search(r"^title: (.*)$", fm, re.M).group(1)  # type: ignore[union-attr]
        stems_by_path[f"notes/{path.name}"] = {stem(_fold(w)) for w in WORD.findall(title + "\n" + body)}
    vocabulary = sorted({w for words in stems_by_path.values() for w in words if w.isalpha()})
    rng = random.Random(11)
    checked = 0
    for word in rng.sample(vocabulary, 60):
        key = stem(_fold(word))
        begins = [b for b in {_fold(word)} if len(b) >= 4]
        expected = sorted(
            p
            for p, stems in stems_by_path.items()
            if key in stems or any(s.startswith(b) for s in stems for b in begins)
        )
        assert paths(kb, word) == expected, word
        checked += len(expected)
    assert checked > 100


@pytest.mark.parametrize(
    "text",
    ["zebra", "Zebra stripes", "café Élan", "x1 2021", "running dogs", "über straße", "a b c d e f g h"],
)
def test_plain_words_are_parsed_as_the_parser_would(text):
    from datetime import UTC, datetime

    from kb.index.query import parse_with_parser, plain_query

    fast = plain_query(text)
    assert fast is not None
    assert fast == parse_with_parser(text, datetime.now(UTC))


@pytest.mark.parametrize("text", ["a AND b", "title:x", '"a b"', "x*", "-x", "e.g", "snake_case", "a~"])
def test_anything_else_goes_to_the_parser(text):
    from kb.index.query import plain_query

    assert plain_query(text) is None


def test_a_copied_knowledge_base_is_not_indexed_again(kb, root, tmp_path):
    from kb.index import NoteIndex

    for i in range(5):
        assert kb("add", f"Note {i}", "-b", f"body {i}").exit_code == 0
    assert kb("search", "body").exit_code == 0  # the index is built
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)  # as cp -a: times kept, new inodes
    report = NoteIndex(copy).refresh()
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert kb("--kb", str(copy), "search", "body", "-l").stdout.count("notes/") == 5
    # In place, a file renamed over another of the same size and mtime is still a change.
    a, b = copy / "notes" / "Note 1.md", copy / "notes" / "Note 2.md"
    same = os.stat(a).st_mtime_ns
    os.utime(b, ns=(same, same))
    NoteIndex(copy).refresh()
    assert os.stat(a).st_size == os.stat(b).st_size
    os.replace(a, b)
    report = NoteIndex(copy).refresh()
    assert (report.updated, report.removed) == (1, 1)


def _index_generations(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "index").glob("*.toc"))


def _stale_rows(root: Path) -> list[str]:
    from kb.index import NoteIndex

    catalog = NoteIndex(root).catalog()
    assert catalog is not None
    with catalog:
        rows = catalog.signatures()
    now = {}
    for path in rows:
        st = os.lstat(root / path)
        now[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return sorted(path for path in rows if rows[path] != now[path])


def test_notes_touched_but_unchanged_are_not_indexed_again(kb, root):
    assert kb("init").exit_code == 0
    notes = root / "notes"
    for n in range(70):
        (notes / f"Dated {n}.md").write_text(
            f"---\ntitle: Dated {n}\ncreated: '2024-01-01T00:00:00.000Z'\n"
            f"modified: '2024-01-02T00:00:00.000Z'\n---\n\nbody of a kudu {n}\n"
        )
    assert kb("add", "Committed", "-b", "the outside notes are committed first").exit_code == 0
    assert kb("search", "kudu", "-l").stdout.count("notes/") == 70
    generations = _index_generations(root)
    later = time.time() + 100
    for path in notes.glob("*.md"):
        os.utime(path, (later, later))  # touched: new times, the same bytes
    assert len(_stale_rows(root)) == 71
    listed = kb("list", "--json")  # a listing takes the new times (no note is parsed again next time)
    assert listed.exit_code == 0
    assert _stale_rows(root) == []
    assert kb("search", "kudu", "-l").stdout.count("notes/") == 70
    assert _stale_rows(root) == []
    assert _index_generations(root) == generations  # nothing was written to the search index
    # a note written with other bytes is indexed, even at the same size and times as before
    target = notes / "Dated 7.md"
    st = os.stat(target)
    target.write_text(target.read_text().replace("kudu 7", "eland"))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert "Dated 7" in kb("search", "eland").stdout
    assert kb("search", "kudu", "-l").stdout.count("notes/") == 69


@pytest.mark.cold_only("it takes the digests out of the catalog, as an earlier kb's catalog lacks them")
def test_an_earlier_catalog_gets_its_digests_from_the_notes_unchanged_since(kb, root):
    import sqlite3

    from kb.index.catalog import CATALOG

    assert kb("init").exit_code == 0
    for n in range(5):
        assert kb("add", f"Note {n}", "-b", f"a gnu {n}").exit_code == 0
    assert kb("search", "gnu", "-l").stdout.count("notes/") == 5
    db = sqlite3.connect(root / "index" / CATALOG)
    db.execute("DROP TABLE contents")
    db.execute("DELETE FROM meta WHERE key = 'contents'")
    db.commit()
    db.close()
    edited = root / "notes" / "Note 1.md"
    edited.write_text(edited.read_text().replace("gnu 1", "gnu 1 and an oryx"))  # changed since indexed
    assert kb("search", "gnu", "-l").stdout.count("notes/") == 5  # the edit indexed, the others digested
    assert kb("search", "gnu", "-l").exit_code == 0
    db = sqlite3.connect(root / "index" / CATALOG)
    assert db.execute("SELECT COUNT(*) FROM contents").fetchone()[0] == 5
    db.close()
    assert kb("search", "gnu", "-l").exit_code == 0  # finds none missing: says so, not to look again
    db = sqlite3.connect(root / "index" / CATALOG)
    assert db.execute("SELECT value FROM meta WHERE key = 'contents'").fetchone() == ("all",)
    db.close()
    generations = _index_generations(root)
    later = time.time() + 100
    for path in (root / "notes").glob("*.md"):
        os.utime(path, (later, later))
    assert kb("search", "oryx", "-l").stdout == "notes/Note 1.md\n"
    assert _index_generations(root) == generations
    assert _stale_rows(root) == []


@pytest.mark.cold_only("it makes the catalog's write fail in this process")
def test_an_index_written_when_its_row_was_not_is_never_trusted_by_its_digest(kb, root, monkeypatch):
    from kb.index import NoteIndex
    from kb.index.catalog import Catalog, CatalogError

    assert kb("add", "Dessert", "-b", "apple pie").exit_code == 0
    assert titles(kb, "apple") == ["Dessert"]
    note = root / "notes" / "Dessert.md"
    before = note.read_bytes()
    note.write_bytes(before.replace(b"apple pie", b"banana split"))

    def fails(self: Catalog, *args: object) -> None:
        raise CatalogError("database is locked")

    with monkeypatch.context() as patched:
        patched.setattr(Catalog, "apply", fails)
        with pytest.raises(KbError):
            NoteIndex(root).update(["notes/Dessert.md"])  # the index took "banana", the row did not follow
    note.write_bytes(before)  # back as it was indexed first (an undo)
    later = time.time() + 50
    os.utime(note, (later, later))
    assert titles(kb, "apple") == ["Dessert"]
    assert titles(kb, "banana") == []


@pytest.mark.cold_only("it puts back a digest as a kb that knows none leaves it")
def test_a_row_an_earlier_kb_rewrote_does_not_trust_the_digest_left_beside_it(kb, root):
    import sqlite3

    from kb.index import NoteIndex
    from kb.index.catalog import CATALOG

    assert kb("add", "Dessert", "-b", "apple pie").exit_code == 0
    assert titles(kb, "apple") == ["Dessert"]
    note = root / "notes" / "Dessert.md"
    before = note.read_bytes()
    path = root / "index" / CATALOG
    with sqlite3.connect(path) as db:
        kept = db.execute("SELECT * FROM contents WHERE path = 'notes/Dessert.md'").fetchone()
    assert kept is not None
    note.write_bytes(before.replace(b"apple pie", b"banana split"))
    NoteIndex(root).update(["notes/Dessert.md"])
    with sqlite3.connect(path) as db:  # an earlier kb rewrote the row and left the digest as it was
        db.execute("INSERT OR REPLACE INTO contents VALUES (?,?,?,?,?)", kept)
    note.write_bytes(before)
    later = time.time() + 50
    os.utime(note, (later, later))
    assert titles(kb, "apple") == ["Dessert"]
    assert titles(kb, "banana") == []


def test_a_touched_note_dated_by_its_file_is_listed_with_its_new_time(kb, tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    assert kb("--kb", str(vault), "init").exit_code == 0
    for n in range(70):  # enough for a listing to ask which changed notes have only new times
        (vault / f"n{n}.md").write_text(f"# Heading {n}\n\nwords {n}\n")
    plain = vault / "n0.md"
    old = 1_600_000_000
    for path in vault.glob("*.md"):
        os.utime(path, (old, old))
    assert kb("--kb", str(vault), "search", "words", "-l").exit_code == 0

    def modified() -> str:
        notes = json.loads(kb("--kb", str(vault), "list", "--json").stdout)["notes"]
        return next(n["modified"] for n in notes if n["path"] == "n0.md")

    before = modified()
    assert before.startswith("2020-09-13")
    for path in vault.glob("*.md"):
        os.utime(path, (old + 86400 * 3, old + 86400 * 3))
    assert modified().startswith("2020-09-16")
    assert kb("--kb", str(vault), "search", "words", "-l").exit_code == 0
    assert modified().startswith("2020-09-16")
    assert plain.read_text() == "# Heading 0\n\nwords 0\n"
    # committed, they are dated by their commits: touched again, a listing takes their new times at once
    assert (
        kb("--kb", str(vault), "add", "Another", "-b", "commits the notes written outside first").exit_code
        == 0
    )
    assert kb("--kb", str(vault), "search", "words", "-l").exit_code == 0
    dated = modified()
    for path in vault.glob("*.md"):
        os.utime(path, (old + 86400 * 5, old + 86400 * 5))
    assert modified() == dated
    assert [path for path in _stale_rows(vault) if path.startswith("n")] == []


@pytest.mark.cold_only(
    "it reads what a cold check records in the catalog; a server's worker skips that check"
)
def test_the_scan_that_agreed_is_a_shortcut_that_never_hides_an_edit(corpus, kb, root):
    """A scan equal to the catalog's rows is recorded by its digest; the next check compares digests only.
    An edit in place (no folder's mtime moves), a new note, a deleted one, or a change kb makes (which
    forgets the digest) must all still be seen."""
    from kb.index import NoteIndex

    def agreed() -> str | None:
        catalog = NoteIndex(root).catalog()
        assert catalog is not None
        with catalog:
            return catalog.agreed()[0]

    assert titles(kb, "zebra")
    assert titles(kb, "zebra")  # this check found the catalog in step and recorded its scan
    first = agreed()
    assert first is not None
    notes = root / "notes"
    folder_mtime = os.stat(notes).st_mtime_ns
    with open(notes / "Zebra.md", "a", encoding="utf-8") as f:  # in place: same inode
        f.write("\nokapi\n")
    assert os.stat(notes).st_mtime_ns == folder_mtime
    assert titles(kb, "okapi") == ["Zebra"]
    assert agreed() is None  # the edit was indexed: the rows changed, the old digest is gone
    assert titles(kb, "okapi") == ["Zebra"]
    assert agreed() not in (None, first)
    (notes / "Written Outside.md").write_text("---\ntitle: Written Outside\n---\n\nwombat\n")
    assert titles(kb, "wombat") == ["Written Outside"]
    assert titles(kb, "wombat") == ["Written Outside"]
    (notes / "Written Outside.md").unlink()
    assert titles(kb, "wombat") == []
    assert titles(kb, "okapi") == ["Zebra"]
    assert agreed() is not None
    kb("edit", "Zebra", "-a", "quagga")
    assert agreed() is None  # kb's own change forgets it too
    assert titles(kb, "quagga") == ["Zebra"]


def test_a_scan_is_not_recorded_when_the_rows_changed_since_they_were_read(corpus, kb, root):
    from kb.index import NoteIndex
    from kb.index.catalog import Entry
    from kb.store import Store, scan_digest

    assert titles(kb, "zebra")
    index = NoteIndex(root)
    catalog = index.catalog()
    assert catalog is not None
    with catalog:
        _, generation = catalog.signatures_at()
        other = index.catalog()
        assert other is not None
        with other:  # another process changes a row in between
            entry = other.entries()["notes/Zebra.md"]
            other.apply({"notes/Zebra.md": entry._replace(sig=(1, 2, 3))}, [], {})
        digest = scan_digest(Store(root).scan()[0])
        assert digest is not None
        catalog.remember_scan(digest, generation)
        assert catalog.agreed()[0] is None
        assert isinstance(entry, Entry)
    assert "Zebra" in titles(kb, "zebra")  # the changed row is seen as a change and indexed again


@pytest.mark.cold_only("it looks at the searcher this process keeps")
def test_the_searcher_kept_between_searches_is_the_index_as_it_is_now(kb, root):
    # A process that searches twice keeps the first search's searcher open for the second (a warm server's
    # spare searches once before it takes a command); a commit or a rebuild of the index in between
    # makes the second search open the new index.
    from kb import index as kb_index

    assert kb("add", "Kept", "-b", "alpha words").exit_code == 0
    assert paths(kb, "alpha") == ["notes/Kept.md"]
    first = kb_index._KEPT[-1][2]
    assert paths(kb, "alpha") == ["notes/Kept.md"]
    assert kb_index._KEPT[-1][2] is first
    assert kb("add", "Other", "-b", "alpha again").exit_code == 0
    assert paths(kb, "alpha") == ["notes/Kept.md", "notes/Other.md"]
    second = kb_index._KEPT[-1][2]
    assert second is not first
    assert kb("reindex").exit_code == 0
    assert paths(kb, "alpha") == ["notes/Kept.md", "notes/Other.md"]
    third = kb_index._KEPT[-1][2]
    assert third is not second
    (root / "notes" / "Other.md").unlink()  # an outside deletion: the search catches up first
    assert paths(kb, "alpha") == ["notes/Kept.md"]
    assert kb_index._KEPT[-1][2] is not third
    kb_index.close_kept_searcher()
    assert not kb_index._KEPT


@pytest.mark.cold_only("it commits to the index from inside this process's search")
def test_a_search_whose_index_changes_under_it_is_asked_again(kb, root, monkeypatch):
    # A commit by another process (a warm worker's update or merge after its answer) deletes the files of
    # the segments it merged; a searcher opened before may not have read them yet. The search is asked
    # again on the new index, and the index is not rebuilt for it.
    import contextlib as ctx

    from whoosh import index as whoosh_index

    from kb.index import NoteIndex

    for i in range(4):
        assert kb("add", f"Part {i}", "-b", f"segmentword part{i}").exit_code == 0
        assert paths(kb, f"part{i}") == [f"notes/Part {i}.md"]  # one segment each
    real = NoteIndex._searcher
    calls = []

    @ctx.contextmanager
    def changed_under(self):
        with real(self) as searcher:
            calls.append(searcher)
            if len(calls) == 1:
                writer = whoosh_index.open_dir(str(root / "index")).writer()
                writer.commit(optimize=True)  # one segment now; the others' files are gone
            yield searcher

    monkeypatch.setattr(NoteIndex, "_searcher", changed_under)
    r = kb("search", "segmentword", "-l")
    assert r.exit_code == 0, r.stderr
    assert sorted(r.stdout.split("\n")[:-1]) == [f"notes/Part {i}.md" for i in range(4)]
    assert len(calls) == 2 and "rebuilt" not in r.stderr


def test_a_knowledge_base_made_by_its_first_add_has_its_index_at_once(kb, root):
    """The first `kb add` makes the knowledge base and its (empty) search index, then indexes its note:
    the first search finds it without building anything, as after kb init."""
    assert not root.exists()
    assert kb("add", "First note", "-b", "A walrus in the garden.").exit_code == 0
    assert (root / "index").is_dir()
    r = kb("search", "walrus")
    assert r.exit_code == 0 and "First note" in r.stdout
    assert "built" not in r.stderr and "rebuilt" not in r.stderr


@pytest.mark.cold_only("it shortens the wait for the index's writer in this process")
def test_a_search_while_another_process_keeps_the_index_s_writer_answers_from_the_index_as_it_is(
    kb, root, monkeypatch
):
    """Another process indexing every note again (all of them touched) keeps Whoosh's writer for long: a
    search that needs it to take in an outside edit answers from the index as it is, and says so."""
    from whoosh import index as windex

    from kb import index as kb_index

    assert kb("add", "Alpha", "-b", "first words").exit_code == 0
    assert kb("search", "first").exit_code == 0
    with (root / "notes" / "Alpha.md").open("a") as f:
        f.write("\nzanzibarish\n")  # an outside edit: the search must index it first
    monkeypatch.setattr(kb_index, "WRITER_TIMEOUT", 0.2)
    monkeypatch.setattr(kb_index, "BUSY_WAIT", 0.5)
    writer = windex.open_dir(str(root / "index")).writer()  # as the other process holds it
    try:
        for args in (("search", "first"), ("search", "zanzibarish"), ("search", "links:Alpha")):
            r = kb("--debug", *args)
            assert r.exit_code in (0, 1) and "Traceback" not in r.stderr, (args, r.stderr)
            assert r.stderr.count("another kb process is bringing the search index up to date") == 1, r.stderr
        assert "Alpha" in kb("search", "first").stdout
        r = kb("backlinks", "Alpha")  # a link command cannot say what it leaves out: it fails clearly
        busy = "another kb process is bringing the search index up to date; try again when it has finished"
        assert r.exit_code == 1 and r.stderr.splitlines() == [f"Error: {busy}"], r.stderr
    finally:
        writer.cancel()
    r = kb("search", "zanzibarish")
    assert r.exit_code == 0 and "Alpha" in r.stdout and "another kb process" not in r.stderr


@pytest.mark.cold_only("it shortens the wait for the index's writer in this process")
def test_a_search_waits_for_another_process_that_lets_the_index_s_writer_go(kb, root, monkeypatch):
    """The other process (a warm server indexing what a `git checkout` changed) lets go within BUSY_WAIT:
    the search waits for it, then takes in the outside edit and answers from the index as it is now."""
    import threading

    from whoosh import index as windex

    from kb import index as kb_index

    assert kb("add", "Alpha", "-b", "first words").exit_code == 0
    assert kb("search", "first").exit_code == 0
    with (root / "notes" / "Alpha.md").open("a") as f:
        f.write("\nzanzibarish\n")
    monkeypatch.setattr(kb_index, "WRITER_TIMEOUT", 0.2)
    writer = windex.open_dir(str(root / "index")).writer()
    timer = threading.Timer(1.5, writer.cancel)  # several of the search's tries for the writer fail first
    timer.start()
    try:
        r = kb("search", "zanzibarish")
    finally:
        timer.join()
    assert r.exit_code == 0 and "Alpha" in r.stdout, r.stderr
    assert "another kb process" not in r.stderr


@pytest.fixture
def scripts(kb):
    kb("add", "插件设置", "-b", "Obsidian的插件系统很强大。\n\n数据库同步功能。")
    kb("add", "Thai", "-b", "การตั้งค่าปลั๊กอินซิงค์ข้อมูล")
    kb("add", "Hindi", "-b", "हिन्दी में लिखा गया नोट")
    kb("add", "Apart", "-b", "据 and 库 apart, 插 alone")
    return kb


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("插件", ["插件设置"]),  # inside a longer run, as grep finds it
        ("数据库", ["插件设置"]),
        ("据库", ["插件设置"]),  # not the note with the two characters apart
        ("据", ["Apart", "插件设置"]),  # one character alone
        ('"的插件系统"', ["插件设置"]),
        ("Obsidian的插件", ["插件设置"]),  # letters of two scripts in one word
        ("系统强大", []),  # the characters must be next to each other
        ("ปลั๊กอิน", ["Thai"]),
        ("ซิงค์", ["Thai"]),
        ("हिन्दी", ["Hindi"]),  # vowel signs are part of the word
        ("लिखा", ["Hindi"]),
        ("title:插件", ["插件设置"]),
        ('"数据 库"', ["插件设置"]),  # in a phrase, a space inside a run is no gap
        ('"据 库"', ["插件设置"]),
        ("*据*", ["Apart", "插件设置"]),  # a wildcard around a run: the run, found inside longer ones
        ("*数据库*", ["插件设置"]),
    ],
)
def test_scripts_written_without_spaces_find_the_characters_typed(scripts, query, found):
    r = scripts("search", query, "--json")
    assert r.exit_code == (0 if found else 1), r.stderr
    assert sorted(h["title"] for h in json.loads(r.stdout)["hits"]) == found if found else True


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("python", True),
        ("python.org", True),
        ("docs.python.org", True),
        ("obsidian.md", True),
        ("help.obsidian.md", True),
        ("docs.pyth*", True),  # a prefix of the name whole
        ("org.python", False),  # the parts in another order
        ('"docs.python.org now"', False),
    ],
)
def test_the_parts_of_a_name_with_dots_are_found_as_grep_finds_them(kb, query, found):
    kb("add", "Links", "-b", "See https://docs.python.org/3/library and help.obsidian.md, then later now.")
    r = kb("search", query, "-l")
    assert r.stdout == ("notes/Links.md\n" if found else ""), (query, r.stderr)


@pytest.mark.parametrize(
    "query",
    ["résumé", "resume", "zurich", "Zürich", "strasse", "gross", "aether", "oeuvre", "final", "カタカナ"],
)
def test_text_in_any_unicode_form_is_found_as_typed(kb, query):
    # written as macOS writes names (a letter and a combining accent), with ß, ligatures, half-width kana
    kb(
        "add",
        "Forms",
        "-b",
        "Visited a re\u0301sume\u0301 workshop in Zu\u0308rich. Straße, groß, Æther, œuvre, ﬁnal, ｶﾀｶﾅ.",
    )
    r = kb("search", query, "--json")
    assert r.exit_code == 0, (query, r.stderr)
    [hit] = json.loads(r.stdout)["hits"]
    assert hit["title"] == "Forms"


def test_a_run_of_characters_is_highlighted_where_it_is(scripts):
    [hit] = json.loads(scripts("search", "数据库", "--json").stdout)["hits"]
    [snippet] = hit["snippets"]
    assert [snippet["text"][a:b] for a, b in snippet["matches"]] == ["数据库"]
    r = scripts("search", "插件", "-C", "0")
    assert r.exit_code == 0 and "notes/插件设置.md:9:Obsidian的插件系统很强大。" in r.stdout
    assert "数据库同步" not in r.stdout  # that line has not the word
    [hit] = json.loads(scripts("search", "ซิงค์", "--json").stdout)["hits"]
    [snippet] = hit["snippets"]
    assert [snippet["text"][a:b] for a, b in snippet["matches"]] == ["ซิงค์"]


def test_every_revision_of_a_run_of_characters_is_searched(scripts):
    assert scripts("edit", "插件设置", "-b", "全部删除了").exit_code == 0
    assert scripts("search", "数据库").exit_code == 1
    r = scripts("search", "--history", "数据库")
    assert r.exit_code == 0 and "插件设置" in r.stdout and "revision 1 of 2" in r.stdout


def test_a_phrase_with_a_space_inside_a_run_is_found_spaced_as_typed_or_joined(kb):
    kb("add", "Spaced", "-b", "这是 数据 库 的 例子。การตั้งค่าปลั๊กอินของคุณ และฐานข้อมูล")
    kb("add", "Joined", "-b", "数据库的基本")
    for query, found in (
        ('"这是 数据"', "notes/Spaced.md\n"),
        ('"ของคุณ และ"', "notes/Spaced.md\n"),
        ('"数据 库"', "notes/Joined.md\nnotes/Spaced.md\n"),
    ):
        r = kb("search", query, "-l", "--sort", "title")
        assert r.stdout == found, (query, r.stderr)


def test_a_link_field_with_a_spaced_name_in_chinese_is_the_note_of_that_name(kb):
    kb("add", "数据 库", "-b", "x")
    kb("add", "Other", "-b", "see [[数据 库]] and 数据库")
    assert kb("search", 'links:"数据 库"', "-l").stdout == "notes/Other.md\n"


def test_a_query_of_punctuation_only_says_it_has_no_word_to_search_for(kb):
    kb("add", "Marks", "-b", "wow!!! -- and ??? here")
    for args in (["!!!"], ["--", "---"], ["#"], ['"!!!"'], ["!!!", "--json"], ["--history", "!!!"]):
        r = kb("search", *args)
        assert r.exit_code == 1, (args, r.stdout, r.stderr)
        assert "Warning: the query has no word to search for" in r.stderr, (args, r.stderr)
    r = kb("search", "here !!!")
    assert r.exit_code == 0 and "no word to search for" not in r.stderr


def test_a_word_and_a_prefix_find_the_longer_words_that_begin_as_typed(kb):
    """The index holds stems (`happy` is `happi`): a word and a prefix also find the words that begin with
    them as typed, as grep does (`happyland`, `docs.python.org` for `docs.py*`)."""
    kb("add", "Land", "-b", "welcome to happyland and runningshoes, see docs.python.org")
    kb("add", "Mood", "-b", "I was happy, ran and running")
    for query in ("happy", "happy*", "running", "docs.py*", "happiness happy"):  # two forms of one stem
        found = kb("search", query, "-l").stdout.splitlines()
        assert "notes/Land.md" in found, (query, found)
    assert kb("search", "happy", "-l").stdout.splitlines()[0] == "notes/Mood.md"  # the word ranks first
    assert kb("search", "happy", "-C", "0").stdout.count("happyland") == 1
    kb("add", "Sky", "-b", "a starred item, and the start of it")
    assert kb("search", "starred", "-C", "0").stdout == "notes/Sky.md:9:a starred item, and the start of it\n"
    kb("add", "Other sky", "-b", "the start only")
    assert kb("search", "starred", "-l").stdout == "notes/Sky.md\n"  # its stem is star: not start, as grep


@pytest.mark.cold_only("counts what the index's readers read in this process")
def test_every_segment_is_read_ahead_in_the_searcher_kept(kb, root: Path, monkeypatch: pytest.MonkeyPatch):
    """A warm server's spare rehearses a search, then reads ahead in every segment what a search reads
    there on first use: the command's search, whatever segments its hits lie in, builds none of it."""
    from whoosh import index as whoosh_index
    from whoosh.codec import whoosh3

    from kb import index as kb_index
    from kb.store import Store

    assert kb("add", "Alpha", "-b", "Okapi words.").exit_code == 0
    assert kb("add", "Beta", "-b", "Zebra words.").exit_code == 0
    assert kb("search", "okapi", "-l").stdout == "notes/Alpha.md\n"  # its searcher is kept
    with whoosh_index.open_dir(str(kb_index.NoteIndex(root, Store(root)).folder)).reader() as reader:
        assert len(reader.leaf_readers()) == 2  # one segment per note
    kb_index.ready_kept_searcher()
    built: list[str] = []
    column_reader = whoosh3.W3PerDocReader.column_reader

    def counted(reader: object, name: str, column: object) -> object:
        built.append(name)
        return column_reader(reader, name, column)

    monkeypatch.setattr(whoosh3.W3PerDocReader, "column_reader", counted)
    assert kb("search", "zebra").stdout.startswith("1. Beta")
    assert built == []
