"""Notes as the service sees them: a note's record (NoteInfo), every note listed from the catalog (one stat
each, only changed files parsed), NOTE resolved to one note, title clashes, free file names."""

from __future__ import annotations

import contextlib
import difflib
import heapq
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from kb.errors import (
    AmbiguousNote,
    KbError,
    NoteNotFound,
    UsageError,
)
from kb.notes import (
    HEAD_BYTES,
    ParsedNote,
    file_stem,
    parse_note,
    title_from_path,
    title_key,
)
from kb.store import (
    NOTE_SUFFIXES,
    Store,
)

T = TypeVar("T")
# Changed notes from which a command that reads the catalog first asks it which have only new times.
RETOUCH_AT = 64

if TYPE_CHECKING:
    from kb.index.catalog import Catalog, Entry, Signature


@dataclass(frozen=True, slots=True)
class NoteInfo:
    title: str
    path: str
    tags: tuple[str, ...]
    created: str | None
    modified: str | None
    problem: str | None = None
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------- reading notes


def note_info(path: str, parsed: ParsedNote) -> NoteInfo:
    return NoteInfo(
        title=parsed.title_for(path),
        path=path,
        tags=parsed.all_tags,
        created=parsed.dates[0],
        modified=parsed.dates[1],
        problem=parsed.problem,
        warnings=parsed.warnings,
    )


def load_note(store: Store, path: str, with_extra: bool = True) -> tuple[bytes, ParsedNote]:
    raw = store.read(path)
    return raw, parse_note(raw, with_extra)


def all_notes(store: Store) -> tuple[list[NoteInfo], list[str]]:
    """Every note's catalog record. Notes unchanged since the search index last saw them come from the
    index's catalog (one stat each); only new or changed files are read and parsed."""
    from kb.store import settled_value

    kept = settled_value(store.root, "all_notes") if store.settled() else None
    if isinstance(kept, tuple):
        return list(kept[0]), list(kept[1])
    sigs, scan_warnings = store.scan()
    known = catalog_rows(store, lambda catalog: catalog.entries()) or {}
    changed = [path for path, sig in sigs.items() if (e := known.get(path)) is not None and e.sig != sig]
    if len(changed) >= RETOUCH_AT and _retouched(store, changed):
        known.update(catalog_rows(store, lambda catalog: catalog.get(changed)) or {})
    said: dict[str, tuple[str, ...]] = {}
    infos = _infos_of(store, sorted(sigs), sigs, known, said)
    return _kept_all(store, infos, scan_warnings, said)


def _retouched(store: Store, changed: Collection[str]) -> bool:
    """Whether any of these notes, changed since the catalog saw them, has only new times (touched, copied,
    restored from a backup): their rows then say so (NoteIndex.retouch), for this command and the next."""
    from kb.index import NoteIndex

    return NoteIndex(store.root, store).retouch(changed) > 0


def all_notes_changed(
    store: Store, before: tuple[tuple[NoteInfo, ...], tuple[str, ...]], said: dict[str, tuple[str, ...]],
    changed: Collection[str],
) -> tuple[list[NoteInfo], list[str]]:  # fmt: skip
    """all_notes(), worked out from what it gave for the notes as they were (`before`, and the warnings it
    said of each note) when only the files `changed` may differ since (the warm server knows which from
    its watch): the records of those read again, the others kept. The same answer, in the same order."""

    sigs, scan_warnings = store.scan()
    gone = set(changed)
    infos = [info for info in before[0] if info.path not in gone]
    said = {path: lines for path, lines in said.items() if path not in gone}
    present = sorted(p for p in gone if p in sigs)
    known = (catalog_rows(store, lambda catalog: catalog.get(present)) or {}) if present else {}
    fresh = _infos_of(store, present, sigs, known, said)
    if fresh:
        infos = list(heapq.merge(infos, fresh, key=lambda info: info.path))
    return _kept_all(store, infos, scan_warnings, said)


def _infos_of(
    store: Store,
    paths: list[str],
    sigs: dict[str, Signature],
    known: dict[str, Entry],
    said: dict[str, tuple[str, ...]],
) -> list[NoteInfo]:
    """The records of these notes, in this order (see _info_of)."""
    from kb.index import DatesLookup

    dates = DatesLookup(store.root)
    found = (_info_of(store, path, sigs[path], known.get(path), said, dates) for path in paths)
    return [info for info in found if info is not None]


def _kept_all(
    store: Store, infos: list[NoteInfo], scan_warnings: Sequence[str], said: dict[str, tuple[str, ...]]
) -> tuple[list[NoteInfo], list[str]]:
    """all_notes()'s answer, kept while the warm server vouches for the notes (with what it said of each)."""
    from kb.store import settle_value

    warnings = _all_warnings(scan_warnings, said)
    if store.settled():
        settle_value(store.root, "all_notes", (tuple(infos), tuple(warnings)))
        settle_value(store.root, "note_warnings", said)
    return infos, warnings


def _info_of(
    store: Store,
    path: str,
    sig: Signature,
    entry: Entry | None,
    said: dict[str, tuple[str, ...]],
    dates: Callable[[str], tuple[str | None, str | None]],
) -> NoteInfo | None:
    """A note's record: its catalog entry while that was made from the file as it is, else the file read;
    what there is to say of it goes into `said`."""
    lines: list[str] = []
    if entry is not None and entry.sig == sig:
        info: NoteInfo | None = _from_entry(path, entry)
    else:
        info = _parse_info(store, path, lines, dates)
    if info is not None:
        lines.extend(f"{path}: {w}" for w in ((info.problem,) if info.problem else ()) + info.warnings)
    if lines:
        said[path] = tuple(lines)
    return info


def _all_warnings(scan_warnings: Sequence[str], said: dict[str, tuple[str, ...]]) -> list[str]:
    """The scan's warnings, then what was said of each note, in the notes' order (by path)."""
    return [*scan_warnings, *(line for path in sorted(said) for line in said[path])]


def catalog_rows(store: Store, read: Callable[[Catalog], T]) -> T | None:
    """What `read` takes from the index's catalog; None when there is no usable catalog."""
    from kb.index import NoteIndex
    from kb.index.catalog import CatalogError

    catalog = NoteIndex(store.root).catalog()
    if catalog is None:
        return None
    with catalog:
        try:
            return read(catalog)
        except CatalogError:
            return None


def _from_entry(path: str, entry: Entry) -> NoteInfo:
    return NoteInfo(
        entry.title, path, entry.tags, entry.created, entry.modified, entry.problem, entry.warnings
    )


def _parse_info(
    store: Store,
    path: str,
    warnings: list[str],
    dates: Callable[[str], tuple[str | None, str | None]] | None = None,
) -> NoteInfo | None:
    """A note's record from its file; `dates` fills in the dates its front matter does not give."""
    try:
        parsed = parse_note(store.read_head(path, HEAD_BYTES), with_extra=False)
    except KbError as exc:
        warnings.append(str(exc))
        return None
    if parsed.problem and parsed.problem.startswith("binary"):
        warnings.append(f"{path}: skipped, {parsed.problem}")
        return None
    info = note_info(path, parsed)
    if dates is not None and (info.created is None or info.modified is None):
        found = dates(path)
        info = replace(info, created=info.created or found[0], modified=info.modified or found[1])
    return info


CLOSE_CANDIDATES = 100  # titles whose full likeness to a NOTE that matched nothing is worked out


def close_titles(ref: str, titles: Sequence[str], n: int = 5) -> list[str]:
    """The titles closest to `ref`, for a "did you mean": first those it equals but for case, accents and
    spaces (`cafe  notes` for `Café Notes`), then difflib's closest (likeness 0.5 at least) among the
    CLOSE_CANDIDATES of the highest quick upper bound of it. (difflib.get_close_matches works out the full
    likeness of most titles: 0.7 s at 10,000 titles of 50 characters.)"""
    key = _loose(ref)
    found = [t for t in titles if _loose(t) == key][:n]
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(ref)
    bounded: list[tuple[float, str]] = []
    for title in titles:
        matcher.set_seq1(title)
        if matcher.real_quick_ratio() >= 0.5 and (bound := matcher.quick_ratio()) >= 0.5:
            bounded.append((bound, title))
    scored: list[tuple[float, str]] = []
    for _, title in heapq.nlargest(CLOSE_CANDIDATES, bounded):
        matcher.set_seq1(title)
        if (likeness := matcher.ratio()) >= 0.5:
            scored.append((likeness, title))
    found += [t for _, t in heapq.nlargest(n, scored) if t not in found]
    return found[:n]


def _loose(text: str) -> str:
    """`text` in lower case, without accents, its spaces folded."""
    folded = " ".join(text.casefold().split())
    if folded.isascii():
        return folded
    return "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))


def resolve_note(store: Store, ref: str) -> str:
    """NOTE is a path (from the root, or inside the notes root), a file name, an exact title, or a unique
    case-insensitive prefix of a title. Two notes that share a title in different folders make it ambiguous:
    the error lists both paths."""
    if not ref.strip():
        raise UsageError("NOTE is empty")
    if "\0" in ref:
        raise UsageError("NOTE contains a NUL byte")
    if ref.endswith(NOTE_SUFFIXES) or "/" in ref:
        plain = ref.removeprefix("./")
        if Path(ref).is_absolute():
            with contextlib.suppress(ValueError):
                plain = Path(ref).absolute().relative_to(store.root.absolute()).as_posix()
        named = (plain,) if plain.endswith(NOTE_SUFFIXES) else (plain, f"{plain}.md")
        for candidate in (*named, *(f"{store.prefix}{n}" for n in named)):
            try:
                if store.exists(candidate) and store.is_safe_file(store.abs(candidate)):
                    note = store.rel(store.abs(candidate))
                    if store.is_note_path(note):
                        return note
            except UsageError:
                continue
        inside = not Path(plain).is_absolute()  # else a path out of the knowledge base
        if inside and not plain.endswith(NOTE_SUFFIXES) and (store.root / plain).is_file():
            raise UsageError(
                f"{plain} is not a note (kb's notes are Markdown files); only kb mv takes it, as a file"
            )
    direct = f"{store.prefix}{file_stem(ref)}.md"
    # The file named for this title, if it holds exactly this title, is the answer without a scan.
    if (
        not store.layout.in_place
        and store.exists(direct)
        and store.is_safe_file(store.abs(direct))
        and note_info(direct, load_note(store, direct, with_extra=False)[1]).title == ref
    ):
        return direct
    infos, _ = all_notes(store)
    found = match_title(ref, [(i.path, i.title) for i in infos])
    if len(found) == 1:
        return found[0][0]
    if found:
        names = ", ".join(f"'{title}' ({path})" for path, title in found[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        raise AmbiguousNote(
            f"'{ref}' matches {len(found)} notes: {names}{more}; name one by its path",
            tuple(path for path, _ in found),
        )
    paths: dict[str, list[str]] = {}
    for i in infos:
        paths.setdefault(i.title, []).append(i.path)
    close = close_titles(ref, list(paths))
    shown = [repr(c) if len(paths[c]) == 1 else f"{c!r} ({', '.join(paths[c][:3])})" for c in close]
    hint = f"; did you mean: {', '.join(shown)}?" if close else ""
    raise NoteNotFound(f"no note matches '{ref}'{hint}", ref)


def match_title(ref: str, notes: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (path, title) pairs NOTE names, by the first rule that matches any: the exact title, the title
    ignoring case (and Unicode form), the file name (a bare name: a path that is not there names no other
    note), a prefix of the title."""
    key = title_key(ref)
    name_key = title_key(title_from_path(ref))
    keyed = [(path, title, title_key(title)) for path, title in notes]  # each title's key made once
    rules: list[Callable[[str, str, str], bool]] = [
        lambda path, title, k: title == ref,
        lambda path, title, k: k == key,
    ]
    if "/" not in ref:  # a bare name
        rules.append(lambda path, title, k: title_key(title_from_path(path)) == name_key)
    rules.append(lambda path, title, k: k.startswith(key))
    for rule in rules:
        found = [(path, title) for path, title, k in keyed if rule(path, title, k)]
        if found:
            return found
    return []


def find_title(
    store: Store, title: str, except_path: str | None = None, folder: str | None = None
) -> NoteInfo | None:
    """A note with this title (ignoring case) that a new one would clash with, if any: anywhere in Notable's
    layout (one flat namespace), in the same `folder` in a folder used as it is (where notes in different
    folders may share a title). The catalog answers through its title index for notes unchanged since it
    saw them; only notes changed since are read."""
    if store.layout.in_place:
        where = f"{store.prefix}{folder}/" if folder else store.prefix
        return _find_title_anywhere(store, title, except_path, where)
    return _find_title_anywhere(store, title, except_path, None)


def _find_title_anywhere(
    store: Store, title: str, except_path: str | None, where: str | None, again: bool = True
) -> NoteInfo | None:
    def here(path: str) -> bool:
        return where is None or (path.startswith(where) and "/" not in path[len(where) :])

    key = title_key(title)
    vouched = store.vouched  # the catalog agreed with this very scan: no row needs comparing
    sigs, _ = store.scan()
    rows = catalog_rows(
        store, lambda catalog: (None if vouched else catalog.signatures(), catalog.with_key(key))
    )
    if rows is None:
        infos, _ = all_notes(store)
        return next(
            (i for i in infos if i.path != except_path and here(i.path) and title_key(i.title) == key), None
        )
    known, same = rows
    if known is not None and sigs != known:
        changed = [path for path, sig in sigs.items() if path in known and known[path] != sig]
        if again and len(changed) >= RETOUCH_AT and _retouched(store, changed):
            return _find_title_anywhere(store, title, except_path, where, again=False)
    for path, entry in sorted(same.items()):
        if path != except_path and sigs.get(path) == entry.sig and here(path):
            return _from_entry(path, entry)
    changed = [] if known is None or sigs == known else [p for p, sig in sigs.items() if known.get(p) != sig]
    for path in sorted(p for p in changed if p != except_path and here(p)):
        info = _parse_info(store, path, [])
        if info is not None and title_key(info.title) == key:
            return info
    return None


def free_path(
    store: Store,
    title: str,
    except_path: str | None = None,
    taken: set[str] | None = None,
    folder: str = "",
) -> str:
    """<notes root>/<folder>/<stem>.md, or `<stem> (2).md`... when a file of that name (ignoring case) is
    taken. `taken`: the title keys of the names in that folder, kept by the caller across many calls (the
    chosen name is added to it)."""
    stem = file_stem(title)
    where = f"{store.prefix}{folder}/" if folder else store.prefix
    names = store.name_keys(folder) if taken is None else taken
    # the note's own name is free for it, in its own folder
    own = (
        title_key(except_path[len(where) :])
        if except_path and except_path.rpartition("/")[0] == where.rstrip("/")
        else None
    )
    n = 1
    while True:
        name = f"{stem}.md" if n == 1 else f"{stem} ({n}).md"
        key = title_key(name)
        if key == own or key not in names:
            if taken is not None:
                taken.add(key)
            return f"{where}{name}"
        n += 1
