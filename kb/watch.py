"""What the warm server (kb.server) watches: every notes folder of a knowledge base, with inotify (the
Watcher), and the counters it shares with the workers it forks (Shared); and whether the file system the
knowledge base is on lets it watch at all (cold_reason: NFS, SMB, FUSE... are changed where inotify does
not see)."""

from __future__ import annotations

import errno
import mmap
import os
import select
import sys
from dataclasses import dataclass
from pathlib import Path

# File systems whose changes made elsewhere inotify does not see.
UNWATCHABLE = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "virtiofs",
     "vboxsf", "sshfs", "davfs", "ncpfs", "coda", "gpfs", "beegfs", "orangefs"}
)  # fmt: skip


def fs_type(path: str) -> str | None:
    """The type of the file system `path` is on (/proc/self/mountinfo), None when unknown."""
    real = os.path.realpath(path)
    best, found = -1, None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as lines:
            for line in lines:
                left, _, right = line.partition(" - ")
                parts = left.split()
                if len(parts) < 5 or not right:
                    continue
                mount = _unescape(parts[4])
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= best:
                    best, found = len(mount), right.split()[0]
    except OSError:
        return None
    return found


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def cold_reason(root: Path) -> str | None:
    """Why the server cannot keep this knowledge base fresh (its requests then run cold), or None."""
    if sys.platform != "linux":
        return f"no inotify on {sys.platform}"
    kind = fs_type(str(root))
    if kind is not None and (kind in UNWATCHABLE or kind.startswith("fuse")):
        return f"on a {kind} file system, whose changes made elsewhere inotify does not see"
    try:
        import inotify_simple  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"inotify_simple cannot be used ({exc})"
    return None


@dataclass(frozen=True)
class Drained:
    """What inotify events said: the files they named, and whether a folder changed or events were lost
    (then only a walk of every folder knows what changed)."""

    files: set[str]
    folders: bool


class Shared:
    """Counters in memory shared by the server and every process it forks (an anonymous shared mapping)."""

    READS = 0  # how many times the server read change events (counted before it reads them)
    VOUCHED = 1  # writes that a worker made on the server's word (Freshness.vouchable)
    TREES = 2  # commits whose trees a worker made from the images the server keeps (kb.history.trees)

    def __init__(self) -> None:
        self.map = mmap.mmap(-1, 24)

    def value(self, slot: int) -> int:
        return int.from_bytes(self.map[slot * 8 : slot * 8 + 8], "little")

    def bump(self, slot: int) -> None:
        self.map[slot * 8 : slot * 8 + 8] = (self.value(slot) + 1).to_bytes(8, "little")


class Watcher:
    """inotify watches on every folder of the knowledge base but .git, dot-folders and index/."""

    def __init__(self, root: Path) -> None:
        from inotify_simple import INotify, flags

        self.root = root
        self.counts = Shared()
        self.complete = False  # every folder kb commits the files of is watched
        self.flags = flags
        self.mask = (
            flags.CREATE | flags.DELETE | flags.MODIFY | flags.ATTRIB | flags.MOVED_FROM | flags.MOVED_TO
            | flags.DELETE_SELF | flags.MOVE_SELF | flags.CLOSE_WRITE
        )  # fmt: skip
        self.inotify = INotify(nonblocking=True)
        self.watches = 0
        self.folders: dict[int, str] = {}  # each watch's folder
        self.rewatch()

    def fileno(self) -> int:
        return self.inotify.fileno()

    def rewatch(self) -> None:
        """Watch every folder (again: adding a watch twice is harmless). OSError when the limit is hit (then
        `complete` stays False until a later rewatch succeeds). Dot-folders and node_modules hold no notes
        and are not watched, but under Notable's notes/ and attachments/, whose every file kb commits, they
        are."""
        from kb.errors import KbError
        from kb.layout import detect

        self.complete = False
        try:
            notable = not detect(self.root).in_place
        except (KbError, OSError):  # a layout kb refuses (its commands say why): watch the most
            notable = True
        deep = (str(self.root / "notes"), str(self.root / "attachments")) if notable else ()
        count = 0
        folders: dict[int, str] = {}
        stack = [(str(self.root), True, False)]
        while stack:
            folder, top, everything = stack.pop()
            try:
                folders[self.inotify.add_watch(folder, self.mask)] = folder
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                    continue
                raise
            count += 1
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        name = entry.name
                        below = everything or entry.path in deep
                        skipped = name.startswith(".") or name == "node_modules"
                        if (skipped and not below) or (top and name == "index"):
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((entry.path, False, below))
            except OSError:
                continue
        self.watches = count
        self.folders = folders
        self.complete = True

    def drain(self) -> Drained | None:
        """Read every pending event: None when there was none; else the files they name, or that any
        folder changed (new folders are then watched too) or that events were lost."""
        if not select.select([self.inotify], [], [], 0)[0]:
            return None
        # Counted before they are read: a worker that then finds none pending and this count unchanged
        # knows that no change happened since its fork (Freshness.stamp).
        self.counts.bump(Shared.READS)
        events = self.inotify.read(timeout=0)
        if not events:
            return None
        flags = self.flags
        whole = flags.Q_OVERFLOW | flags.ISDIR | flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF
        files: set[str] = set()
        folders = False
        for event in events:
            folder = self.folders.get(event.wd)
            if event.mask & whole or folder is None or not event.name:
                folders = True
            else:
                files.add(f"{folder}/{event.name}")
        if folders:
            self.rewatch()
        return Drained(files, folders)

    def close(self) -> None:
        self.inotify.close()
