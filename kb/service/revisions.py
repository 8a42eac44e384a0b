"""History use cases: a note's revisions (through renames, deletion and re-creation), any old version,
diffs between any two versions, restoring an old version as a new revision."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.config import now
from kb.errors import BadLimit, KbError, NoteExists, NoteNotFound, UsageError
from kb.notes import (
    Document,
    format_timestamp,
    modified_of,
    parse_note,
    parse_timestamp,
    set_fields,
    title_from_path,
    title_key,
)
from kb.service.lookup import find_title, free_path, match_title, note_info, resolve_note
from kb.service.transaction import DATED_BY_MODIFIED, recover, transaction
from kb.store import Store
from kb.when import BadDate, parse_when

MAX_RENAME_HOPS = 200

if TYPE_CHECKING:
    from kb.diff import NoteDiff
    from kb.history import CommitInfo, History
    from kb.service.core import ChangeResult, ShowResult


@dataclass(frozen=True)
class Revision:
    number: int
    commit: str
    date: str  # the note's `modified` at this revision (the commit's author date if it has none)
    action: str
    message: str
    path: str
    added: int
    removed: int
    deleted: bool
    blob: str | None = field(default=None, metadata={"json": False})  # this version's blob id, where known

    @property
    def short(self) -> str:
        return self.commit[:8]


@dataclass(frozen=True)
class NoteLog:
    title: str
    path: str  # the current path (or the last one, for a deleted note)
    exists: bool
    revisions: tuple[Revision, ...]  # oldest first
    renamed_to: str | None = None  # where the note went, when its last revision renamed it away
    # ...and it was deleted there since (so renamed_to is no note now)
    renamed_to_gone: bool = field(default=False, metadata={"json": False})


@dataclass(frozen=True)
class Change:
    commit: str
    date: str
    action: str
    message: str
    paths: tuple[tuple[str, str], ...]  # (status letter, path)


@dataclass(frozen=True)
class RecentLog:
    changes: tuple[Change, ...]  # newest first
    total: int = 0  # commits in the history (what -n could show)


@dataclass(frozen=True)
class DiffResult:
    title: str
    diff: NoteDiff


def action_of(subject: str) -> str:
    """What a commit did, from kb's message: "Add: T" -> "add"; another tool's message -> "commit"."""
    if subject.startswith("Initialize knowledge base"):
        return "init"
    head, sep, _ = subject.partition(":")
    known = {"add", "edit", "rename", "move", "delete", "external edit", "restore", "import", "merge", "sync"}
    return head.strip().lower() if sep and head.strip().lower() in known else "commit"


def note_action(commit: CommitInfo, status: str) -> str:
    """What a commit did to the note at `commit.path`, whose status letter in it is `status` (A, M, D):
    its action_of, but "links" for a rename or move of another note that rewrote this one's links to it
    (the path changed in place, and the commit's Kb-Renamed-From trailer names another path)."""
    action = action_of(commit.subject)
    moved_other = f"Kb-Renamed-From: {commit.path}" not in commit.body.splitlines()
    return "links" if action in ("rename", "move") and status == "M" and moved_other else action


def _reader(root: Path) -> History:
    from kb.history import History

    if not (root / ".git").exists():
        raise NoteNotFound(f"there is no history at {root} yet")
    return History(root)


def _locate(root: Path, ref: str, missing: NoteNotFound | None = None) -> tuple[str, bool]:
    """The note's path, and whether it exists now. A deleted note is found by its title in history.
    `missing`: what resolve_note said of `ref` already (it names no note now)."""
    store = Store(root)
    if missing is None:
        try:
            return resolve_note(store, ref), True
        except NoteNotFound as exc:
            missing = exc
    reader = _reader(root)
    candidates: dict[str, str] = {}
    deleted = reader.deleted_paths(store.layout.notes)
    plain = ref.removeprefix("./")
    for wanted in (plain, store.prefix + plain):
        if any(path == wanted for _, path in deleted) and not (root / wanted).exists():
            return wanted, False
    newest: dict[str, str] = {}  # each deleted note's path -> its newest deletion
    for sha, path in deleted:
        if path not in newest and store.is_note_path(path) and not (root / path).exists():
            newest[path] = sha
    blobs = reader.read_blobs([f"{sha}^:{path}" for path, sha in newest.items()])
    for path, blob in zip(newest, blobs, strict=True):
        candidates[path] = parse_note(blob or b"").title_for(path)
    found = [path for path, _ in match_title(ref, list(candidates.items()))]
    if len(found) > 1:  # a note moved, then deleted: its first path was not deleted but moved
        moved = reader.moved_away([(newest[path], path) for path in found])
        found = [path for path in found if path not in moved] or found
    if len(found) == 1:
        return found[0], False
    if found:
        raise NoteNotFound(f"'{ref}' matches {len(found)} deleted notes: " + ", ".join(sorted(found)[:10]))
    raise missing


def _spec(commit: CommitInfo) -> str | None:
    """What to read for a commit's version of its note: the blob id where known, None where it deleted
    the note, else the `commit:path` git resolves."""
    if commit.blob is None:
        return f"{commit.sha}:{commit.path}"
    return commit.blob or None


def version_spec(revision: Revision) -> str:
    """What to read for a revision's version: its blob id where known, else `commit:path`."""
    return revision.blob or f"{revision.commit}:{revision.path}"


def revisions_of(root: Path, path: str, reader: History | None = None, counts: bool = True) -> list[Revision]:
    """Every revision of the note at `path`, oldest first, following renames back through history.
    `reader`: the repository, when the caller has it open already; `counts=False`: lines added and removed
    are not counted (left 0), for callers that show only the revisions' numbers and dates."""
    reader = reader if reader is not None else _reader(root)
    commits: list[Any] = []
    statuses: dict[str, str] = {}  # commit -> the note's path's status letter in it
    visited: set[tuple[str, str | None]] = set()
    pending: list[tuple[str, str | None]] = [(path, None)]
    while pending and len(visited) < MAX_RENAME_HOPS:
        current, until = pending.pop()
        if (current, until) in visited:
            continue
        visited.add((current, until))
        for commit, status in reader.path_log(current, until):
            # A rename that took this path's note elsewhere: what the path held before (and the rename)
            # is that note's history, not this one's (the path was taken again later: A -> B -> A, or a
            # new note at A). Only a log that starts at a path renamed away shows that rename.
            if status == "D" and commits and reader.renamed_away(commit):
                break
            commits.append(commit)
            statuses.setdefault(commit.sha, status)
            # Where this path was created by renaming another, the note's older history is there.
            if status == "A":
                source = reader.renamed_from(commit)
                if source and source != current:
                    pending.append((source, f"{commit.sha}^"))
    seen: set[str] = set()
    unique = []
    for commit in commits:
        if commit.sha not in seen:
            seen.add(commit.sha)
            unique.append(commit)
    versions = _Versions(reader, unique)
    modifieds = versions.modifieds()

    def when(i: int) -> datetime:
        """A revision's place in time: its commit's author date, which kb sets to the note's `modified`;
        a commit of many imported notes at once says so, and there each note's own `modified` counts."""
        modified = modifieds[i]
        if DATED_BY_MODIFIED in unique[i].body and modified:
            moment = parse_timestamp(modified)
            if moment is not None:
                return moment
        return unique[i].author_date

    order = sorted(range(len(unique)), key=lambda i: (when(i), -i))
    steps = list(zip([None, *order[:-1]], order, strict=True))
    changed = versions.changed(steps)
    line_counts = versions.line_counts(steps) if counts else [(0, 0)] * len(steps)
    revisions: list[Revision] = []
    for number, (i, (added, removed), new) in enumerate(zip(order, line_counts, changed, strict=True), 1):
        commit = unique[i]
        modified = modifieds[i]
        # The note's own `modified`, else the commit's date (also for a move, which leaves the text as it
        # was); one form for all: UTC with milliseconds.
        own = parse_timestamp(modified) if modified and new else None
        moment = format_timestamp(own or commit.author_date)
        revisions.append(
            Revision(
                number,
                commit.sha,
                moment,
                note_action(commit, statuses[commit.sha]),
                commit.subject,
                commit.path,
                added,
                removed,
                versions.deleted(i),
                commit.blob or None,
            )
        )
    versions.keep()
    return revisions


_EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's id of an empty file


class _Versions:
    """The versions of a note's revisions (`commits`, by index), with what kb log works out of each: its
    `modified` and the lines added and removed from the one before. Kept in the revision cache by blob id
    (a version never changes), so that a note's log reads only the versions new since the last one; a
    version whose id is not known (no cache) is read and worked out each time."""

    def __init__(self, reader: History, commits: list[Any]) -> None:
        from kb.history import CacheUnavailable

        self.reader = reader
        self.commits = commits
        # Each version's key: its blob id, "" for no text (deleted, or an empty file), None where the id
        # is not known.
        self.keys: list[str | None] = [
            None if c.blob is None else "" if not c.blob or c.blob == _EMPTY_BLOB else c.blob for c in commits
        ]
        self.texts: dict[int, bytes | None] = {}  # the versions read
        self.cache = None
        self.known: dict[str, str | None] = {}
        try:
            self.cache = reader.revision_cache()
            self.known = self.cache.versions([k for k in self.keys if k])
        except CacheUnavailable:
            self.cache = None
        self.new_versions: dict[str, str | None] = {}
        self.new_counts: dict[tuple[str, str], tuple[int, int]] = {}

    def _read(self, wanted: Iterable[int]) -> None:
        missing = sorted({i for i in wanted if i not in self.texts})
        if missing:
            texts = self.reader.read_blobs([_spec(self.commits[i]) for i in missing])
            self.texts.update(zip(missing, texts, strict=True))

    def deleted(self, i: int) -> bool:
        """Whether revision `i` deleted the note (or its version cannot be read)."""
        blob = self.commits[i].blob
        return (blob is not None and not blob) or (i in self.texts and self.texts[i] is None)

    def _key(self, i: int | None) -> str | None:
        """What stands for version `i`'s text ("" for none); None when only its text tells."""
        if i is None or self.deleted(i):
            return ""
        return self.keys[i]

    def _text(self, i: int | None) -> bytes:
        return b"" if i is None else self.texts.get(i) or b""

    def modifieds(self) -> list[str | None]:
        self._read(i for i, key in enumerate(self.keys) if key is None or (key and key not in self.known))
        found: list[str | None] = []
        for i, key in enumerate(self.keys):
            if key and key in self.known:
                found.append(self.known[key])
                continue
            text = self.texts.get(i)
            modified = modified_of(text) if text is not None and not self.deleted(i) else None
            if key:
                self.new_versions[key] = modified
            found.append(modified)
        return found

    def changed(self, steps: list[tuple[int | None, int]]) -> list[bool]:
        """For each (previous, this) step: whether the text changed."""
        unkeyed = [step for step in steps if self._key(step[0]) is None or self._key(step[1]) is None]
        self._read(j for step in unkeyed for j in step if j is not None)
        return [
            self._key(a) != self._key(b)
            if self._key(a) is not None and self._key(b) is not None
            else self._text(a) != self._text(b)
            for a, b in steps
        ]

    def line_counts(self, steps: list[tuple[int | None, int]]) -> list[tuple[int, int]]:
        """For each (previous, this) step: the lines added and removed."""
        from kb.history import CacheUnavailable

        pairs = [(self._key(a), self._key(b)) for a, b in steps]
        known: dict[tuple[str, str], tuple[int, int]] = {}
        keyed = [(a, b) for a, b in pairs if a is not None and b is not None]
        if self.cache is not None and keyed:
            try:
                known = self.cache.counts(keyed)
            except CacheUnavailable:
                self.cache = None
        todo = [step for step, pair in zip(steps, pairs, strict=True) if pair not in known]
        self._read(j for step in todo for j in step if j is not None)
        found: list[tuple[int, int]] = []
        for (a, b), (ka, kb_) in zip(steps, pairs, strict=True):
            if ka is not None and kb_ is not None and (ka, kb_) in known:
                found.append(known[(ka, kb_)])
                continue
            counted = _line_counts(self._text(a), self._text(b))
            if ka is not None and kb_ is not None:
                self.new_counts[(ka, kb_)] = counted
            found.append(counted)
        return found

    def keep(self) -> None:
        if self.cache is not None:
            self.cache.keep(self.new_versions, self.new_counts)


def _line_counts(a: bytes, b: bytes) -> tuple[int, int]:
    from kb.diff import line_counts  # imported where counted: kb blame never counts

    return line_counts(a, b)


def deleted_note(root: Path, ref: str, missing: NoteNotFound | None = None) -> NoteNotFound | None:
    """For a NOTE that names no note now but a deleted one: an error that says when it was deleted and
    the command that brings it back. None when it names no deleted note either. `missing`: what
    resolve_note said of `ref` already."""
    if not (root / ".git").exists():
        return None
    try:
        log = note_log(root, ref, missing=missing)
    except KbError:
        return None
    if log.exists or not log.revisions or not log.revisions[-1].deleted:
        return None
    gone = log.revisions[-1]
    now_at = _renamed_away(root, log)
    if now_at is not None:
        where = f"it is {now_at} now" if (root / now_at).exists() else f"{now_at}, its last name, is gone too"
        return _renamed(log, where)
    last = gone.number - 1
    quoted = "'" + log.title.replace("'", "'\\''") + "'"
    return NoteNotFound(
        f"'{log.title}' ({log.path}) was deleted in revision {gone.number} on {gone.date[:10]}; "
        f"bring it back with: kb restore {quoted} {last}"
    )


def _renamed(log: NoteLog, where: str) -> NoteNotFound:
    """The error for a NOTE that names a note by a name it was renamed from (`where`: where it went)."""
    gone = log.revisions[-1]
    return NoteNotFound(
        f"'{log.title}' ({log.path}) was renamed in revision {gone.number} on {gone.date[:10]}; {where}"
    )


def _renamed_away(root: Path, log: NoteLog) -> str | None:
    """Where the note of a log that ends in its path's deletion went, when that deletion was a rename."""
    gone = log.revisions[-1]
    return _renamed_to(root, log.path, gone) if gone.action in ("rename", "move", "restore") else None


def _renamed_to(root: Path, path: str, gone: Revision) -> str | None:
    """The path the note that left `path` in `gone`'s commit has now, or had last (through later renames)."""
    renames = _reader(root).renames()
    start = next((i for i, (sha, old, _) in enumerate(renames) if sha == gone.commit and old == path), None)
    if start is None:
        return None
    current = renames[start][2]
    for _, old, new in renames[start + 1 :]:
        if old == current:
            current = new
    return current


def note_log(root: Path, ref: str, counts: bool = True, missing: NoteNotFound | None = None) -> NoteLog:
    """The note's revisions (with `counts=False`, their lines added and removed left 0). `missing`: what
    resolve_note said of `ref` already (it names no note now: only deleted notes are looked at)."""
    recover(root)
    path, exists = _locate(root, ref, missing)
    revisions = revisions_of(root, path, counts=counts)
    if not revisions:
        raise NoteNotFound(f"{path} has no revisions yet (it is not committed)")
    title = title_from_path(path)
    blob_title = None
    if exists:
        blob_title = parse_note(Store(root).read(path)).title_for(path)
    else:
        last_content = [r for r in revisions if not r.deleted]
        if last_content:
            [blob] = _reader(root).read_blobs([version_spec(last_content[-1])])
            blob_title = parse_note(blob or b"").title_for(path)
    log = NoteLog(blob_title or title, path, exists, tuple(revisions))
    if not exists and revisions and revisions[-1].deleted:
        now_at = _renamed_away(root, log)
        if now_at is not None:
            return replace(log, renamed_to=now_at, renamed_to_gone=not Store(root).exists(now_at))
    return log


def recent(root: Path, limit: int = 20) -> RecentLog:
    if limit < 1:
        raise BadLimit()
    if not (root / ".git").exists():
        return RecentLog(())
    recover(root)
    changes = []
    store = Store(root)
    # a few more than asked: commits that touched no note (kb's settings, other files) are passed over
    pathspec = store.layout.notes or "."
    reader = _reader(root)
    looked = reader.recent(limit + 10, pathspec)
    for commit, paths in looked:
        paths = [(status, path) for status, path in paths if store.is_note_path(path)]
        if not paths:
            continue
        changes.append(
            Change(
                commit.sha,
                format_timestamp(commit.author_date),  # UTC, as a note's revisions are dated
                action_of(commit.subject),
                commit.subject,
                tuple(paths),
            )
        )
    # every commit was looked at, or how many touched the notes' folder (what -n N could show, or about)
    total = len(changes) if len(looked) < limit + 10 else reader.commit_count(pathspec)
    return RecentLog(tuple(changes[:limit]), total)


# ---------------------------------------------------------------- revision references

_NUMBER = re.compile(r"^[-~]?\d{1,6}$")
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")


def _range_text(revisions: tuple[Revision, ...] | list[Revision]) -> str:
    n = len(revisions)
    older = f", -1..-{n - 1}" if n > 1 else ""
    return f"1..{n}{older}, a commit id of this note, or a date"


def pick(revisions: tuple[Revision, ...] | list[Revision], rev: str) -> Revision:
    """REV: a number (1 = oldest), a negative offset (-1 = the one before the latest; ~1 the same),
    a commit id or prefix, or a date kb.when reads (the version current at the end of it)."""
    text = rev.strip()
    n = len(revisions)
    if _NUMBER.match(text):
        number = int(text.replace("~", "-"))
        index = number - 1 if number > 0 else n - 1 + number
        if 0 <= index < n:
            return revisions[index]
        raise UsageError(f"there is no revision {text}: this note has {_range_text(revisions)}")
    if _HEX.match(text):
        found = [r for r in revisions if r.commit.startswith(text.lower())]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UsageError(f"'{text}' matches {len(found)} revisions; give more of the commit id")
    try:
        moment = parse_when(text, now()).last
    except BadDate:
        moment = None
    if moment is not None:
        current = [
            r for r in revisions if (parse_timestamp(r.date) or datetime.min.replace(tzinfo=UTC)) <= moment
        ]
        if current:
            return current[-1]
        raise UsageError(
            f"the note did not exist yet on {text}; its first revision is dated {revisions[0].date}"
        )
    raise UsageError(f"unknown revision '{text}': use {_range_text(revisions)} (kb help dates)")


def without_content(revision: Revision, what: str) -> KbError:
    """The error for a revision that is no version of the note (`what` it has not): its deletion, or a
    rename or move that took it away from this path."""
    if revision.action in ("rename", "move"):
        return KbError(
            f"revision {revision.number} took the note away from {revision.path} ({revision.message}); "
            f"it has no {what} there"
        )
    return KbError(f"revision {revision.number} is the deletion of the note; it has no {what}")


def _content(root: Path, revision: Revision) -> bytes:
    if revision.deleted:
        raise without_content(revision, "content")
    [blob] = _reader(root).read_blobs([version_spec(revision)])
    if blob is None:
        raise KbError(f"cannot read revision {revision.number} ({revision.short})")
    return blob


def show_revision(root: Path, ref: str, rev: str) -> ShowResult:
    from kb.service.core import ShowResult

    log = note_log(root, ref)
    revision = pick(log.revisions, rev)
    raw = _content(root, revision)
    parsed = parse_note(raw)
    return ShowResult(note_info(revision.path, parsed), raw, parsed.body, dict(parsed.extra))


def diff(root: Path, ref: str, a: str | None = None, b: str | None = None) -> DiffResult:
    """A against B; A alone: A against the current file; neither: the previous revision against the
    current file (uncommitted changes included)."""
    log = note_log(root, ref)
    revisions = log.revisions
    store = Store(root)
    current = store.read(log.path) if log.exists else None

    def version(rev: str | None) -> tuple[bytes, str, str]:
        if rev is None:
            if current is None:
                now_at = _renamed_away(root, log) if revisions and revisions[-1].deleted else None
                if now_at is not None:
                    raise _renamed(log, f"it is {now_at} now: compare its versions by that name")
                raise KbError(f"'{log.title}' is deleted; name two revisions to compare")
            return current, log.path, "current"
        revision = pick(revisions, rev)
        return _content(root, revision), revision.path, f"revision {revision.number} ({revision.short})"

    if a is None:
        with_content = [r for r in revisions if not r.deleted]
        last = with_content[-1] if with_content else None
        committed = _content(root, last) if last else b""
        base: Revision | None
        if current is not None and last is not None and current != committed:
            base = last  # uncommitted changes: compare with the latest revision
        else:
            base = with_content[-2] if len(with_content) > 1 else with_content[0] if with_content else None
        if base is None:
            raise KbError(f"'{log.title}' has no earlier revision to compare with")
        a = str(base.number)
    a_raw, a_path, a_label = version(a)
    b_raw, b_path, b_label = version(b)
    from kb.diff import note_diff

    return DiffResult(log.title, note_diff(a_raw, b_raw, a_path, b_path, a_label, b_label))


# ---------------------------------------------------------------- restore


def _same_name(a: str, b: str) -> bool:
    return a.rpartition("/")[2] == b.rpartition("/")[2]


def restore(root: Path, ref: str, rev: str, title_too: bool = False) -> ChangeResult:
    """The note becomes that revision's content (tags, body), `created` kept and `modified` now, as a new
    revision. The note keeps its current title and file (a revision from before a rename is restored under
    today's name, so its log stays one line); `title_too` takes that revision's title (and file name) back
    as well. Brings back a deleted note too, under its last title."""
    from kb.service.core import ChangeResult, with_links_line
    from kb.service.links import plan_link_updates

    log = note_log(root, ref)
    revision = pick(log.revisions, rev)
    now_at = _renamed_away(root, log) if not log.exists and log.revisions[-1].deleted else None
    if now_at is not None and (root / now_at).exists():  # the note is there under another name
        raise _renamed(log, f"it is {now_at} now: restore it by that name")
    old_raw = _content(root, revision)
    old = parse_note(old_raw)
    if old.problem or old.doc is None:
        raise KbError(f"revision {revision.number} cannot be restored: {old.problem}")
    with transaction(root, scan=True) as tx:
        current_path = log.path if tx.store.exists(log.path) else None
        current_raw = tx.store.read(current_path) if current_path else None
        if current_raw == old_raw:
            raise KbError(
                f"revision {revision.number} is the current version of {current_path}: nothing to restore"
            )
        current = parse_note(current_raw) if current_raw is not None else None
        old_title = old.title_for(revision.path)
        doc = old.doc
        updates: dict[str, str | list[str] | None] = {"modified": tx.stamp}
        if current is not None and current_path is not None and not title_too:
            title = current.title_for(current_path)
            if title_key(title) != title_key(old_title):
                if old.title is not None:
                    updates["title"] = title
                elif old.heading is not None:
                    doc = _with_heading(doc, old.heading, title)
            path = current_path
        else:
            title = old_title
            back: str | None = None  # where a deleted note comes back
            if current_path is None:
                if _same_name(log.path, revision.path) and not tx.store.exists(log.path):
                    back = log.path  # where it was last (a folder it moved to)
                elif not tx.store.exists(revision.path):
                    back = revision.path
            at = current_path or back
            where = tx.store.layout.folder_of(at) if at else None
            other = find_title(tx.store, title, except_path=current_path, folder=where)
            if other:
                raise NoteExists(other.title, other.path, "rename it first, or restore without --title-too")
            same = current is not None and title_key(title) == title_key(
                current.title_for(current_path or "")
            )
            if current_path and same:
                path = current_path
            elif current_path:  # renamed where it is, as kb edit --title does
                path = free_path(tx.store, title, except_path=current_path, folder=where or "")
            else:
                path = back or free_path(tx.store, title)
        if current is not None and current.created and current.created != old.created:
            updates["created"] = current.created
        if not old.modified and tx.store.layout.in_place:
            del updates["modified"]  # a vault's note without dates gets none
        doc = set_fields(doc, updates) if updates else doc
        data = doc.render().encode("utf-8")
        writes: dict[str, bytes | None] = {path: data}
        message = f"Restore: {title} to revision {revision.number}"
        links = None
        if current_path and current_path != path:
            writes[current_path] = None
            # the note takes another name back: the links to it follow, as after kb mv
            links = plan_link_updates(tx.root, tx.store, current_path, path, title, data, tx.stamp)
            writes.update(links.writes)
            data = writes[path] or data
            message = with_links_line(message, links)
            message += f"\n\nKb-Renamed-From: {current_path}"
        touched = set(writes)
        commit, warnings = tx.change_indexed(writes, message, tx.now, touched)
        return ChangeResult(
            "restore",
            note_info(path, parse_note(data)),
            commit,
            renamed_from=current_path if current_path and current_path != path else None,
            external=tx.external,
            warnings=warnings + (links.warnings if links else ()),
            links_updated=links.links if links else 0,
            link_notes=links.notes if links else 0,
        )


def _with_heading(doc: Document, old: str, new: str) -> Document:
    """The document with its first-line `# old` heading reading `# new`."""
    lead = len(doc.body) - len(doc.body.lstrip("\r\n\t "))
    lead = doc.body.rfind("\n", 0, lead) + 1  # from the start of that line
    first, nl, rest = doc.body[lead:].partition("\n")
    found = re.match(r"^([ \t]*#[ \t]+)(.*?)([ \t]*#*[ \t]*\r?)$", first)
    if found is None or found.group(2).strip() != old:
        return doc
    return replace(doc, body=doc.body[:lead] + found.group(1) + new + found.group(3) + nl + rest)
