"""The knowledge base in time: WHEN read (a date or a commit id), the notes as they were at a moment
(`--as-of`), what changed in a window (`kb changes`), and who wrote each line (`kb blame`).

The state at a moment is the tree of a commit: the newest commit on HEAD's first-parent line whose moment is
not after it. A commit's moment is the latest author date (the notes' own time) among it and the commits
before it on that line that changed a note: a commit rebased or cherry-picked onto newer ones keeps its
older author date, and its tree holds the newer ones' notes, so it counts from the latest of them; a commit
that changed no note (a knowledge base's first, with .gitignore, under a history replayed by `kb import
--history`) counts for nothing. `kb changes` takes a commit into a window by its moment too (the latest
author date among it and the commits before it in the revision cache's order, the same on a line without
merges; those that changed no note again left out). Its notes are read from git by blob id; what kb lists of
a version (title, tags, dates) is kept per blob in `index/versions.sqlite3` (derived, rebuildable), so a
second look at the same moment parses nothing. What `kb changes` reports of a note between two versions
(lines added and removed, sections changed) is kept there too, per pair of blobs.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kb.config import now
from kb.errors import AmbiguousNote, KbError, NoteNotFound, UsageError
from kb.notes import format_timestamp, parse_note, title_from_path
from kb.service.lookup import NoteInfo, match_title
from kb.store import Store
from kb.when import When, looks_like_commit, parse_when

if TYPE_CHECKING:
    from kb.history import History
    from kb.service.links import LinksResult
    from kb.service.revisions import Revision

VERSIONS_DB = "versions.sqlite3"
VERSIONS_FORMAT = "1"
SUMMARIES_FORMAT = "1"  # bump when kb.diff.change_summary changes what it counts
_SEP = "\x1f"
DEFAULT_SINCE = "7 days ago"  # kb changes without --since


@dataclass(frozen=True)
class AsOf:
    """A resolved moment: the commit whose tree was the knowledge base then."""

    text: str  # what the user typed
    commit: str
    date: str  # that commit's date (UTC, as kb writes dates)


def _history(root: Path) -> History:
    from kb.history import History

    if not (root / ".git").exists():
        raise NoteNotFound(f"there is no history at {root} yet")
    return History(root)


def read_when(root: Path, text: str, what: str = "date") -> When:
    """A WHEN: a date kb.when reads, or a commit id (the moment of that commit: see the module's docstring;
    its author date when it is not on HEAD's first-parent line)."""
    if looks_like_commit(text) and (root / ".git").exists():
        history = _history(root)
        found = history.commit_of(text.strip())
        if found is not None:
            line = _note_line(history, root)
            on_line = [m for (sha, _), m in zip(line, _line_moments(line), strict=True) if sha == found[0]]
            moment = on_line[0] if on_line else found[1]
            return When(moment, moment, text)
    return parse_when(text, now(), what)


def _note_line(history: History, root: Path) -> list[tuple[str, datetime]]:
    """HEAD's first-parent line (History.first_parent_dates) without the commits that changed no note
    (they leave the notes as they were)."""
    changed = set(history.commits_changing(_note_globs()).values())
    return [(sha, date) for sha, date in history.first_parent_dates() if sha in changed]


def _note_globs() -> list[str]:
    """SQLite GLOB patterns of the files that can be notes: Markdown files anywhere (the notes root may
    have been another folder then)."""
    from kb.layout import MARKDOWN_SUFFIXES

    return [f"*{suffix}" for suffix in MARKDOWN_SUFFIXES]


def _line_moments(line: Sequence[tuple[str, datetime]]) -> list[datetime]:
    """The moments of HEAD's first-parent line given newest first (History.first_parent_dates), in its
    order."""
    from kb.history import moments

    return moments([date for _, date in reversed(line)])[::-1]


def as_of(root: Path, text: str) -> AsOf:
    """The commit that was the knowledge base at the end of WHEN (a commit id: that commit)."""
    if not text.strip():
        raise UsageError("--as-of needs a date or a commit id (kb help dates)")
    history = _history(root)
    if looks_like_commit(text):
        found = history.commit_of(text.strip())
        if found is not None:
            return AsOf(text, found[0], format_timestamp(found[1]))
        if not re.fullmatch(r"\d+", text.strip()):
            raise UsageError(f"there is no commit '{text.strip()}' in this knowledge base's history")
    moment = parse_when(text, now(), "date").last
    # commits that changed no note (the first one, with .gitignore; settings) leave the notes as they were
    line = _note_line(history, root)
    for (sha, date), reached in zip(line, _line_moments(line), strict=True):
        if reached <= moment:
            return AsOf(text, sha, format_timestamp(date))
    if not line:
        raise NoteNotFound("the knowledge base has no revisions yet")
    first = format_timestamp(line[-1][1])
    raise NoteNotFound(f"the knowledge base had no revisions yet on {text}; its first is dated {first}")


# ---------------------------------------------------------------- the notes at a moment


@dataclass(frozen=True)
class Version:
    """One note as it was at a moment."""

    info: NoteInfo
    blob: str


def notes_at(root: Path, moment: AsOf) -> list[Version]:
    """Every note in the commit's tree, with its title, tags and dates as they were."""
    store = Store(root)
    history = _history(root)
    files = [
        (path, blob)
        for path, blob in history.tree(moment.commit, store.layout.notes)
        if store.is_note_path(path)
    ]
    meta = _versions(root, history, [blob for _, blob in files])
    spans = _git_dates(history, moment.commit)
    result = []
    for path, blob in files:
        title, heading, tags, created, modified, problem = meta[blob]
        first, last = spans.get(path, (None, None))
        info = NoteInfo(
            title=title or heading or title_from_path(path),
            path=path,
            tags=tuple(t for t in tags.split(_SEP) if t),
            created=created or first,
            modified=modified or last,
            problem=problem,
        )
        result.append(Version(info, blob))
    return result


Meta = tuple[str | None, str | None, str, str | None, str | None, str | None]


def _versions(
    root: Path, history: History, blobs: Sequence[str], known: dict[str, bytes | None] | None = None
) -> dict[str, Meta]:
    """What kb lists of each blob (title, heading, tags, created, modified, problem), from the cache or
    parsed now (and kept); `known` holds contents already read."""
    found = _cached_versions(root, blobs)
    missing = [b for b in sorted(set(blobs)) if b not in found]
    fresh: dict[str, Meta] = {}
    for start in range(0, len(missing), 1000):
        chunk = missing[start : start + 1000]
        given = known if known is not None else {}
        unread = [b for b in chunk if b not in given]
        read = dict(zip(unread, history.read_blobs(unread), strict=True)) if unread else {}
        for blob in chunk:
            fresh[blob] = _meta_of(given[blob] if blob in given else read[blob])
    _keep_versions(root, fresh)
    return found | fresh


def _meta_of(raw: bytes | None) -> Meta:
    parsed = parse_note(raw or b"", with_extra=False)
    created, modified = parsed.dates
    return (parsed.title, parsed.heading, _SEP.join(parsed.all_tags), created, modified, parsed.problem)


def _cached_versions(root: Path, blobs: Sequence[str]) -> dict[str, Meta]:
    """The cache's records of these blobs (those it holds)."""
    wanted = sorted(set(blobs))
    found: dict[str, Meta] = {}
    db = _open_versions(root) if wanted else None
    if db is None:
        return found
    try:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(f"SELECT * FROM versions WHERE blob IN ({marks})", chunk):
                found[row[0]] = tuple(row[1:])
    except sqlite3.Error:
        return {}  # a damaged cache is not used: everything is parsed again
    finally:
        db.close()
    return found


def _keep_versions(root: Path, fresh: dict[str, Meta]) -> None:
    _keep(
        root,
        "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(b, *m) for b, m in fresh.items()],
    )


def _keep(root: Path, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Rows written into the cache of versions (nothing when it cannot be opened or written: derived)."""
    if not rows:
        return
    db = _open_versions(root)
    if db is None:
        return
    try:
        db.executemany(sql, rows)
        db.commit()
    except sqlite3.Error:
        pass  # a cache that cannot be written is simply not kept
    finally:
        db.close()


def _table(db: sqlite3.Connection, key: str, version: str, table: str, columns: str) -> None:
    """`table` made anew (empty) unless the meta row `key` says it has the layout `version`."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None or row[0] != version:
        db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute(f"CREATE TABLE {table} {columns}")
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, version))
        db.commit()


def _open_versions(root: Path) -> sqlite3.Connection | None:
    folder = root / "index"
    try:
        folder.mkdir(exist_ok=True)
        db = sqlite3.connect(folder / VERSIONS_DB, timeout=10)
        db.execute("PRAGMA synchronous=OFF")  # derived and rebuildable: no waiting for the disk
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        _table(
            db,
            "format",
            VERSIONS_FORMAT,
            "versions",
            "(blob TEXT PRIMARY KEY, title TEXT, heading TEXT, tags TEXT, created TEXT, modified TEXT,"
            " problem TEXT)",
        )
        _table(
            db,
            "summaries",
            SUMMARIES_FORMAT,
            "summaries",
            "(before TEXT, after TEXT, added INTEGER, removed INTEGER, sections TEXT,"
            " PRIMARY KEY (before, after)) WITHOUT ROWID",
        )
        return db
    except (sqlite3.Error, OSError):
        return None


Summary = tuple[int, int, tuple[str, ...]]


def _cached_summaries(root: Path, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Summary]:
    """kb.diff.change_summary of each (before, after) pair of blob ids ("" for no version) that the cache
    holds."""
    found: dict[tuple[str, str], Summary] = {}
    wanted = sorted(set(pairs))
    db = _open_versions(root)
    if db is None:
        return found
    try:
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            marks = ",".join("(?, ?)" for _ in chunk)
            sql = (
                "SELECT s.before, s.after, s.added, s.removed, s.sections FROM summaries s"
                f" JOIN (VALUES {marks}) w ON s.before = w.column1 AND s.after = w.column2"
            )
            for before, after, added, removed, titles in db.execute(sql, [x for p in chunk for x in p]):
                found[(before, after)] = (int(added), int(removed), tuple(json.loads(titles)))
    except (sqlite3.Error, ValueError, TypeError):
        return {}  # a damaged cache is not used
    finally:
        db.close()
    return found


def _keep_summaries(root: Path, fresh: dict[tuple[str, str], Summary]) -> None:
    rows = [
        (a, b, added, removed, json.dumps(list(titles))) for (a, b), (added, removed, titles) in fresh.items()
    ]
    _keep(root, "INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?, ?)", rows)


def _git_dates(history: History, commit: str) -> dict[str, tuple[str, str]]:
    """Each path's first and last commit dates up to `commit`, for notes that carry no dates."""
    return {
        path: (format_timestamp(datetime.fromisoformat(a)), format_timestamp(datetime.fromisoformat(b)))
        for path, (a, b) in history.path_dates(until=commit).items()
    }


def find_at(notes: Sequence[Version], ref: str, moment: AsOf, prefix: str = "") -> Version:
    """NOTE among the notes of a moment: a path (with or without .md, from the root or the notes root), a
    file name, a title, a prefix of a title."""
    if not ref.strip():
        raise UsageError("NOTE is empty")
    plain = ref.removeprefix("./")
    by_path = {v.info.path: v for v in notes}
    for candidate in (plain, f"{plain}.md", f"{prefix}{plain}", f"{prefix}{plain}.md"):
        if candidate in by_path:
            return by_path[candidate]
    found = match_title(ref, [(v.info.path, v.info.title) for v in notes])
    if len(found) == 1:
        return by_path[found[0][0]]
    if found:
        names = ", ".join(f"'{title}' ({path})" for path, title in found[:10])
        raise AmbiguousNote(
            f"'{ref}' matched {len(found)} notes on {moment.text}: {names}; name one by its path"
        )
    raise NoteNotFound(
        f"no note matched '{ref}' on {moment.text} (as of revision {moment.commit[:8]}, {moment.date})"
    )


def infos_as_of(root: Path, text: str) -> list[NoteInfo]:
    """The notes' records as they were at the end of WHEN (for kb list and kb tags)."""
    return [version.info for version in notes_at(root, as_of(root, text))]


@dataclass(frozen=True)
class OldNote:
    """A note as it was at a moment (for kb show --as-of)."""

    info: NoteInfo
    raw: bytes
    moment: AsOf


def note_as_of(root: Path, ref: str, text: str) -> OldNote:
    moment = as_of(root, text)
    version = find_at(notes_at(root, moment), ref, moment, Store(root).prefix)
    [raw] = _history(root).read_blobs([version.blob])
    return OldNote(version.info, raw or b"", moment)


# ---------------------------------------------------------------- what changed


@dataclass(frozen=True)
class NoteChange:
    """One note's changes in a window."""

    title: str
    kind: str  # added, edited, renamed, moved, deleted, restored
    path: str  # its path at the end of the window (the last one, if deleted)
    old_path: str | None  # its path before, when renamed or moved
    revisions: int  # kb's revisions of it in the window
    added: int  # lines, the window's first version against its last
    removed: int
    sections: tuple[str, ...]  # sections added, removed or changed
    first: str  # the first and last change's dates in the window
    last: str
    commits: tuple[str, ...]
    patch: str = ""  # the diff, with --patch


@dataclass(frozen=True)
class ChangesResult:
    since: str
    until: str
    changes: tuple[NoteChange, ...]  # newest last change first


def _renames_in(
    body: str, added: list[str], deleted: list[tuple[str, str | None]], blobs: dict[str, str | None]
) -> dict[str, str]:
    """new path -> old path for the renames a commit made: kb's trailer, else a deleted file whose blob an
    added one has."""
    found: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("Kb-Renamed-From: ") and len(added) == 1:
            found[added[0]] = line.split(": ", 1)[1].strip()
    gone = {blob: path for path, blob in deleted if blob}
    for path in added:
        if path not in found and blobs.get(path) in gone:
            found[path] = gone[blobs[path] or ""]
    return found


def changes(
    root: Path,
    since: str | None = None,
    until: str | None = None,
    refs: Sequence[str] = (),
    patch: bool = False,
) -> ChangesResult:
    """Every note changed between `since` (default: 7 days ago, from the start of that day, as `--since
    "7 days ago"` reads) and `until` (default: now), one entry each, newest first. A commit is in the window
    by its moment (the module's docstring)."""
    from kb.diff import unified
    from kb.history.revcache import CacheUnavailable
    from kb.service.revisions import action_of
    from kb.service.transaction import recover

    for value, option in ((since, "--since"), (until, "--until")):
        if value is not None and not value.strip():
            raise UsageError(f"{option} needs a date or a commit id (kb help dates)")
    recover(root)
    start = read_when(root, since if since is not None else DEFAULT_SINCE, "--since").start
    end = read_when(root, until, "--until").last if until is not None else now()
    if end < start:
        raise UsageError(f"--until ({format_timestamp(end)}) is before --since ({format_timestamp(start)})")
    window = ChangesResult(format_timestamp(start), format_timestamp(end), ())
    if not (root / ".git").exists():
        return window
    store = Store(root)
    history = _history(root)
    try:
        counted = set(history.commits_changing(_note_globs()))
        rows = [r for r, moment in _with_moments(history.commit_rows(), counted) if start <= moment <= end]
        if not rows:
            return window
        low, high = rows[0][0], rows[-1][0]
        inside = {r[0]: r for r in rows}
        by_commit: dict[int, list[tuple[str, str, str | None]]] = {}
        for n, path, status, blob in history.changes_between(low, high):
            if n in inside and store.is_note_path(path):
                by_commit.setdefault(n, []).append((path, status, blob))
        wanted = _wanted_paths(root, refs) if refs else None
        # follow each note through the window, keyed by its path when the window opens
        key_of: dict[str, str] = {}
        notes: dict[str, _Track] = {}
        for n in sorted(by_commit):
            _, sha, date, subject, body = inside[n]
            entries = by_commit[n]
            added = [p for p, s, _ in entries if s == "A"]
            deleted = [(p, history.blob_before(p, n)[1]) for p, s, _ in entries if s == "D"]
            renames = _renames_in(body, added, deleted, {p: b for p, _, b in entries})
            moved_away = set(renames.values())
            for path, status, blob in entries:
                if status == "D" and path in moved_away:
                    continue
                origin = renames.get(path)
                if origin:
                    key = key_of.pop(origin, origin)
                else:
                    key = key_of.get(path) or path
                    if path not in key_of and key in notes:
                        # the note that had this path moved away in the window: this is another note,
                        # new here (a key of its own, with no version before the window)
                        key = f"{path}{_NEW}{n}"
                key_of[path] = key
                track = notes.setdefault(key, _Track(first_n=n))
                track.path, track.status, track.blob = path, status, blob
                track.renamed = track.renamed or origin is not None
                track.commits.append(sha)
                track.actions.append(action_of(subject))
                track.dates.append(format_timestamp(datetime.fromisoformat(date)))
        results = []
        chosen = [(key, t) for key, t in notes.items() if wanted is None or {t.path, _first(key)} & wanted]
        # a note's first change in the window is its path's first there too: its version before the
        # window is its path's last change before the window
        before_window = history.blobs_before([key for key, _ in chosen if _NEW not in key], low)
        befores = [before_window.get(key) for key, _ in chosen]
        after_blobs = [t.blob if t.status != "D" else None for _, t in chosen]
        pairs = [(a or "", b or "") for a, b in zip(befores, after_blobs, strict=True)]
        # the versions are read only where the cache lacks their summary (or for --patch)
        summaries = {} if patch else _cached_summaries(root, pairs)
        todo = [pair for pair in dict.fromkeys(pairs) if pair not in summaries]
        listed = [b for b in [*befores, *after_blobs] if b]
        meta = _cached_versions(root, listed)
        lacking = {b for b in listed if b not in meta}
        fresh, parsed, known = _summarise(history, todo, lacking, keep=patch)
        meta.update(parsed)
        _keep_versions(root, parsed)
        meta.update(_versions(root, history, [b for b in listed if b not in meta]))
        for i, (key, track) in enumerate(chosen):
            path, before, after = track.path, befores[i], after_blobs[i]
            kind = _kind(
                before is not None,
                track.status == "D",
                track.renamed,
                _first(key),
                path,
                track.actions,
                store,
            )
            if after is not None:
                title, heading = meta[after][:2]
                title = title or heading or title_from_path(path)
            else:
                old_meta = meta.get(before or "")
                title = (old_meta[0] or old_meta[1] if old_meta else None) or title_from_path(_first(key))
            old_raw = known.get(before or "") or b""
            new_raw = known.get(after or "") or b""
            added_lines, removed_lines, sections = summaries.get(pairs[i]) or fresh[pairs[i]]
            patch_text = unified(old_raw, new_raw, _first(key), path) if patch else ""
            results.append(
                NoteChange(
                    title=title,
                    kind=kind,
                    path=path,
                    old_path=_first(key) if _first(key) != path else None,
                    revisions=len(track.commits),
                    added=added_lines,
                    removed=removed_lines,
                    sections=sections,
                    first=min(track.dates),
                    last=max(track.dates),
                    commits=tuple(track.commits),
                    patch=patch_text,
                )
            )
        _keep_summaries(root, fresh)
    except CacheUnavailable as exc:
        raise KbError(f"cannot read the history: {exc}") from None
    results.sort(key=lambda c: (c.last, c.title), reverse=True)
    return replace(window, changes=tuple(results))


def _with_moments(
    rows: Sequence[tuple[int, str, str, str, str]], counted: set[int]
) -> list[tuple[tuple[int, str, str, str, str], datetime]]:
    """Each commit row (oldest first, its number first and author date third) with its moment: the latest
    author date among it and the rows before it that changed a note (those in `counted`)."""
    from kb.history import moments

    dates = [datetime.fromisoformat(r[2]) for r in rows]
    return list(zip(rows, moments(dates, [r[0] in counted for r in rows]), strict=True))


def _summarise(
    history: History, pairs: Sequence[tuple[str, str]], lacking: set[str], keep: bool
) -> tuple[dict[tuple[str, str], Summary], dict[str, Meta], dict[str, bytes | None]]:
    """kb.diff.change_summary of each pair of blob ids ("" for no version), the records of the `lacking`
    blobs among them, and (`keep`) every version read. Reading the versions from git and comparing them is
    the whole cost of a first look at a window; git and this process each keep a core busy (measured: a
    forked copy summing up half the pairs made it no faster on two cores)."""
    from kb.diff import change_summary

    fresh: dict[tuple[str, str], Summary] = {}
    parsed: dict[str, Meta] = {}
    known: dict[str, bytes | None] = {}
    # each pair summed up as soon as git has written its two versions, while git reads the next
    stream = history.stream_blobs([b for pair in pairs for b in pair if b])
    for a, b in pairs:
        old_raw = next(stream) if a else None
        new_raw = next(stream) if b else None
        if keep:
            known.update(((a, old_raw), (b, new_raw)))
        fresh[(a, b)] = change_summary(old_raw or b"", new_raw or b"")
        for blob, raw in ((a, old_raw), (b, new_raw)):
            if blob in lacking and blob not in parsed:
                parsed[blob] = _meta_of(raw)
    for _ in stream:  # git's exit status
        pass
    return fresh, parsed, known


_NEW = "\0"  # in a note's key in a window: the note began there at a path another note had left


def _first(key: str) -> str:
    """The path a note had when the window opened (or when it began in the window)."""
    return key.partition(_NEW)[0]


@dataclass
class _Track:
    """A note followed through the commits of a window."""

    first_n: int
    path: str = ""
    status: str = ""
    blob: str | None = None
    renamed: bool = False
    commits: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)


def _kind(
    existed: bool, deleted: bool, renamed: bool, old: str, new: str, actions: list[str], store: Store
) -> str:
    if deleted:
        return "deleted"  # also a note added and deleted inside the window: it is gone
    if "restore" in actions and not existed:
        return "restored"
    if not existed:
        return "added"
    if renamed and old != new:
        return "moved" if store.layout.folder_of(old) != store.layout.folder_of(new) else "renamed"
    if "restore" in actions:
        return "restored"
    return "edited"


def _wanted_paths(root: Path, refs: Sequence[str]) -> set[str]:
    """Every path each NOTE has had (through renames)."""
    from kb.service.revisions import note_log

    paths: set[str] = set()
    for ref in refs:
        log = note_log(root, ref, counts=False)
        paths.update(r.path for r in log.revisions)
        paths.add(log.path)
    return paths


# ---------------------------------------------------------------- blame


@dataclass(frozen=True)
class BlameLine:
    line: int
    revision: int  # kb's revision number of the note
    date: str
    commit: str
    text: str


@dataclass(frozen=True)
class BlameResult:
    title: str
    path: str
    revision: int  # the revision shown (the latest by default)
    lines: tuple[BlameLine, ...]
    exists: bool = True  # false: the note is deleted (its last revision with content is shown)
    renamed_to: str | None = None  # where the note went, when its last revision renamed it away
    renamed_to_gone: bool = field(default=False, metadata={"json": False})  # and was deleted since


def blame(root: Path, ref: str, rev: str | None = None) -> BlameResult:
    """Every line of the note (front matter included) at REV (default: the latest revision) with the
    revision that last changed it, through renames: each revision's version is compared with the one
    before it in `kb log`'s order (git's own rename detection misses a short note whose title changed)."""
    from kb.diff import matching_runs
    from kb.service.revisions import note_log, pick, version_spec, without_content

    log = note_log(root, ref, counts=False)
    with_content = [r for r in log.revisions if not r.deleted]
    if not with_content:
        raise KbError(f"'{log.title}' has no revision with content")
    chosen = pick(log.revisions, rev) if rev is not None else with_content[-1]
    if chosen.deleted:
        raise without_content(chosen, "lines")
    upto = log.revisions[: chosen.number]
    blobs = _history(root).read_blobs([None if r.deleted else version_spec(r) for r in upto])
    texts: list[bytes] = []
    owners: list[Revision] = []
    for revision, raw in zip(upto, blobs, strict=True):
        lines = (raw or b"").split(b"\n")
        if lines and not lines[-1]:
            lines.pop()  # the newline that ends the last line
        kept = [revision] * len(lines)
        for i, j, size in matching_runs(texts, lines):
            kept[j : j + size] = owners[i : i + size]
        texts, owners = lines, kept
    result = tuple(
        BlameLine(
            line=i,
            revision=owner.number,
            date=owner.date,
            commit=owner.commit,
            text=text.decode("utf-8", "replace"),
        )
        for i, (owner, text) in enumerate(zip(owners, texts, strict=True), 1)
    )
    return BlameResult(
        log.title, chosen.path, chosen.number, result, log.exists, log.renamed_to, log.renamed_to_gone
    )


# ---------------------------------------------------------------- links as of a moment


def links_as_of(root: Path, ref: str, text: str, incoming: bool) -> LinksResult:
    """kb links / kb backlinks as the knowledge base was at the end of WHEN: the notes and files of that
    commit's tree, each link resolved among them."""
    from kb.links import Vault, name_key, note_links
    from kb.notes import title_key
    from kb.service.links import LinksResult, row

    store = Store(root)
    moment = as_of(root, text)
    notes = notes_at(root, moment)
    version = find_at(notes, ref, moment, store.prefix)
    history = _history(root)
    files = [p for p, _ in history.tree(moment.commit) if not store.is_note_path(p)]
    vault = Vault({v.info.path: v.info.title for v in notes}, files, store.prefix)
    if not incoming:
        [raw] = history.read_blobs([version.blob])
        links = note_links(parse_note(raw or b"", with_extra=False))
        return LinksResult(
            version.info,
            tuple(row(version.info.path, link, vault.resolve(link, version.info.path)) for link in links),
        )
    # Only the notes whose text names the note (its file name or title, any case) can link to it.
    path, title = version.info.path, version.info.title
    names = {name_key(path), title_key(title), title_key(path.rsplit("/", 1)[-1])}
    contents = history.read_blobs([v.blob for v in notes])
    rows = []
    for source, raw in zip(notes, contents, strict=True):
        folded = (raw or b"").decode("utf-8", "replace").casefold()
        if not any(name and name.casefold() in folded for name in names):
            continue
        for link in note_links(parse_note(raw or b"", with_extra=False)):
            found = vault.resolve(link, source.info.path)
            if found.status == "ok" and found.path == path:
                rows.append(row(source.info.path, link, found))
    return LinksResult(version.info, tuple(sorted(rows, key=lambda r: (r.source, r.line))))
