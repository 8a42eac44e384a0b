"""The installed `kb` program: bin/kb, a shell script, runs bin/kb-python with the interpreter named in
kb-python's first line and -S (Python without `site`); kb-python then finds kb itself, and the cold path
runs site before anything else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kb import __version__
from tests.conftest import PROGRAM

pytestmark = pytest.mark.skipif(not PROGRAM.exists(), reason="kb is not installed beside this Python")
SCRIPT = PROGRAM.with_name("kb-python")


def _installed_copy(folder: Path, first_line: str | None) -> Path:
    """bin/kb and bin/kb-python as pip installs them, in `folder`; kb-python's first line replaced."""
    folder.mkdir(parents=True)
    shutil.copy2(PROGRAM, folder / "kb")
    if first_line is not None:
        rest = SCRIPT.read_bytes().split(b"\n", 1)[1]
        (folder / "kb-python").write_bytes(first_line.encode() + b"\n" + rest)
        (folder / "kb-python").chmod(0o755)
    return folder / "kb"


def _recording_python(tmp_path: Path) -> tuple[Path, Path]:
    """A program that notes the arguments it was given, then runs this Python with them (less a first
    `--as-written`, which a first line may pass)."""
    log = tmp_path / "arguments"
    wrapper = tmp_path / "python"
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n'
        f'[ "$1" = --as-written ] && shift\nexec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, log


def _run(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KB_SERVER": "0"}
    return subprocess.run(
        [str(program), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_python_starts_without_site_and_the_whole_command_line_still_runs(root: Path, tmp_path: Path):
    python, log = _recording_python(tmp_path)
    program = _installed_copy(tmp_path / "bin", f"#!{python}")
    assert _run(program, "--version").stdout == f"kb {__version__}\n"
    added = _run(program, "add", "Okapi", "-b", "An okapi note.")
    assert added.returncode == 0, added.stderr
    found = _run(program, "search", "okapi", "-l")  # the cold search: whoosh, from site-packages
    assert (found.returncode, found.stdout) == (0, "notes/Okapi.md\n"), found.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3 and all(call.startswith(f"-S {tmp_path / 'bin' / 'kb-python'} ") for call in calls)


def test_the_program_is_found_through_links(root: Path, tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "kb").symlink_to(PROGRAM)  # as pipx links it into ~/.local/bin
    (tmp_path / "b" / "kb").symlink_to(Path("..") / "a" / "kb")
    proc = _run(tmp_path / "b" / "kb", "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"kb {__version__}\n", "")


def test_links_to_both_scripts_in_one_folder_need_no_link_followed(root: Path, tmp_path: Path):
    (tmp_path / "bin").mkdir()
    for name in ("kb", "kb-python"):  # as pipx links them into ~/.local/bin
        (tmp_path / "bin" / name).symlink_to(PROGRAM.with_name(name))
    env = {**os.environ, "KB_SERVER": "0", "PATH": str(tmp_path / "empty")}  # no readlink to run
    proc = subprocess.run(
        [str(tmp_path / "bin" / "kb"), "--version"], capture_output=True, text=True, env=env
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"kb {__version__}\n", "")
    (tmp_path / "bin" / "kb-python").unlink()  # the link alone: followed with readlink, which is not there
    proc = subprocess.run(
        [str(tmp_path / "bin" / "kb"), "--version"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 127 and "no kb-python beside" in proc.stderr


def test_a_missing_script_is_said_in_one_line(tmp_path: Path):
    program = _installed_copy(tmp_path / "bin", None)
    proc = _run(program, "list")
    assert proc.returncode == 127
    assert proc.stderr.count("\n") == 1 and "no kb-python beside" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("first_line", "arguments"),
    [
        # a Python with an option: pipx writes -E, which is kept
        ("#!{python} -E", "-E -S {script} --version"),
        # more than one option: run as written (with site)
        ("#!{python} --as-written", "--as-written {script} --version"),
        # uv's shell trampoline for an interpreter whose path has a space or is long: the shell runs Python
        # on the script, which Python reads as a string; it is no Python to give -S to
        ("#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''", "{script} --version"),
    ],
)
def test_what_the_first_line_names_decides_how_python_starts(
    root: Path, tmp_path: Path, first_line: str, arguments: str
):
    python, log = _recording_python(tmp_path)
    program = _installed_copy(tmp_path / "bin", first_line.format(python=python))
    proc = _run(program, "--version")
    assert (proc.returncode, proc.stdout) == (0, f"kb {__version__}\n"), proc.stderr
    assert log.read_text() == arguments.format(script=tmp_path / "bin" / "kb-python") + "\n"


def test_found_on_path_by_a_shell_given_its_name(root: Path, tmp_path: Path):
    """`bash kb`: the shell finds kb on PATH and names it `kb` alone; a relative folder of PATH whose
    name begins with a dash is not taken for an option of Python's."""
    python, log = _recording_python(tmp_path)
    _installed_copy(tmp_path / "-bin", f"#!{python}")
    (tmp_path / "elsewhere").mkdir()
    for folder, cwd in ((str(tmp_path / "-bin"), tmp_path / "elsewhere"), ("-bin", tmp_path)):
        env = {**os.environ, "KB_SERVER": "0", "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.run(
            ["bash", "kb", "--version"],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=120,
            check=False,
        )
        assert (proc.returncode, proc.stdout) == (0, f"kb {__version__}\n"), (folder, proc.stderr)
    assert log.read_text().splitlines() == [
        f"-S {tmp_path / '-bin' / 'kb-python'} --version",
        "-S ./-bin/kb-python --version",
    ]


def test_the_cold_path_in_a_virtual_environment_with_the_system_s_packages_gets_them(tmp_path: Path):
    """Started without site, kb sets sys.prefix to the virtual environment's before site runs: site must
    still see the base one then, or the system's packages are left out."""
    import kb

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True
    )
    code = (
        "import sys; sys.path.append(sys.argv[1]); sys.prefix = sys.exec_prefix = sys.argv[2]\n"
        "from kb import client; client.full_site()\n"
        "import site; print(site.PREFIXES, sys.prefix)"
    )
    usual = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import site, sys; print(site.PREFIXES, sys.prefix)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert str(sys.base_prefix) in usual.stdout  # the system's packages, as Python starts with site
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-S", "-c", code, str(Path(kb.__file__).parents[1]), str(venv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout == usual.stdout, proc.stderr
