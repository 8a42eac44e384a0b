"""A prefix's notes (`ap*`: every word of the index that begins with it) over segments with deleted notes:
the document numbers of each word read a block at a time, through the filter of a segment's deleted
notes too, are those Whoosh's matchers give one posting at a time; no deleted note is among them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from whoosh import index

from kb.index.document import schema
from kb.index.postings import fast_postings
from kb.index.query import parse_query

WORDS = ["apple", "apricot", "apex", "banana", "avocado", "berry", "ape", "cherry"]


def test_a_prefix_finds_every_kept_note_with_a_word_it_begins(tmp_path: Path):
    fast_postings()
    folder = tmp_path / "ix"
    folder.mkdir()
    ix = index.create_in(str(folder), schema())
    rng = random.Random(5)
    bodies: dict[str, str] = {}
    for _ in range(3):
        writer = ix.writer()
        for _ in range(400):
            path = f"notes/{len(bodies)}.md"
            bodies[path] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))
            writer.add_document(path=path, title="t", body=bodies[path], tags="t", tag_list=["t"])
        writer.commit(merge=False)
    deleted = {f"notes/{n}.md" for n in rng.sample(range(len(bodies)), 300)}
    writer = ix.writer()
    for path in deleted:
        writer.delete_by_term("path", path)
    writer.commit(merge=False)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with ix.searcher() as searcher:
        assert len(searcher.leaf_searchers()) == 3 and searcher.reader().has_deletions()
        for prefix in ("ap", "a", "b", "ch", "apr"):
            found = {
                searcher.stored_fields(hit.docnum)["path"]
                for hit in searcher.search(parse_query(f"{prefix}*", now), limit=None)
            }
            expected = {
                path
                for path, body in bodies.items()
                if path not in deleted and any(word.startswith(prefix) for word in body.split())
            }
            assert found == expected, prefix
            assert expected  # not a comparison of nothing
