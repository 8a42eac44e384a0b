"""The note format, pure: parsing, surgical rewriting, YAML scalars, file names."""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.errors import BrokenNote, UsageError
from kb.notes import (
    MAX_STEM_BYTES,
    file_stem,
    format_timestamp,
    parse_note,
    parse_timestamp,
    set_fields,
    split_document,
    validate_title,
    yaml_scalar,
)
from tests.conftest import FIXTURES

SEED_LIKE = (FIXTURES / "older.md").read_text()


def changed_lines(a: str, b: str) -> list[tuple[str, str]]:
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    assert len(la) == len(lb)
    return [(x, y) for x, y in zip(la, lb, strict=True) if x != y]


def test_timestamps_in_notables_form():
    moment = parse_timestamp("2021-11-19T16:02:40.897Z")
    assert moment is not None
    assert format_timestamp(moment) == "2021-11-19T16:02:40.897Z"
    assert parse_timestamp("2024-02-30") is None
    assert parse_timestamp("garbage") is None
    assert parse_timestamp("10000-01-01") is None


def test_seed_like_note_parses():
    note = parse_note(SEED_LIKE.encode())
    assert note.problem is None
    assert note.title == "Machine Learning"
    assert note.tags == ("Notebooks/Skills/Tech",)
    assert note.created == "2021-11-19T16:02:40.897Z"
    assert note.modified == "2021-11-23T15:11:42.617Z"
    assert note.body.startswith("\n# Machine Learning\n")


def test_setting_modified_changes_exactly_one_line():
    doc = parse_note(SEED_LIKE.encode()).doc
    assert doc is not None
    new = set_fields(doc, {"modified": "2026-01-01T00:00:00.000Z"}).render()
    assert changed_lines(SEED_LIKE, new) == [
        ("modified: '2021-11-23T15:11:42.617Z'\n", "modified: '2026-01-01T00:00:00.000Z'\n")
    ]


def test_unknown_keys_comments_quoting_and_order_survive():
    text = (
        "---\n"
        "# a comment\n"
        'title: "Double quoted"\n'
        "pinned: true\n"
        "tags:\n"
        "  - a\n"
        "  - b\n"
        "attachments: [x.png]\n"
        "modified: 2021-01-01T00:00:00Z\n"
        "custom: {nested: [1, 2]}\n"
        "---\n"
        "body"
    )
    doc = parse_note(text.encode()).doc
    assert doc is not None
    new = set_fields(doc, {"modified": "2026-01-01T00:00:00.000Z"}).render()
    assert new == text.replace("modified: 2021-01-01T00:00:00Z", "modified: '2026-01-01T00:00:00.000Z'")
    new = set_fields(doc, {"tags": ["a", "c"]}).render()
    assert "tags: [a, c]\nattachments: [x.png]\n" in new
    assert new.startswith('---\n# a comment\ntitle: "Double quoted"\npinned: true\n')
    assert parse_note(new.encode()).extra == {
        "pinned": True,
        "attachments": ["x.png"],
        "custom": {"nested": [1, 2]},
    }


def test_missing_keys_are_inserted_in_notables_order():
    doc = parse_note(b"---\ntitle: T\nfoo: 1\n---\nbody\n").doc
    assert doc is not None
    new = set_fields(doc, {"tags": ["x"], "modified": "2026-01-01T00:00:00.000Z"}).render()
    assert new == "---\ntags: [x]\ntitle: T\nmodified: '2026-01-01T00:00:00.000Z'\nfoo: 1\n---\nbody\n"


def test_removing_tags_drops_the_key():
    doc = parse_note(b"---\ntags: [a]\ntitle: T\n---\n\nbody\n").doc
    assert doc is not None
    assert set_fields(doc, {"tags": None}).render() == "---\ntitle: T\n---\n\nbody\n"


def test_a_note_without_front_matter_gets_one():
    doc = parse_note(b"# Loose\n\ntext\n").doc
    assert doc is not None
    new = set_fields(doc, {"modified": "2026-01-01T00:00:00.000Z"}).render()
    assert new == "---\nmodified: '2026-01-01T00:00:00.000Z'\n---\n\n# Loose\n\ntext\n"


def test_crlf_and_bom_are_preserved():
    text = "\ufeff---\r\ntitle: T\r\nmodified: '2021-01-01T00:00:00.000Z'\r\n---\r\n\r\nbody\r\nmixed\n"
    note = parse_note(text.encode())
    assert note.problem is None and note.title == "T"
    assert note.doc is not None
    new = set_fields(note.doc, {"modified": "2026-01-01T00:00:00.000Z", "tags": ["t"]}).render()
    assert new == (
        "\ufeff---\r\ntags: [t]\r\ntitle: T\r\n"
        "modified: '2026-01-01T00:00:00.000Z'\r\n---\r\n\r\nbody\r\nmixed\n"
    )


@pytest.mark.parametrize(
    ("front", "title", "tags"),
    [
        ("title: no", "no", ()),
        ("title: 123", "123", ()),
        ("title: 2021-01-01", "2021-01-01", ()),
        ("title: ''", None, ()),
        ('tags: "a, b"', None, ("a", "b")),
        ("tags: 5", None, ("5",)),
        ("tags: [x, x, /y/]", None, ("x", "y")),
        ("tags:", None, ()),
    ],
)
def test_defined_conversions_never_a_silent_false(front, title, tags):
    note = parse_note(f"---\n{front}\n---\nbody\n".encode())
    assert note.problem is None
    assert note.title == title
    assert note.tags == tags


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"---\ntitle: a\ntitle: b\n---\n", "duplicate key 'title' in front matter at line 3"),
        (b"---\ntitle: [unclosed\n---\nbody", "invalid front matter at line 3"),
        (b"---\ntitle: x\nno closing line\n", "front matter has no closing '---' line"),
        (b"---\n- a list\n---\n", "not a mapping"),
        (b"---\nx: !!python/object/apply:os.system [echo pwned]\n---\n", "invalid front matter at line 2"),
        (b"---\ntitle: caf\xe9\n---\n", "not valid UTF-8 at byte offset 14"),
        (b"---\ntitle: a\x00b\n---\n", "binary file"),
    ],
)
def test_problems_are_reported_not_raised(text, problem):
    note = parse_note(text)
    assert note.problem is not None and problem in note.problem


def test_alias_bomb_is_refused_quickly():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    text = "---\n" + "\n".join(lines) + "\n---\nbody\n"
    start = time.monotonic()
    note = parse_note(text.encode())
    assert time.monotonic() - start < 5
    assert note.problem is not None and "aliases" in note.problem


def test_huge_and_deep_front_matter_is_refused():
    big = "---\n" + "".join(f"k{i}: {'x' * 100}\n" for i in range(1000)) + "---\n"
    assert "larger than" in (parse_note(big.encode()).problem or "")
    deep = "---\nk: " + "[" * 100 + "]" * 100 + "\n---\n"
    assert "nested deeper" in (parse_note(deep.encode()).problem or "")


def test_bad_dates_are_kept_with_a_warning():
    note = parse_note(b"---\ncreated: 2024-02-30\nmodified: '0000-01-01'\n---\n")
    assert note.problem is None
    assert note.created == "2024-02-30" and note.modified == "0000-01-01"
    assert len(note.warnings) == 2


def test_a_broken_note_cannot_be_rewritten():
    doc = split_document("---\ntitle: [x\n---\nbody")[0]
    with pytest.raises(BrokenNote):
        set_fields(doc, {"modified": "2026-01-01T00:00:00.000Z"})


def test_file_stems():
    assert file_stem("a/b") == "a∕b"
    assert file_stem("a\\b") == "a∖b"
    assert file_stem("../../etc/passwd") == "∕..∕etc∕passwd"
    assert file_stem("..") == "Untitled"
    assert file_stem("CON") == "CON_"
    assert file_stem("nul.txt") == "nul.txt_"
    assert file_stem("trailing. ") == "trailing"
    assert file_stem('what? "quoted": <x>|*') == "what quoted x"
    assert file_stem("-rf") == "-rf"
    assert file_stem("cafe\u0301") == "café"


def test_long_titles_are_cut_deterministically_and_stay_distinct():
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    assert file_stem(a) == file_stem(a)
    assert file_stem(a) != file_stem(b)
    assert len(file_stem(a).encode()) <= MAX_STEM_BYTES
    emoji = "🦀" * 200
    assert len(file_stem(emoji).encode()) <= MAX_STEM_BYTES
    file_stem(emoji).encode("utf-8")


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "a\x00b", "tab\there", "a\u2028b", "\x1b[31mred"])
def test_invalid_titles_are_refused(bad):
    with pytest.raises(UsageError):
        validate_title(bad)


titles = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), min_size=1, max_size=80
).filter(lambda s: s.strip())


@given(titles)
def test_yaml_scalars_round_trip(value):
    for in_flow in (False, True):
        scalar = yaml_scalar(value, in_flow=in_flow)
        loaded = yaml.safe_load(f"k: [{scalar}]" if in_flow else f"k: {scalar}")["k"]
        assert loaded == ([value] if in_flow else value)


@given(st.text(max_size=300))
def test_split_renders_back_exactly(text):
    assert split_document(text)[0].render() == text


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_parse_never_raises(data):
    parse_note(data)
    parse_note(b"---\n" + data + b"\n---\n")


@given(
    titles,
    st.lists(titles, max_size=4),
    st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=200),
)
def test_set_fields_round_trips_title_and_tags(title, tags, body):
    title = validate_title(title)
    clean_tags = []
    for tag in tags:
        try:
            from kb.notes import validate_tag

            t = validate_tag(tag)
        except UsageError:
            continue
        if t not in clean_tags:
            clean_tags.append(t)
    doc = split_document("---\ntitle: x\n---\n" + body)[0]
    new = set_fields(doc, {"title": title, "tags": clean_tags or None})
    parsed = parse_note(new.render().encode())
    assert parsed.problem is None
    assert parsed.title == title
    assert parsed.tags == tuple(clean_tags)
    assert parsed.body == body


@pytest.mark.parametrize(
    "raw",
    [
        b"---\nmodified: '2026-01-02T03:04:05.000Z'\n---\nbody\n",
        b"---\nmodified: 2026-01-02\ntitle: x\n---\n",
        b"---\nmodified:\n---\n",
        b"---\nmodified: [a, b]\n---\n",
        b"---\nmodified: null\n---\n",
        b"---\nupdated: 2026-01-02\n---\n",  # another tool's key: not kb's `modified`
        b"---\nmodified: x\n<<: 5\n---\n",  # composes, does not construct
        b"---\nmodified: !!python/object x\n---\n",
        b"---\nmodified: 'x\n---\n",
        b"---\nmodified: x\n",  # no closing line
        b"\xef\xbb\xbf---\nmodified: x\n---\n",
        b"---\r\nmodified: x\r\n---\r\n",
        b"modified: x\n",
        b"---\nmodified: x\n---\n\x00",
        b"---\nmodified: \xff\n---\n",
        b"",
    ],
)
def test_modified_of_is_parse_notes_modified(raw):
    from kb.notes import modified_of

    assert modified_of(raw) == parse_note(raw).modified
