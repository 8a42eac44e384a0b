"""Which files of a folder are notes: the layout of a knowledge base, decided once per folder.

Two shapes, one rule for each:
- Notable's layout (what `kb init` creates): the notes are the Markdown files under `notes/`.
- A folder used as it is (an Obsidian vault, a TIL or docs repository, a zk notebook): every Markdown file at
  any depth is a note.
In both, dot-folders (`.git`, `.obsidian`, `.trash`, `.zk`...), kb's own `index/`, `node_modules/` and the
patterns the user lists are not notes.

How kb decides, in order: a settings file `kb.toml` at the root (`notes = "."` or `notes = "notes"`, and
`ignore = [...]` patterns); else a `notes/` folder with no Markdown file outside it (Notable's layout); else
any Markdown file in the folder (used as it is); else Notable's layout (a new knowledge base).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kb.errors import KbError

SETTINGS_FILE = "kb.toml"
NOTABLE_NOTES = "notes"
ATTACHMENTS_DIR = "attachments"
INDEX_DIR = "index"
MARKDOWN_SUFFIXES = (".md", ".markdown")
SKIPPED_FOLDERS = frozenset({"node_modules"})
MAX_DETECT_ENTRIES = 50_000  # entries looked at to decide whether a folder holds Markdown


class SettingsError(KbError):
    """kb.toml cannot be read or says something kb cannot follow."""

    exit_code = 2


@dataclass(frozen=True)
class Layout:
    """Where a knowledge base keeps its notes, and which of its folders kb leaves alone."""

    notes: str  # the notes root relative to the knowledge base root, posix; "" is the root itself
    ignore: tuple[str, ...] = ()  # glob patterns on root-relative paths; one matching a folder skips it
    reason: str = "default"  # how kb decided, said by `kb init` and `kb check`

    @property
    def prefix(self) -> str:
        """What every note path starts with: "notes/" or ""."""
        return f"{self.notes}/" if self.notes else ""

    @property
    def in_place(self) -> bool:
        """Every Markdown file at any depth is a note (not Notable's layout)."""
        return self.notes != NOTABLE_NOTES

    def skips_folder(self, rel: str, name: str) -> bool:
        """Whether the folder `rel` (root-relative, posix), named `name`, holds no notes."""
        if name.startswith(".") or name in SKIPPED_FOLDERS:
            return True
        if rel == INDEX_DIR:
            return True
        return bool(self.ignore) and self.ignored(rel)

    def ignored(self, rel: str) -> bool:
        """A user pattern matches the path or one of its folders."""
        if not self.ignore:
            return False
        parts = rel.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatchcase(candidate, pattern.rstrip("/").removesuffix("/**"))
            or fnmatch.fnmatchcase(candidate, pattern)
            for pattern in self.ignore
            for candidate in candidates
        )

    def may_hold_notes(self, folder: str) -> bool:
        """Whether notes may be in the folder `folder` (root-relative, posix) or below it under this layout:
        not hidden, skipped, kb's index or ignored, and inside the notes root or above it."""
        parts = folder.split("/")
        if any(not part or part.startswith(".") or part in SKIPPED_FOLDERS for part in parts):
            return False
        if folder == INDEX_DIR:
            return False
        prefix = self.prefix
        if prefix and not (folder + "/").startswith(prefix) and not prefix.startswith(folder + "/"):
            return False
        return not self.ignored(folder)

    def is_note_path(self, rel: str) -> bool:
        """Whether a root-relative path names a note under this layout (by its name alone)."""
        if not rel.endswith(MARKDOWN_SUFFIXES) or not rel.startswith(self.prefix):
            return False
        parts = rel.split("/")
        if any(not part or part.startswith(".") or part in ("..",) for part in parts):
            return False
        if any(part in SKIPPED_FOLDERS for part in parts[:-1]):
            return False
        if len(parts) > 1 and parts[0] == INDEX_DIR:
            return False
        return not self.ignored(rel)

    def folder_of(self, rel: str) -> str:
        """The folder of a note relative to the notes root ("" at the top)."""
        inner = rel[len(self.prefix) :] if rel.startswith(self.prefix) else rel
        parent = str(PurePosixPath(inner).parent)
        return "" if parent == "." else parent


def read_settings(root: Path) -> Layout | None:
    """The layout kb.toml sets, or None when there is no kb.toml."""
    path = root / SETTINGS_FILE
    if path.is_symlink():
        raise SettingsError(f"{SETTINGS_FILE} is a symbolic link; kb does not follow links")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"cannot read {SETTINGS_FILE}: {exc.strerror}") from None
    import tomllib  # only when there is a kb.toml (its import compiles regular expressions: ~3 ms)

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{SETTINGS_FILE} is not valid TOML: {exc}") from None
    notes = data.get("notes", ".")
    ignore = data.get("ignore", [])
    if not isinstance(notes, str):
        raise SettingsError(
            f'{SETTINGS_FILE}: \'notes\' must be a folder name in quotes, like "notes" or "."'
        )
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise SettingsError(f"{SETTINGS_FILE}: 'ignore' must be a list of patterns in quotes")
    folder = PurePosixPath(notes.replace("\\", "/"))
    if (
        folder.is_absolute()
        or ".." in folder.parts
        or any(p.startswith(".") for p in folder.parts if p != ".")
    ):
        raise SettingsError(f"{SETTINGS_FILE}: 'notes' must be a folder inside the knowledge base: {notes!r}")
    rel = "" if str(folder) == "." else str(folder)
    return Layout(rel, tuple(ignore), SETTINGS_FILE)


def settings_text(layout: Layout) -> str:
    """kb.toml for a layout, with comments saying what each setting does."""
    import json

    notes = layout.notes or "."
    patterns = ", ".join(json.dumps(p) for p in layout.ignore)
    return (
        "# kb's settings for this folder (kb's README: \"Notes you already have\").\n"
        '# notes: the folder that holds the notes; "." means every Markdown file at any depth.\n'
        f"notes = {json.dumps(notes)}\n"
        "# ignore: patterns of paths (from this folder) that are not notes,\n"
        '# e.g. ["templates", "*.draft.md"].\n'
        "# Dot-folders (.git, .obsidian, .trash), index/ and node_modules/ are never notes.\n"
        f"ignore = [{patterns}]\n"
    )


def has_markdown(root: Path, skip: frozenset[str]) -> bool:
    """Any Markdown file under `root` outside dot-folders and the top-level folders in `skip`."""
    seen = 0
    stack = [(root, True)]
    while stack:
        folder, top = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                if seen > MAX_DETECT_ENTRIES:
                    return False
                name = entry.name
                if name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if name in SKIPPED_FOLDERS or (top and name in skip):
                            continue
                        stack.append((Path(entry.path), False))
                    elif name.endswith(MARKDOWN_SUFFIXES) and entry.is_file(follow_symlinks=False):
                        return True
                except OSError:
                    continue
    return False


def _check_inside(root: Path, rel: str) -> None:
    """A notes or attachments folder that is a link leading out of the knowledge base is refused."""
    if not rel:
        return
    path = root / rel
    if not path.is_symlink():
        return
    try:
        target = path.resolve()
        inside = target.is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        target, inside = path, False
    if not inside:
        raise KbError(
            f"{rel}/ in {root} is a symbolic link to {target}, outside the knowledge base; "
            "kb will not read or write through it (replace the link with a folder)"
        )


def detect(root: Path) -> Layout:
    """The layout of the knowledge base at `root` (see the module's doc for the order of the rules)."""
    layout = read_settings(root)
    if layout is None:
        notes = root / NOTABLE_NOTES
        _check_inside(root, NOTABLE_NOTES)
        if notes.is_dir():
            skip = frozenset({NOTABLE_NOTES, INDEX_DIR, ATTACHMENTS_DIR})
            if has_markdown(root, skip):
                layout = Layout("", (), "Markdown files outside notes/")
            else:
                layout = Layout(NOTABLE_NOTES, (), "a notes/ folder (Notable's layout)")
        elif root.is_dir() and has_markdown(root, frozenset({INDEX_DIR})):
            layout = Layout("", (), "Markdown files in the folder")
        else:
            layout = Layout(NOTABLE_NOTES, (), "a new knowledge base (Notable's layout)")
    _check_inside(root, layout.notes)
    _check_inside(root, ATTACHMENTS_DIR)
    return layout


def beyond_link(root: Path, rel: str) -> bool:
    """Whether a folder on the way from `root` to the root-relative path `rel` is a symbolic link (a folder
    replaced by a link: what is beyond it is not the file that path names; git refuses to stage it)."""
    folder = root
    for part in rel.split("/")[:-1]:
        folder = folder / part
        if folder.is_symlink():
            return True
    return False


def is_knowledge_base(root: Path) -> bool:
    """Whether `root` is a knowledge base already: a folder with notes/, a git repository or kb.toml
    (reading commands need one; the first writing command makes one)."""
    return (root / NOTABLE_NOTES).is_dir() or (root / ".git").exists() or (root / SETTINGS_FILE).is_file()
