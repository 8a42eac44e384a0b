"""Words people type and paste into a search."""

from __future__ import annotations

import pytest


@pytest.fixture
def notes(kb):
    kb("add", "Note 007", "-b", "Use git push --force with care.")
    kb("add", "Other", "-b", "Nothing about shoving here.")
    kb("add", "Drafty", "-b", "A draft.")
    return kb


def test_a_quoted_field_value_is_a_value(notes):
    r = notes("search", 'title:"Note 007"', "-l")
    assert r.exit_code == 0 and r.stdout == "notes/Note 007.md\n"


def test_an_unknown_field_is_a_usage_error_that_lists_the_fields(notes):
    r = notes("search", "colour:red")
    assert r.exit_code == 2 and "unknown field 'colour:'" in r.stderr and "title:" in r.stderr


def test_a_pasted_double_dash_word_is_searched_not_excluded(notes):
    r = notes("search", "push --force", "-l")
    assert r.exit_code == 0 and r.stdout == "notes/Note 007.md\n"
    r = notes("search", "push -force", "-l")  # a single dash still excludes
    assert r.exit_code == 1


def test_nul_separated_paths(notes):
    r = notes("search", "push", "-l", "-0")
    assert r.exit_code == 0 and r.stdout_bytes == b"notes/Note 007.md\0"


def test_no_match_suggests_a_word_the_notes_have(kb):
    kb("add", "Databases", "-b", "PostgreSQL and javascript notes.")
    r = kb("search", "javascirpt")
    assert r.exit_code == 1 and "did you mean 'javascript'?" in r.stderr


def test_tags_differing_only_in_case_are_one(kb):
    kb("add", "A", "-t", "Work", "-b", "x")
    kb("add", "B", "-t", "work", "-b", "y")
    kb("add", "C", "-t", "Work/Meetings", "-b", "z")
    assert kb("tags").stdout.splitlines() == ["Work\t3", "Work/Meetings\t1"]
    assert len(kb("search", "tag:WORK", "-l").stdout.split()) == 3


def test_a_deleted_note_says_when_and_how_to_restore_it(kb):
    kb("add", "Machine Learning", "-b", "text")
    kb("edit", "Machine Learning", "-a", "more")
    kb("rm", "Machine Learning")
    for args in (("show", "Machine Learning"), ("edit", "Machine Learning", "-a", "x")):
        r = kb(*args)
        assert r.exit_code == 1
        assert "was deleted in revision 3" in r.stderr and "kb restore 'Machine Learning' 2" in r.stderr
    assert kb("restore", "Machine Learning", "2").exit_code == 0
    assert "more" in kb("show", "Machine Learning", "--raw").stdout


def test_recent_changes_say_what_is_left_out_and_fold_big_commits(kb, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        (folder / f"n{i}.md").write_text(f"# N{i}\n")
    kb("import", str(folder))
    kb("add", "Later", "-b", "x")
    r = kb("log", "-n", "2")
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and "Add: Later" in lines[0]
    # the knowledge base's first commit touched no note: -n could never show it, so nothing is left out
    assert lines[1].endswith("and 3 more") and "commits" not in r.stderr, r.stderr
    kb("add", "Latest", "-b", "y")
    r = kb("log", "-n", "2")
    assert "Add: Latest" in r.stdout and "2 of 3 commits; -n N shows more." in r.stderr


def test_an_editor_that_drops_the_front_matter_is_told_what_happened(kb, tmp_path):
    from .conftest import git, write_editor

    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "x.md").write_text("---\ntags: [a]\n---\n# X\n\nBody.\n")
    git(tmp_path, "init", "-q", str(vault))
    kb("--kb", str(vault), "init")
    editor = write_editor(tmp_path, "sed -i '1,3d' \"$1\"")
    r = kb("--kb", str(vault), "edit", "X", "--editor", env={"EDITOR": editor})
    assert r.exit_code == 0, r.stderr
    assert "front matter was removed in the editor" in r.stderr and "('X')" in r.stderr
    assert (vault / "x.md").read_text() == "# X\n\nBody.\n"
    # In Notable's layout, removing `created` with the front matter is refused, the text kept.
    kb("add", "Fenced", "-b", "Body text.")
    r = kb(
        "edit", "Fenced", "--editor", env={"EDITOR": write_editor(tmp_path, "sed -i '1,5d' \"$1\"", "e2.sh")}
    )
    assert r.exit_code == 2 and "'created' was removed" in r.stderr and "your text is kept" in r.stderr


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("git push --force-with-lease", "Pasted"),
        ("c++", "Languages"),
        ("node.js", "Languages"),
        ("React.useState", "Languages"),
    ],
)
def test_pasted_words_find_the_notes_that_hold_them(kb, query, title):
    kb("add", "Pasted", "-b", "Run git push --force-with-lease after a rebase.")
    kb("add", "Languages", "-b", "Mostly c++ and node.js; hooks like React.useState.")
    kb("add", "Unrelated", "-b", "Gardening and soup.")
    r = kb("search", query, "--json")
    assert r.exit_code == 0, r.stderr
    import json

    assert json.loads(r.stdout)["hits"][0]["title"] == title


def test_a_word_finds_longer_words_it_begins_ranked_below_the_word_itself(kb):
    long_body = " ".join(["filler text about databases"] * 200) + " postgres"
    kb("add", "Long", "-b", long_body)  # the word once in a long note: a low score
    kb("add", "Engine", "-b", "PostgreSQL is the engine.")
    kb("add", "Short", "-b", "postgres and postgres again")
    import json

    r = kb("search", "postgres", "--json")
    titles = [h["title"] for h in json.loads(r.stdout)["hits"]]
    assert titles[-1] == "Engine" and set(titles) == {"Long", "Engine", "Short"}
    # the longer word is highlighted in its snippet
    snippet = json.loads(r.stdout)["hits"][-1]["snippets"][0]
    assert [snippet["text"][a:b] for a, b in snippet["matches"]] == ["PostgreSQL"]
    # when the word itself fills the page, the longer words are not needed for it
    r = kb("search", "postgres", "-n", "2", "--sort", "relevance")
    assert "Engine" not in r.stdout and "more match" in r.stderr
    assert paths_of(kb, "postgres") == ["notes/Engine.md", "notes/Long.md", "notes/Short.md"]
    # in a query the parser reads too, and never for an excluded word or a short one
    assert paths_of(kb, "postgres OR nothing") == ["notes/Engine.md", "notes/Long.md", "notes/Short.md"]
    kb("add", "Drafty", "-b", "A drafty postgres window.")
    assert "notes/Drafty.md" in paths_of(kb, "postgres -draft")
    assert paths_of(kb, "eng") == []


def paths_of(kb, query: str) -> list[str]:
    return sorted(kb("search", query, "-l").stdout.split())


def test_a_misspelt_word_suggests_the_index_own_word(kb):
    kb("add", "Databases", "-b", "PostgreSQL and postgres notes.")
    r = kb("search", "postgress")
    assert r.exit_code == 1 and "did you mean 'postgres'?" in r.stderr


def test_no_word_of_a_deleted_note_is_suggested(kb):
    kb("add", "Ghost", "-b", "A ghostzq walks and a phantomology paper.")
    kb("add", "Other", "-b", "Other words.")
    assert "did you mean 'ghostzq'?" in kb("search", "ghostzr").stderr  # one edit away
    assert "did you mean 'phantomology'?" in kb("search", "phantomolgy").stderr
    assert kb("rm", "Ghost", "-y").exit_code == 0
    for typed in ("ghostzr", "phantomolgy"):
        r = kb("search", typed)
        assert r.exit_code == 1 and "did you mean" not in r.stderr, r.stderr


def test_a_word_after_a_dash_is_left_out_without_quotes(kb):
    kb("add", "Editors", "-b", "vim and emacs")
    kb("add", "Modal", "-b", "vim only", "-t", "tmux")
    assert paths_of(kb, "vim") == ["notes/Editors.md", "notes/Modal.md"]
    for argv in (["vim", "-emacs"], ["-emacs", "vim"], ["vim", "-emacs", "-l"], ["vim", "-n", "5", "-emacs"]):
        r = kb("search", *argv, "-l")
        assert (r.exit_code, r.stdout) == (0, "notes/Modal.md\n"), argv
    r = kb("search", "vim", "-t", "tmux", "-l")  # still an option
    assert r.stdout == "notes/Modal.md\n"


def test_a_bare_star_finds_the_notes_with_any_word_without_reading_every_word(notes, root):
    from datetime import UTC, datetime

    from whoosh import query as wq

    from kb.index.query import parse_query

    (root / "notes" / "Blank.md").write_text("---\ntitle: Blank\n---\n")
    assert notes("rm", "Other", "--yes").exit_code == 0
    every = {"notes/Note 007.md", "notes/Drafty.md", "notes/Blank.md"}
    r = notes("search", "*", "-l", "-n", "100")
    assert r.exit_code == 0 and set(r.stdout.splitlines()) == every
    assert set(notes("search", "body:*", "-l").stdout.splitlines()) == every - {"notes/Blank.md"}
    assert notes("search", "push *", "-l").stdout == "notes/Note 007.md\n"
    # Whoosh's Every(field) reads the posting list of every word of the field: 15 s at 10,000 notes
    for text in ("*", "body:*", "title:* push"):
        leaves = list(parse_query(text, datetime.now(UTC)).leaves())
        assert not any(type(leaf) is wq.Every for leaf in leaves), text


def test_a_korean_word_of_two_syllables_finds_it_with_its_particle(kb):
    kb("add", "Menu", "-b", "설정을 바꾸려면 메뉴를 엽니다.")
    kb("add", "Screen", "-b", "설정 화면")
    r = kb("search", "설정", "-l")
    assert r.exit_code == 0 and r.stdout == "notes/Screen.md\nnotes/Menu.md\n"  # the word itself first
