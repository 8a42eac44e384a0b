"""A Tab on a NOTE or a tag, answered before the command line (typer, rich) is imported: kb.entry calls
`quick()` first, since a completion runs kb once per Tab and most of that time was importing. Also the
readers kb.completion's completers use: titles, paths and tags from the catalog's SQLite file in index/
(read-only, one query), or the note files' names when there is no catalog yet. Nothing here ever writes,
and nothing heavier than sqlite3 is imported.

`quick()` reads the words the shell passes as typer's completion does, knows which argument of which
command is a NOTE and which options take a value (COMMANDS; tests/test_completion.py checks it against the
real commands and the answers against typer's), and prints what typer would print. Anything else (a
command name, an option, a revision) is left to typer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KB_COMPLETE"
# The catalog's file and layout (kb.index.catalog; tests/test_completion.py checks they agree).
INDEX_DIR = "index"
CATALOG = "kb-catalog.sqlite3"
SEP = "\x1f"
LIMIT = 200  # a shell shows no more than this usefully


def root_of(explicit: object) -> Path:
    """The knowledge base a Tab is about: --kb, else $KB_HOME, else ~/.kb."""
    raw = explicit or os.environ.get("KB_HOME") or str(Path.home() / ".kb")
    return Path(str(raw)).expanduser()


def _rows(
    root: Path, columns: str, where: str = "", params: tuple[str, ...] = ()
) -> list[tuple[str, ...]] | None:
    import sqlite3
    from urllib.parse import quote

    path = root / INDEX_DIR / CATALOG
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=0.5)
        try:
            query = f"SELECT {columns} FROM notes {where}"
            return [tuple(str(v or "") for v in row) for row in db.execute(query, params)]
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


def for_shell(values: list[str]) -> list[str]:
    """bash inserts a completion as it is: escape its spaces and quotes (zsh and fish quote themselves)."""
    if os.environ.get(COMPLETE_VAR) != "complete_bash":
        return values
    return ["".join("\\" + c if c in _BASH_SPECIAL else c for c in v) for v in values]


def note_values(root: Path, incomplete: str) -> list[str]:
    """Titles that start with what was typed (ignoring case), then paths; at most LIMIT."""
    import unicodedata

    typed = incomplete.casefold()
    # The catalog's title key (NFC, case-folded) is indexed, and paths are its primary key: a range of
    # each is read, never every row (10,000 rows cost ~20 ms more per Tab).
    key = unicodedata.normalize("NFC", incomplete).casefold()
    rows = _rows(
        root,
        "title",
        "WHERE tkey >= ? AND tkey < ? ORDER BY tkey LIMIT ?",
        (key, key + _LAST, str(2 * LIMIT)),
    )
    if rows is None:
        files = sorted(_files(root))
        stems = sorted({Path(p).stem for p in files}, key=str.casefold)
        return (
            [s for s in stems if s.casefold().startswith(typed)]
            + [p for p in files if p.startswith(incomplete)]
        )[:LIMIT]
    titles = list(dict.fromkeys(t for (t,) in rows))[:LIMIT]
    if len(titles) >= LIMIT:
        return titles
    paths = _rows(
        root,
        "path",
        "WHERE path >= ? AND path < ? ORDER BY path LIMIT ?",
        (incomplete, incomplete + _LAST, str(LIMIT - len(titles))),
    )
    return titles + [p for (p,) in paths or []]


_LAST = "\U0010ffff"  # after every character: [key, key + _LAST) is every text that starts with key


def tag_values(root: Path, incomplete: str) -> list[str]:
    rows = _rows(root, "DISTINCT tags") or []
    found: set[str] = set()
    for (packed,) in rows:
        for tag in _unpack(packed):
            parts = tag.split("/")
            found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    typed = incomplete.casefold()
    return sorted((t for t in found if t.casefold().startswith(typed)), key=str.casefold)[:LIMIT]


# kb's own options before the command: those that take a value, and flags.
GLOBAL_VALUES = frozenset({"--kb", "--color"})
GLOBAL_FLAGS = frozenset({"--debug", "--no-pager"})
# command: (its options that take a value, those of them whose value is a tag, whether its first argument
# is a NOTE). tests/test_completion.py checks this against the commands themselves.
COMMANDS: dict[str, tuple[frozenset[str], frozenset[str], bool]] = {
    name: (frozenset(values.split()), frozenset(tag_options.split()), note)
    for name, values, tag_options, note in (
        ("add", "-t --tag -b --body --folder", "-t --tag", False),
        ("edit", "--title -t --tag --untag -b --body -a --append", "-t --tag --untag", True),
        ("show", "-r --rev --as-of", "", True),
        ("log", "-n --limit", "", True),
        ("diff", "", "", True),
        ("restore", "", "", True),
        ("list", "-t --tag --sort --folder --links-to --linked-by --as-of", "-t --tag", False),
        ("rm", "", "", True),
        ("mv", "", "", True),
        ("search", "-n --limit -t --tag --sort -C --context --as-of", "-t --tag", False),
        ("links", "--as-of", "", True),
        ("backlinks", "--as-of", "", True),
        ("changes", "--since --until", "", True),
        ("blame", "", "", True),
        ("tags", "--as-of", "", False),
    )
}


def _split(text: str) -> list[str]:
    """Words as typer's completion splits them (shlex, a quote left open taken as it is)."""
    import shlex

    lex = shlex.shlex(text, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out: list[str] = []
    try:
        out.extend(lex)
    except ValueError:
        out.append(lex.token)
    return out


def _request(shell: str) -> tuple[list[str], str] | None:
    """The words before the one being completed (without `kb`), and that word, as the shell gives them."""
    if shell == "bash":
        words = _split(os.environ.get("COMP_WORDS", ""))
        try:
            cword = int(os.environ.get("COMP_CWORD", ""))
        except ValueError:
            return None
        return words[1:cword], (words[cword] if cword < len(words) else "")
    raw = os.environ.get("_TYPER_COMPLETE_ARGS", "")
    args = _split(raw)[1:]
    if args and not raw.endswith(" "):
        return args[:-1], args[-1]
    return args, ""


def values_for(args: list[str], incomplete: str) -> list[str] | None:
    """The NOTE or tag values for this Tab, or None when it is about anything else (typer answers)."""
    i, root = 0, None
    while i < len(args) and args[i].startswith("-"):
        word = args[i]
        if word in GLOBAL_VALUES and i + 1 < len(args):
            root = args[i + 1] if word == "--kb" else root
            i += 2
        elif word.startswith("--kb="):
            root, i = word[5:], i + 1
        elif word.startswith("--color=") or word in GLOBAL_FLAGS:
            i += 1
        else:
            return None
    if i >= len(args) or args[i] not in COMMANDS or incomplete.startswith("-"):
        return None
    values, tag_options, note_first = COMMANDS[args[i]]
    rest = args[i + 1 :]
    if rest and rest[-1] in tag_options:
        return tag_values(root_of(root), incomplete)
    positionals, j = 0, 0
    while j < len(rest):
        word = rest[j]
        if word == "--":
            return None
        if word.startswith("-") and word != "-":
            j += 2 if word in values else 1
            continue
        positionals += 1
        j += 1
    if j > len(rest) or not note_first or positionals:  # j past the end: completing an option's value
        return None
    return note_values(root_of(root), incomplete)


def quick() -> tuple[str, int] | None:
    """For a Tab on a NOTE or a tag: what typer's completion would print and its exit status, computed
    without importing typer; None for anything else."""
    shell = os.environ.get(COMPLETE_VAR, "").removeprefix("complete_")
    if shell not in SHELLS:
        return None
    request = _request(shell)
    if request is None:
        return None
    found = values_for(*request)
    if found is None:
        return None
    if shell == "bash":
        return "\n".join(for_shell(found)) + "\n", 0
    if shell == "zsh":
        if not found:
            return "_files\n", 0
        return "_arguments '*: :((" + "\n".join(f'"{_zsh_escape(v)}"' for v in found) + "))'\n", 0
    action = os.environ.get("_TYPER_COMPLETE_FISH_ACTION", "")
    if action == "is-args":
        return "", 0 if found else 1
    return ("\n".join(found) if action == "get-args" else "") + "\n", 0


def _zsh_escape(value: str) -> str:
    return (
        value.replace('"', '""')
        .replace("'", "''")
        .replace("$", "\\$")
        .replace("`", "\\`")
        .replace(":", r"\\:")
    )
