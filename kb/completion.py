"""Shell completion for bash, zsh and fish: the scripts `kb completion SHELL` prints, and the completers
of NOTE (titles and paths) and TAG values.

A completion runs kb once per Tab, so it must be fast: titles and tags come straight from the catalog's
SQLite file in index/ (read-only, one query), without importing whoosh, the service or the note parser. With
no catalog yet (no search has run), the note files' names are offered instead. Nothing here ever writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import typer

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KB_COMPLETE"
# The catalog's file and layout (kb.index.catalog; tests/test_completion.py checks they agree).
INDEX_DIR = "index"
CATALOG = "kb-catalog.sqlite3"
SEP = "\x1f"
LIMIT = 200  # a shell shows no more than this usefully


def enable() -> None:
    """Register typer's bash, zsh and fish completion protocols (only when a shell asks)."""
    from typer._completion_classes import completion_init

    completion_init()


def script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="kb", complete_var=COMPLETE_VAR, shell=shell) + "\n"


def _root(ctx: typer.Context) -> Path:
    explicit = ctx.find_root().params.get("kb")
    raw = explicit or os.environ.get("KB_HOME") or str(Path.home() / ".kb")
    return Path(str(raw)).expanduser()


def _rows(root: Path, columns: str) -> list[tuple[str, ...]] | None:
    import sqlite3
    from urllib.parse import quote

    path = root / INDEX_DIR / CATALOG
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=0.5)
        try:
            return [tuple(str(v or "") for v in row) for row in db.execute(f"SELECT {columns} FROM notes")]
        finally:
            db.close()
    except sqlite3.Error:
        return None


def _files(root: Path) -> Iterator[str]:
    """Note files' paths when there is no catalog: Markdown files, no dot-folders, not index/."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (folder == str(root) and d == INDEX_DIR)]
        for name in files:
            if name.endswith((".md", ".markdown")):
                yield os.path.relpath(os.path.join(folder, name), root)


def _unpack(text: str) -> list[str]:
    if not text:
        return []
    if text.startswith("["):
        import json

        try:
            return [str(t) for t in json.loads(text)]
        except ValueError:
            return []
    return text[1:].split(SEP)


_BASH_SPECIAL = set(" \t'\"\\()&;|<>$`*?!#[]{}~")


def _for_shell(values: list[str]) -> list[str]:
    """bash inserts a completion as it is: escape its spaces and quotes (zsh and fish quote themselves)."""
    if os.environ.get(COMPLETE_VAR) != "complete_bash":
        return values
    return ["".join("\\" + c if c in _BASH_SPECIAL else c for c in v) for v in values]


def notes(ctx: typer.Context, incomplete: str) -> list[str]:
    """Titles, then paths, that start with what was typed."""
    return _for_shell(_notes(ctx, incomplete))


def _notes(ctx: typer.Context, incomplete: str) -> list[str]:
    root = _root(ctx)
    rows = _rows(root, "title, path")
    typed = incomplete.casefold()
    if rows is None:
        files = sorted(_files(root))
        stems = sorted({Path(p).stem for p in files}, key=str.casefold)
        return (
            [s for s in stems if s.casefold().startswith(typed)]
            + [p for p in files if p.startswith(incomplete)]
        )[:LIMIT]
    titles = sorted({t for t, _ in rows if t.casefold().startswith(typed)}, key=str.casefold)
    paths = sorted(p for _, p in rows if p.startswith(incomplete))
    return (titles + paths)[:LIMIT]


def tags(ctx: typer.Context, incomplete: str) -> list[str]:
    """Tags (and their parents) that start with what was typed."""
    return _for_shell(_tags(ctx, incomplete))


def _tags(ctx: typer.Context, incomplete: str) -> list[str]:
    rows = _rows(_root(ctx), "tags") or []
    found: set[str] = set()
    for (packed,) in rows:
        for tag in _unpack(packed):
            parts = tag.split("/")
            found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    typed = incomplete.casefold()
    return sorted((t for t in found if t.casefold().startswith(typed)), key=str.casefold)[:LIMIT]
