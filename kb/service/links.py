"""Links between notes as the service sees them: a note's outgoing links resolved, the notes that link to it
(answered from the catalog's links table, never by reading the notes), and the files of the knowledge base
that are not notes (what embeds and attachment links lead to)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.errors import KbError
from kb.layout import INDEX_DIR, SKIPPED_FOLDERS
from kb.links import Link, Resolved, Vault, name_key
from kb.notes import title_key
from kb.service.lookup import NoteInfo, all_notes, load_note, note_info, resolve_note
from kb.service.transaction import recover
from kb.store import Store

MAX_OTHER_FILES = 200_000  # files that are not notes looked at to resolve embeds and attachment links


@dataclass(frozen=True)
class LinkRow:
    """One link as a command shows it: where it is written, what it says, where it leads."""

    source: str  # the linking note's path
    line: int
    kind: str  # wiki, markdown, angle, notable
    target: str
    fragment: str | None
    alias: str | None
    embed: bool
    status: str  # ok, dead, ambiguous
    path: str | None  # where it leads, when ok
    candidates: tuple[str, ...] = ()  # what an ambiguous link could mean

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "kind": self.kind,
            "target": self.target,
            "fragment": self.fragment,
            "alias": self.alias,
            "embed": self.embed,
            "status": self.status,
            "path": self.path,
            "candidates": list(self.candidates),
        }


@dataclass(frozen=True)
class LinksResult:
    note: NoteInfo
    links: tuple[LinkRow, ...]
    warnings: tuple[str, ...] = ()


def row(source: str, link: Link, found: Resolved) -> LinkRow:
    return LinkRow(
        source,
        link.line,
        link.kind,
        link.target,
        link.fragment,
        link.alias,
        link.embed,
        found.status,
        found.path,
        found.candidates,
    )


def other_files(store: Store) -> list[str]:
    """Every file of the knowledge base that is not a note (root-relative): images, PDFs, attachments/.
    Dot-folders, kb's index/, node_modules/ and ignored paths are left out; links are not followed."""
    out: list[str] = []
    layout = store.layout
    stack = [(str(store.root), "")]
    while stack and len(out) < MAX_OTHER_FILES:
        folder, rel = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    sub = f"{rel}/{name}" if rel else name
                    if name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if name in SKIPPED_FOLDERS or sub == INDEX_DIR or layout.ignored(sub):
                                continue
                            stack.append((entry.path, sub))
                        elif entry.is_file(follow_symlinks=False) and not layout.is_note_path(sub):
                            out.append(sub)
                    except OSError:
                        continue
        except OSError:
            continue
    return sorted(out)


def vault_of(store: Store, infos: list[NoteInfo], with_files: bool = True) -> Vault:
    return Vault({i.path: i.title for i in infos}, other_files(store) if with_files else (), store.prefix)


def fresh_catalog(root: Path) -> Any:
    """The catalog, brought up to date with the notes first (rebuilt when missing or of another version)."""
    from kb.index import NoteIndex
    from kb.service.search import refresh_index

    recover(root)
    index = NoteIndex(root)
    refresh_index(index, root, None)
    catalog = index.catalog()
    if catalog is None:
        raise KbError(f"the search catalog in {root / INDEX_DIR} cannot be opened; run 'kb reindex'")
    return catalog


def _require(root: Path) -> None:
    if not root.is_dir() or not Store(root).notes.is_dir():
        raise KbError(f"there is no knowledge base at {root}")


def outgoing(root: Path, ref: str) -> LinksResult:
    """The links written in one note, each resolved: the path it leads to, or dead, or ambiguous."""
    from kb.index.catalog import CatalogError

    _require(root)
    with fresh_catalog(root) as catalog:
        store = Store(root)
        path = resolve_note(store, ref)
        try:
            links = catalog.links_from(path)
        except CatalogError as exc:
            raise KbError(f"cannot read the search catalog: {exc}; run 'kb reindex'") from None
    infos, _ = all_notes(store)
    info = next((i for i in infos if i.path == path), None)
    if info is None:
        info = note_info(path, load_note(store, path, with_extra=False)[1])
    vault = vault_of(store, infos, with_files=any(_needs_files(link) for link in links))
    rows = tuple(row(path, link, vault.resolve(link, path)) for link in links)
    return LinksResult(info, rows, ())


def _needs_files(link: Link) -> bool:
    from kb.links import is_note_target

    return link.embed or not is_note_target(link.target)


def incoming_links(
    catalog: Any, vault: Vault, path: str, title: str, keep: Callable[[str], bool] | None = None
) -> list[tuple[str, Link, Resolved]]:
    """(source, link, resolution) of every link that leads to the note at `path`: the catalog's links filed
    under its file name or title, each resolved from its own note."""
    keys = {name_key(path), name_key(title), title_key(title)}
    out = []
    for source, link in catalog.links_named(keys):
        if keep is not None and not keep(source):
            continue
        found = vault.resolve(link, source)
        if found.status == "ok" and found.path == path:
            out.append((source, link, found))
    return out


def backlinks(root: Path, ref: str) -> LinksResult:
    """The links that lead to one note, from every note (itself included), in path and line order."""
    from kb.index.catalog import CatalogError

    _require(root)
    with fresh_catalog(root) as catalog:
        store = Store(root)
        path = resolve_note(store, ref)
        infos, _ = all_notes(store)
        info = next((i for i in infos if i.path == path), None)
        if info is None:
            info = note_info(path, load_note(store, path, with_extra=False)[1])
        vault = vault_of(store, infos, with_files=False)
        try:
            found = incoming_links(catalog, vault, path, info.title)
        except CatalogError as exc:
            raise KbError(f"cannot read the search catalog: {exc}; run 'kb reindex'") from None
    rows = tuple(row(source, link, resolved) for source, link, resolved in found)
    return LinksResult(info, tuple(sorted(rows, key=lambda r: (r.source, r.line))), ())
