"""`kb import`: folders of Markdown (kb.service.import_tree: structure kept, nothing dropped), and Notable
data directories and loose Markdown or text files, imported by title as Notable names files.

A Notable file is a revision of a note when its title and `created` match that note (already in the
knowledge base, or another file of the same import). Revisions are committed in order of `modified`, each
with that date; one older than the note's current version becomes an earlier revision without changing the
file. A revision whose `modified` the note already has changes nothing, so importing again is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kb.errors import KbError, UsageError
from kb.notes import (
    format_timestamp,
    parse_note,
    parse_timestamp,
    set_fields,
    title_from_stem,
    title_key,
    validate_title,
)
from kb.service.import_tree import ImportItem, TreeResult, import_tree, is_notable_dir
from kb.service.lookup import all_notes, free_path
from kb.service.transaction import DATED_BY_MODIFIED, Transaction, reindex_paths, transaction

__all__ = ["ImportItem", "ImportResult", "import_notes"]
from kb.store import ATTACHMENTS_DIR, NOTES_DIR, Store, file_times, write_atomic

SUFFIXES = (".md", ".markdown", ".txt")
SKIP_DIRS = {".git", ".obsidian", ".trash", "node_modules", ".notable", "index"}


@dataclass(frozen=True)
class ImportResult:
    items: tuple[ImportItem, ...]
    attachments: int
    dry_run: bool
    folders: int = 0  # folders the imported notes are in, below the notes root
    revisions: int = 0  # commits brought from the sources' git histories (--history)
    left_out: tuple[str, ...] = ()  # files that are neither notes nor linked from one: not copied
    notes_root: str = ""  # where the notes went ("notes/" or the knowledge base itself)
    warnings: tuple[str, ...] = ()  # what could not be read in imported notes (non-text titles, bad dates)

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)


@dataclass
class _Candidate:
    source: Path
    title: str
    created: str
    modified: str
    data: bytes  # the text to store: the file, with the front matter it lacked added
    warnings: tuple[str, ...] = ()  # what of its front matter could not be read


def _collect(sources: Sequence[str]) -> tuple[list[Path], list[Path], list[ImportItem], list[Path]]:
    """Loose files and Notable data directories (imported by title, as Notable names files), the
    attachments that come with them, what was skipped, and folders imported as they are (trees)."""
    files: list[Path] = []
    attachments: list[Path] = []
    skipped: list[ImportItem] = []
    trees: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_symlink():
            skipped.append(ImportItem(source, "skipped", reason="a symbolic link; not followed"))
        elif path.is_file():
            files.append(path)
        elif path.is_dir() and not is_notable_dir(path):
            trees.append(path)
        elif path.is_dir():
            base = path / NOTES_DIR
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
                if Path(dirpath).name == ATTACHMENTS_DIR:
                    continue
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    if name.startswith(".") or not name.lower().endswith(SUFFIXES):
                        continue
                    if full.is_symlink():
                        skipped.append(
                            ImportItem(str(full), "skipped", reason="a symbolic link; not followed")
                        )
                        continue
                    files.append(full)
            folder = path / ATTACHMENTS_DIR
            if folder.is_dir():
                attachments.extend(p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink())
        else:
            raise UsageError(f"{source} does not exist")
    return files, attachments, skipped, trees


def _candidate(path: Path) -> _Candidate | ImportItem:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return ImportItem(str(path), "skipped", reason=f"cannot read it: {exc.strerror}")
    parsed = parse_note(raw)
    if parsed.problem or parsed.doc is None:
        return ImportItem(str(path), "skipped", reason=parsed.problem or "cannot be read")
    title = parsed.title or parsed.heading or title_from_stem(path.stem)
    try:
        title = validate_title(title)
    except UsageError as exc:
        return ImportItem(str(path), "skipped", reason=str(exc))
    born, changed = file_times(path)
    created = parsed.created if parsed.created and parse_timestamp(parsed.created) else None
    modified = parsed.modified if parsed.modified and parse_timestamp(parsed.modified) else None
    updates: dict[str, str | list[str] | None] = {}
    if parsed.title != title:
        updates["title"] = title
    if created is None:
        created = born
        updates["created"] = born
    if modified is None:
        modified = changed
        updates["modified"] = changed
    data = raw
    if updates:
        try:
            data = set_fields(parsed.doc, updates).render().encode("utf-8")
        except KbError as exc:
            return ImportItem(str(path), "skipped", reason=str(exc))
    found = tuple(
        f"{path}: {w}" + (", the file's time is used" if "date" in w else "") for w in parsed.warnings
    )
    return _Candidate(path, title, created, modified, data, found)


def _key(title: str, created: str) -> tuple[str, str]:
    moment = parse_timestamp(created)
    return title_key(title), format_timestamp(moment) if moment else created


def import_notes(
    root: Path,
    sources: Sequence[str],
    *,
    dry_run: bool = False,
    history: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    if not sources:
        raise UsageError("name at least one file or folder to import")
    files, attachments, items, trees = _collect(sources)
    notices: list[str] = []
    if history and not trees:
        raise UsageError("--history imports a folder that is (in) a git repository; name one")
    candidates: list[_Candidate] = []
    for done, path in enumerate(files, 1):
        found = _candidate(path)
        if isinstance(found, ImportItem):
            items.append(found)
        else:
            candidates.append(found)
            notices.extend(found.warnings)
        if progress and (done % 50 == 0 or done == len(files)):
            progress(done, len(files))
    groups: dict[tuple[str, str], list[_Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(_key(candidate.title, candidate.created), []).append(candidate)
    tree = TreeResult()
    if dry_run and not (root / ".git").exists():
        for group in groups.values():
            for n, c in enumerate(sorted(group, key=lambda c: c.modified)):
                items.append(
                    ImportItem(str(c.source), "revised" if n else "imported", c.title, None, c.modified)
                )
        if trees:
            store = Store(root)
            for source in trees:
                _dry_tree(store, source, tree)
        return _result(items, tree, len(attachments) + tree.attachments, True, "", notices)
    with transaction(root, scan=True) as tx:
        known = _known_notes(tx)
        touched: set[str] = set()
        taken = _taken_names(tx)
        # New notes with one version each (the bulk of any import) are written and committed together:
        # one commit for them all, not one per note. Notes with several versions get a commit each.
        batch: dict[str, bytes | None] = {}
        for key, group in groups.items():
            group.sort(
                key=lambda c: (parse_timestamp(c.modified) or datetime.min.replace(tzinfo=UTC), str(c.source))
            )
            if len(group) == 1 and key not in known and not dry_run and not known.titled(key[0]):
                c = group[0]
                target = free_path(tx.store, c.title, taken=taken)
                batch[target] = c.data
                known.add(key, target, c.title)
                touched.add(target)
                items.append(ImportItem(str(c.source), "imported", c.title, target, c.modified))
                continue
            items.extend(_import_group(tx, key, group, known, dry_run, touched, taken))
        new_notes = len(batch)
        kept, fixed = (0, 0) if dry_run else _keep_links(tx, candidates, items, batch, attachments)
        if batch:
            plural = "note" if new_notes == 1 else "notes"
            subject = f"Import: {new_notes} {plural}" if new_notes else "Import: links kept"
            if kept:
                subject += (
                    f"\n\n{kept} link{'s' if kept != 1 else ''} in {fixed} note{'s' if fixed != 1 else ''} "
                )
                subject += "rewritten to the names the notes have here"
            message = f"{subject}\n\n{DATED_BY_MODIFIED}"
            tx.change(batch, message, tx.now, bulk=True)
        copied = 0 if dry_run else _copy_attachments(tx, attachments, items)
        if trees:
            known_paths = {key: path for key, (path, _) in known.items()}
            for source in trees:
                import_tree(
                    tx, source, tree, history=history, dry_run=dry_run, known=known_paths, progress=progress
                )
            touched.update(i.path for i in tree.items if i.path and i.status in ("imported", "revised"))
        if touched and not dry_run:
            items_warnings = reindex_paths(tx, touched)
            items.extend(ImportItem("(index)", "skipped", reason=w) for w in items_warnings)
        where = tx.store.prefix
    total = (copied if not dry_run else len(attachments)) + tree.attachments
    return _result(items, tree, total, dry_run, where, notices)


def _keep_links(
    tx: Transaction,
    candidates: list[_Candidate],
    items: list[ImportItem],
    batch: dict[str, bytes | None],
    attachments: list[Path],
) -> tuple[int, int]:
    """Links between imported notes that led somewhere in their source folder and would not here (a note
    stored under another file name than it had there, an attachment copied from a sub-folder), rewritten in
    the notes this import wrote, each in its form; added to `batch` (the import's commit). Returns (links,
    notes) rewritten."""
    from kb.links import Vault
    from kb.service.links import keep_links_of_copy, other_files

    placed = {i.source: i.path for i in items if i.path and i.status in ("imported", "revised", "unchanged")}
    written = {i.path: i.source for i in items if i.path and i.status in ("imported", "revised")}
    if not written:
        return 0, 0
    bases: dict[Path, tuple[str, list[_Candidate]]] = {}
    for c in candidates:
        notable = c.source.parent.name == NOTES_DIR
        base = c.source.parent.parent if notable else c.source.parent
        bases.setdefault(base, (f"{NOTES_DIR}/" if notable else "", []))[1].append(c)
    infos, _ = all_notes(tx.store)
    notes = {i.path: i.title for i in infos}
    by_source = {str(c.source): c for c in candidates}
    notes.update({path: by_source[source].title for path, source in written.items() if source in by_source})
    copied = {f"{ATTACHMENTS_DIR}/{p.name}" for p in attachments}
    here = Vault(notes, {*other_files(tx.store), *copied}, tx.store.prefix)
    links = fixed = 0
    for base, (prefix, group) in bases.items():
        files = {
            p.relative_to(base).as_posix(): f"{ATTACHMENTS_DIR}/{p.name}"
            for p in attachments
            if p.is_relative_to(base / ATTACHMENTS_DIR)
        }
        rel = {str(c.source): c.source.relative_to(base).as_posix() for c in group}
        there = Vault({rel[str(c.source)]: c.title for c in group}, files, prefix)
        moved = {rel[source]: path for source, path in placed.items() if source in rel}
        moved.update(files)
        for path, source in written.items():
            imported = by_source.get(source)
            if imported is None or source not in rel:
                continue
            now = batch.get(path)
            if now is None:
                now = tx.store.read(path) if tx.store.exists(path) else None
            if now != imported.data:
                continue  # not what this import wrote last (an earlier revision of a newer note)
            kept = keep_links_of_copy(imported.data, rel[source], path, there, here, moved, tx.store.prefix)
            if kept.data is not None:
                batch[path] = kept.data
                links += kept.links
                fixed += 1
    return links, fixed


def _result(
    items: list[ImportItem],
    tree: TreeResult,
    attachments: int,
    dry_run: bool,
    where: str,
    notices: list[str] | None = None,
) -> ImportResult:
    return ImportResult(
        tuple(items + tree.items),
        attachments,
        dry_run,
        folders=len(tree.folders - {""}),
        revisions=tree.revisions,
        left_out=tuple(tree.left_out),
        notes_root=where,
        warnings=tuple((notices or []) + tree.warnings),
    )


def _dry_tree(store: Store, source: Path, tree: TreeResult) -> None:
    """What importing a folder into a knowledge base that does not exist yet would do."""
    from kb.service.import_tree import scan_source

    files = scan_source(source)
    tree.left_out.extend(str(source / p) for p in files.others)
    tree.attachments += len(files.attachments)
    for link in files.links:
        tree.items.append(ImportItem(str(source / link), "skipped", reason="a symbolic link; not followed"))
    for rel in files.notes:
        try:
            with open(source / rel, "rb") as handle:
                head = handle.read(8192)
        except OSError as exc:
            tree.items.append(
                ImportItem(str(source / rel), "skipped", reason=f"cannot read it: {exc.strerror}")
            )
            continue
        if b"\0" in head:
            reason = "binary file (contains NUL bytes): not a text note"
            tree.items.append(ImportItem(str(source / rel), "skipped", reason=reason))
            continue
        tree.folders.add(str(Path(rel).parent) if "/" in rel else "")
        tree.items.append(ImportItem(str(source / rel), "imported", None, store.prefix + rel))


class _Known(dict[tuple[str, str], tuple[str, str]]):
    """(title key, created) -> (path, title) of every note, with the paths of each title key."""

    def __init__(self) -> None:
        super().__init__()
        self.by_title: dict[str, list[str]] = {}

    def add(self, key: tuple[str, str], path: str, title: str) -> None:
        self[key] = (path, title)
        self.by_title.setdefault(key[0], []).append(path)

    def titled(self, title_key: str) -> list[str]:
        return self.by_title.get(title_key, [])


def _known_notes(tx: Transaction) -> _Known:
    """Every note already in the knowledge base, by (title, created)."""
    infos, _ = all_notes(tx.store)
    known = _Known()
    for i in infos:
        if i.created and not i.problem:
            known.add(_key(i.title, i.created), i.path, i.title)
    return known


def _taken_names(tx: Transaction) -> set[str]:
    try:
        return {title_key(name) for name in os.listdir(tx.store.notes)}
    except OSError:
        return set()


def _modifieds(tx: Transaction, path: str) -> set[str]:
    """The `modified` of every revision the note has had."""
    from kb.service.revisions import revisions_of

    found = set()
    for revision in revisions_of(tx.root, path):
        moment = parse_timestamp(revision.date)
        found.add(format_timestamp(moment) if moment else revision.date)
    return found


def _import_group(
    tx: Transaction,
    key: tuple[str, str],
    group: list[_Candidate],
    known: _Known,
    dry_run: bool,
    touched: set[str],
    taken: set[str],
) -> list[ImportItem]:
    items: list[ImportItem] = []
    path = known[key][0] if key in known else None
    have = _modifieds(tx, path) if path else set()
    if path is None:
        clash = known.titled(key[0])
        if clash:
            return [
                ImportItem(
                    str(c.source),
                    "skipped",
                    c.title,
                    None,
                    c.modified,
                    reason=f"a different note with this title exists ({clash[0]}, another created date)",
                )
                for c in group
            ]
    for c in group:
        stamp = format_timestamp(parse_timestamp(c.modified) or tx.now)
        if stamp in have:
            items.append(ImportItem(str(c.source), "unchanged", c.title, path, c.modified))
            continue
        status = "imported" if path is None else "revised"
        if dry_run:
            items.append(ImportItem(str(c.source), status, c.title, path, c.modified))
            path = path or f"{NOTES_DIR}/(new)"
            have.add(stamp)
            continue
        moment = parse_timestamp(c.modified) or tx.now
        if path is None:
            path = free_path(tx.store, c.title, taken=taken)
            tx.change({path: c.data}, f"Import: {c.title}", moment)
            known.add(key, path, c.title)
        else:
            current = parse_note(tx.store.read(path)) if tx.store.exists(path) else None
            current_moment = parse_timestamp(current.modified or "") if current else None
            if current_moment is not None and moment < current_moment:
                tx.history.commit_beside(path, c.data, f"Import: {c.title} (earlier revision)", moment)
            else:
                tx.change({path: c.data}, f"Import: {c.title}", moment)
        touched.add(path)
        have.add(stamp)
        items.append(ImportItem(str(c.source), status, c.title, path, c.modified))
    return items


def _copy_attachments(tx: Transaction, attachments: list[Path], items: list[ImportItem]) -> int:
    copied: list[str] = []
    target_dir = tx.root / ATTACHMENTS_DIR
    for source in attachments:
        target = target_dir / source.name
        data = source.read_bytes()
        if target.exists():
            if target.read_bytes() != data:
                items.append(
                    ImportItem(
                        str(source),
                        "skipped",
                        reason=f"{ATTACHMENTS_DIR}/{source.name} exists with other content",
                    )
                )
            continue
        target_dir.mkdir(exist_ok=True)
        try:
            write_atomic(target, data, new=True)
        except FileExistsError:  # made by another program since the look above: left as it is
            reason = f"{ATTACHMENTS_DIR}/{source.name} appeared while kb was copying it"
            items.append(ImportItem(str(source), "skipped", reason=reason))
            continue
        copied.append(f"{ATTACHMENTS_DIR}/{source.name}")
    if copied:
        plural = "attachment" if len(copied) == 1 else "attachments"
        tx.history.commit(copied, f"Import: {len(copied)} {plural}", tx.now, tx.now)
    return len(copied)
