"""The link parser and resolver (kb.links): examples of every form, and properties over generated text."""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from kb.links import (
    ANGLE,
    MARKDOWN,
    NOTABLE,
    WIKI,
    Link,
    Resolved,
    Vault,
    new_target_text,
    parse_links,
    replace_spans,
)

TEXT = """# T
See [[Title]], [[Title|alias]], [[Title#Heading]], [[Title#^block]] and ![[file.png]] ![[Note]].
[text](Other%20Note.md) [x](../postgres/x.md#section) <Other Note.md> [n](@note/Title.md)
![a](@attachment/x.png) [y](<My Note.md> "t") [u](https://x.org) [m](mailto:a@b) `[[code]]`
[[#self]] [z](#sec) ``[x](inline.md)``
```
[[fenced]]
```
~~~~
[a](fenced.md)
~~~~
| [[Note\\|alias]] |
"""


def test_every_form_with_its_span_and_line():
    links = parse_links(TEXT)
    got = [(link.kind, link.target, link.fragment, link.alias, link.embed, link.line) for link in links]
    assert got == [
        (WIKI, "Title", None, None, False, 2),
        (WIKI, "Title", None, "alias", False, 2),
        (WIKI, "Title", "Heading", None, False, 2),
        (WIKI, "Title", "^block", None, False, 2),
        (WIKI, "file.png", None, None, True, 2),
        (WIKI, "Note", None, None, True, 2),
        (MARKDOWN, "Other Note.md", None, "text", False, 3),
        (MARKDOWN, "../postgres/x.md", "section", "x", False, 3),
        (ANGLE, "Other Note.md", None, None, False, 3),
        (NOTABLE, "@note/Title.md", None, "n", False, 3),
        (NOTABLE, "@attachment/x.png", None, "a", True, 4),
        (MARKDOWN, "My Note.md", None, "y", False, 4),
        (WIKI, "Note", None, "alias", False, 12),
    ]
    raws = [TEXT[link.start : link.end] for link in links]
    assert raws[6] == "Other%20Note.md"
    assert raws[11] == "My Note.md"
    assert all(raw.endswith(("Title", "png", "Note", "md")) for raw in raws)


def test_first_line_offsets_the_line_numbers():
    assert parse_links("a\n[[X]]\n", first_line=7)[0].line == 8


def test_crlf_and_unclosed_fences():
    text = "[[A]]\r\n```\r\n[[B]]\r\n"
    assert [link.target for link in parse_links(text)] == ["A"]
    assert parse_links("[[A]]\r\n")[0].end == 3


VAULT = Vault(
    {
        "Title.md": "Title",
        "postgres/x.md": "Vacuum",
        "Other Note.md": "Other Note",
        "a/Note.md": "Note",
        "b/Note.md": "Note",
        "a/Same.md": "Same A",
        "b/Same.md": "Same B",
    },
    ["attachments/x.png", "img/file.png"],
)


def _resolve(text: str, source: str = "vim/index.md") -> tuple[str, str | None, str]:
    found = VAULT.resolve(parse_links(text)[0], source)
    return found.status, found.path, found.how


def test_resolution_order_relative_root_name():
    assert _resolve("[x](../postgres/x.md)") == ("ok", "postgres/x.md", "relative")
    assert _resolve("[x](postgres/x.md)") == ("ok", "postgres/x.md", "root")
    assert _resolve("[[postgres/x]]") == ("ok", "postgres/x.md", "root")
    assert _resolve("[[x]]") == ("ok", "postgres/x.md", "name")
    assert _resolve("[[vacuum]]") == ("ok", "postgres/x.md", "name")  # by title, ignoring case
    assert _resolve("[[OTHER NOTE]]") == ("ok", "Other Note.md", "root")  # a path, ignoring case
    assert _resolve("![[file.png]]") == ("ok", "img/file.png", "name")
    assert _resolve("[[Same]]", "a/x.md") == ("ok", "a/Same.md", "relative")  # beside the linking note


def test_ambiguous_and_dead_are_reported():
    found = VAULT.resolve(parse_links("[[Note]]")[0], "c.md")
    assert found.status == "ambiguous" and found.candidates == ("a/Note.md", "b/Note.md")
    assert VAULT.resolve(parse_links("[[a/Note]]")[0], "c.md").path == "a/Note.md"
    assert VAULT.resolve(parse_links("[[Nothing]]")[0], "c.md").status == "dead"
    assert VAULT.resolve(parse_links("![[gone.png]]")[0], "c.md").status == "dead"
    assert VAULT.resolve(parse_links("[x](../../out.md)")[0], "c.md").status == "dead"


def test_notable_links_use_the_notes_and_attachments_folders():
    vault = Vault({"notes/Title.md": "Title"}, ["attachments/x.png"], prefix="notes/")
    assert vault.resolve(parse_links("[t](@note/Title.md)")[0], "notes/a.md").path == "notes/Title.md"
    assert vault.resolve(parse_links("[t](@attachment/x.png)")[0], "notes/a.md").path == "attachments/x.png"


def _rewrite(text: str, how: str, new_path: str, new_title: str, source: str = "a.md") -> str:
    link = parse_links(text)[0]
    raw = text[link.start : link.end]
    angled = text[link.start - 1 : link.start] == "<"
    new = new_target_text(link, raw, how, "Old Name.md", source, new_path, new_title, "", angled)
    assert new is not None
    return replace_spans(text, [(link.start, link.end, new)])


def test_rewrites_keep_the_form():
    assert _rewrite("[[Old Name#^b|alias]]", "name", "New.md", "New") == "[[New#^b|alias]]"
    assert _rewrite("![[old name]]", "name", "New.md", "New") == "![[New]]"
    assert _rewrite("[[Old Title]]", "name", "New One.md", "New Title") == "[[New Title]]"
    assert _rewrite("[x](Old%20Name.md#s)", "relative", "New One.md", "N") == "[x](New%20One.md#s)"
    assert _rewrite("[x](<Old Name.md>)", "relative", "New One.md", "N") == "[x](<New One.md>)"
    assert _rewrite("[x](Old.md)", "relative", "New One.md", "N") == "[x](New%20One.md)"
    assert _rewrite("[x](../p/Old.md)", "relative", "q/New.md", "N", "v/a.md") == "[x](../q/New.md)"
    assert _rewrite("[x](/p/Old.md)", "root", "q/New.md", "N") == "[x](/q/New.md)"
    assert _rewrite("[[p/Old Name]]", "name", "q/New.md", "N") == "[[q/New]]"
    assert _rewrite("[t](@note/Old.md)", "notable", "New.md", "N") == "[t](@note/New.md)"


# ---------------------------------------------------------------- properties

NAME = st.text(st.sampled_from("abcXYZ 09-é"), min_size=1, max_size=8).filter(lambda s: s.strip() == s)
PLAIN = st.text(st.sampled_from("abc xyz.,\n!-"), max_size=12)


@st.composite
def piece(draw: st.DrawFn) -> tuple[str, tuple[str, str] | None]:
    """A piece of a note: its text, and the (kind, target) of the link it is (None when it is none)."""
    name = draw(NAME)
    form = draw(st.integers(0, 8))
    if form == 0:
        return draw(PLAIN), None
    if form == 1:
        return f"[[{name}]]", (WIKI, name)
    if form == 2:
        return f"![[{name}|{draw(NAME)}]]", (WIKI, name)
    if form == 3:
        return f"[[{name}#{draw(NAME)}]]", (WIKI, name)
    if form == 4:
        encoded = name.replace(" ", "%20")
        return f"[t]({encoded}.md)", (MARKDOWN, name + ".md")
    if form == 5:
        return f"[t](<{name}.md>)", (MARKDOWN, name + ".md")
    if form == 6:
        return f"`[[{name}]]`", None
    if form == 7:
        return f"\n```\n[[{name}]]\n```\n", None
    return f"[w](https://example.org/{name.replace(' ', '')})", None


@settings(max_examples=300, deadline=None)
@given(st.lists(piece(), max_size=12))
def test_finds_exactly_the_links_outside_code(pieces: list[tuple[str, tuple[str, str] | None]]):
    text = " ".join(p for p, _ in pieces)
    expected = [link for _, link in pieces if link is not None]
    found = parse_links(text)
    assert [(link.kind, link.target) for link in found] == expected
    for link in found:
        raw = text[link.start : link.end]
        assert (unquote(raw) if link.kind == MARKDOWN else raw) == link.target
        assert text.count("\n", 0, link.start) + 1 == link.line


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("[]()<>!#|`~ \nab.md%:/\\^@"), max_size=80))
def test_any_text_parses_with_spans_in_bounds(text: str):
    for link in parse_links(text):
        assert 0 <= link.start <= link.end <= len(text)
        assert "\n" not in text[link.start : link.end]
        assert link.target.strip()


@settings(max_examples=200, deadline=None)
@given(st.lists(piece(), max_size=8), NAME)
def test_rewriting_every_wiki_target_changes_only_the_targets(pieces, new: str):
    text = " ".join(p for p, _ in pieces)
    links = [link for link in parse_links(text) if link.kind == WIKI]
    out = replace_spans(text, [(link.start, link.end, new) for link in links])
    again = [link for link in parse_links(out) if link.kind == WIKI]
    assert [link.target for link in again] == [new] * len(links)
    assert [(link.fragment, link.alias, link.embed) for link in again] == [
        (link.fragment, link.alias, link.embed) for link in links
    ]
    # everything outside the targets is unchanged
    back = [(b.start, b.end, text[a.start : a.end]) for a, b in zip(links, again, strict=True)]
    assert replace_spans(out, back) == text


def test_link_to_json():
    link = parse_links("[[A|b]]")[0]
    assert Link(**{k: v for k, v in link.to_json().items()}) == link  # type: ignore[arg-type]


def test_an_image_inside_a_link_is_two_links():
    text = "[![diagram](d.png)](page.md) and [a [nested] text](x.md)"
    assert [(link.target, link.embed) for link in parse_links(text)] == [
        ("d.png", True),
        ("page.md", False),
        ("x.md", False),
    ]


def test_a_title_with_a_slash_resolves_after_paths():
    vault = Vault({"a-b.md": "A/B", "notes/x.md": "x", "q/r.md": "Q/R", "other/q/r.md": "R"})
    assert vault.resolve(parse_links("[[A/B]]")[0], "notes/x.md") == Resolved("ok", "a-b.md", "name")
    assert vault.resolve(parse_links("[[a/b#h|t]]")[0], "x.md").path == "a-b.md"
    found = vault.resolve(parse_links("[[Q/R]]")[0], "notes/x.md")  # the path from the root first
    assert found == Resolved("ok", "q/r.md", "root")
    assert vault.resolve(parse_links("[[A/C]]")[0], "notes/x.md").status == "dead"
    assert _rewrite("[[A/B]]", "name", "C\u2215D.md", "C/D") == "[[C/D]]"


def test_a_bare_angle_link_names_a_note_or_an_attachment_never_an_html_tag_or_an_address():
    text = "<attachments/x y.png> <Other Note.md> <img src=x.png> <me@example.png> <a href='x.pdf'> <v1.2>"
    assert [(link.kind, link.target) for link in parse_links(text)] == [
        (ANGLE, "attachments/x y.png"),
        (ANGLE, "Other Note.md"),
    ]
