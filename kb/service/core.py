"""The use cases. Each returns a frozen dataclass; nothing here prints or prompts.

Order of every change: take the lock, commit what changed outside kb, write atomically, commit exactly
the touched paths with the note's `modified` as author date.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
    new_note_text,
    parse_note,
    parse_timestamp,
    set_fields,
    tag_with_parents,
    title_from_stem,
    title_key,
    validate_tag,
    validate_text,
    validate_title,
)
from kb.service.base import (
    NoteInfo,
    _all_notes,
    _find_title,
    _free_path,
    _info,
    _load,
    _reindex_paths,
    _resolve,
    _transaction,
    _Tx,
    recover,
)
from kb.store import Store

# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ChangeResult:
    action: str  # "add", "edit", "rename", "delete", "unchanged"
    note: NoteInfo
    commit: str | None
    renamed_from: str | None = None
    external: tuple[str, ...] = ()  # outside edits committed first
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: bool
    commit: str | None
    notes: int


@dataclass(frozen=True)
class ShowResult:
    note: NoteInfo
    raw: bytes
    body: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ListResult:
    notes: tuple[NoteInfo, ...]
    warnings: tuple[str, ...]


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


def show(root: Path, ref: str) -> ShowResult:
    recover(root)
    store = Store(root)
    path = _resolve(store, ref)
    raw, parsed = _load(store, path)
    return ShowResult(_info(path, parsed), raw, parsed.body, dict(parsed.extra))


def list_notes(root: Path, tag: str | None = None, sort: str = "modified") -> ListResult:
    recover(root)
    infos, warnings = _all_notes(Store(root))
    if tag:
        wanted = validate_tag(tag)
        infos = [i for i in infos if any(t == wanted or t.startswith(wanted + "/") for t in i.tags)]
    if sort == "title":
        infos.sort(key=lambda i: (title_key(i.title), i.path))
    elif sort in ("modified", "created"):

        def moment(info: NoteInfo) -> float:
            value = getattr(info, sort)
            parsed = parse_timestamp(value) if value else None
            return parsed.timestamp() if parsed else float("-inf")

        infos.sort(key=lambda i: (-moment(i), title_key(i.title)))
    else:
        raise UsageError(f"unknown sort order '{sort}' (title, created or modified)")
    return ListResult(tuple(infos), tuple(warnings))


def tags(root: Path) -> TagsResult:
    recover(root)
    infos, warnings = _all_notes(Store(root))
    counts: dict[str, int] = {}
    for info in infos:
        expanded: set[str] = set()
        for tag in info.tags:
            expanded.update(tag_with_parents(tag))
        for tag in expanded:
            counts[tag] = counts.get(tag, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: item[0].casefold())
    return TagsResult(tuple(TagCount(t, c) for t, c in ordered), tuple(warnings))


# ---------------------------------------------------------------- use cases: writing


def init(root: Path, progress: Callable[[int, int], None] | None = None) -> InitResult:
    """Create or adopt a knowledge base, and build its search index if it has none."""
    from kb.index import NoteIndex

    existed = root.exists()
    with _transaction(root, explicit_init=True) as tx:
        count = len(tx.store.list_notes().paths)
        head = tx.history.head()
        index = NoteIndex(root)
        if not index.exists():
            index.rebuild(progress)
    return InitResult(root, not existed, head, count)


def _clean_tags(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        tag = validate_tag(value)
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


def add(root: Path, title: str, tags: Sequence[str] = (), body: str | None = None) -> ChangeResult:
    title = validate_title(title)
    tag_list = _clean_tags(tags)
    if body is not None:
        validate_text(body)
    with _transaction(root, scan=True) as tx:
        existing = _find_title(tx.store, title)
        if existing:
            raise NoteExists(existing.title, existing.path)
        path = _free_path(tx.store, title)
        text = new_note_text(title, tag_list, tx.stamp, tx.stamp, _initial_body(title, body))
        commit, warnings = tx.change_indexed({path: text.encode("utf-8")}, f"Add: {title}", tx.now, [path])
        info = _info(path, parse_note(text.encode("utf-8")))
        return ChangeResult("add", info, commit, external=tx.external, warnings=warnings)


def add_with_editor(root: Path, title: str, tags: Sequence[str], editor: EditorFn) -> ChangeResult:
    title = validate_title(title)
    _clean_tags(tags)
    existing = _find_title(Store(root), title) if root.is_dir() else None
    if existing:
        raise NoteExists(existing.title, existing.path)
    template = f"# {title}\n\n"
    draft = editor(template, file_stem(title))
    if draft.text == template or not draft.text.strip():
        draft.discard()
        from kb.errors import EditorError

        raise EditorError("nothing saved: the note was left unchanged")
    with _keeping(draft):
        result = add(root, title, tags, draft.text)
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
) -> ChangeResult:
    new_title = validate_title(title) if title is not None else None
    for text in (body, append):
        if text is not None:
            validate_text(text)
    adding = _clean_tags(add_tags)
    removing = _clean_tags(remove_tags)
    _require_kb(root, ref)
    with _transaction(root, scan=new_title is not None) as tx:
        path = _resolve(tx.store, ref)
        _, parsed = _load(tx.store, path)
        parsed = _editable(path, parsed)
        assert parsed.doc is not None
        old = _info(path, parsed)
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
        warnings = [f"the note has no tag '{t}'" for t in removing if t not in old.tags]
        new_tags = [t for t in old.tags if t not in removing] + [t for t in adding if t not in old.tags]
        updates: dict[str, str | list[str] | None] = {}
        if tuple(new_tags) != old.tags:
            updates["tags"] = new_tags or None
        renamed = new_title is not None and new_title != old.title
        if renamed:
            other = _find_title(tx.store, new_title or "", except_path=path)
            if other:
                raise NoteExists(other.title, other.path)
            updates["title"] = new_title
        from dataclasses import replace

        new_doc = replace(doc, body=sep + content)
        if not updates and new_doc.render() == doc.render():
            warnings.extend(_reindex_paths(tx, []) if tx.external_paths else ())
            return ChangeResult("unchanged", old, None, external=tx.external, warnings=tuple(warnings))
        updates["modified"] = tx.stamp
        new_doc = set_fields(new_doc, updates)
        rename_only = renamed and body is None and append is None and "tags" not in updates
        return _save(tx, path, new_doc.render(), old.title, renamed, rename_only, tuple(warnings))


def _with_newline(text: str, nl: str) -> str:
    """Inserted text in the note's own line ending, ending with one."""
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", nl)


def _save(
    tx: _Tx,
    path: str,
    text: str,
    old_title: str,
    renamed: bool,
    rename_only: bool,
    warnings: tuple[str, ...],
) -> ChangeResult:
    data = text.encode("utf-8")
    parsed = parse_note(data)
    title = parsed.title or title_from_stem(Path(path).stem)
    new_path = _free_path(tx.store, title, except_path=path) if renamed else path
    writes: dict[str, bytes | None] = {new_path: data}
    if new_path != path:
        writes[path] = None
    if renamed:
        action = "rename"
        message = f"Rename: {old_title} -> {title}" if rename_only else f"Edit: {title} (was {old_title})"
        message += f"\n\nKb-Renamed-From: {path}"
    else:
        action, message = "edit", f"Edit: {title}"
    moment = parse_timestamp(parsed.modified or "") or tx.now
    commit, index_warnings = tx.change_indexed(writes, message, moment, {path, new_path})
    warnings += index_warnings
    return ChangeResult(
        action,
        _info(new_path, parsed),
        commit,
        renamed_from=path if new_path != path else None,
        external=tx.external,
        warnings=warnings,
    )


def edit_with_editor(root: Path, ref: str, editor: EditorFn) -> ChangeResult:
    """The whole file in the editor; saved only if the editor succeeds and the text changed."""
    _require_kb(root, ref)
    with _transaction(root) as tx:
        path = _resolve(tx.store, ref)
        raw, parsed = _load(tx.store, path)
        external = tx.external
    if parsed.doc is None:
        raise BrokenNote(f"cannot edit {path}: {parsed.problem}")
    before = parsed.doc.render()
    draft = editor(before, Path(path).stem)
    if draft.text == before:
        draft.discard()
        return ChangeResult("unchanged", _info(path, parsed), None, external=external)
    with _keeping(draft), _transaction(root) as tx:
        if not tx.store.exists(path):
            raise KbError(f"{path} was deleted while you were editing it; nothing saved")
        if tx.store.read(path) != raw:
            raise KbError(f"{path} changed while you were editing it; nothing saved")
        new = parse_note(draft.text.encode("utf-8"))
        if new.problem or new.doc is None:
            raise BrokenNote(f"not saved: {new.problem}")
        old_title = _info(path, parsed).title
        title = new.title or old_title
        # A note whose title was unreadable (or absent) keeps its file name when a title is written.
        renamed = parsed.title is not None and title != old_title
        if renamed:
            validate_title(title)
            other = _find_title(tx.store, title, except_path=path)
            if other:
                raise NoteExists(other.title, other.path)
        new_doc = set_fields(new.doc, {"modified": tx.stamp})
        result = _save(tx, path, new_doc.render(), old_title, renamed, False, ())
    return ChangeResult(
        result.action,
        result.note,
        result.commit,
        result.renamed_from,
        external + tx.external,
        result.warnings,
    )


def _require_kb(root: Path, ref: str) -> None:
    """A change to a note needs a knowledge base that exists (nothing is created for a failing edit)."""
    if not root.is_dir():
        raise NoteNotFound(f"no note matches '{ref}' (there is no knowledge base at {root} yet)")


def move(root: Path, ref: str, new_title: str) -> ChangeResult:
    return edit(root, ref, title=new_title)


def remove(root: Path, ref: str) -> ChangeResult:
    _require_kb(root, ref)
    with _transaction(root) as tx:
        path = _resolve(tx.store, ref)
        _, parsed = _load(tx.store, path)
        info = _info(path, parsed)
        commit, warnings = tx.change_indexed({path: None}, f"Delete: {info.title}", tx.now, [path])
        return ChangeResult("delete", info, commit, external=tx.external, warnings=warnings)
