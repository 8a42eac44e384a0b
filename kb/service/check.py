"""kb check: what is wrong in a knowledge base, one finding per line with its path and line. Dead and
ambiguous links, missing embeds and attachments, attachments nothing links to, front matter that cannot be
read, duplicate titles, files kb cannot see (symbolic links, binary files), an index out of step.

`--fix` makes the safe repairs only: the index rebuilt, and a dead link whose target was renamed in the
history rewritten to the note's current path (in its form, in one revision)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kb.errors import KbError
from kb.links import ATTACHMENT_EXTENSIONS, Link, Vault, is_note_target
from kb.notes import title_key
from kb.service.links import fresh_catalog, other_files, repair_renamed_links
from kb.service.lookup import NoteInfo, all_notes
from kb.store import Store

ATTACHMENT_SUFFIXES = frozenset(f".{ext}" for ext in ATTACHMENT_EXTENSIONS)
ATTACHMENT_FOLDERS = frozenset({"attachments", "assets", "_resources", "images", "img"})


@dataclass(frozen=True)
class Finding:
    kind: str  # dead-link, ambiguous-link, missing-attachment, unlinked-attachment, unreadable,
    # duplicate-title, unseen-file, index
    path: str
    line: int | None
    message: str


@dataclass(frozen=True)
class CheckResult:
    findings: tuple[Finding, ...]
    notes: int
    links: int
    fixed: tuple[str, ...] = ()  # what --fix repaired
    commit: str | None = None


def _is_attachment(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    folders = {part.casefold() for part in path.split("/")[:-1]}
    suffix = ("." + name.rsplit(".", 1)[-1].casefold()) if "." in name else ""
    return suffix in ATTACHMENT_SUFFIXES or bool(folders & ATTACHMENT_FOLDERS)


def _written(link: Link) -> str:
    if link.kind == "wiki":
        return ("!" if link.embed else "") + f"[[{link.target}]]"
    return ("!" if link.embed else "") + f"({link.target})"


def _index_findings(root: Path) -> list[Finding]:
    """The index is there, readable, and holds as many notes as its catalog."""
    from kb.index import NoteIndex
    from kb.index.catalog import CATALOG, CatalogError

    index = NoteIndex(root)
    if not (index.folder / CATALOG).exists():
        return []  # not built yet: built when first needed (as here, for the links), nothing is wrong
    catalog = index.catalog()
    if catalog is None:
        return [Finding("index", "index/", None, "the search index is damaged or of another version")]
    with catalog:
        try:
            count = catalog.count()
        except CatalogError as exc:
            return [Finding("index", "index/", None, f"the search catalog cannot be read: {exc}")]
    from kb.index import damage_errors

    try:
        from whoosh import index as windex

        docs = windex.open_dir(str(index.folder)).doc_count()
    except damage_errors() as exc:
        return [Finding("index", "index/", None, f"the search index cannot be read ({type(exc).__name__})")]
    if docs != count:
        return [Finding("index", "index/", None, f"the search index holds {docs} notes, its catalog {count}")]
    return []


def check(root: Path, fix: bool = False) -> CheckResult:
    from kb.index.catalog import CatalogError

    store = Store(root)
    if not root.is_dir() or not store.notes.is_dir():
        raise KbError(f"there is no knowledge base at {root}")
    fixed: list[str] = []
    commit: str | None = None
    findings = _index_findings(root)
    if findings and fix:
        from kb.index import NoteIndex
        from kb.service.transaction import transaction

        with transaction(root) as tx:
            NoteIndex(tx.root).rebuild(broken=True)
        fixed.append("index: rebuilt")
        findings = _index_findings(root)
    if fix:
        repaired, commit = repair_renamed_links(root)
        fixed.extend(f"link {item}" for item in repaired)
    if findings:
        links = _read_links(Store(root))  # the index is left as it is found (--fix rebuilds it)
    else:
        with fresh_catalog(root) as catalog:
            try:
                links = catalog.all_links()
            except CatalogError as exc:
                raise KbError(f"cannot read the search catalog: {exc}; run 'kb reindex'") from None
    store = Store(root)
    infos, warnings = all_notes(store)
    files = other_files(store)
    vault = Vault({i.path: i.title for i in infos}, files, store.prefix)
    linked: set[str] = set()
    for source, link in links:
        found = vault.resolve(link, source)
        if found.status == "ok" and found.path is not None:
            linked.add(found.path)
            continue
        note = is_note_target(link.target)
        if found.status == "ambiguous":
            shown = ", ".join(found.candidates[:5]) + (" ..." if len(found.candidates) > 5 else "")
            findings.append(
                Finding("ambiguous-link", source, link.line, f"ambiguous link {_written(link)}: {shown}")
            )
        elif note:
            findings.append(Finding("dead-link", source, link.line, f"dead link {_written(link)}"))
        else:
            what = "embed" if link.embed else "attachment"
            findings.append(
                Finding("missing-attachment", source, link.line, f"missing {what} {_written(link)}")
            )
    for path in files:
        if _is_attachment(path) and path not in linked:
            findings.append(Finding("unlinked-attachment", path, None, "an attachment no note links to"))
    findings.extend(_note_findings(store, infos, warnings))
    findings.sort(key=lambda f: (f.path, f.line or 0))  # stable: a line's links stay in order
    return CheckResult(tuple(findings), len(infos), len(links), tuple(fixed), commit)


def _read_links(store: Store) -> list[tuple[str, Link]]:
    """Every note's links read from the files themselves (when the index cannot be trusted)."""
    from kb.links import note_links
    from kb.notes import parse_note

    out: list[tuple[str, Link]] = []
    for path in store.list_notes().paths:
        try:
            parsed = parse_note(store.read(path), with_extra=False)
        except KbError:
            continue
        out.extend((path, link) for link in note_links(parsed))
    return out


def _note_findings(store: Store, infos: list[NoteInfo], warnings: Iterable[str]) -> list[Finding]:
    out: list[Finding] = []
    for info in infos:
        if info.problem:
            out.append(Finding("unreadable", info.path, 1, f"front matter cannot be read: {info.problem}"))
    for warning in warnings:
        path, _, what = warning.partition(": ")
        unseen = (
            "symbolic link" in what,
            what.startswith("skipped"),
            "cannot be read" in what,
            "UTF-8" in what,
        )
        if any(unseen):
            out.append(Finding("unseen-file", path, None, f"kb cannot see this file: {what}"))
    groups: dict[tuple[str, str], list[NoteInfo]] = {}
    for info in infos:
        where = posixpath.dirname(info.path) if store.layout.in_place else ""
        groups.setdefault((where, title_key(info.title)), []).append(info)
    for same in groups.values():
        if len(same) > 1:
            for info in same:
                others = ", ".join(o.path for o in same if o is not info)
                out.append(
                    Finding("duplicate-title", info.path, None, f"title '{info.title}' also in {others}")
                )
    return out
