"""The cold path's plain search without the command line's parser (kb.quick): the same bytes and exit status
as the whole command line, and every other form left to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kb import quick
from tests.conftest import PROGRAM, cold_runner


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["search", "apple"], (None, ["apple"])),
        (["search", "apple", "pie"], (None, ["apple", "pie"])),
        (["--kb", "/x", "search", "apple"], ("/x", ["apple"])),
        (["--kb=/x", "search", "apple"], ("/x", ["apple"])),
        (["search", "tag:a/b", '"two words"'], (None, ["tag:a/b", '"two words"'])),
        (["search", "café"], (None, ["café"])),
        (["search"], None),
        (["search", "apple", "-pear"], (None, ["apple", "-pear"])),  # a word left out
        (["search", "-", "apple"], (None, ["-", "apple"])),
        (["search", "-n", "3", "apple"], None),
        (["search", "apple", "--json"], None),
        (["search", "apple", "-l"], None),
        (["search", "--help"], None),
        (["search", "--", "apple"], None),
        (["--debug", "search", "apple"], None),
        (["--color", "never", "search", "apple"], None),
        (["--kb", "search", "apple"], None),
        (["--kb", "--debug", "search", "apple"], None),
        (["--kb="], None),
        (["--kb=", "search", "apple"], None),
        (["--kb", " ", "search", "apple"], None),
        (["--kbx", "search", "apple"], None),
        (["list"], None),
        (["show", "search"], None),
        (["search", "caf\udce9"], None),
        (["--kb", "kb\udcff", "search", "apple"], None),
        (["--kb=kb\udcff", "search", "apple"], None),
    ],
)
def test_only_the_plain_form_is_taken(argv: list[str], expected: object) -> None:
    assert quick.plain_search(argv) == expected


def _both(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[object, object]:
    """The program (kb.client, then kb.quick) and the whole command line (`python -m kb`), as (status,
    stdout, stderr)."""
    fast = subprocess.run([str(PROGRAM), *args], capture_output=True, env=env, cwd=cwd, check=False)
    full = subprocess.run(
        [sys.executable, "-m", "kb", *args], capture_output=True, env=env, cwd=cwd, check=False
    )
    return (fast.returncode, fast.stdout, fast.stderr), (full.returncode, full.stdout, full.stderr)


def test_the_same_bytes_as_the_whole_command_line(root: Path, tmp_path: Path) -> None:
    kb = cold_runner()
    for i in range(14):
        body = f"apple number{i} " + ("orchard " * i) + "\n\nSecond [[Note 1]] paragraph with pear."
        assert kb("add", f"Note {i}", "-b", body, "-t", "fruit/tree" if i % 2 else "veg").exit_code == 0
    env = {**os.environ, "KB_SERVER": "0"}
    other = tmp_path / "elsewhere"
    other.mkdir()
    (tmp_path / "plain").mkdir()
    queries = [
        ["search", "apple"],  # more than ten match: the hint on stderr
        ["search", "number3"],
        ["search", "nothingmatches"],  # exit 1, a suggestion perhaps
        ["search", "orchad"],  # did you mean
        ["search", "apple", "pear"],
        ["search", "apple", "-orchard"],
        ["search", "-orchard", "apple", "-number3"],
        ["search", "apple", "-n", "2", "-orchard"],
        ["search", "apple", "-tree"],
        ["search", '"second note"'],
        ["search", "tag:fruit/tree"],
        ["search", "tag:bad tag!"],
        ["search", "title:(unclosed"],
        ["search", "modified:>yesterday"],
        ["search", "links:Note 1"],
        ["search", "café"],
        ["search", "AND"],
        ["search", "*"],
        ["search", ""],
        ["--kb", str(other), "search", "apple"],  # not a knowledge base
        ["--kb", " ", "search", "apple"],
        ["--kb", str(tmp_path / "missing"), "search", "apple"],
        [f"--kb={root}", "search", "apple"],
    ]
    for args in queries:
        fast, full = _both(args, tmp_path / "plain", env)
        assert fast == full, args
    narrow = {**env, "COLUMNS": "30"}
    fast, full = _both(["search", "orchard"], tmp_path / "plain", narrow)
    assert fast == full
    assert fast[0] == 0


def test_a_failure_is_one_line(root: Path, tmp_path: Path) -> None:
    kb = cold_runner()
    assert kb("add", "One", "-b", "text").exit_code == 0
    env = {**os.environ, "KB_SERVER": "0"}
    seen = []
    for program in ([str(PROGRAM)], [sys.executable, "-m", "kb"]):
        (root / "index" / "kb-catalog.sqlite3").write_bytes(b"not a database at all" * 100)
        done = subprocess.run([*program, "search", "text"], capture_output=True, env=env, check=False)
        seen.append((done.returncode, done.stdout, done.stderr))
    assert seen[0] == seen[1]
    assert b"rebuilt" in seen[0][2]
    done = subprocess.run(
        [str(PROGRAM), "search", "text"],
        capture_output=True,
        env={**env, "KB_HOME": "/proc/1/nope"},
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr


def test_a_plain_search_imports_no_parser(root: Path) -> None:
    kb = cold_runner()
    assert kb("add", "One", "-b", "text").exit_code == 0
    env = {**os.environ, "KB_SERVER": "0"}
    program = [sys.executable, "-X", "importtime", "-c", "from kb.entry import main; main()"]
    plain = subprocess.run([*program, "search", "text"], capture_output=True, env=env, check=False)
    assert plain.returncode == 0 and b"1. One" in plain.stdout
    assert b"kb.quick" in plain.stderr and b"typer" not in plain.stderr and b"click" not in plain.stderr
    # nor the machinery of changes, which only a dead run's recovery needs (kb.store.dead_run)
    assert b"kb.service.transaction" not in plain.stderr
    other = subprocess.run([*program, "search", "text", "-l"], capture_output=True, env=env, check=False)
    assert other.returncode == 0 and other.stdout == b"notes/One.md\n"
    assert b"typer" in other.stderr


@pytest.mark.parametrize(
    ("token", "option"),
    [
        ("-l", True),
        ("-0", True),
        ("-l0", True),
        ("-h", True),
        ("-n", True),
        ("-n5", True),
        ("-ln", True),
        ("-C3", True),
        ("-t", True),
        ("--json", True),
        ("--tag=x", True),
        ("--nope", True),
        ("--", True),
        ("-draft", False),
        ("-tmux", False),
        ("-nfoo", False),
        ("-linux", False),
        ("-5", False),
        ("-", False),
    ],
)
def test_which_dashed_arguments_are_options(token: str, option: bool) -> None:
    assert quick.is_option(token) is option


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["search", "vim", "-emacs"], ["search", "--", "vim", "-emacs"]),
        (
            ["--kb", "/x", "search", "-emacs", "vim", "-n", "3"],
            ["--kb", "/x", "search", "-n", "3", "--", "-emacs", "vim"],
        ),
        (
            ["--kb=/x", "--no-pager", "search", "a", "-t", "-b", "-c"],
            ["--kb=/x", "--no-pager", "search", "-t", "-b", "--", "a", "-c"],
        ),
        (["search", "a", "--limit", "2", "-b"], ["search", "--limit", "2", "--", "a", "-b"]),
        (["search", "-x", "--", "-y"], ["search", "--", "-x", "-y"]),
        (["search", "vim", "-n", "3"], ["search", "vim", "-n", "3"]),  # no word with a dash: as it was
        (["search", "--", "-y"], ["search", "--", "-y"]),
        (["show", "-emacs"], ["show", "-emacs"]),
        (["--color", "never", "search", "-x"], ["--color", "never", "search", "--", "-x"]),
    ],
)
def test_words_with_a_dash_go_after_the_options(argv: list[str], expected: list[str]) -> None:
    assert quick.search_argv(argv) == expected


def test_an_encoding_error_in_utf8_is_not_blamed_on_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    """A UTF-8 output can hold any text kb prints: such an error comes from elsewhere (a file name)."""
    error = UnicodeEncodeError("utf-8", "caf\udce9", 3, 4, "surrogates not allowed")
    assert quick.failed(error) == 1
    assert "unexpected UnicodeEncodeError" in capsys.readouterr().err


def test_output_left_for_a_reader_that_has_gone_is_no_failure(tmp_path) -> None:
    """`kb search x 2>&1 | head -1`: what is still buffered for stderr when the reader has gone."""
    import subprocess
    import sys

    script = (
        "import io, os, sys\n"
        "from kb.quick import flushed\n"
        "sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, 'w', closefd=False), 1 << 20))\n"
        "sys.stderr.write('hint line\\n' * 1000)\n"
        "sys.stdin.read()\n"  # until the reader below has gone
        "os._exit(flushed(0))\n"
    )
    pipes = {"stdin": subprocess.PIPE, "stderr": subprocess.PIPE, "stdout": subprocess.DEVNULL}
    proc = subprocess.Popen([sys.executable, "-c", script], **pipes)
    assert proc.stderr is not None and proc.stdin is not None
    proc.stderr.close()  # the reader goes before anything was flushed to it
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_a_permission_denied_is_said_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from kb.quick import failed

    assert failed(PermissionError(13, "Permission denied", "/srv/kb/notes")) == 1
    assert capsys.readouterr().err == "Error: permission denied: /srv/kb/notes\n"
