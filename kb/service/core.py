"""The use cases. Each returns a frozen dataclass; nothing here prints or prompts.

Order of every change: take the lock, commit what changed outside kb, write atomically, commit exactly
the touched paths with the note's `modified` as author date.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import unicodedata
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from kb.errors import (
    BrokenNote,
    KbError,
    NoteExists,
    NoteNotFound,
    UsageError,
)
from kb.notes import (
    ParsedNote,
    file_stem,
    head_of,
    new_note_text,
    no_such_tag,
    parse_note,
    parse_timestamp,
    set_fields,
    tag_with_parents,
    title_key,
    validate_tag,
    validate_text,
    validate_title,
    yaml_value,
)
from kb.service.lookup import NoteInfo, all_notes, find_title, free_path, load_note, note_info, resolve_note
from kb.service.transaction import Transaction, recover, reindex_paths, transaction
from kb.store import INDEX_DIR, NOTE_SUFFIXES, Store, settle_value, settled_value

if TYPE_CHECKING:
    from kb.service.links import LinkUpdates

LARGE_NOTE_BYTES = 10 * 1024 * 1024  # above this a note is worth a warning: every change rewrites it whole

# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ChangeResult:
    action: str  # "add", "edit", "rename", "delete", "unchanged"
    note: NoteInfo
    commit: str | None
    renamed_from: str | None = None
    external: tuple[str, ...] = ()  # outside edits committed first
    warnings: tuple[str, ...] = ()
    links_updated: int = 0  # links rewritten by a rename or move so that they still lead to the note
    link_notes: int = 0  # notes those links are in


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: bool
    commit: str | None
    notes: int
    folders: int = 0  # folders that hold notes, below the notes root
    layout: str = ""  # how kb decided which files are notes
    in_place: bool = False  # every Markdown file at any depth is a note
    history: int = 0  # commits the folder already had (kept as the notes' history)


@dataclass(frozen=True)
class ShowResult:
    note: NoteInfo
    raw: bytes
    body: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MadeList:
    """What `kb list` prints for some notes off a terminal, made ahead by the warm server into an unlinked
    file of its runtime folder (kb.render.write_plain_list), which the workers forked after it inherit:
    `size` bytes of UTF-8 (a lone surrogate of a file name kept as it is), and whether they can be written
    as they are to a UTF-8 stream (`as_is`: they hold no 0xED, neither a lone surrogate nor a Hangul
    syllable from U+D000). The file is closed when the last reference to it goes."""

    file: IO[bytes]
    size: int
    as_is: bool


@dataclass(frozen=True)
class ListResult:
    notes: tuple[NoteInfo, ...]
    warnings: tuple[str, ...]
    # What kb list prints for exactly these notes off a terminal, made ahead by the warm server (under
    # LIST_PLAIN) while the notes are settled; None: render makes it.
    plain: MadeList | None = field(default=None, repr=False, compare=False, metadata={"json": False})
    # The folder or tag asked for names nothing (no such folder, no note has that tag): a mistake, said in
    # a warning, and kb list exits 1, as a search for such a tag does.
    named_nothing: bool = field(default=False, metadata={"json": False})


# The settled value (kb.store.settle_value) that holds ListResult.plain for `kb list` in its default order.
LIST_PLAIN = "list:modified:plain"


@dataclass(frozen=True)
class TagCount:
    tag: str
    count: int


@dataclass(frozen=True)
class TagsResult:
    tags: tuple[TagCount, ...]
    warnings: tuple[str, ...]


class Draft(Protocol):
    """Text typed in the editor, kept in a file until it is saved."""

    text: str
    path: Path

    def discard(self) -> None: ...


EditorFn = Callable[[str, str], Draft]  # (initial text, file stem) -> the edited draft


# ---------------------------------------------------------------- use cases: reading


def _resolve_or_deleted(store: Store, ref: str) -> str:
    """resolve_note, with a note deleted since named as such (and how to restore it)."""
    try:
        return resolve_note(store, ref)
    except NoteNotFound as missing:
        from kb.service.revisions import deleted_note

        gone = deleted_note(store.root, ref, missing)
        if gone is not None:
            raise gone from None
        missing.looked_back = True
        raise


def show(root: Path, ref: str, as_of: str | None = None) -> ShowResult:
    recover(root)
    if as_of is not None:
        from kb.service.timeline import note_as_of

        old = note_as_of(root, ref, as_of)
        parsed = parse_note(old.raw)
        return ShowResult(old.info, old.raw, parsed.body, dict(parsed.extra))
    store = Store(root)
    path = _resolve_or_deleted(store, ref)
    raw, parsed = load_note(store, path)
    info = note_info(path, parsed)
    if info.created is None or info.modified is None:
        from kb.index import DatesLookup

        created, modified = DatesLookup(root)(path)
        info = replace(info, created=info.created or created, modified=info.modified or modified)
    return ShowResult(info, raw, parsed.body, dict(parsed.extra))


def list_notes(
    root: Path,
    tag: str | None = None,
    sort: str = "modified",
    folder: str | None = None,
    paths: frozenset[str] | None = None,
    as_of: str | None = None,
) -> ListResult:
    """Every note, or those with the tag, in the folder, among `paths` (see kb.service.links.link_filter);
    `as_of`: the notes as they were at the end of that WHEN."""
    recover(root)
    store = Store(root)
    infos: Sequence[NoteInfo]
    infos, warnings = _sorted_infos(root, store, as_of, sort)
    if paths is None and folder is None and not tag and as_of is None and sort == "modified":
        kept = settled_value(root, LIST_PLAIN) if store.settled() else None
        if isinstance(kept, tuple) and kept[0] is infos:  # made from this very list
            return ListResult(infos, tuple(warnings), kept[1])
    every = infos
    named_nothing = False
    if paths is not None:
        infos = [i for i in infos if i.path in paths]
    if folder is not None:
        wanted = clean_folder(folder)
        if store.layout.notes and wanted.startswith(store.layout.notes + "/"):
            wanted = wanted[len(store.layout.notes) + 1 :]  # given from the root
        key = wanted.casefold()
        if store.layout.notes and wanted == store.layout.notes:  # notes/ itself, unless a sub-folder
            key = next((key for i in every if store.layout.folder_of(i.path).casefold() == key), "")
        if key:

            def inside(info: NoteInfo) -> bool:
                folder_key = store.layout.folder_of(info.path).casefold()
                return folder_key == key or folder_key.startswith(key + "/")

            infos = [i for i in infos if inside(i)]
            if not infos and not any(inside(i) for i in every):  # not when another filter left none
                warnings.append(f"no notes in a folder '{wanted}' (kb list shows the paths)")
                named_nothing = True
    if tag is not None:  # in any case, as the folder above and search's tag: field
        wanted = validate_tag(tag).casefold()
        if wanted.startswith("#") and len(wanted) > 1 and not any(_tagged(i, wanted) for i in every):
            wanted = validate_tag(wanted[1:]).casefold()  # as kb list and kb search show tags: #Ideas
        infos = [i for i in infos if _tagged(i, wanted)]
        if not infos and not any(_tagged(i, wanted) for i in every):
            warnings.append(no_such_tag(tag, [name for i in every for name in i.tags]))
            named_nothing = True
    return ListResult(tuple(infos), tuple(warnings), named_nothing=named_nothing)


def _tagged(info: NoteInfo, wanted: str) -> bool:
    """Whether the note has the tag `wanted` (case-folded) or one of its children."""
    return any((t := name.casefold()) == wanted or t.startswith(wanted + "/") for name in info.tags)


def _sorted(infos: list[NoteInfo], sort: str) -> list[NoteInfo]:
    """The notes in the order `kb list --sort` names (ties: by title, then path; sorting is stable)."""
    if sort == "title":
        return sorted(infos, key=lambda i: (title_key(i.title), i.path))
    if sort in ("modified", "created"):

        def moment(info: NoteInfo) -> float:
            value = getattr(info, sort)
            parsed = parse_timestamp(value) if value else None
            return parsed.timestamp() if parsed else float("-inf")

        return sorted(infos, key=lambda i: (-moment(i), title_key(i.title)))
    raise UsageError(f"unknown sort order '{sort}' (title, created or modified)")


def _by_modified(info: NoteInfo) -> tuple[float, str, str]:
    """_sorted's order for "modified" of notes given in the order of their paths (all_notes gives them so,
    and sorting is stable): the path breaks the remaining ties."""
    parsed = parse_timestamp(info.modified) if info.modified else None
    return (-(parsed.timestamp() if parsed else float("-inf")), title_key(info.title), info.path)


def _sorted_infos(
    root: Path, store: Store, as_of: str | None, sort: str
) -> tuple[tuple[NoteInfo, ...], list[str]]:
    """Every note (as of `as_of`) in `sort` order. While the warm server vouches for the notes (kb.store.
    settled) the order is worked out once and kept: filtering a sorted list keeps it sorted."""
    name = f"list:{sort}"
    if as_of is None and store.settled():
        kept = settled_value(root, name)
        if isinstance(kept, tuple):
            return kept[0], list(kept[1])  # the kept tuple itself: ListResult.plain is made from it
    infos, warnings = _infos(root, store, as_of)
    ordered = tuple(_sorted(infos, sort))
    if as_of is None and store.settled():
        settle_value(root, name, (ordered, tuple(warnings)))
    return ordered, warnings


def prepare_listing(root: Path) -> None:
    """For the warm server, while the notes are settled: work out what `kb list` (in its default order)
    and `kb tags` show, once, so that each request only prints it."""
    store = Store(root)
    if store.settled():
        _sorted_infos(root, store, None, "modified")
        tags(root)


def update_listing(root: Path, before: dict[str, object], changed: Collection[str]) -> bool:
    """prepare_listing(), worked out from what it kept for the notes as they were (`before`: the settled
    values then) when only the files `changed` may differ since: their records read again, put in place in
    `kb list`'s order and counted in `kb tags`, the rest kept. False (nothing done) when `before` lacks
    what it needs or the notes are not settled."""
    from kb.service.lookup import all_notes_changed

    store = Store(root)
    old_all, said, old_list, old_tags, forms = (
        before.get(name) for name in ("all_notes", "note_warnings", "list:modified", "tags", "tag_forms")
    )
    if not (
        store.settled()
        and isinstance(old_all, tuple)
        and isinstance(said, dict)
        and isinstance(old_list, tuple)
        and isinstance(old_tags, TagsResult)
        and isinstance(forms, dict)
    ):
        return False
    gone = set(changed)
    infos, warnings = all_notes_changed(store, old_all, said, gone)
    ordered = [info for info in old_list[0] if info.path not in gone]
    for info in infos:
        if info.path in gone:
            bisect.insort(ordered, info, key=_by_modified)
    settle_value(root, "list:modified", (tuple(ordered), tuple(warnings)))
    counted: dict[str, dict[str, int]] = {key: dict(seen) for key, seen in forms.items()}
    for info in old_all[0]:
        if info.path in gone:
            _count_tags(counted, info, -1)
    for info in infos:
        if info.path in gone:
            _count_tags(counted, info, 1)
    settle_value(root, "tags", _tags_result(counted, warnings))
    settle_value(root, "tag_forms", counted)
    return True


def _infos(root: Path, store: Store, as_of: str | None) -> tuple[list[NoteInfo], list[str]]:
    if as_of is None:
        return all_notes(store)
    from kb.service.timeline import infos_as_of

    return infos_as_of(root, as_of), []


def tags(root: Path, as_of: str | None = None) -> TagsResult:
    recover(root)
    store = Store(root)
    if as_of is None and store.settled():
        kept = settled_value(root, "tags")
        if isinstance(kept, TagsResult):
            return kept
    infos, warnings = _infos(root, store, as_of)
    forms: dict[str, dict[str, int]] = {}
    for info in infos:
        _count_tags(forms, info, 1)
    result = _tags_result(forms, warnings)
    if as_of is None and store.settled():
        settle_value(root, "tags", result)
        settle_value(root, "tag_forms", forms)
    return result


def _count_tags(forms: dict[str, dict[str, int]], info: NoteInfo, by: int) -> None:
    """Count a note's tags (and their parents) in `forms` (`by` 1), or take it out again (-1): per tag, how
    many notes use each of its forms. Tags that differ only in case (`Work`, `work`) are one tag, as `tag:`
    finds them."""
    expanded: dict[str, str] = {}
    for tag in info.tags:
        for part in tag_with_parents(tag):
            expanded.setdefault(part.casefold(), part)
    for key, form in expanded.items():
        seen = forms.setdefault(key, {})
        seen[form] = seen.get(form, 0) + by
        if not seen[form]:
            del seen[form]
            if not seen:
                del forms[key]


def _tags_result(forms: dict[str, dict[str, int]], warnings: Sequence[str]) -> TagsResult:
    """Each tag counted once per note, shown in the form most notes use."""
    shown = {key: max(sorted(seen), key=lambda f: seen[f]) for key, seen in forms.items()}
    ordered = sorted((key, sum(seen.values())) for key, seen in forms.items())
    return TagsResult(tuple(TagCount(shown[k], c) for k, c in ordered), tuple(warnings))


# ---------------------------------------------------------------- use cases: writing


def init(root: Path, progress: Callable[[int, int], None] | None = None) -> InitResult:
    """Create or adopt a knowledge base, and build its search index if it has none. A folder that already
    holds Markdown outside notes/ is used as it is: kb writes its settings (kb.toml) and an anchored
    `/index/` ignore line, and commits only those (or, in a folder that is not yet a repository, what is
    there as the first revision)."""
    from kb.index import NoteIndex
    from kb.layout import SETTINGS_FILE, detect, settings_text

    existed = root.exists()
    layout = detect(root) if root.is_dir() else None
    settings = None
    if layout is not None and layout.in_place and not (root / SETTINGS_FILE).exists():
        settings = settings_text(layout).encode("utf-8")
    history = _count_commits(root) if existed else 0
    with transaction(root, explicit_init=True, settings=settings) as tx:
        notes = tx.store.list_notes().paths
        folders = {tx.store.layout.folder_of(p) for p in notes} - {""}
        head = tx.history.head()
        index = NoteIndex(root, tx.store)
        if not index.exists():
            index.rebuild(progress)
        layout = tx.store.layout
    return InitResult(
        root, not existed, head, len(notes), len(folders), layout.reason, layout.in_place, history
    )


def _count_commits(root: Path) -> int:
    """Commits reachable from HEAD in the folder's repository (0 when it has none or is not one)."""
    import subprocess

    if not (root / ".git").exists():
        return 0
    proc = subprocess.run(
        ["git", "rev-list", "--count", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip().isdigit() else 0


def _clean_tags(values: Sequence[str]) -> list[str]:
    """The tags given to add or edit: each as validate_tag makes it, a leading # (as kb shows tags and
    Obsidian writes them in a note's text) taken off."""
    out: list[str] = []
    for value in values:
        if not value.strip().removeprefix("#").strip():
            raise UsageError(f"invalid tag {value!r}")
        tag = validate_tag(value.strip().removeprefix("#"))
        if tag not in out:
            out.append(tag)
    return out


def _initial_body(title: str, text: str | None) -> str:
    if text is None or not text.strip():
        return f"# {title}\n"
    if not text.endswith("\n"):
        text += "\n"
    first = text.lstrip("\r\n").split("\n", 1)[0]
    if first.startswith("# "):
        return text
    return f"# {title}\n\n{text}"


def clean_folder(folder: str | None) -> str:
    """A folder for a note, relative to the notes root: no `..`, no hidden or absolute part, posix."""
    if not folder:
        return ""
    if "\0" in folder:
        raise UsageError("the folder contains a NUL byte")
    parts = [p for p in folder.replace("\\", "/").split("/") if p not in ("", ".")]
    if folder.startswith(("/", "~")) or any(p == ".." or p.startswith(".") for p in parts):
        raise UsageError(f"the folder must be inside the knowledge base, not hidden: {folder!r}")
    for part in parts:
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") for ch in part):
            raise UsageError(f"the folder {folder!r} contains a control character")
    return "/".join(parts)


def refuse_case_twin(notes: Path, folder: str) -> None:
    """Refuse a new folder that differs only in case from one already there: macOS and Windows, whose
    file systems ignore case, would see one folder, and a clone there would mix the two."""
    here = notes
    found: list[str] = []
    for part in folder.split("/") if folder else []:
        if (here / part).is_dir():
            here = here / part
            found.append(part)
            continue
        try:
            names = [entry.name for entry in os.scandir(here) if entry.is_dir(follow_symlinks=False)]
        except OSError:
            return
        twin = next((name for name in names if name.casefold() == part.casefold()), None)
        if twin is not None:
            there = "/".join([*found, twin])
            raise UsageError(
                f"a folder '{there}' is there already, its name differing only in case (macOS and Windows "
                f"would see one folder): write {there}/ to use it"
            )
        return


def add(
    root: Path, title: str, tags: Sequence[str] = (), body: str | None = None, folder: str | None = None
) -> ChangeResult:
    title = validate_title(title)
    tag_list = _clean_tags(tags)
    where = clean_folder(folder)
    if body is not None:
        validate_text(body)
    with transaction(root, scan=True) as tx:
        refuse_case_twin(tx.store.notes, where)
        existing = find_title(tx.store, title, folder=where)
        if existing:
            raise NoteExists(existing.title, existing.path)
        path = free_path(tx.store, title, folder=where)
        tx.store.abs(path)  # inside the notes root, not hidden
        if tx.store.layout.in_place:
            # Like the files around it: a heading gives the title and git the dates; front matter only
            # for tags.
            head = f"---\ntags: {yaml_value('tags', tag_list)}\n---\n\n" if tag_list else ""
            text = head + _initial_body(title, body)
        else:
            text = new_note_text(title, tag_list, tx.stamp, tx.stamp, _initial_body(title, body))
        commit, warnings = tx.change_indexed({path: text.encode("utf-8")}, f"Add: {title}", tx.now, [path])
        info = note_info(path, parse_note(text.encode("utf-8")))
        return ChangeResult("add", info, commit, external=tx.external, warnings=warnings)


def add_with_editor(
    root: Path, title: str, tags: Sequence[str], editor: EditorFn, folder: str | None = None
) -> ChangeResult:
    title = validate_title(title)
    _clean_tags(tags)
    where = clean_folder(folder)
    existing = find_title(Store(root), title, folder=where) if root.is_dir() else None
    if existing:
        raise NoteExists(existing.title, existing.path)
    template = f"# {title}\n\n"
    draft = editor(template, file_stem(title))
    if draft.text == template or not draft.text.strip():
        draft.discard()
        from kb.errors import EditorError

        raise EditorError("nothing saved: the note was left unchanged")
    with _keeping(draft):
        result = add(root, title, tags, draft.text, folder)
    return result


@contextlib.contextmanager
def _keeping(draft: Draft) -> Iterator[None]:
    """Discard the draft when the block succeeds; on failure say where the typed text is kept."""
    try:
        yield
    except KbError as exc:
        exc.message = f"{exc.message}; your text is kept in {draft.path}"
        raise
    draft.discard()


def _body_parts(body: str) -> tuple[str, str]:
    """The separator line after the front matter, and the content after it."""
    for sep in ("\r\n", "\n"):
        if body.startswith(sep):
            return sep, body[len(sep) :]
    return "", body


def _editable(path: str, parsed: ParsedNote) -> ParsedNote:
    if parsed.problem or parsed.doc is None:
        raise BrokenNote(
            f"cannot rewrite {path}: {parsed.problem}; fix the file by hand or with 'kb edit NOTE --editor'"
        )
    return parsed


def edit(
    root: Path,
    ref: str,
    *,
    title: str | None = None,
    add_tags: Sequence[str] = (),
    remove_tags: Sequence[str] = (),
    body: str | None = None,
    append: str | None = None,
    update_links: bool = True,
) -> ChangeResult:
    new_title = validate_title(title) if title is not None else None
    for text in (body, append):
        if text is not None:
            validate_text(text)
    adding = _clean_tags(add_tags)
    removing = _clean_tags(remove_tags)
    _require_kb(root, ref)
    with transaction(root, scan=new_title is not None) as tx:
        path = _resolve_or_deleted(tx.store, ref)
        parsed = _editable(path, load_note(tx.store, path)[1])  # the file's bytes are not kept
        assert parsed.doc is not None
        old = note_info(path, parsed)
        doc = parsed.doc
        nl = doc.newline
        sep, content = _body_parts(doc.body)
        if body is not None:
            content = _with_newline(body, nl) if body else ""
            sep = sep or (nl if doc.has_front_matter else "")
        if new_title is not None and new_title != old.title:
            first, _, rest = content.partition("\n")
            if first.rstrip("\r") == f"# {old.title}":
                content = f"# {new_title}" + ("\r" if first.endswith("\r") else "") + "\n" + rest
        if append is not None:
            if content and not content.endswith("\n"):
                content += nl
            if content.strip() and not content.endswith(nl + nl):
                content += nl
            content += _with_newline(append, nl)
        # Front matter tags only: inline #tags stay where they are in the body.
        own = parsed.tags
        warnings = [
            f"the note has no tag '{t}'"
            + (" in its front matter (an inline #tag stays)" if t in old.tags else "")
            for t in removing
            if t not in own
        ]
        new_tags = [t for t in own if t not in removing] + [t for t in adding if t not in own]
        updates: dict[str, str | list[str] | None] = {}
        if tuple(new_tags) != own:
            updates["tags"] = new_tags or None
        renamed = new_title is not None and new_title != old.title
        if renamed:
            folder = tx.store.layout.folder_of(path)
            other = find_title(tx.store, new_title or "", except_path=path, folder=folder)
            if other:
                raise NoteExists(other.title, other.path)
            # A file that takes its title from its name or heading (a vault's notes) is renamed without
            # a title written into it.
            if parsed.title is not None or not tx.store.layout.in_place:
                updates["title"] = new_title
        new_doc = replace(doc, body=sep + content)
        del content  # a huge note is held as few times as can be
        if not updates and not renamed and new_doc.body == doc.body:
            warnings.extend(reindex_paths(tx, []) if tx.external_paths else ())
            return ChangeResult("unchanged", old, None, external=tx.external, warnings=tuple(warnings))
        if _keeps_modified(tx, parsed):
            updates["modified"] = tx.stamp
        if updates:
            new_doc = set_fields(new_doc, updates)
        rename_only = renamed and body is None and append is None and "tags" not in updates
        return _save(
            tx,
            path,
            new_doc.render(),
            old.title,
            renamed,
            rename_only,
            tuple(warnings),
            new_title,
            update_links,
        )


def _keeps_modified(tx: Transaction, parsed: ParsedNote) -> bool:
    """Whether a change sets the note's `modified`: always in Notable's layout; in a folder used as it is,
    only in a note that has the key (kb adds no front matter, nor a date git already knows, to a file)."""
    return not tx.store.layout.in_place or parsed.modified is not None


def _with_newline(text: str, nl: str) -> str:
    """Inserted text in the note's own line ending, ending with one."""
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", nl)


def _save(
    tx: Transaction,
    path: str,
    text: str,
    old_title: str,
    renamed: bool,
    rename_only: bool,
    warnings: tuple[str, ...],
    new_title: str | None = None,
    update_links: bool = True,
) -> ChangeResult:
    data = text.encode("utf-8")
    parsed = parse_note(head_of(data))  # its title, tags and dates: a huge note is not parsed whole again
    title = new_title if renamed and new_title else parsed.title_for(path)
    folder = tx.store.layout.folder_of(path)
    new_path = free_path(tx.store, title, except_path=path, folder=folder) if renamed else path
    writes: dict[str, bytes | None] = {new_path: data}
    if new_path != path:
        writes[path] = None
    if renamed:
        action = "rename"
        message = f"Rename: {old_title} -> {title}" if rename_only else f"Edit: {title} (was {old_title})"
        message += f"\n\nKb-Renamed-From: {path}"
    else:
        action, message = "edit", f"Edit: {title}"
    updates = _link_updates(tx, path, new_path, title, data) if renamed and update_links else None
    if updates is not None:
        writes.update(updates.writes)
        data = writes[new_path] or data
        parsed = parse_note(data)
        message = with_links_line(message, updates)
        warnings += updates.warnings
    moment = parse_timestamp(parsed.modified or "") or tx.now
    commit, index_warnings = tx.change_indexed(writes, message, moment, set(writes))
    warnings += index_warnings
    if len(data) > LARGE_NOTE_BYTES:
        warnings += (
            f"{new_path} is {len(data) / 1024 / 1024:.0f} MB; every change to it rewrites and commits it "
            "whole (consider splitting it, or moving large content to attachments/)",
        )
    return ChangeResult(
        action,
        note_info(new_path, parsed),
        commit,
        renamed_from=path if new_path != path else None,
        external=tx.external,
        warnings=warnings,
        links_updated=updates.links if updates else 0,
        link_notes=updates.notes if updates else 0,
    )


def _link_updates(tx: Transaction, path: str, new_path: str, title: str, data: bytes) -> LinkUpdates | None:
    """The rewrites that keep links to a renamed note leading to it; None when there are none."""
    from kb.service.links import plan_link_updates  # a rename only: the other commands load no link code

    updates = plan_link_updates(tx.root, tx.store, path, new_path, title, data, tx.stamp)
    return updates if updates.writes or updates.warnings else None


def with_links_line(message: str, updates: LinkUpdates) -> str:
    """The commit message with a line saying how many links were rewritten, before its trailers."""
    if not updates.links:
        return message
    subject, _, trailers = message.partition("\n\n")
    line = f"{_plural(updates.links, 'link')} in {_plural(updates.notes, 'note')} updated"
    return f"{subject}\n\n{line}" + (f"\n\n{trailers}" if trailers else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def edit_with_editor(root: Path, ref: str, editor: EditorFn) -> ChangeResult:
    """The whole file in the editor; saved only if the editor succeeds and the text changed."""
    _require_kb(root, ref)
    with transaction(root) as tx:
        path = _resolve_or_deleted(tx.store, ref)
        raw, parsed = load_note(tx.store, path)
        external = tx.external
    if parsed.doc is None:
        raise BrokenNote(f"cannot edit {path}: {parsed.problem}")
    before = parsed.doc.render()
    draft = editor(before, Path(path).stem)
    if draft.text == before:
        draft.discard()
        return ChangeResult("unchanged", note_info(path, parsed), None, external=external)
    with _keeping(draft), transaction(root) as tx:
        if not tx.store.exists(path):
            raise KbError(f"{path} was deleted while you were editing it; nothing saved")
        if tx.store.read(path) != raw:
            raise KbError(f"{path} changed while you were editing it; nothing saved")
        new = parse_note(draft.text.encode("utf-8"))
        if new.problem or new.doc is None:
            raise BrokenNote(f"not saved: {new.problem}")
        _check_edited(parsed, new)
        old_title = note_info(path, parsed).title
        title = new.title or old_title
        # A note whose title was unreadable (or absent) keeps its file name when a title is written.
        renamed = parsed.title is not None and title != old_title
        if new.title is not None and new.title != parsed.title:
            validate_title(title)
            other = find_title(tx.store, title, except_path=path)
            if other:
                raise NoteExists(other.title, other.path, "not saved")
        notes: tuple[str, ...] = ()
        if parsed.doc.has_front_matter and not new.doc.has_front_matter:
            kept = "it was saved as you left it"
            if _keeps_modified(tx, new):
                kept = "its `modified` was added back"
            notes = (
                f"the front matter was removed in the editor: {kept}; the title now comes from the first "
                f"heading or the file name ('{new.title_for(path)}'), and its tags and dates are no longer "
                "in the file (they stay in its history)",
            )
        new_doc = set_fields(new.doc, {"modified": tx.stamp}) if _keeps_modified(tx, new) else new.doc
        result = _save(tx, path, new_doc.render(), old_title, renamed, False, notes)
    return ChangeResult(
        result.action,
        result.note,
        result.commit,
        result.renamed_from,
        external + tx.external,
        result.warnings,
        result.links_updated,
        result.link_notes,
    )


def _check_edited(old: ParsedNote, new: ParsedNote) -> None:
    """What the editor saved must be a note `kb add` and `kb mv` would write: a text title, and the
    `created` it had (when it had a valid one) neither removed nor made unreadable."""
    if any(w.startswith("'title' is not text") for w in new.warnings):
        raise UsageError("not saved: 'title' is not text (write it as a single line of text)")
    if old.created and parse_timestamp(old.created) is not None:
        if not new.created:
            raise UsageError(f"not saved: 'created' was removed (it was '{old.created}')")
        if parse_timestamp(new.created) is None:
            raise UsageError(
                f"not saved: 'created' is not a valid date: {new.created!r} (it was '{old.created}')"
            )


def _require_kb(root: Path, ref: str) -> None:
    """A change to a note needs a knowledge base that exists (nothing is created for a failing edit)."""
    if not root.is_dir():
        raise NoteNotFound(f"no note matches '{ref}' (there is no knowledge base at {root} yet)")


def _folder_there(store: Store, path_like: str) -> str | None:
    """The folder of the notes (from the notes folder) that `path_like` names, written from the notes
    folder or the knowledge base's root, with or without `./`; None when it names none."""
    parts = [part for part in path_like.split("/") if part not in ("", ".")]
    if not parts or path_like.startswith("/") or ".." in parts:
        return None
    if store.layout.notes and parts[0] == store.layout.notes and (store.root / "/".join(parts)).is_dir():
        parts = parts[1:]  # from the root
    if parts and (store.notes / "/".join(parts)).is_dir():
        return "/".join(parts)
    return None


def move(root: Path, ref: str, destination: str, update_links: bool = True) -> ChangeResult:
    """A new title (the file is renamed along), or a new place: `folder/` (or the name of a folder that
    is there) keeps the file name, a path ending in `.md` names the file. The note's text is unchanged by
    a move between folders, but for its relative links, rewritten to lead where they did (unless
    `update_links` is off, as for the links of other notes to it)."""
    _require_kb(root, ref)
    other = _other_file(root, ref)
    if other is not None and "/" not in ref and _names_a_note(root, ref):
        other = None  # a title that is also the name of a file at the root: the note
    if other is not None:
        return move_file(root, other, destination, update_links)
    if not destination.endswith(("/", ".md", ".markdown")):
        path_like = destination.replace("\\", "/")
        folder = _folder_there(Store(root), path_like)
        if folder is not None:
            destination = folder + "/"  # a folder there: into it, as mv and git mv do
        elif path_like.startswith("/") or any(part in (".", "..") for part in path_like.split("/")):
            raise UsageError(
                f"{destination!r} is a path, not a title: kb mv moves a note to a folder inside the "
                "knowledge base written with a / at its end (archive/), or to a file name ending in .md"
            )
        else:
            return edit(root, ref, title=destination, update_links=update_links)
    with transaction(root, scan=True) as tx:
        store = tx.store
        path = resolve_note(store, ref)
        raw, parsed = load_note(store, path)
        name = path.rsplit("/", 1)[-1]
        if destination.endswith("/"):
            refuse_case_twin(store.notes, clean_folder(destination))
            target = f"{store.prefix}{_join(clean_folder(destination), name)}"
        else:
            folder, _, file_name = destination.replace("\\", "/").rpartition("/")
            if not file_name or file_name.startswith(".") or file_name in (".md", ".markdown"):
                raise UsageError(f"not a note's file name: {destination!r}")
            refuse_case_twin(store.notes, clean_folder(folder))
            target = f"{store.prefix}{_join(clean_folder(folder), file_name)}"
        store.abs(target)
        if target == path:
            return ChangeResult("unchanged", note_info(path, parsed), None, external=tx.external)
        if store.exists(target) and title_key(target) != title_key(path):
            raise KbError(f"{target} already exists")
        taken = {title_key(p) for p in store.scan()[0]}
        if title_key(target) in taken and title_key(target) != title_key(path):
            raise KbError(f"{target} already exists (its name differs only in case)")
        info = note_info(target, parsed)
        message = f"Move: {note_info(path, parsed).title} ({path} -> {target})\n\nKb-Renamed-From: {path}"
        moment = tx.now
        writes: dict[str, bytes | None] = {target: raw, path: None}
        updates = _link_updates(tx, path, target, info.title, raw) if update_links else None
        if updates is not None:
            writes.update(updates.writes)
            message = with_links_line(message, updates)
        commit, warnings = tx.change_indexed(writes, message, moment, set(writes))
        return ChangeResult(
            "move",
            note_info(target, parse_note(writes[target] or raw)),
            commit,
            renamed_from=path,
            external=tx.external,
            warnings=(updates.warnings if updates else ()) + warnings,
            links_updated=updates.links if updates else 0,
            link_notes=updates.notes if updates else 0,
        )


def _other_file(root: Path, ref: str) -> str | None:
    """`ref` as a root-relative path when it names something in the knowledge base that is not a note
    (an image, a PDF: a file to move as it is, or a link, a folder kb refuses to move); else None."""
    if ref.lower().endswith(NOTE_SUFFIXES) or not ref.strip() or "\0" in ref:
        return None
    given = Path(ref)
    if given.is_absolute():
        try:
            rel = given.absolute().relative_to(root.absolute()).as_posix()
        except ValueError:
            return ref if given.is_file() else None  # refused as outside the knowledge base
    else:
        rel = ref.replace("\\", "/").removeprefix("./")
    full = root / rel
    return rel if full.is_symlink() or (full.exists() and not full.is_dir()) else None


def _names_a_note(root: Path, ref: str) -> bool:
    try:
        resolve_note(Store(root), ref)
    except KbError:
        return False
    return True


def _file_place(store: Store, rel: str, what: str) -> str:
    """A root-relative path of a file kb may move (`what`: "the file" or "the target"): inside the knowledge
    base, not hidden, not in index/ or .git/, no symbolic link on the way. Refused with a usage error."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or not parts or ".." in parts:
        raise UsageError(f"{what} {rel} is not inside the knowledge base")
    clean = "/".join(parts)
    if parts[0] in (INDEX_DIR, ".git") or any(p.startswith(".") for p in parts):
        raise UsageError(f"{what} {clean} is in kb's index/, .git/ or a hidden folder; kb leaves those alone")
    try:
        store.abs(clean)
    except UsageError:
        beside = " or attachments/" if not store.layout.in_place else ""
        raise UsageError(f"{what} {clean} is not inside {store.where()}{beside}") from None
    folder = store.root
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise UsageError(f"{what} {clean}: {store.rel(folder)} is a symbolic link; kb does not follow it")
    return clean


def move_file(root: Path, ref: str, destination: str, update_links: bool = True) -> ChangeResult:
    """Move or rename a file that is not a note (an image, a PDF) and rewrite every link to it in the
    notes, each in its form, in one revision. `destination`: a path from the root, or `folder/` to keep
    the file name."""
    from kb.service.links import plan_file_link_updates

    with transaction(root, scan=True) as tx:
        store = tx.store
        path = _file_place(store, ref, "the file")
        full = root / path
        if full.is_symlink():
            raise UsageError(f"{path} is a symbolic link; kb does not move links")
        if not full.is_file():
            raise UsageError(f"{path} is not a file")
        dest = destination.replace("\\", "/")
        if Path(dest).is_absolute():
            try:
                dest = Path(dest).absolute().relative_to(root.absolute()).as_posix() + (
                    "/" if dest.endswith("/") else ""
                )
            except ValueError:
                raise UsageError(f"the target {destination} is not inside the knowledge base") from None
        place = root / dest
        if dest in ("", ".") or (place.is_dir() and not place.is_symlink()):
            dest += "/"  # an existing folder: the file goes into it, its name kept
        if dest.endswith("/"):
            dest = f"{dest.rstrip('/')}/{path.rsplit('/', 1)[-1]}".lstrip("/")
        target = _file_place(store, dest, "the target")
        if target.lower().endswith(NOTE_SUFFIXES) or store.is_note_path(target):
            raise UsageError(f"the target {target} would be a note; a file that is not one keeps its kind")
        if target == path:
            return ChangeResult("unchanged", _file_info(path), None, external=tx.external)
        exists = (root / target).is_symlink() or (root / target).exists()
        if exists and title_key(target) != title_key(path):
            raise UsageError(f"the target {target} already exists")
        try:
            data = full.read_bytes()
        except OSError as exc:
            raise KbError(f"cannot read {path}: {exc.strerror}") from None
        message = f"Move: {path} -> {target}\n\nKb-Renamed-From: {path}"
        writes: dict[str, bytes | None] = {target: data, path: None}
        updates = plan_file_link_updates(root, store, path, target, tx.stamp) if update_links else None
        if updates is not None:
            writes.update(updates.writes)
            message = with_links_line(message, updates)
        commit, warnings = tx.change_indexed(writes, message, tx.now, set(writes))
        return ChangeResult(
            "move",
            _file_info(target),
            commit,
            renamed_from=path,
            external=tx.external,
            warnings=(updates.warnings if updates else ()) + warnings,
            links_updated=updates.links if updates else 0,
            link_notes=updates.notes if updates else 0,
        )


def _file_info(path: str) -> NoteInfo:
    return NoteInfo(path.rsplit("/", 1)[-1], path, (), None, None)


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def remove(root: Path, ref: str) -> ChangeResult:
    _require_kb(root, ref)
    with transaction(root) as tx:
        path = resolve_note(tx.store, ref)
        _, parsed = load_note(tx.store, path)
        info = note_info(path, parsed)
        commit, warnings = tx.change_indexed({path: None}, f"Delete: {info.title}", tx.now, [path])
        return ChangeResult("delete", info, commit, external=tx.external, warnings=warnings)
