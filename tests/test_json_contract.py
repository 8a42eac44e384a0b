"""Every command's --json output has the shape docs/json.md documents: the doc's `Example:` commands are
run through the CLI and their output checked against the JSON example under each."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from kb.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "json.md"


def _sections() -> list[tuple[str, list[str], Any]]:
    """(heading, example command's arguments after `kb`, the documented JSON) for each section."""
    sections = []
    for chunk in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        heading = chunk.splitlines()[0].strip("`")
        example = re.search(r"^Example: `kb (.+)`$", chunk, re.M)
        shape = re.search(r"^```json\n(.*?)^```$", chunk, re.M | re.S)
        assert example and shape, f"docs/json.md: section {heading!r} needs an Example: line and a json block"
        sections.append((heading, shlex.split(example.group(1)), json.loads(shape.group(1))))
    return sections


SECTIONS = _sections()


def _mismatches(documented: Any, actual: Any, where: str = "$") -> list[str]:
    if documented is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where}: an object is documented, got {actual!r}"]
        if not documented:
            return []
        problems = []
        if set(actual) != set(documented):
            missing, extra = sorted(set(documented) - set(actual)), sorted(set(actual) - set(documented))
            problems.append(f"{where}: keys missing {missing}, not documented {extra}")
        for key in set(actual) & set(documented):
            problems += _mismatches(documented[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{where}: an array is documented, got {actual!r}"]
        if not documented:
            return []
        return [p for i, item in enumerate(actual) for p in _mismatches(documented[0], item, f"{where}[{i}]")]
    if actual is None:
        return []
    kinds = {bool: "boolean", int: "number", float: "number", str: "string"}
    if kinds[type(documented)] != kinds.get(type(actual)):
        return [f"{where}: a {kinds[type(documented)]} is documented, got {actual!r}"]
    return []


@pytest.fixture
def sample(kb, tmp_path, monkeypatch):
    """The knowledge base docs/json.md describes, and a folder `to-import` in the current directory."""
    steps = [
        ("2021-11-19T16:02:40.897Z", ["add", "Machine Learning", "-t", "Notebooks/Skills/Tech", "-b", "x"]),
        ("2021-12-01T00:00:00.000Z", ["edit", "Machine Learning", "-t", "Study", "-a", "## Backprop\n\ny"]),
        ("2021-12-02T00:00:00.000Z", ["add", "Cooking", "-t", "Notebooks/Skills/Cooking", "-b", "learning"]),
        ("2021-12-03T00:00:00.000Z", ["add", "Reading", "-b", "See [[Machine Learning]] and [[Nowhere]]."]),
    ]
    for now, args in steps:
        monkeypatch.setenv("KB_NOW", now)
        assert kb(*args).exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-02T03:04:05.678Z")
    source = tmp_path / "to-import"
    source.mkdir()
    (source / "new.md").write_text("# Imported\n\ntext\n")
    (source / "unreadable.md").write_bytes(b"\xff\xfe")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("heading", "args", "documented"), SECTIONS, ids=[s[0] for s in SECTIONS])
def test_json_output_has_the_documented_shape(sample, kb, heading, args, documented):
    r = kb(*args)
    # kb check exits 1 when it finds a problem (the example has a dead link, so its records are checked)
    assert r.exit_code == (1 if args[0] == "check" else 0), r.stderr
    actual = json.loads(r.stdout)
    assert actual["version"] == documented["version"] == 1
    assert _mismatches(documented, actual) == []
    for key, value in documented.items():  # the examples fill every list of records, so they are checked
        if isinstance(value, list) and value and isinstance(value[0], dict):
            assert actual[key], f"{heading}: the example run gave an empty {key!r}; the check saw nothing"


def test_every_command_with_json_is_documented():
    group = typer.main.get_command(app)
    assert isinstance(group, typer.main.TyperGroup)
    with_json = {
        name
        for name, command in group.commands.items()
        if any("--json" in getattr(p, "opts", ()) for p in command.params)
    }
    documented = {args[0] for _, args, _ in SECTIONS}
    assert with_json == documented
    assert len(with_json) >= 7


def test_the_checker_catches_a_wrong_shape():
    documented = {"version": 1, "notes": [{"title": "", "tags": [""]}], "extra": {}}
    assert (
        _mismatches(documented, {"version": 1, "notes": [{"title": None, "tags": []}], "extra": {"x": 1}})
        == []
    )
    assert _mismatches(documented, {"version": 1, "notes": [{"title": "a"}], "extra": {}}) != []
    assert _mismatches(documented, {"version": 1, "notes": [{"title": 3, "tags": []}], "extra": {}}) != []
    assert _mismatches(documented, {"version": 1, "notes": {}, "extra": {}}) != []
