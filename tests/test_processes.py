"""The real program in real processes: concurrent writers, pipes, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import git, log_subjects


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "kb", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
    )


def test_concurrent_adds_all_land(root: Path):
    procs = [spawn("add", f"Note {i}", "-b", f"body {i}", env={"KB_LOCK_TIMEOUT": "30"}) for i in range(6)]
    results = [(p.wait(timeout=120), p.stderr.read().decode()) for p in procs]  # type: ignore[union-attr]
    assert all(code == 0 for code, _ in results), results
    names = sorted(p.name for p in (root / "notes").iterdir())
    assert names == [f"Note {i}.md" for i in range(6)]
    subjects = log_subjects(root)
    assert sorted(s for s in subjects if s.startswith("Add:")) == [f"Add: Note {i}" for i in range(6)]
    assert git(root, "status", "--porcelain") == ""
    subprocess.run(["git", "-C", str(root), "fsck", "--strict"], check=True, capture_output=True)


def test_a_first_add_into_a_folder_of_something_else_is_refused_and_changes_nothing(root: Path):
    root.mkdir()
    (root / "thesis.tex").write_text("\\documentclass{article}\n")
    procs = [spawn("add", f"Note {i}", "-b", "body", env={"KB_LOCK_TIMEOUT": "30"}) for i in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read().decode()) for p in procs]  # type: ignore[union-attr]
    for code, err in results:
        assert code == 1 and "is not empty and not a knowledge base" in err and "Traceback" not in err, err
    assert sorted(p.name for p in root.iterdir()) == ["thesis.tex"]


def test_concurrent_writers_beyond_the_timeout_fail_clearly(root: Path):
    assert spawn("add", "First", "-b", "x").wait(timeout=60) == 0
    # Hold the write lock from a separate process for longer than the second writer waits.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(5)",
            str(root),
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
    waiting = spawn("add", "Second", "-b", "y", env={"KB_LOCK_TIMEOUT": "0.5"})
    code = waiting.wait(timeout=60)
    err = waiting.stderr.read().decode()  # type: ignore[union-attr]
    holder.kill()
    holder.wait()
    assert code == 1
    assert err.startswith("Error: another kb process") and err.count("\n") == 1
    assert not (root / "notes" / "Second.md").exists()


def test_piped_show_and_list_are_plain_data(root: Path):
    assert spawn("add", "Piped", "-t", "a/b", "-b", "text").wait(timeout=60) == 0
    shown = subprocess.run([sys.executable, "-m", "kb", "show", "Piped"], capture_output=True, check=True)
    assert shown.stdout == (root / "notes" / "Piped.md").read_bytes()
    listed = subprocess.run([sys.executable, "-m", "kb", "list"], capture_output=True, check=True)
    assert listed.stdout.decode().split("\t")[1:] == ["Piped", "a/b", "notes/Piped.md\n"]
    missing = subprocess.run([sys.executable, "-m", "kb", "show", "Nope"], capture_output=True)
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr.decode().startswith("Error: no note matches 'Nope'")


def test_stdin_body_through_a_real_pipe(root: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "add", "From Pipe"], input=b"piped body\n", capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (root / "notes" / "From Pipe.md").read_bytes().endswith(b"# From Pipe\n\npiped body\n")


def _close_stdout() -> None:
    os.close(1)


def test_output_that_cannot_be_written_is_one_line(root: Path):
    from tests.conftest import PROGRAM

    assert (
        subprocess.run(
            [sys.executable, "-m", "kb", "add", "Café", "-b", "text"], capture_output=True
        ).returncode
        == 0
    )
    env = {**os.environ, "KB_SERVER": "0"}
    for argv in (["search", "text"], ["list"], ["show", "Café"]):
        for program in ([str(PROGRAM)], [sys.executable, "-m", "kb"]):
            # standard output closed in the child, as `>&-` leaves it
            closed = subprocess.run(
                [*program, *argv], stderr=subprocess.PIPE, env=env, preexec_fn=_close_stdout
            )
            assert closed.returncode == 1
            assert closed.stderr == b"Error: cannot write the output: standard output is closed\n", argv
            with open(os.devnull, "rb") as for_reading:  # `kb list 1</dev/null`
                done = subprocess.run([*program, *argv], stdout=for_reading, stderr=subprocess.PIPE, env=env)
            assert done.returncode == 1
            said = b"Error: cannot write the output: standard output is open for reading only\n"
            assert done.stderr == said, argv
            with open("/dev/full", "wb") as full:
                done = subprocess.run([*program, *argv], stdout=full, stderr=subprocess.PIPE, env=env)
            assert done.returncode == 1
            assert done.stderr == b"Error: cannot write: No space left on device\n", argv
            ascii_only = subprocess.run(
                [*program, *argv], capture_output=True, env={**env, "PYTHONIOENCODING": "ascii"}
            )
            assert ascii_only.returncode == 1
            assert ascii_only.stderr.startswith(
                b"Error: cannot write '\\xe9' in the output's encoding (ascii)"
            ), argv
            assert ascii_only.stderr.count(b"\n") == 1


def test_an_empty_kb_option_is_refused(root: Path):
    for argv in (["--kb", "", "list"], ["--kb=", "search", "x"], ["--kb", " ", "search", "x"]):
        done = subprocess.run([sys.executable, "-m", "kb", *argv], capture_output=True)
        assert done.returncode == 2
        assert done.stderr.startswith(b"Error: --kb needs a folder"), argv


def test_a_sub_writer_ends_quietly_on_ctrl_c():
    """Whoosh's sub-writers, forked while a rebuild runs, end without a traceback on Ctrl-C (sent to the
    whole process group); a child forked at any other time keeps Python's KeyboardInterrupt."""
    code = (
        "import os, signal, sys, time\n"
        "from kb import index\n"
        "if sys.argv[1] == 'rebuild': index._WRITERS_FORKING.append(True)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "    os._exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", code, "rebuild"], capture_output=True, text=True, timeout=30
    )
    assert (quiet.stdout, quiet.stderr) == ("130\n", "")
    other = subprocess.run([sys.executable, "-c", code, "other"], capture_output=True, text=True, timeout=30)
    assert "KeyboardInterrupt" in other.stderr


def test_a_reader_gone_is_told_from_a_reader_still_there():
    import socket

    from kb.quick import reader_gone

    r, w = os.pipe()
    try:
        assert not reader_gone(w)  # someone may still read
        os.close(r)
        r = -1
        assert reader_gone(w)
        os.write(w, b"goes nowhere now")  # /dev/null took its place: no EPIPE
    finally:
        os.close(w)
        if r >= 0:
            os.close(r)
    ours, theirs = socket.socketpair()
    with ours:
        fd = os.dup(ours.fileno())
        try:
            assert not reader_gone(fd)
            theirs.close()
            assert reader_gone(fd)
        finally:
            os.close(fd)


def test_an_error_no_one_reads_any_more_ends_quietly():
    # stderr into a pipe whose reader has gone (`2>&1 | true`): the error cannot be said; kb still ends
    # with the error's status rather than failing again while saying it
    script = (
        "import os, sys\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 2)\n"
        "from kb.errors import KbError, NoteNotFound\n"
        "from kb.quick import failed\n"
        "print(failed(NoteNotFound('no note matches x')), failed(BrokenPipeError()), flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0, done
    assert done.stdout == b"1 1\n"
