"""The note picker: its fuzzy scoring (pure), and the picker itself on a real pseudo-terminal, read from the
screen as a terminal draws it (pyte)."""

from __future__ import annotations

import os
import sys

import pytest

from kb.picker import Choice, filtered, fuzzy_score
from tests.conftest import snapshot
from tests.screen import Terminal

# ---------------------------------------------------------------- scoring


def test_a_query_matches_as_a_subsequence_ignoring_case():
    assert fuzzy_score("mlr", "Machine Learning") is not None
    assert fuzzy_score("MACH", "machine") is not None
    assert fuzzy_score("lm", "Machine Learning") is None  # the letters in order only
    assert fuzzy_score("x", "Machine Learning") is None
    assert fuzzy_score("", "anything") == (0, ())


def test_the_positions_are_those_matched():
    score = fuzzy_score("ml", "Machine Learning")
    assert score is not None and score[1] == (0, 8)  # both at word starts
    found = fuzzy_score("ab", "xaby")
    assert found is not None and found[1] == (1, 2)


def test_contiguous_letters_score_more_than_scattered_ones():
    together = fuzzy_score("note", "a notebook")
    apart = fuzzy_score("note", "an old tale here")
    assert together is not None and apart is not None and together[0] > apart[0]


def test_word_starts_score_more_than_letters_inside_words():
    starts = fuzzy_score("gp", "git push")
    inside = fuzzy_score("gp", "bigpage")
    assert starts is not None and inside is not None and starts[0] > inside[0]
    # the best of several places is kept: "pu" at the start of "push", not in "input"
    found = fuzzy_score("pu", "input push")
    assert found is not None and found[1] == (6, 7)


def test_filtered_keeps_matches_best_first_and_ties_in_the_given_order():
    choices = [
        Choice("Groceries", "notes/Groceries.md"),
        Choice("Git push", "notes/Git push.md"),
        Choice("Other", "notes/Other.md"),
        Choice("Git pull", "notes/Git pull.md"),
    ]
    assert [c.title for c, _ in filtered("", choices)] == ["Groceries", "Git push", "Other", "Git pull"]
    assert [c.title for c, _ in filtered("git p", choices)] == ["Git push", "Git pull"]
    assert [c.title for c, _ in filtered("gpush", choices)] == ["Git push"]
    assert filtered("zzz", choices) == []


# ---------------------------------------------------------------- on a pseudo-terminal


def list_lines(screen: str) -> list[str]:
    """The picker's list: the lines between its status line and the rule above the preview."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if "Enter: choose" in line) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("───"))
    return [line.strip() for line in lines[start:end] if line.strip()]


@pytest.fixture
def notes(kb):
    for n, (title, body) in enumerate(
        [
            ("Git push", "Use git push --force-with-lease.\nSecond line of git."),
            ("Groceries", "Milk, eggs."),
            ("Git pull", "Pull with rebase."),
            ("Langs", "c++ and node.js."),
        ]
    ):
        r = kb("add", title, "-b", body, env={"KB_NOW": f"2026-01-0{n + 1}T10:00:00Z"})
        assert r.exit_code == 0, r.stderr
    return kb


def test_the_picker_opens_most_recent_first_with_a_preview(notes, root):
    term = Terminal(["show"], root)
    screen = term.wait_for("Enter: choose")
    screen = term.settle()
    assert [line.split("  ")[0].lstrip("> ") for line in list_lines(screen)] == [
        "Langs",
        "Git pull",
        "Groceries",
        "Git push",
    ]
    assert "c++ and node.js." in screen  # the highlighted note's first lines
    term.send("\x1b[B")  # Down
    assert "Pull with rebase." in term.wait_for("Pull with rebase.")
    term.send("\x1b")
    out, code = term.finish()
    assert code == 1 and "nothing chosen" in out


def test_typing_narrows_the_list_and_enter_shows_the_chosen_note(notes, root):
    term = Terminal(["show"], root)
    term.wait_for("Enter: choose")
    term.send("gpush")
    screen = term.wait_for("1/4")
    assert [line.split("  ")[0].lstrip("> ") for line in list_lines(screen)] == ["Git push"]
    term.send("\r")
    term.wait_for("Second line of git.")
    _, code = term.finish()
    assert code == 0
    assert "notes/Git push.md" in term.text()


def test_esc_cancels_and_changes_nothing(notes, root):
    before = snapshot(root)
    term = Terminal(["rm"], root)
    term.wait_for("Enter: choose")
    term.send("\x1b")
    out, code = term.finish()
    assert code == 1 and "Error: nothing chosen" in out
    assert snapshot(root) == before


def test_ctrl_c_cancels_with_130(notes, root):
    before = snapshot(root)
    term = Terminal(["edit", "-a", "more"], root)
    term.wait_for("Enter: choose")
    term.send("\x03")
    out, code = term.finish()
    assert code == 130 and "interrupted" in out
    assert snapshot(root) == before


def test_an_ambiguous_prefix_opens_the_picker_on_its_notes_only(notes, root):
    term = Terminal(["show", "Git"], root)
    term.wait_for("Enter: choose")
    screen = term.settle()
    assert [line.split("  ")[0].lstrip("> ") for line in list_lines(screen)] == ["Git pull", "Git push"]
    assert "2/2" in screen
    term.send("\x1b[B\r")
    term.wait_for("--force-with-lease")
    _, code = term.finish()
    assert code == 0


def test_a_rename_with_the_note_left_out_asks_which(notes, root):
    term = Terminal(["mv", "Shopping"], root)
    term.wait_for("Enter: choose")
    term.send("groc\r")
    _, code = term.finish()
    assert code == 0
    assert (root / "notes" / "Shopping.md").is_file() and not (root / "notes" / "Groceries.md").exists()


def test_titles_and_previews_are_shown_without_their_control_characters(kb, root):
    assert kb("add", "Evil", "-b", "before \x1b]0;pwned\x07 after\n\x1b[2J gone").exit_code == 0
    term = Terminal(["show"], root)
    screen = term.wait_for("Enter: choose")
    screen = term.settle()
    assert "before ␛]0;pwned␇ after" in screen
    term.send("\x1b")
    term.finish()


def test_piped_a_missing_or_ambiguous_note_stays_an_error(notes, root):
    r = notes("show")
    assert r.exit_code == 2 and "Missing argument 'NOTE'" in r.stderr
    r = notes("show", "Git")
    assert r.exit_code == 1 and "matches 2 notes" in r.stderr
    r = notes("mv", "Shopping")
    assert r.exit_code == 2 and "Missing argument 'NEW_TITLE" in r.stderr
    r = notes("restore", "2")
    assert r.exit_code == 2 and "Missing argument 'REV'" in r.stderr


def test_a_command_that_opens_no_picker_does_not_load_prompt_toolkit(notes, root):
    import subprocess

    code = (
        "import sys\n"
        "import kb.cli\n"
        "kb.cli.run(['show', 'Langs'])\n"
        "print('prompt_toolkit' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "KB_HOME": str(root)}
    )
    assert "c++ and node.js." in proc.stdout and proc.stderr.strip().endswith("False")


def test_letters_found_together_beat_word_starts_gathered_across_the_line():
    together = fuzzy_score("gitstash", "Clear Entries From Git Stash  git/clear-entries-from-git-stash.md")
    scattered = fuzzy_score(
        "gitstash",
        "Generate Inferred Type From Zod Schema  typescript/generate-inferred-type-from-zod-schema.md",
    )
    assert together is not None and scattered is not None and together[0] > scattered[0]
