"""Daily use in a terminal: colour, the pager, help, the editor fallback. Through the real CLI, and on a
real pseudo-terminal where the terminal matters."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.conftest import kb_subprocess
from tests.screen import Terminal

ESC = "\x1b["


@pytest.fixture
def one_note(kb) -> None:
    assert kb("add", "Colours", "-t", "paint", "-b", "First line.").exit_code == 0
    assert kb("edit", "Colours", "-a", "Second line.").exit_code == 0


# ---------------------------------------------------------------- colour


def test_auto_colour_is_off_in_a_pipe(kb, one_note):
    for args in (("list",), ("diff", "Colours"), ("log", "Colours"), ("search", "line")):
        r = kb(*args)
        assert r.exit_code == 0, r.stderr
        assert ESC not in r.stdout, args


def test_always_colours_a_pipe(kb, one_note):
    for args in (("list",), ("diff", "Colours"), ("log", "Colours"), ("search", "line"), ("show", "Colours")):
        r = kb("--color", "always", *args)
        assert r.exit_code == 0, r.stderr
        assert ESC in r.stdout, args


def test_force_color_colours_a_pipe_and_no_color_or_never_wins(kb, one_note):
    assert ESC in kb("diff", "Colours", env={"FORCE_COLOR": "1"}).stdout
    assert ESC not in kb("diff", "Colours", env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout
    assert ESC not in kb("--color", "never", "diff", "Colours", env={"FORCE_COLOR": "1"}).stdout
    assert ESC in kb("--color", "always", "diff", "Colours", env={"NO_COLOR": "1"}).stdout


def test_a_bad_colour_mode_is_a_usage_error(kb, one_note):
    r = kb("--color", "sometimes", "list")
    assert r.exit_code == 2
    assert "--color" in r.stderr


# ---------------------------------------------------------------- on a pseudo-terminal


def spawn(
    args: list[str], env: dict[str, str], rows: int = 20, cols: int = 100, pager: bool = True
) -> tuple[str, int]:
    """Run kb on a pseudo-terminal of rows x cols; returns what it printed and its exit status."""
    full = {**os.environ, "TERM": "xterm-256color", **env}
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "PAGER", "LESS"):
        if name not in env:
            full.pop(name, None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "kb", *args],
        env=full,
        dimensions=(rows, cols),
        encoding="utf-8",
        timeout=60,
    )
    out = child.read()
    child.close()
    return out, child.exitstatus if child.exitstatus is not None else -1


@pytest.fixture
def tall(kb, root: Path, tmp_path: Path) -> dict[str, str]:
    """A note taller than a 20-line terminal, and a $KB_PAGER that records it ran and prints its input."""
    body = "\n\n".join(f"Paragraph {i}." for i in range(60))
    assert kb("add", "Tall", "-b", body).exit_code == 0
    assert kb("edit", "Tall", "-b", body.replace("Paragraph 5.", "Changed 5.")).exit_code == 0
    marker = tmp_path / "pager-ran"
    script = tmp_path / "pager.sh"
    script.write_text(f'#!/bin/sh\necho ran >> "{marker}"\ncat\n')
    script.chmod(0o755)
    return {"KB_HOME": str(root), "KB_PAGER": str(script), "MARKER": str(marker)}


@pytest.mark.parametrize(
    "args", [["show", "Tall"], ["diff", "Tall"], ["list"], ["log"], ["search", "paragraph", "-n", "50"]]
)
def test_tall_output_on_a_terminal_goes_through_the_pager(args, tall, kb):
    if args[0] in ("list", "log", "search"):  # make these tall too
        for i in range(30):
            assert kb("add", f"Short {i}", "-b", "paragraph").exit_code == 0
    out, code = spawn(args, tall)
    assert code == 0, out
    assert Path(tall["MARKER"]).read_text() == "ran\n", out
    assert "Tall" in out or "Short" in out


def test_short_output_and_no_pager_and_pipes_are_not_paged(tall, kb):
    marker = Path(tall["MARKER"])
    assert kb("add", "Small", "-b", "tiny").exit_code == 0
    out, code = spawn(["show", "Small"], tall)
    assert code == 0 and "tiny" in out and not marker.exists()
    out, code = spawn(["--no-pager", "show", "Tall"], tall)
    assert code == 0 and "Paragraph 59" in out and not marker.exists()
    proc = kb_subprocess("show", "Tall", env=tall)  # stdout is a pipe
    assert proc.returncode == 0 and b"Paragraph 59" in proc.stdout and not marker.exists()


def test_the_pager_falls_back_to_pager_and_to_printing(tall):
    marker = Path(tall["MARKER"])
    env = {k: v for k, v in tall.items() if k != "KB_PAGER"}
    out, code = spawn(["show", "Tall"], {**env, "PAGER": tall["KB_PAGER"]})
    assert code == 0 and marker.read_text() == "ran\n"
    out, code = spawn(["show", "Tall"], {**tall, "KB_PAGER": "no-such-pager-here"})
    assert code == 0 and "Paragraph 59" in out
    out, code = spawn(["show", "Tall"], {**tall, "KB_PAGER": "cat"})
    assert code == 0 and "Paragraph 59" in out and marker.read_text() == "ran\n"


def test_colour_on_a_terminal_follows_no_color_and_never(one_note, root: Path):
    env = {"KB_HOME": str(root), "KB_PAGER": "cat"}
    out, _ = spawn(["diff", "Colours"], env)
    assert ESC in out
    out, _ = spawn(["diff", "Colours"], {**env, "NO_COLOR": "1"})
    assert ESC not in out and "Second line." in out
    out, _ = spawn(["--color", "never", "list"], env)
    assert ESC not in out and "Colours" in out


# ---------------------------------------------------------------- help


def test_kb_alone_prints_a_short_usage_and_exits_0(kb):
    r = kb()
    assert r.exit_code == 0
    assert "Most used:" in r.stdout and "kb add TITLE" in r.stdout and "kb search" in r.stdout
    assert len(r.stdout.splitlines()) < 25


def test_help_on_commands_and_topics(kb):
    r = kb("help")
    assert r.exit_code == 0 and "Commands:" in r.stdout and "completion" not in r.stderr
    r = kb("help", "edit")
    assert r.exit_code == 0 and "--append" in r.stdout and "Examples:" in r.stdout
    for topic, words in (("dates", "yesterday"), ("search", '"chain rule"'), ("revisions", "oldest")):
        r = kb("help", topic)
        assert r.exit_code == 0 and words in r.stdout, topic
    r = kb("help", "nope")
    assert r.exit_code == 2 and "dates" in r.stderr and "edit" in r.stderr


def test_every_command_help_ends_with_examples(kb):
    from typer.main import get_command

    from kb import helptext
    from kb.cli import app

    group = get_command(app)
    names = group.list_commands(None)  # type: ignore[arg-type]
    core = {"init", "add", "edit", "show", "log", "diff", "restore", "list", "tags", "rm", "mv", "search"}
    core |= {"reindex", "import", "sync", "help", "completion"}
    assert core <= set(names) and core <= set(helptext.EXAMPLES)
    for name in [n for n in names if n in helptext.EXAMPLES]:  # a new command: add its examples there
        r = kb(name, "--help")
        assert r.exit_code == 0, name
        tail = r.stdout.rstrip().split("Examples:")[-1].strip().splitlines()
        assert "Examples:" in r.stdout and 1 <= len(tail) <= 3, (name, r.stdout)
        assert all(line.strip().startswith("kb ") or "| kb " in line for line in tail), (name, tail)


# ---------------------------------------------------------------- the editor without $EDITOR


def fake_bin(tmp_path: Path, *editors: str) -> str:
    """A PATH of git and fake editors that append a line to the file they are given."""
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "git").symlink_to(shutil.which("git") or "git")
    for name in editors:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nfor f; do :; done\nprintf "written by {name}\\n" >> "$f"\n')
        script.chmod(0o755)
    return str(bin_dir)


def test_without_editor_kb_falls_back_to_nano_and_says_so(kb, root, tmp_path):
    r = kb("add", "Fallback", "--editor", env={"PATH": fake_bin(tmp_path, "nano", "vi")})
    assert r.exit_code == 0, r.stderr
    assert "using nano" in r.stderr
    assert "written by nano" in (root / "notes" / "Fallback.md").read_text()


def test_the_editor_alternative_comes_first_and_vi_last(kb, root, tmp_path):
    path = fake_bin(tmp_path, "editor", "nano", "vi")
    r = kb("add", "First", "--editor", env={"PATH": path})
    assert r.exit_code == 0 and "using editor" in r.stderr
    only_vi = fake_bin(tmp_path / "other", "vi") if (tmp_path / "other").mkdir() is None else ""
    r = kb("add", "Last", "--editor", env={"PATH": only_vi})
    assert r.exit_code == 0 and "using vi" in r.stderr
    assert "written by vi" in (root / "notes" / "Last.md").read_text()


def test_editor_setting_wins_over_the_fallback(kb, root, tmp_path):
    path = fake_bin(tmp_path, "nano", "myedit")
    r = kb("add", "Chosen", "--editor", env={"PATH": path, "EDITOR": "myedit"})
    assert r.exit_code == 0 and "using" not in r.stderr
    assert "written by myedit" in (root / "notes" / "Chosen.md").read_text()


# ---------------------------------------------------------------- smaller things


def test_show_on_a_terminal_prints_the_title_once(kb, root):
    assert kb("add", "Heading Note", "-b", "# Heading Note\n\nThe text.").exit_code == 0
    assert kb("add", "Other Heading", "-b", "# Something else\n\nMore.").exit_code == 0
    out, code = spawn(["show", "Heading Note"], {"KB_HOME": str(root), "KB_PAGER": "cat"})
    assert code == 0 and "The text." in out
    assert out.count("Heading Note") == 2  # the header and the path line; not the body's heading again
    out, _ = spawn(["show", "Other Heading"], {"KB_HOME": str(root), "KB_PAGER": "cat"})
    assert "Something else" in out  # a different first heading is the body's own
    assert "# Heading Note" in kb("show", "Heading Note").stdout  # piped: the file as it is


def test_show_on_a_terminal_wraps_list_items_quotes_and_code_and_loses_no_word(kb, root):
    body = (
        "- A list item long enough to go past the edge of a narrow window, ending in itemend\n\n"
        "> [!tip] A callout whose text is long enough to go past the edge of the window too, quoteend\n\n"
        "A paragraph long enough to need wrapping at sixty columns at least once, paraend\n\n"
        "```\nsome-command --with-a-long-option /a/long/path/to/somewhere --and-more codeend\n```\n"
    )
    assert kb("add", "Wrapped", "-b", body).exit_code == 0
    out, code = spawn(
        ["--color", "never", "show", "Wrapped"], {"KB_HOME": str(root), "KB_PAGER": "cat"}, cols=60
    )
    assert code == 0
    assert all(len(line.rstrip()) <= 60 for line in out.splitlines()), out
    for word in ("itemend", "quoteend", "paraend", "codeend", "narrow", "/a/long/path/to/somewhere"):
        assert word in out, (word, out)


def test_list_on_a_terminal_cuts_long_cells_with_an_ellipsis(kb, root):
    long_title = "An extraordinarily long title with many words that cannot possibly fit the window"
    assert kb("add", long_title, "-t", "Projects/Long/Tag", "-b", "x").exit_code == 0
    assert kb("add", "Short", "-b", "y").exit_code == 0
    out, code = spawn(["--color", "never", "list"], {"KB_HOME": str(root)}, cols=70)
    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 3, out  # a header and one line per note: nothing wrapped
    assert all(len(line.rstrip()) <= 70 for line in lines), out
    assert "…" in lines[1] and "Projects" in lines[1] and "2026-01-02" in lines[1]
    assert "Short" in lines[2] and "notes/Short.md" in lines[2]


@pytest.mark.parametrize("args", [["list"], ["tags"], ["log"], ["search", "x"], ["show", "X"], ["diff", "X"]])
def test_reading_a_folder_that_is_no_knowledge_base_is_an_error(kb, tmp_path, args):
    missing = tmp_path / "no" / "such" / "folder"
    r = kb("--kb", str(missing), *args)
    assert r.exit_code == 1 and str(missing) in r.stderr and "does not exist" in r.stderr
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = kb("--kb", str(empty), *args)
    assert r.exit_code == 1 and "is not a knowledge base" in r.stderr
    assert list(empty.iterdir()) == []


def test_an_empty_knowledge_base_still_lists_nothing(kb, root):
    assert kb("init").exit_code == 0
    r = kb("list")
    assert r.exit_code == 0 and r.stdout == ""


@pytest.mark.parametrize("text", ["", "  ", "\n\n"])
def test_appending_nothing_is_a_usage_error(kb, root, text):
    assert kb("add", "Note", "-b", "body").exit_code == 0
    before = (root / "notes" / "Note.md").read_bytes()
    r = kb("edit", "Note", "-a", text)
    assert r.exit_code == 2 and "--append" in r.stderr
    assert (root / "notes" / "Note.md").read_bytes() == before


# ---------------------------------------------------------------- what the screen shows (pyte)


def test_the_default_pager_shows_one_screen_and_q_quits(tall, root):
    term = Terminal(["show", "Tall"], root, rows=20, cols=80, env={"KB_PAGER": ""})  # less -FRX
    screen = term.wait_for("Paragraph 3.")
    screen = term.settle()
    assert "Paragraph 59." not in screen  # one screenful, the rest waits
    assert screen.splitlines()[-1].startswith(":")  # less's prompt on the last line
    term.send(" ")  # the next page
    assert "Paragraph 3." not in term.wait_for("Paragraph 12.")
    term.send("G")  # the end
    term.wait_for("Paragraph 59.")
    term.send("q")
    _, code = term.finish()
    assert code == 0


def test_short_output_is_drawn_without_waiting_for_a_key(kb, root):
    assert kb("add", "Small", "-b", "tiny body").exit_code == 0
    term = Terminal(["show", "Small"], root, rows=20, cols=80, env={"KB_PAGER": ""})
    _, code = term.finish()  # less -F quits by itself: nothing to press
    assert code == 0 and "tiny body" in term.text()


def _row_of(term: Terminal, words: str) -> int:
    rows = term.text().splitlines()
    return next(i for i, line in enumerate(rows) if words in line)


def test_colours_on_the_screen_follow_no_color_and_never(one_note, root):
    term = Terminal(["diff", "Colours"], root)
    term.finish()
    row = _row_of(term, "+Second line.")
    col = term.text().splitlines()[row].index("+Second")
    assert term.screen.buffer[row][col].fg == "green"
    for settings in ({"NO_COLOR": "1"}, {}):
        args = ["diff", "Colours"] if settings else ["--color", "never", "diff", "Colours"]
        plain = Terminal(args, root, env=settings)
        plain.finish()
        row = _row_of(plain, "+Second line.")
        line = plain.screen.buffer[row]
        assert all(line[c].fg == "default" and not line[c].bold for c in range(len("+Second line."))), (
            settings
        )


def test_list_on_the_screen_keeps_wide_characters_in_their_columns(kb, root):
    title = "漢字のとても長いタイトルがここにありますよ本当に長い"
    assert kb("add", title, "-t", "日本/語", "-b", "x").exit_code == 0
    assert kb("add", "Plain", "-t", "Work", "-b", "y").exit_code == 0
    term = Terminal(["list", "--sort", "title"], root, rows=10, cols=60)
    _, code = term.finish()
    lines = term.text().splitlines()
    assert code == 0 and lines[0].split() == ["Modified", "Title", "Tags", "Path"]
    plain, wide = lines[1], lines[2]
    assert "Plain" in plain and "Work" in plain and "notes/Plain.md" in plain
    assert "…" in wide and "日本/語" in wide and "漢字" in wide
    # every column starts where its heading does, whatever the width of the characters before it
    buffer = term.screen.buffer
    tag_col = lines[0].index("Tags")
    assert buffer[1][tag_col].data == "W" and buffer[2][tag_col].data == "日"
    path_col = lines[0].index("Path")
    assert buffer[1][path_col].data == "n" and buffer[2][path_col].data == "n"
    assert buffer[0][0].bold and buffer[1][tag_col].fg == "cyan" and not buffer[1][tag_col - 1].bold


def test_list_on_a_terminal_shows_a_hostile_date_and_fits_a_narrow_window(kb, root):
    assert kb("add", "Plain", "-b", "x").exit_code == 0
    evil = root / "notes" / "Evil.md"
    evil.write_text('---\ntitle: Evil\nmodified: "\\e]0;PWNED\\a\\e[8m"\n---\n\nbody\n', encoding="utf-8")
    term = Terminal(["list", "--sort", "title"], root, rows=10, cols=30)
    _, code = term.finish()
    assert code == 0 and term.screen.title != "PWNED"
    assert b"\x1b]0;" not in term.output and b"\x1b[8m" not in term.output
    lines = [line for line in term.text().splitlines() if line.strip()]
    heading = next(i for i, line in enumerate(lines) if line.startswith("Modified"))  # after the warning
    lines = lines[heading:]
    assert len(lines) == 3, lines  # a heading and a line per note: nothing wrapped at 30 columns
    assert lines[1].startswith("␛]0;PWNE") and lines[2].startswith("2026-01-"), lines
    assert all(len(line.rstrip()) <= 30 for line in lines)


def test_a_hint_comes_under_the_output_it_is_about(kb, root):
    for n in range(4):
        assert kb("add", f"Note {n}", "-b", "x").exit_code == 0
    for args, advice in ((["log", "-n", "2"], "2 of 4 commits"), (["search", "x", "-n", "2"], "more match")):
        term = Terminal(args, root, rows=30, cols=100, env={"KB_PAGER": ""})  # less -FRX: held, then shown
        _, code = term.finish()
        lines = [line for line in term.text().splitlines() if line.strip()]
        assert code == 0 and advice in lines[-1], lines  # last, after every line of the output


def test_the_hint_of_paged_output_is_the_last_line_in_the_pager(tall, kb, tmp_path):
    for i in range(30):
        assert kb("add", f"Short {i}", "-b", "paragraph").exit_code == 0
    paged = tmp_path / "paged.txt"
    pager = tmp_path / "keep.sh"
    pager.write_text(f'#!/bin/sh\ncat > "{paged}"\n')
    pager.chmod(0o755)
    for args in (["log", "-n", "25"], ["search", "paragraph", "-n", "25"]):
        out, code = spawn(args, {**tall, "KB_PAGER": str(pager)})
        lines = paged.read_text().splitlines()
        assert code == 0 and "-n N shows more." in lines[-1], lines[-3:]
        assert "-n N shows more." not in out  # not again once the pager is done


def test_changes_on_the_screen(kb, root):
    assert kb("add", "Alpha", "-b", "## Part\n\nfirst").exit_code == 0
    assert kb("edit", "Alpha", "-a", "second").exit_code == 0
    assert kb("mv", "Alpha", "Beta").exit_code == 0
    assert kb("add", "Gone", "-b", "x").exit_code == 0
    assert kb("rm", "Gone", "--yes").exit_code == 0
    term = Terminal(["changes", "--since", "2000-01-01", "--patch"], root, rows=40, cols=100)
    _, code = term.finish()
    lines = term.text().splitlines()
    assert code == 0, lines
    beta = _row_of(term, "Beta")
    gone = _row_of(term, "Gone")
    assert lines[beta].split()[:3] == ["added", "Beta", "notes/Beta.md"] and "3 revisions" in lines[beta]
    assert lines[gone].split()[:2] == ["deleted", "Gone"]
    buffer = term.screen.buffer
    assert buffer[beta][2].fg == "green" and buffer[gone][2].fg == "red"
    title_col = lines[beta].index("Beta")
    assert buffer[beta][title_col].bold and not buffer[beta][title_col - 1].bold
    assert lines[beta + 1].strip() == "sections: Beta, Part" and buffer[beta + 1][12].fg == "default"
    assert any(line.startswith("+second") for line in lines[beta:]), lines  # the patch, after its entry
    day = next(i for i, line in enumerate(lines) if line[:4].isdigit())
    assert buffer[day][0].bold and day < min(beta, gone)


def test_search_highlights_are_drawn_bold_and_coloured(one_note, root):
    term = Terminal(["search", "second"], root)
    term.finish()
    row = _row_of(term, "Second line.")
    col = term.text().splitlines()[row].index("Second")
    cell = term.screen.buffer[row][col]
    assert cell.bold and cell.fg in ("yellow", "brown")  # pyte names ANSI 33 "brown"
    assert not term.screen.buffer[row][col + len("Second") + 1].bold


def test_ctrl_c_while_the_pager_has_not_read_everything_is_the_pager_s(kb, root: Path, tmp_path: Path):
    """kb waits to write the rest of a long text until the pager reads it: a Ctrl-C then is the pager's
    (less takes it as "stop waiting"), and kb ends when the pager does, with its status 0."""
    body = "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(2000))
    assert kb("add", "Huge", input=body).exit_code == 0  # on stdin: too long for one argument
    started, read = tmp_path / "pager-started", tmp_path / "pager-read"
    pager = tmp_path / "slow-pager"
    pager.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        f"pathlib.Path({str(started)!r}).write_text('yes')\n"
        "time.sleep(1.5)\n"
        f"pathlib.Path({str(read)!r}).write_text(str(len(sys.stdin.buffer.read())))\n"
    )
    pager.chmod(0o755)
    full = {**os.environ, "TERM": "xterm-256color", "KB_HOME": str(root), "KB_PAGER": str(pager)}
    child = pexpect.spawn(
        sys.executable, ["-m", "kb", "show", "Huge"], env=full, dimensions=(20, 100), timeout=60
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    child.sendintr()
    out = child.read()
    child.close()
    assert child.exitstatus == 0, out[-300:]
    assert b"interrupted" not in out
    assert int(read.read_text()) > 400_000  # the whole text reached the pager
