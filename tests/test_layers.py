"""The seam between the command line and the service: static for mypy, lazy at run time."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import kb.service

SERVICE_INIT = Path(kb.service.__file__)


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(SERVICE_INIT.read_text())
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                for alias in stmt.names:
                    assert alias.asname in (None, alias.name), alias.name  # re-exported under its own name
                    names[alias.name] = stmt.module
    return names


def test_what_mypy_sees_is_what_runs():
    """kb.service's TYPE_CHECKING imports name the same objects its lazy table loads."""
    static = _type_checking_imports()
    lazy = {name: f"kb.service.{module}" for name, module in kb.service._WHERE.items()}
    assert static == lazy
    for name, module in static.items():
        assert getattr(kb.service, name) is getattr(importlib.import_module(module), name)


def test_help_loads_neither_the_service_nor_heavy_libraries():
    code = (
        "import sys\n"
        "import kb.cli\n"
        "kb.cli.run(['--help'])\n"
        "print(' '.join(m for m in ('kb.service', 'kb.render', 'git', 'whoosh', 'rich.markdown', 'yaml',"
        " 'prompt_toolkit')"
        " if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == ""


def test_a_submodule_named_like_its_function_does_not_hide_it():
    """`kb reindex` loads kb.service.search first; a `kb search` after it in the same process (a fresh one,
    so no earlier test has bound the name) still finds the function, not the module."""
    code = (
        "from typer.testing import CliRunner\n"
        "from kb.cli import app\n"
        "run = CliRunner().invoke\n"
        "assert run(app, ['add', 'Note', '-b', 'zebra']).exit_code == 0\n"
        "assert run(app, ['reindex']).exit_code == 0\n"
        "r = run(app, ['search', 'zebra', '-l'])\n"
        "print(r.exit_code, r.stdout.strip(), r.stderr.strip())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "0 notes/Note.md"


def test_a_search_leaves_whooshs_word_variations_unbuilt_until_they_are_used():
    """whoosh.lang.morph_en (its tables take ~10 ms to build) is loaded only when something asks it for
    a word's variations, and then answers as whoosh alone does."""
    alone = "from whoosh.lang.morph_en import variations\nprint(sorted(variations('render')))\n"
    expected = subprocess.run([sys.executable, "-c", alone], capture_output=True, text=True, check=True)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from kb.cli import app\n"
        "run = CliRunner().invoke\n"
        "assert run(app, ['add', 'Note', '-b', 'rendering zebra']).exit_code == 0\n"
        "assert run(app, ['search', 'zebra', '-l']).stdout.strip() == 'notes/Note.md'\n"
        "print(hasattr(sys.modules['whoosh.lang.morph_en'], 'exceptions'))\n"
        "from whoosh.query import terms\n"  # what Variations queries call
        "print(sorted(terms.variations('render')))\n"
        "print(hasattr(sys.modules['whoosh.lang.morph_en'], 'exceptions'))\n"
        "from whoosh.lang.morph_en import variations\n"
        "print(sorted(variations('render')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    assert lines[-4:] == ["False", expected.stdout.strip(), "True", expected.stdout.strip()], proc.stdout
