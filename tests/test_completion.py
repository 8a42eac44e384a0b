"""Shell completion: the scripts, and what a Tab offers (commands, options, titles, paths, tags), read
from the catalog without loading the search engine or the service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kb import completion, quickcomplete
from kb.index import catalog
from kb.store import INDEX_DIR


@pytest.fixture
def notes(kb, root: Path) -> Path:
    assert kb("add", "Machine Learning", "-t", "Study/ML", "-b", "x").exit_code == 0
    assert kb("add", "Macros", "-t", "Cooking", "-b", "y").exit_code == 0
    assert kb("add", "Vacuum", "--folder", "postgres", "-b", "z").exit_code == 0
    assert kb("search", "x", "-l").exit_code == 0  # the index and its catalog exist
    return root


def complete(root: Path, words: str, shell: str = "bash", **env: str) -> list[str]:
    """What kb offers for the last of `words` (an empty last word: a trailing space)."""
    full = {**os.environ, "KB_HOME": str(root), completion.COMPLETE_VAR: f"complete_{shell}", **env}
    if shell == "bash":
        parts = words.split(" ")
        full.update(COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    else:
        full.update(_TYPER_COMPLETE_ARGS=words, _TYPER_COMPLETE_FISH_ACTION="get-args")
    proc = subprocess.run([sys.executable, "-m", "kb"], env=full, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_the_catalog_layout_is_the_one_completion_reads():
    assert (quickcomplete.CATALOG, quickcomplete.SEP, quickcomplete.INDEX_DIR) == (
        catalog.CATALOG,
        catalog.SEP,
        INDEX_DIR,
    )


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_each_script(kb, shell):
    r = kb("completion", shell)
    assert r.exit_code == 0
    assert "_KB_COMPLETE=complete_" + shell in r.stdout


def test_an_unknown_shell_is_a_usage_error(kb):
    r = kb("completion", "tcsh")
    assert r.exit_code == 2 and "bash, zsh, fish" in r.stderr


def test_commands_options_titles_paths_and_tags(notes):
    assert "show" in complete(notes, "kb sh")
    assert "--sort" in complete(notes, "kb list --so")
    assert complete(notes, "kb show Mac") == ["Machine\\ Learning", "Macros"]  # bash gets them escaped
    assert complete(notes, "kb show Mach", shell="fish") == ["Machine Learning"]
    assert complete(notes, "kb edit notes/M") == ["notes/Machine\\ Learning.md", "notes/Macros.md"]
    assert complete(notes, "kb rm notes/postgres/") == ["notes/postgres/Vacuum.md"]
    assert complete(notes, "kb list -t S") == ["Study", "Study/ML"]
    assert complete(notes, "kb edit Macros --tag C") == ["Cooking"]
    assert complete(notes, "kb search x --tag Study/") == ["Study/ML"]


def test_without_a_catalog_the_files_are_offered(kb, root):
    assert kb("add", "Fresh Note", "-b", "x").exit_code == 0
    for folder in (root / INDEX_DIR,):
        for file in folder.glob("*") if folder.is_dir() else []:
            if file.is_file():
                file.unlink()
    assert "Fresh\\ Note" in complete(root, "kb show Fr")


def test_completing_a_note_loads_neither_the_search_engine_nor_the_command_line(notes):
    code = (
        "import sys\nimport kb.entry\n"
        "try:\n    kb.entry.main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('whoosh', 'kb.service', 'kb.index', 'kb.notes', 'git', 'typer', 'rich', 'kb.cli')\n"
        "print(' '.join(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    env = {**os.environ, "KB_HOME": str(notes), "_KB_COMPLETE": "complete_bash", "COMP_WORDS": "kb show Ma"}
    env["COMP_CWORD"] = "2"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "Machine\\ Learning" in proc.stdout
    assert proc.stderr.strip() == ""


def test_the_bash_script_completes_in_bash(kb, notes):
    script = kb("completion", "bash").stdout
    bin_dir = Path(sys.executable).parent  # where the kb program is installed
    env = {**os.environ, "KB_HOME": str(notes), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    shell = (
        script
        + '\nCOMP_WORDS=(kb show Mac); COMP_CWORD=2; _kb_completion kb; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    if not (bin_dir / "kb").exists():
        pytest.skip("kb is not installed beside this Python")
    proc = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == ["Machine\\ Learning", "Macros"], proc.stderr


# ---------------------------------------------------------------- the quick path against typer's


def _typer_values(args: list[str], incomplete: str) -> list[str]:
    from typer._completion_classes import BashComplete
    from typer.main import get_command

    from kb.cli import app

    completion.enable()
    complete = BashComplete(get_command(app), {}, "kb", completion.COMPLETE_VAR)
    return [item.value for item in complete.get_completions(args, incomplete)]


def test_the_quick_table_is_the_commands_own(notes, monkeypatch):
    """Which options take a value, which of them take a tag, and whether the first argument is a NOTE:
    kb.quickcomplete.COMMANDS says it without importing the commands; here it is checked against them."""
    from typer.core import TyperOption as Option
    from typer.main import get_command

    from kb.cli import app

    monkeypatch.setenv(completion.COMPLETE_VAR, "complete_bash")
    monkeypatch.setenv("KB_HOME", str(notes))
    group = get_command(app)
    all_notes = quickcomplete.note_values(notes, "")
    all_tags = quickcomplete.tag_values(notes, "")
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        value_options = {
            opt
            for p in command.params
            if isinstance(p, Option) and not p.is_flag
            for opt in (*p.opts, *p.secondary_opts)
        }
        note_first = _typer_values([name], "") == completion.for_shell(all_notes) and bool(all_notes)
        tag_options = {o for o in value_options if _typer_values([name, o], "") == all_tags}
        if name not in quickcomplete.COMMANDS:
            assert not note_first and not tag_options, name  # a command the quick path should know
            continue
        values, tags, first = quickcomplete.COMMANDS[name]
        assert (values, tags, first) == (value_options, tag_options, note_first), name


@pytest.mark.parametrize(
    "words",
    [
        "kb show Mac",
        "kb show ",
        "kb --kb {root} show Mac",
        "kb --color never --no-pager edit M",
        "kb edit -a text Mac",
        "kb edit --title New Mac",
        "kb edit Macros --tag C",
        "kb edit Macros --untag ",
        "kb list -t S",
        "kb search x --tag Study/",
        "kb search -n 3 -C 2 x -t S",
        "kb rm notes/",
        "kb mv Mac",
        "kb mv Macros Ne",
        "kb show -r ",
        "kb diff Macros 1",
        "kb sh",
        "kb list --so",
        "kb links Vac",
    ],
)
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_quick_path_answers_as_typer_does(notes, words, shell):
    words = words.replace("{root}", str(notes))
    quick = complete(notes, words, shell)
    env = {**os.environ, "KB_HOME": str(notes), completion.COMPLETE_VAR: f"complete_{shell}"}
    if shell == "bash":
        env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split(" ")) - 1))
    else:
        env.update(_TYPER_COMPLETE_ARGS=words, _TYPER_COMPLETE_FISH_ACTION="get-args")
    code = "from kb.cli import main; main()"
    slow = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert quick == slow.stdout.splitlines()


def test_a_title_with_spaces_completes_after_a_typed_space(notes):
    # bash passes the word as typed (`Machine\ L`); typer's own path offered nothing here
    env = {**os.environ, "KB_HOME": str(notes), completion.COMPLETE_VAR: "complete_bash"}
    env.update(COMP_WORDS="kb show Machine\\ L", COMP_CWORD="2")
    proc = subprocess.run([sys.executable, "-m", "kb"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == ["Machine\\ Learning"]
