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
from kb.notes import ParsedNote, title_key
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


def fresh_catalog(root: Path, store: Store | None = None, busy_ok: bool = False) -> Any:
    """The catalog, brought up to date with the notes first (rebuilt, under the lock, when it is missing or
    of another version), as a search does it, waiting for another process that keeps the index's writer
    (NoteIndex.fresh_or_busy); when it keeps it longer than BUSY_WAIT: the catalog as it is with `busy_ok`
    (a search, which says so), else a clear error."""
    from kb.index import NoteIndex

    recover(root)
    index = NoteIndex(root, store)
    if busy_ok:
        index.fresh_or_busy()
    elif index.fresh_or_busy()[1]:  # waited BUSY_WAIT for it
        raise KbError(
            "another kb process is bringing the search index up to date; try again when it has finished"
        )
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
    store = Store(root)
    with fresh_catalog(root, store) as catalog:
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


# ---------------------------------------------------------------- keeping links through a rename


@dataclass(frozen=True)
class LinkUpdates:
    """What a rename rewrites in the notes that link to the renamed one (and in the renamed note itself)."""

    writes: dict[str, bytes]  # path (after the rename) -> new bytes
    links: int  # links rewritten
    notes: int  # notes whose text changed for it
    warnings: tuple[str, ...] = ()


def catalog_in_tx(root: Path, store: Store) -> Any:
    """The catalog brought up to date inside a transaction (the lock is held: no waiting for it)."""
    from kb.index import NoteIndex

    index = NoteIndex(root, store)
    index.ensure_fresh(lock_held=True)
    catalog = index.catalog()
    if catalog is None:
        raise KbError(f"the search catalog in {root / INDEX_DIR} cannot be opened; run 'kb reindex'")
    return catalog


def plan_link_updates(
    root: Path,
    store: Store,
    old_path: str,
    new_path: str,
    new_title: str,
    new_data: bytes,
    stamp: str,
) -> LinkUpdates:
    """The rewrites that keep every link to the note at `old_path` leading to it at `new_path` (with
    `new_title`), each in the form it had; keep the renamed note's own links leading where they did from
    its new folder; and keep a link to another note that the new name would take over (or make ambiguous)
    leading to that note. `new_data`: the renamed note's text after the rename. A linking note gets a new
    `modified` (`stamp`) as keeps_modified says; nothing else of it changes."""
    from kb.index.catalog import CatalogError

    with catalog_in_tx(root, store) as catalog:
        infos, _ = all_notes(store)
        # with the files that are not notes: `[x](Node.js)` leads to the file Node.js, not to Node.js.md
        files = other_files(store)
        old_vault = Vault({i.path: i.title for i in infos}, files, store.prefix)
        old_title = old_vault.notes.get(old_path, new_title)
        try:
            sources = {source for source, _, _ in incoming_links(catalog, old_vault, old_path, old_title)}
            # links to other notes that the new name could take over (`[[Foo]]` when the note becomes Foo)
            keys = {name_key(new_path), name_key(new_title), title_key(new_title)}
            sources |= {source for source, _ in catalog.links_named(keys)}
        except CatalogError as exc:
            raise KbError(f"cannot read the search catalog: {exc}; run 'kb reindex'") from None
    moved = posixpath_dir(old_path) != posixpath_dir(new_path)
    if moved:
        sources.add(old_path)  # its relative links are written from another folder now
    new_notes = {p: t for p, t in old_vault.notes.items() if p != old_path}
    new_notes[new_path] = new_title
    new_vault = Vault(new_notes, files, store.prefix)
    return _rewrite_links(
        store, sources, old_vault, new_vault, old_path, new_path, stamp, renamed=(old_path, new_data)
    )


def plan_file_link_updates(root: Path, store: Store, old_path: str, new_path: str, stamp: str) -> LinkUpdates:
    """The rewrites that keep every link to the file (an image, a PDF: not a note) at `old_path` leading
    to it at `new_path`, each in the form it had, and keep a link to another file that the new name would
    take over (or make ambiguous) leading to that file. A linking note gets a new `modified` (`stamp`) as
    keeps_modified says; nothing else of it changes."""
    from kb.index.catalog import CatalogError

    with catalog_in_tx(root, store) as catalog:
        try:
            keys = {name_key(old_path), name_key(new_path)}
            sources = {source for source, _ in catalog.links_named(keys)}
        except CatalogError as exc:
            raise KbError(f"cannot read the search catalog: {exc}; run 'kb reindex'") from None
    infos, _ = all_notes(store)
    files = other_files(store)
    notes = {i.path: i.title for i in infos}
    old_vault = Vault(notes, files, store.prefix)
    new_vault = Vault(notes, [*(f for f in files if f != old_path), new_path], store.prefix)
    return _rewrite_links(store, sources, old_vault, new_vault, old_path, new_path, stamp)


def _rewrite_links(
    store: Store,
    sources: set[str],
    old_vault: Vault,
    new_vault: Vault,
    old_path: str,
    new_path: str,
    stamp: str,
    renamed: tuple[str, bytes] | None = None,
) -> LinkUpdates:
    """Every link in the notes `sources` that led somewhere before (`old_vault`) rewritten to lead there
    still (`new_vault`), where `old_path` is now `new_path`. `renamed`: the renamed note (old path, its new
    text), written from its new place."""
    from dataclasses import replace as replace_in

    from kb.links import note_links, replace_spans
    from kb.notes import parse_note, set_fields

    writes: dict[str, bytes] = {}
    warnings: list[str] = []
    count = 0
    for source in sorted(sources):
        is_renamed = renamed is not None and source == renamed[0]
        raw = renamed[1] if renamed is not None and is_renamed else store.read(source)
        parsed = parse_note(raw)
        if parsed.doc is None or parsed.problem:
            warnings.append(f"links in {source} not updated: {parsed.problem}")
            continue
        target_source = new_path if is_renamed else source
        body = parsed.doc.body
        edits: list[tuple[int, int, str]] = []
        for link in note_links(parsed):
            before = old_vault.resolve(link, source)
            if before.status != "ok" or before.path is None:
                continue
            leads_to = new_path if before.path == old_path else before.path
            new_text = _retarget(
                link, body, before, old_vault, new_vault, target_source, leads_to, store.prefix
            )
            if new_text is None:
                warnings.append(
                    f"{source}:{link.line}: the link to {leads_to} could not be rewritten; check it"
                )
                continue
            if new_text != body[link.start : link.end]:
                edits.append((link.start, link.end, new_text))
        if not edits:
            continue
        count += len(edits)
        doc = replace_in(parsed.doc, body=replace_spans(body, edits))
        if keeps_modified(store, parsed):
            doc = set_fields(doc, {"modified": stamp})
        writes[target_source] = doc.render().encode("utf-8")
    return LinkUpdates(writes, count, len(writes), tuple(warnings))


def keeps_modified(store: Store, parsed: ParsedNote) -> bool:
    """Whether rewriting a linking note's links sets its `modified`: a note with front matter in Notable's
    layout; in a folder used as it is, only a note that has the key (kb adds no date to a user's file)."""
    if parsed.doc is None or not parsed.doc.has_front_matter:
        return False
    return not store.layout.in_place or parsed.modified is not None


def posixpath_dir(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _retarget(
    link: Link,
    body: str,
    before: Resolved,
    old_vault: Vault,
    new_vault: Vault,
    source: str,
    leads_to: str,
    prefix: str,
) -> str | None:
    """The text of the link's target that leads to `leads_to` from `source` in the new vault: in its own
    form when that works, else as a path from the root, else relative; None when nothing does."""
    from dataclasses import replace as replace_in
    from urllib.parse import unquote

    from kb.links import MARKDOWN, NOTABLE, WIKI, new_target_text

    raw = body[link.start : link.end]
    now = new_vault.resolve(link, source)
    by_name = link.kind == WIKI and "/" not in link.target  # `[[Name]]`: a name, from wherever it is
    if (
        now.path == leads_to
        and before.path == leads_to
        and (now.how == before.how or before.how == "name" or by_name)
    ):
        return raw  # still leads there as written, the same way (a relative path still relative)
    same_name = (before.path or "").rsplit("/", 1)[-1] == leads_to.rsplit("/", 1)[-1]
    if now.path == leads_to and before.how == "name" == now.how and same_name:
        return raw  # moved to another folder, its name kept: still leads there by name
    angled = body[link.start - 1 : link.start] == "<" and link.kind == MARKDOWN
    title = new_vault.notes.get(leads_to, "")
    old_target = before.path or leads_to
    forms = [before.how]
    if link.kind == WIKI and "/" not in link.target.strip("/"):
        forms = ["name"]
    forms += [f for f in ("name", "root", "relative") if f not in forms and link.kind != NOTABLE]
    for how in forms:
        text = new_target_text(link, raw, how, old_target, source, leads_to, title, prefix, angled)
        if text is None:
            continue
        decoded = unquote(text) if link.kind in (MARKDOWN, NOTABLE) else text
        candidate = replace_in(link, target=decoded)
        if new_vault.resolve(candidate, source).path == leads_to:
            return text
    return None


def repair_renamed_links(root: Path) -> tuple[list[str], str | None]:
    """Dead links that named a note since renamed (by kb or in git, followed to its current path) are
    rewritten to lead to it, each in its form, in one revision. Returns what was repaired and the commit."""
    from dataclasses import replace as replace_in

    from kb.links import note_links, replace_spans
    from kb.notes import parse_note, set_fields, title_from_path
    from kb.service.transaction import transaction

    with transaction(root, scan=True) as tx:
        store = tx.store
        renames = tx.history.renames()
        later = {a: b for _, a, b in renames}
        if not later:
            return [], None
        infos, _ = all_notes(store)
        vault = vault_of(store, infos, with_files=True)
        gone = [(sha, a) for sha, a, _ in renames if a not in vault.notes]
        blobs = tx.history.read_blobs([f"{sha}^:{a}" for sha, a in gone])
        old_titles = {}
        for (_, path), blob in zip(gone, blobs, strict=True):
            old_titles[path] = parse_note(blob).title_for(path) if blob is not None else title_from_path(path)
        old = Vault(old_titles, (), store.prefix)

        def now(path: str) -> str:
            seen = {path}
            while path in later and later[path] not in seen:
                path = later[path]
                seen.add(path)
            return path

        with catalog_in_tx(root, store) as catalog:
            sources = sorted(
                {s for s, link in catalog.all_links() if vault.resolve(link, s).status == "dead"}
            )
        writes: dict[str, bytes | None] = {}
        repaired: list[str] = []
        for source in sources:
            parsed = parse_note(store.read(source))
            if parsed.doc is None or parsed.problem:
                continue
            body = parsed.doc.body
            edits: list[tuple[int, int, str]] = []
            for link in note_links(parsed):
                if vault.resolve(link, source).status != "dead":
                    continue
                before = old.resolve(link, source)
                if before.status == "ambiguous" and len({now(p) for p in before.candidates}) == 1:
                    before = Resolved("ok", before.candidates[0], before.how)  # one note, renamed twice
                if before.status != "ok" or before.path is None or now(before.path) not in vault.notes:
                    continue
                target = now(before.path)
                text = _retarget(link, body, before, old, vault, source, target, store.prefix)
                if text is not None and text != body[link.start : link.end]:
                    edits.append((link.start, link.end, text))
                    repaired.append(f"{source}:{link.line}: {link.target} -> {target}")
            if edits:
                doc = replace_in(parsed.doc, body=replace_spans(body, edits))
                if keeps_modified(store, parsed):
                    doc = set_fields(doc, {"modified": tx.stamp})
                writes[source] = doc.render().encode("utf-8")
        if not writes:
            return [], None
        count = len(repaired)
        message = (
            f"Fix links: {count} link{'s' if count != 1 else ''} to renamed notes "
            f"in {len(writes)} note{'s' if len(writes) != 1 else ''}"
        )
        commit, _ = tx.change_indexed(writes, message, tx.now, set(writes))
        return repaired, commit


def link_filter(
    root: Path,
    *,
    orphans: bool = False,
    links_to: str | None = None,
    linked_by: str | None = None,
    dead_links: bool = False,
    busy_ok: bool = False,
) -> frozenset[str]:
    """The notes that meet every condition given: no other note links to them (orphans), they link to
    the note `links_to`, the note `linked_by` links to them, they hold a dead link. From the catalog
    (`busy_ok`: see fresh_catalog)."""
    from kb.index.catalog import CatalogError

    _require(root)
    store = Store(root)
    with fresh_catalog(root, store, busy_ok) as catalog:
        infos, _ = all_notes(store)
        vault = vault_of(store, infos, with_files=dead_links)
        wanted = set(vault.notes)
        try:
            if links_to is not None:
                target = resolve_note(store, links_to)
                found = incoming_links(catalog, vault, target, vault.notes.get(target, ""))
                wanted &= {source for source, _, _ in found}
            if linked_by is not None:
                source = resolve_note(store, linked_by)
                leads = {vault.resolve(link, source).path for link in catalog.links_from(source)}
                wanted &= {p for p in leads if p is not None}
            if orphans or dead_links:
                linked: set[str] = set()
                dead: set[str] = set()
                for source, link in catalog.all_links():
                    found_one = vault.resolve(link, source)
                    if found_one.status == "ok" and found_one.path != source:
                        linked.add(str(found_one.path))
                    elif found_one.status == "dead":
                        dead.add(source)
                if orphans:
                    wanted -= linked
                if dead_links:
                    wanted &= dead
        except CatalogError as exc:
            raise KbError(f"cannot read the search catalog: {exc}; run 'kb reindex'") from None
    return frozenset(wanted)


@dataclass(frozen=True)
class KeptLinks:
    """A note's text with the links rewritten that a copy to another place would break."""

    data: bytes | None  # None when nothing needed rewriting
    links: int


def keep_links_of_copy(
    raw: bytes,
    old_source: str,
    new_source: str,
    old_vault: Vault,
    new_vault: Vault,
    moved: dict[str, str],
    prefix: str,
) -> KeptLinks:
    """The text of a note that was at `old_source` among `old_vault` (another folder: an import's source)
    and is now at `new_source` among `new_vault`, with every link that led to a note or file there (now at
    `moved[path]`) and would not lead to it here rewritten in its form. Nothing else changes (not even
    `modified`). A link that was dead or ambiguous there stays as it is."""
    from dataclasses import replace as replace_in

    from kb.links import note_links, replace_spans
    from kb.notes import parse_note

    parsed = parse_note(raw)
    if parsed.doc is None or parsed.problem:
        return KeptLinks(None, 0)
    body = parsed.doc.body
    edits: list[tuple[int, int, str]] = []
    for link in note_links(parsed):
        before = old_vault.resolve(link, old_source)
        if before.status != "ok" or before.path is None or before.path not in moved:
            continue
        leads_to = moved[before.path]
        if new_vault.resolve(link, new_source).path == leads_to:
            continue
        text = _retarget(link, body, before, old_vault, new_vault, new_source, leads_to, prefix)
        if text is not None and text != body[link.start : link.end]:
            edits.append((link.start, link.end, text))
    if not edits:
        return KeptLinks(None, 0)
    doc = replace_in(parsed.doc, body=replace_spans(body, edits))
    return KeptLinks(doc.render().encode("utf-8"), len(edits))
