"""Sync one knowledge base across machines through an ordinary git remote, losing nothing.

Every sync commits pending changes, fetches, integrates and pushes (never forced). Edits to different
notes, and edits to different parts of one note, merge; `modified` is merged to the later of the two.
When both sides changed the same lines of a note, the note takes the version already synced (the other
machine's) and this machine's is saved beside it as a conflict copy named after this machine; both are
committed and the sync reports it. A note edited
on one side and deleted on the other is kept, edited.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from kb.errors import GitError, KbError, UsageError
from kb.notes import format_timestamp, parse_note, parse_timestamp, set_fields
from kb.service.lookup import free_path
from kb.service.transaction import Transaction, reindex_paths, transaction
from kb.store import SYNC_MARKER, Store, write_atomic


@dataclass(frozen=True)
class Conflict:
    path: str  # the note, holding the other machine's version
    title: str
    copy: str | None  # the conflict copy holding this machine's version, named after this machine
    kind: str  # "both-edited", "edited-here-deleted-there", "deleted-here-edited-there"


@dataclass(frozen=True)
class SyncResult:
    remote: str
    action: str  # "pushed", "fast-forward", "merged", "up-to-date"
    received: tuple[str, ...]  # notes that changed on this machine
    conflicts: tuple[Conflict, ...]
    external: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def has_conflicts(self) -> bool:
        return any(c.kind == "both-edited" for c in self.conflicts)


def hostname() -> str:
    return os.environ.get("KB_HOSTNAME") or socket.gethostname().split(".")[0] or "other"


def sync(root: Path, remote: str | None = None, allow_unrelated: bool = False) -> SyncResult:
    from kb import config
    from kb.history.sync import Syncing, check_remote_url

    config.sync_timeout()  # a bad $KB_SYNC_TIMEOUT is a usage error before anything happens
    if remote is not None:
        check_remote_url(remote)
    with transaction(root) as tx:
        git = Syncing(root)
        previous = git.remote_url()
        if remote is not None:
            git.set_remote(remote)
        url = git.remote_url()
        if url is None:
            raise UsageError("this knowledge base has no remote yet: run 'kb sync --remote URL' once")
        check_remote_url(url)
        branch = git.branch()
        try:
            git.network("fetch", "--quiet", "--no-tags", "--upload-pack=git-upload-pack", "origin")
            theirs = git.rev(f"refs/remotes/origin/{branch}")
            before = git.rev("HEAD")
            if theirs and before and not allow_unrelated and git.merge_base(theirs, before) is None:
                _refuse_unrelated(git, url, before, tx.store)
        except KbError:
            if (
                remote is not None and previous != url
            ):  # a URL that does not work does not replace one that did
                if previous is None:
                    git.remove_remote()
                else:
                    git.set_remote(previous)
            raise
        conflicts: list[Conflict] = []
        action = "up-to-date"
        if theirs is None:
            action = "pushed"
        elif before is not None and git.is_ancestor(theirs, before):
            action = "pushed" if theirs != before else "up-to-date"
        elif before is not None and git.is_ancestor(before, theirs):
            git._git("merge", "--ff-only", "--quiet", theirs)
            action = "fast-forward"
        else:
            marker = git.git_dir / SYNC_MARKER
            marker.write_text(f"{os.getpid()}\n")
            clean = git.merge_no_commit(theirs)
            if not clean:
                try:
                    conflicts = _settle(tx, git)
                except BaseException:
                    git.abort_merge()
                    raise
            message = f"Sync: merge from {url}"
            both = [c for c in conflicts if c.kind == "both-edited"]
            if both:
                message += "\n\nConflicts kept as copies: " + ", ".join(c.title for c in both)
            git.commit_merge(message, tx.now)
            marker.unlink()
            action = "merged"
        head = git.rev("HEAD")
        if head is not None and (theirs is None or head != theirs):
            try:
                git.network("push", "--quiet", "--no-verify", "--receive-pack=git-receive-pack", "origin",
                            f"HEAD:refs/heads/{branch}")  # fmt: skip
            except GitError as exc:
                raise GitError(
                    f"{exc}; the remote changed meanwhile or refused: run 'kb sync' again"
                ) from None
            git.network("branch", "--quiet", f"--set-upstream-to=origin/{branch}")
        received = (
            tuple(
                p
                for p in git.changed_between(before, "HEAD", tx.store.layout.notes or ".")
                if tx.store.is_note_path(p)
            )
            if head != before
            else ()
        )
        if head != before:
            git.ensure_commit_graph(refresh=True)
        warnings = reindex_paths(tx, received)
        return SyncResult(url, action, received, tuple(conflicts), tx.external, warnings)


def _refuse_unrelated(git: object, url: str, head: str, store: Store) -> None:
    """Two histories with nothing in common are two knowledge bases (or a mistyped URL): merged only when
    asked. A knowledge base without notes yet (a new machine joining) takes the remote's as it is."""
    from kb.history.sync import Syncing

    assert isinstance(git, Syncing)
    if git.has_notes(head, store.layout.notes or ".", store.is_note_path):
        raise KbError(
            f"the history of {url} has nothing in common with this knowledge base's (is the URL right?); "
            "nothing was merged. To merge the two knowledge bases, run "
            "'kb sync --remote URL --allow-unrelated'"
        )


def _settle(tx: Transaction, git: object) -> list[Conflict]:
    """Settle every unmerged path so that nothing is lost, and stage the result."""
    from kb.history.sync import Syncing

    assert isinstance(git, Syncing)
    conflicts: list[Conflict] = []
    staged: set[str] = set()
    for path in git.unmerged():
        base, ours, theirs = (git.stage_blob(n, path) for n in (1, 2, 3))
        staged.add(path)
        target = tx.root / path
        if ours is not None and theirs is not None:
            merged = _merge_note(git, base, ours, theirs) if path.endswith(".md") else None
            if merged is not None:
                write_atomic(target, merged)
                continue
            # The note stays as the other machines have it; this machine's text goes beside it, in a
            # copy named after this machine (the one name kb knows for sure).
            write_atomic(target, theirs)
            copy = _conflict_copy(tx, path, ours)
            staged.add(copy)
            conflicts.append(Conflict(path, _title(path, theirs), copy, "both-edited"))
        elif ours is not None:  # deleted there, kept (and edited) here
            write_atomic(target, ours)
            conflicts.append(Conflict(path, _title(path, ours), None, "edited-here-deleted-there"))
        elif theirs is not None:  # deleted here, edited there: the edited note comes back
            write_atomic(target, theirs)
            conflicts.append(Conflict(path, _title(path, theirs), None, "deleted-here-edited-there"))
    if staged:
        git._git("add", "-A", "--", *sorted(staged))
    return conflicts


def _title(path: str, data: bytes) -> str:
    return parse_note(data).title_for(path)


def _merge_note(git: object, base: bytes | None, ours: bytes, theirs: bytes) -> bytes | None:
    """Three-way merge of a note's text, with `modified` first set to the later of the two sides on
    all three versions (so two edits never conflict on that line alone). None when lines conflict."""
    from kb.history.sync import Syncing

    assert isinstance(git, Syncing)
    versions = [parse_note(v) if v is not None else None for v in (base, ours, theirs)]
    mine, other = versions[1], versions[2]
    if (
        mine is None
        or other is None
        or mine.problem
        or other.problem
        or mine.doc is None
        or other.doc is None
    ):
        return git.merge_texts(ours, base or b"", theirs)
    moments = [(parse_timestamp(v.modified or ""), v.modified) for v in (mine, other) if v.modified]
    latest = max(moments, key=lambda m: m[0].timestamp() if m[0] else 0.0)[1] if moments else None
    texts = []
    for raw, parsed in zip((base, ours, theirs), versions, strict=True):
        if raw is None or parsed is None:
            texts.append(b"")
        elif latest and parsed.doc is not None and not parsed.problem and parsed.modified != latest:
            texts.append(set_fields(parsed.doc, {"modified": latest}).render().encode("utf-8"))
        else:
            texts.append(raw)
    return git.merge_texts(texts[1], texts[0], texts[2])


def _conflict_copy(tx: Transaction, path: str, ours: bytes) -> str:
    """This machine's version as a note of its own, titled so that it says what it is and whose it is."""
    parsed = parse_note(ours)
    title = parsed.title_for(path)
    label = f"{title} (conflict {format_timestamp(tx.now)[:10]} {hostname()})"
    data = ours
    if parsed.doc is not None and not parsed.problem:
        data = set_fields(parsed.doc, {"title": label}).render().encode("utf-8")
    copy = free_path(tx.store, label, folder=tx.store.layout.folder_of(path))
    tx.store.write_atomic(copy, data, new=True)
    return copy
