"""Import a folder of Markdown as it is: an Obsidian vault, a TIL or docs repository, a zk notebook.

Every Markdown file (outside dot-folders, `index/`, `node_modules/` and the source's own kb.toml ignore
patterns) is copied to the same relative path under the knowledge base's notes root, so relative links keep
resolving; the files notes link to or embed (and everything in an attachments folder) come along beside
them. Nothing is dropped silently: a file that cannot be imported is listed with its reason.

A file is a revision of a note only when it has the same path (or, for a Notable note, the same title and
`created`); "unchanged" only when the bytes are the same. With `history`, a source that is a git repository
brings its commits: each becomes a revision of the files it changed, with its author date.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from kb.errors import KbError
from kb.history.revcache import LOG_FORMAT, parse_log
from kb.layout import MARKDOWN_SUFFIXES, SETTINGS_FILE, Layout, read_settings
from kb.notes import format_timestamp, parse_note, parse_timestamp, set_fields, title_key
from kb.service.transaction import Transaction
from kb.store import file_times

ATTACHMENT_FOLDERS = frozenset({"attachments", "assets", "_resources", "images", "media", "files", "img"})
_WIKI = re.compile(r"\[\[([^\]|#^\n]+)")
_MD_LINK = re.compile(r"\]\(\s*<?([^)>\n]+?)>?(?:\s+[\"'][^)\n]*)?\)")
_ANGLE = re.compile(r"<([^<>\n]+\.[A-Za-z0-9]{1,8})>")
_NOTABLE = re.compile(r"@attachment/([^\s)\]]+)")
IMPORTED_FROM = "Kb-Imported-From"  # trailer naming the source commit a revision was imported from
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class ImportItem:
    source: str
    status: str  # "imported", "revised", "unchanged", "skipped"
    title: str | None = None
    path: str | None = None
    modified: str | None = None
    reason: str | None = None


@dataclass
class TreeResult:
    items: list[ImportItem] = field(default_factory=list)
    attachments: int = 0
    folders: set[str] = field(default_factory=set)
    revisions: int = 0
    left_out: list[str] = field(default_factory=list)  # other files: not Markdown, not linked from a note
    warnings: list[str] = field(default_factory=list)  # what kb cannot read in an imported note


@dataclass(frozen=True)
class SourceFiles:
    root: Path
    notes: list[str]  # relative posix paths
    attachments: list[str]
    others: list[str]
    links: list[str]  # symbolic links met (not followed)


def is_notable_dir(path: Path) -> bool:
    """Exactly Notable's data directory: a flat `notes/` (+ `attachments/`), no Markdown anywhere else, and
    every note written by Notable (front matter with its `title` and `created`). Anything else is imported
    as a folder, structure kept."""
    from kb.layout import has_markdown

    notes = path / "notes"
    if not notes.is_dir() or has_markdown(path, frozenset({"notes", "attachments"})):
        return False
    try:
        entries = list(os.scandir(notes))
    except OSError:
        return False
    found = False
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            if has_markdown(Path(entry.path), frozenset()):
                return False  # Notable keeps no sub-folders
            continue
        if not entry.name.lower().endswith(MARKDOWN_SUFFIXES) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            with open(entry.path, "rb") as handle:
                head = handle.read(4096)
        except OSError:
            continue
        parsed = parse_note(head, with_extra=False)
        if parsed.problem:
            continue  # unreadable front matter (or longer than looked at) decides nothing
        if not (parsed.title and parsed.created):
            return False
        found = True
    return found


def scan_source(root: Path) -> SourceFiles:
    """Every file of a source folder, sorted into notes, attachments and others."""
    layout = read_settings(root) or Layout("")
    notes: list[str] = []
    files: list[str] = []
    links: list[str] = []
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            sub = f"{rel}/{entry.name}" if rel else entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                links.append(sub)
                continue
            if entry.is_dir():
                if not layout.skips_folder(sub, entry.name):
                    stack.append((Path(entry.path), sub))
            elif entry.is_file() and not layout.ignored(sub) and sub != SETTINGS_FILE:
                (notes if entry.name.lower().endswith(MARKDOWN_SUFFIXES) else files).append(sub)
    if layout.notes:
        # a kb.toml naming a notes folder: its notes only, its attachments beside them
        notes = [n for n in notes if n.startswith(layout.prefix)]
    linked = _linked(root, notes)
    names = {PurePosixPath(p).name.casefold() for p in linked}
    attachments, others = [], []
    for path in files:
        parts = path.split("/")
        if (
            path in linked
            or parts[-1].casefold() in names
            or any(p.casefold() in ATTACHMENT_FOLDERS for p in parts[:-1])
        ):
            attachments.append(path)
        else:
            others.append(path)
    return SourceFiles(root, sorted(notes), sorted(attachments), sorted(others), sorted(links))


def _linked(root: Path, notes: list[str]) -> set[str]:
    """What the notes link to or embed: paths resolved from the linking note, from the root, and bare file
    names (Obsidian finds those anywhere in the vault)."""
    found: set[str] = set()
    for note in notes:
        try:
            text = (root / note).read_text("utf-8", errors="replace")
        except OSError:
            continue
        folder = PurePosixPath(note).parent
        targets = [m.group(1).strip() for m in _WIKI.finditer(text)]
        targets += [unquote(m.group(1).strip()) for m in _MD_LINK.finditer(text)]
        targets += [unquote(m.group(1).strip()) for m in _ANGLE.finditer(text)]
        targets += [m.group(1) for m in _NOTABLE.finditer(text)]
        for target in targets:
            if not target or _SCHEME.match(target) or target.startswith("#"):
                continue
            target = target.split("#", 1)[0].split("?", 1)[0]
            found.add(PurePosixPath(target).name)
            for base in (folder, PurePosixPath()):
                joined = os.path.normpath(str(base / target.lstrip("/")))
                if not joined.startswith(".."):
                    found.add(joined.replace(os.sep, "/"))
    return found


def _git_dates(root: Path) -> dict[str, tuple[str, str]]:
    """First and last commit dates of every file in the source's repository, keyed by path relative to
    `root`; empty when it is not in a repository."""
    top = _toplevel(root)
    if top is None:
        return {}
    prefix = root.resolve().relative_to(top).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    out = _git(
        top, "log", "--no-renames", "--raw", "--no-abbrev", "-z", LOG_FORMAT, "--", root.resolve().as_posix()
    )
    if out is None:
        return {}
    dates: dict[str, tuple[str, str]] = {}
    for _, date, _, _, changes in parse_log(out):
        moment = parse_timestamp(date)
        if moment is None:
            continue
        stamp = format_timestamp(moment)
        for path, _, _ in changes:
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            last = dates.get(rel, (stamp, stamp))[1]
            dates[rel] = (stamp, last)  # newest first: the last record seen is the first commit
    return dates


def _toplevel(root: Path) -> Path | None:
    out = _git(root, "rev-parse", "--show-toplevel")
    return Path(out.strip()).resolve() if out else None


def _git(cwd: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_LITERAL_PATHSPECS": "1", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", *args],
            cwd=cwd,
            capture_output=True,
            env=env,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None


def _with_dates(raw: bytes, dates: tuple[str, str]) -> bytes:
    """The file with `created` and `modified` added where it has no such date under any key kb reads (from
    the source's git history, else its times), so the import keeps them; a date key it has stays as it is."""
    parsed = parse_note(raw, with_extra=False)
    if parsed.problem or parsed.doc is None:
        return raw
    created, modified = parsed.dates
    updates = {
        k: v for k, v, have in (("created", dates[0], created), ("modified", dates[1], modified)) if not have
    }
    if not updates:
        return raw
    try:
        return set_fields(parsed.doc, updates).render().encode("utf-8")
    except KbError:
        return raw


def _unsafe_name(rel: str) -> str | None:
    for part in rel.split("/"):
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
            return "its name has a control character"
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            return "its name is too long"
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    return None


def import_tree(
    tx: Transaction,
    source: Path,
    result: TreeResult,
    *,
    history: bool,
    dry_run: bool,
    known: dict[tuple[str, str], str],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Copy one source folder into the knowledge base (see the module's doc)."""
    files = scan_source(source)
    store = tx.store
    result.left_out.extend(str(source / p) for p in files.others)
    for link in files.links:
        result.items.append(ImportItem(str(source / link), "skipped", reason="a symbolic link; not followed"))
    existed = {p for p in (*files.notes, *files.attachments) if store.exists(store.prefix + p)}
    if history and not dry_run:
        result.revisions += _replay(tx, source, files, progress)
    dates = {} if history else _git_dates(source)
    batch: dict[str, bytes | None] = {}
    later: list[tuple[str, bytes, ImportItem]] = []
    total = len(files.notes) + len(files.attachments)
    everything = [(rel, True) for rel in files.notes] + [(rel, False) for rel in files.attachments]
    for done, (rel, is_note) in enumerate(everything, 1):
        if progress and (done % 50 == 0 or done == total):
            progress(done, total)
        full = source / rel
        problem = _unsafe_name(rel)
        if problem:
            result.items.append(ImportItem(str(full), "skipped", reason=problem))
            continue
        try:
            raw = full.read_bytes()
        except OSError as exc:
            result.items.append(ImportItem(str(full), "skipped", reason=f"cannot read it: {exc.strerror}"))
            continue
        target = f"{store.prefix}{rel}"
        parsed = parse_note(raw, with_extra=False) if is_note else None
        if parsed is not None and parsed.problem and parsed.problem.startswith("binary"):
            result.items.append(ImportItem(str(full), "skipped", reason=f"{parsed.problem}: not a text note"))
            continue
        if parsed is not None:
            found = ([parsed.problem] if parsed.problem else []) + list(parsed.warnings)
            result.warnings.extend(f"{full}: {w} (imported as it is)" for w in found)
        current = store.read(target) if store.exists(target) else None  # what is here now
        if is_note and not history:
            times = dates.get(rel) or file_times(full)
            if parsed is not None and parsed.dates[0] is None and current is not None:
                # imported before: the note keeps the `created` it was given then (the file's time, which
                # an edit of the file since may have moved)
                kept = parse_note(current, with_extra=False).dates[0]
                times = (kept or times[0], times[1])
            raw = _with_dates(raw, times)
        title = parsed.title_for(rel) if parsed is not None else None
        modified = parsed.dates[1] if parsed is not None else None
        if parsed is not None and current is None and parsed.title and parsed.created:
            moment = parse_timestamp(parsed.created)
            same = known.get(
                (title_key(parsed.title), format_timestamp(moment) if moment else parsed.created)
            )
            if same is not None:
                target = same  # a Notable note already here: this file is a revision of it
                current = store.read(target) if store.exists(target) else None
        if is_note:
            result.folders.add(store.layout.folder_of(target))
        brought = rel not in existed and target == store.prefix + rel  # by the replayed history just now
        if current == raw:
            if is_note:
                status = "imported" if brought else "unchanged"
                result.items.append(ImportItem(str(full), status, title, target, modified))
            elif brought:
                result.attachments += 1
            continue
        if not is_note:
            result.attachments += 1
        status = "imported" if current is None else "revised"
        item = ImportItem(str(full), status, title, target, modified)
        if not is_note:
            item = ImportItem(str(full), status, None, target)
        if status == "imported":
            batch[target] = raw
            if is_note:
                result.items.append(item)
        else:
            later.append((target, raw, item))
    if dry_run:
        result.items.extend(item for _, _, item in later if item.title is not None)
        return
    if batch:
        count = sum(1 for p in batch if p.endswith(MARKDOWN_SUFFIXES))
        message = f"Import: {count} notes and {len(batch) - count} attachments from {source.name or source}"
        from kb.service.transaction import DATED_BY_MODIFIED

        tx.change(batch, f"{message}\n\n{DATED_BY_MODIFIED}", tx.now, bulk=True)
    for target, raw, item in later:
        log = tx.history.path_log(target)
        if log and not log[0][0].subject.startswith("Import"):
            # Changed here since it came in (or a note of kb's own at that path): kept, not overwritten.
            if any(entry[0].subject.startswith("Import") for entry in log):
                reason = f"{target} was changed here since it was imported; kb's version is kept"
            else:
                reason = f"{target} is already here, with other text, not imported; kb's version is kept"
            result.items.append(ImportItem(item.source, "skipped", item.title, target, item.modified, reason))
            continue
        moment = parse_timestamp(item.modified or "") or tx.now
        last = parse_note(store.read(target), with_extra=False).dates[1] if item.title is not None else None
        before = parse_timestamp(last or "")
        if before is not None and moment < before:
            moment = tx.now  # never dated before the version it replaces
        tx.change({target: raw}, f"Import: {item.title or target} (revised)", moment)
        if item.title is not None:
            result.items.append(item)


def _replay(
    tx: Transaction, source: Path, files: SourceFiles, progress: Callable[[int, int], None] | None = None
) -> int:
    """The source repository's commits, oldest first, each as one commit of the files it changed among
    those being imported, with its author date and subject. Returns how many commits were made."""
    from datetime import datetime

    top = _toplevel(source)
    if top is None:
        raise KbError(f"--history: {source} is not in a git repository")
    prefix = source.resolve().relative_to(top).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    wanted = {prefix + p for p in (*files.notes, *files.attachments)}
    layout = read_settings(source) or Layout("")

    def taken(path: str) -> bool:
        """Imported: what is there now, and the notes the history had that are gone since."""
        return path in wanted or (path.startswith(prefix) and layout.is_note_path(path[len(prefix) :]))

    out = _git(
        top, "log", "--reverse", "--topo-order", "--diff-merges=first-parent", "--no-renames", "--raw",
        "--no-abbrev", "-z", LOG_FORMAT, "--", source.resolve().as_posix(),
    )  # fmt: skip
    if out is None:
        raise KbError(f"--history: cannot read the history of {source}")
    from kb.history import History

    source_repo = History(top)
    made = 0
    store = tx.store
    done_before = tx.history.trailer_values(IMPORTED_FROM)  # importing again brings only what is new
    commits = [c for c in parse_log(out) if c[0] not in done_before]
    for done, (sha, date, subject, _, all_changes) in enumerate(commits, 1):
        if progress and (done % 20 == 0 or done == len(commits)):
            progress(done, len(commits))
        changes = [(p, status, blob) for p, status, blob in all_changes if taken(p)]
        if not changes:
            continue
        blobs = [blob for _, status, blob in changes if status != "D"]
        contents = dict(zip(blobs, source_repo.read_blobs(blobs), strict=True))
        writes: dict[str, bytes | None] = {}
        for path, status, blob in changes:
            target = store.prefix + path[len(prefix) :]
            if status == "D":
                if store.exists(target):
                    writes[target] = None
            else:
                data = contents.get(blob)
                if data is not None and (not store.exists(target) or store.read(target) != data):
                    writes[target] = data
        if not writes:
            continue
        moment = datetime.fromisoformat(date)
        tx.change(writes, f"Import: {subject.strip() or sha[:12]}\n\n{IMPORTED_FROM}: {sha}", moment)
        made += 1
    return made
