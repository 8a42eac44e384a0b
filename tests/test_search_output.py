"""How search results read: snippets without Markdown's marks, cut to the width around their matches with the
highlights kept; grep's -C N and --count. --json keeps the note's own text."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kb.display import cells, fit, strip_markdown
from tests.screen import Terminal

# ---------------------------------------------------------------- pure


def spans_text(text: str, spans: tuple[tuple[int, int], ...]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_markdown_marks_are_taken_out_and_spans_follow_the_text():
    raw = "# Setup Use **postgres** and [the guide](http://x.org/pg) or [[Databases|my db notes]] `psql`"
    wanted = ("postgres", "guide", "db", "psql")
    spans = tuple((raw.index(w), raw.index(w) + len(w)) for w in wanted)
    text, moved = strip_markdown(raw, spans)
    assert text == "Setup Use postgres and the guide or my db notes psql"
    assert spans_text(text, moved) == list(wanted)


def test_wiki_links_images_and_what_is_not_markdown():
    assert (
        strip_markdown("[[Plain]] and ![a cat](cat.png) and [[Note#Part]]")[0] == "Plain and a cat and Note"
    )
    for same in ("snake_case_name", "2 * 3 = 6", "#tag and #nested/tag", "a_b", "C# and F#"):
        assert strip_markdown(same)[0] == same
    assert strip_markdown("_it_ and __b__ and *x*")[0] == "it and b and x"


def test_a_match_inside_a_url_disappears_with_it():
    raw = "[guide](http://postgres.org)"
    start = raw.index("postgres")
    text, moved = strip_markdown(raw, ((start, start + 8),))
    assert text == "guide" and moved == ()


def test_fit_keeps_short_text_as_it_is():
    assert fit("short text", ((0, 5),), 40) == ("short text", ((0, 5),))


def test_fit_cuts_around_the_first_match_never_through_one():
    text = " ".join(f"word{i}" for i in range(40)) + " TARGET " + " ".join(f"tail{i}" for i in range(40))
    start = text.index("TARGET")
    out, spans = fit(text, ((start, start + 6),), 50)
    assert cells(out) <= 50 and out.startswith("…") and out.endswith("…")
    assert spans_text(out, spans) == ["TARGET"]
    # a second match that would be cut at the end is left out whole, never cut
    second = text.index("tail3")
    out, spans = fit(text, ((start, start + 6), (second, second + 5)), 30)
    assert spans_text(out, spans) in (["TARGET"], ["TARGET", "tail3"])
    assert out.rstrip("…").split()[-1] in text.split()  # cut between words


def test_fit_counts_wide_characters_as_two_columns():
    text = "漢字" * 40 + "TARGET" + "漢字" * 40
    start = text.index("TARGET")
    out, spans = fit(text, ((start, start + 6),), 30)
    assert cells(out) <= 30 and spans_text(out, spans) == ["TARGET"]


# ---------------------------------------------------------------- through the CLI


@pytest.fixture
def notes(kb):
    body = (
        "Intro line.\n\n## Setup\n\nInstall **postgres** with [the guide](http://example.org/x).\n"
        "line after\none\ntwo\nthree\npostgres again, " + "filler words " * 30 + "\n"
    )
    assert kb("add", "Database", "-b", body).exit_code == 0
    assert kb("add", "Other", "-b", "Nothing postgres here.").exit_code == 0
    return kb


def test_piped_snippets_lose_markdown_and_fit_columns(notes):
    r = notes("search", "postgres", "--sort", "title")
    assert r.exit_code == 0
    assert "Install postgres with the guide." in r.stdout and "**" not in r.stdout and "## " not in r.stdout
    r = notes("search", "postgres", "--sort", "title", env={"COLUMNS": "50"})
    snippets = [line for line in r.stdout.splitlines() if line.startswith("    ")]
    assert snippets and all(cells(line) <= 50 for line in snippets)
    assert "postgres" in snippets[0]


def test_json_keeps_the_notes_own_text_and_spans(notes):
    r = notes("search", "postgres", "--sort", "title", "--json")
    snippet = json.loads(r.stdout)["hits"][0]["snippets"][0]
    assert "**postgres**" in snippet["text"]
    start, end = snippet["matches"][0]
    assert snippet["text"][start:end] == "postgres"


def test_context_lines_as_grep_does(notes):
    r = notes("search", "postgres", "-C", "1", "--sort", "title")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    # the file's line numbers: front matter (5 lines) and the `# Database` heading come first
    assert "notes/Database.md:13:Install **postgres** with [the guide](http://example.org/x)." in lines
    assert "notes/Database.md-12-" in lines and "notes/Database.md-14-line after" in lines
    assert "--" in lines
    assert any(line.startswith("notes/Database.md:18:postgres again") for line in lines)
    assert "notes/Database.md-15-one" not in lines  # only one line of context
    assert lines[-1] == "notes/Other.md:9:Nothing postgres here."
    r = notes("search", "postgres", "-C", "0", "--sort", "title")
    assert [line.split(":")[1] for line in r.stdout.splitlines() if line != "--"] == ["13", "18", "9"]


def test_count_of_matching_lines(notes):
    r = notes("search", "postgres", "--count", "--sort", "title")
    assert r.exit_code == 0 and r.stdout == "notes/Database.md:2\nnotes/Other.md:1\n"
    assert notes("search", "nothinglikethis", "--count").exit_code == 1


@pytest.mark.parametrize("args", [["-C", "1", "--json"], ["--count", "-l"], ["-C", "-1"]])
def test_lines_do_not_combine_with_json_or_paths(notes, args):
    r = notes("search", "postgres", *args)
    assert r.exit_code == 2 and r.stdout == ""


def test_on_a_narrow_terminal_every_snippet_fits_its_line(notes, root):
    assert notes("search", "postgres").exit_code == 0  # the index is built
    term = Terminal(["search", "postgres", "--sort", "title"], root, rows=20, cols=50)
    _, code = term.finish()
    assert code == 0
    screen = term.text().splitlines()
    snippets = [line for line in screen if line.startswith("    ")]
    assert len(snippets) == 2, term.text()
    assert "…" in snippets[0] and "postgres" in snippets[0] and "**" not in snippets[0]
    # nothing wrapped: every line of output is one line of the screen
    assert screen[screen.index(snippets[0]) + 1].startswith(" 2. Other"), term.text()
    buffer = term.screen.buffer
    row = screen.index(snippets[0])
    start = snippets[0].index("postgres")
    assert all(buffer[row][start + i].bold for i in range(8))  # the match is highlighted
    assert not buffer[row][start - 2].bold


# ---------------------------------------------------------------- snippets without reading the YAML


def test_snippets_read_past_the_front_matter_alone_give_what_parsing_gives(kb, root, monkeypatch):
    """A note the catalog found nothing wrong with has its snippets taken from the text after its front
    matter without reading the YAML; a broken front matter, a note without one, CRLF lines, a note edited
    since it was indexed: the same snippets as when every note is parsed."""
    notes = root / "notes"
    assert kb("add", "Kept", "-b", "zebra in the body", "-t", "zebra").exit_code == 0
    assert kb("add", "Crlf", "-b", "x").exit_code == 0
    (notes / "Crlf.md").write_bytes(b"---\r\ntitle: Crlf\r\n---\r\n\r\nzebra with CRLF\r\n")
    (notes / "Broken.md").write_text("---\ntitle: [zebra\n---\nzebra under a broken front matter\n")
    (notes / "Bare.md").write_text("zebra and nothing above\n")
    (notes / "Unclosed.md").write_text("---\ntitle: zebra open\nzebra never closed\n")
    assert kb("search", "zebra").exit_code == 0  # indexed, the catalog up to date
    with (notes / "Kept.md").open("a") as f:
        f.write("\nzebra appended after the search\n")  # the catalog's signature no longer the file's

    def results() -> list[dict]:
        r = kb("search", "zebra", "--json", "-n", "20")
        assert r.exit_code == 0, r.stderr
        return sorted(json.loads(r.stdout)["hits"], key=lambda hit: hit["path"])

    quick = results()
    with monkeypatch.context() as m:
        m.setattr("kb.index.plain_body", lambda raw: None)
        parsed = results()
    assert quick == parsed
    assert {hit["path"] for hit in quick} >= {f"notes/{n}.md" for n in ("Kept", "Crlf", "Broken", "Bare")}
    assert all(hit["snippets"] for hit in quick)


def test_a_search_of_unchanged_notes_does_not_load_the_yaml_parser(kb, root):
    assert kb("add", "Quiet", "-b", "walrus text", "-t", "animals").exit_code == 0
    assert kb("search", "walrus").exit_code == 0  # the index and catalog up to date
    env = {**os.environ, "KB_HOME": str(root), "KB_SERVER": "0", "PYTHONPROFILEIMPORTTIME": "1"}
    argv = [sys.executable, "-m", "kb", "search", "walrus"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "Quiet" in proc.stdout, proc.stderr[-500:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "whoosh.searching" in imported and "yaml" not in imported


def test_snippet_matches_skip_words_by_their_first_letter_as_a_word_by_word_scan_finds_them():
    """document._matches looks only at the words of an ASCII text that begin with a letter a term begins
    with (a regular expression skips the rest); what it finds is what checking every word of _WORD finds,
    in ASCII text and in any other."""
    import importlib
    import random

    document = importlib.import_module("kb.index.document")

    def every_word(text: str, terms: frozenset[str]) -> list[tuple[int, int]]:
        found = []
        for m in document._WORD.finditer(text):
            if document.normal_word(m.group()) in terms:
                found.append(m.span())
            elif "." in m.group():  # the parts of a word with dots, as they are indexed too
                found.extend(
                    (m.start() + at, m.start() + at + len(part))
                    for part, at in document.parts(m.group())
                    if document.normal_word(part) in terms
                )
        return found

    rng = random.Random(7)
    for n in range(4000):
        alphabet = list("abcdeg ABCEG.._-12 \n*[]()") + (
            list("éÉèçÇ\u0301\u0915\u093f ñÑØøßİıǅKÅẞдДΩωϴθ") if n % 2 else []
        )
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        words = [m.group() for m in document._WORD.finditer(text)]
        words += [part for word in words for part, _ in document.parts(word)]
        chosen = rng.sample(words, min(len(words), 2))
        terms = frozenset(t for t in map(document.normal_word, chosen) if t) or frozenset({"a"})
        assert list(document._matches(text, terms)) == every_word(text, terms), (text, terms)


def test_a_snippet_never_starts_or_ends_inside_a_link(kb):
    url = "https://example.org/" + "a/" * 40
    kb("add", "Early", "-b", f"Some **bold** words and a [link text]({url}) then more words about zebra.")
    kb("add", "Late", "-b", "word " * 40 + f"see [the zebra page]({url}) and " + "more " * 40)
    r = kb("search", "zebra", "-n", "5")
    assert r.exit_code == 0
    snippets = r.stdout.splitlines()[1::2]
    assert snippets == ["    …then more words about zebra.", "    …" + "word " * 9 + "see the zebra page…"]


def test_history_snippets_are_shown_as_current_ones_are(kb):
    kb("add", "Marks", "-b", "Some **bold** words about _zebra_ and `code` here.")
    current = kb("search", "zebra").stdout.splitlines()[1]
    r = kb("search", "--history", "zebra")
    assert r.exit_code == 0 and r.stdout.splitlines()[1] == current
    assert current == "    Some bold words about zebra and code here."  # below the `# Marks` title heading


def test_lines_and_counts_of_a_query_of_fields_only(kb):
    kb("add", "Fields", "-t", "x", "-b", "a body of words")
    for query in ("title:Fields", "tag:x", "*", "created:2026"):
        for option in ("-C", "--count"):
            r = kb("search", query, *([option, "0"] if option == "-C" else [option]))
            assert r.exit_code == 0 and "unexpected" not in r.stderr, (query, option, r.stderr)


def test_lines_and_snippets_of_a_phrase_or_a_name_with_dots_are_where_its_words_follow_each_other(kb):
    body = (
        "line one has python only\nline two: see https://docs.python.org/3/library for docs\n"
        "line three says from python docs here\nline four mentions docs alone"
    )
    kb("add", "Phrase Test", "-b", body)
    r = kb("search", '"python docs"', "-C", "0")
    assert r.stdout == "notes/Phrase Test.md:11:line three says from python docs here\n"
    r = kb("search", "docs.python.org", "-C", "0")
    assert r.stdout == "notes/Phrase Test.md:10:line two: see https://docs.python.org/3/library for docs\n"
    assert kb("search", '"python docs"', "--count").stdout == "notes/Phrase Test.md:1\n"
    [hit] = json.loads(kb("search", '"python docs"', "--json").stdout)["hits"]
    assert [[s["text"][a:b] for a, b in s["matches"]] for s in hit["snippets"]] == [["python docs"]]


def test_lines_of_a_word_are_found_in_every_form_that_stems_to_it(kb):
    """-C and --count look only at the words that begin as a query word's stem does, but for its last two
    letters: a form whose stem is no beginning of it (happy is happi, using is use) is found all the same,
    and dying for die."""
    body = (
        "one: Dying\nnoise: dime dirt dial\ntwo: so happy\nthree: using it\nfour: Possibilities\nfive: a cry"
    )
    kb("add", "Forms", "-b", body)
    for query, numbers in (
        ("die", ["9"]),
        ("happiness", ["11"]),
        ("use", ["12"]),
        ("possible", ["13"]),
        ("cries", ["14"]),
    ):
        r = kb("search", query, "-C", "0")
        assert [line.split(":")[1] for line in r.stdout.splitlines()] == numbers, (query, r.stdout)
    assert kb("search", "dying", "--count").stdout == "notes/Forms.md:1\n"


def test_a_snippet_starts_below_the_title_heading_and_at_a_word(kb):
    kb("add", "Mood", "-b", "I was happy today")
    kb(
        "add",
        "Other",
        "-b",
        "The impossible task died yesterday after the nationalization of the railways ended.",
    )
    hits = json.loads(kb("search", "happy", "--json").stdout)["hits"]
    assert [s["text"] for s in hits[0]["snippets"]] == ["I was happy today"]  # no `# Mood`, no `…`
    assert json.loads(kb("search", "mood", "--json").stdout)["hits"][0]["snippets"][0]["text"].startswith(
        "# Mood"
    )
    for columns in range(40, 130, 5):  # cut to the terminal's width: at a word, `…` right before it
        line = kb("search", "nationalize", env={"COLUMNS": str(columns)}).stdout.splitlines()[1].strip()
        assert line.startswith(("The ", "…")) and not line.startswith("… "), (columns, line)
        first = line.lstrip("…").split()[0]
        assert first in ["The", "impossible", "task", "died", "yesterday", "after", "the"], (columns, line)
