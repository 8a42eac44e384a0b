"""The tree objects of a commit made from images of the trees before it, kept in memory.

A folder is one tree object in git, written again whole whenever one of its files changes: 7 MB for a
folder of 100,000 notes, which `git write-tree` hashes (with the collision-detecting SHA-1) and writes in
70-90 ms. The warm server (kb.server) keeps an image of each tree kb's writes touch (keep): the tree's bytes
and where each entry begins. A worker it forks inherits them, and a commit of a few files (kb.history's
_commit_tree) then writes the new trees from them (build): each is the old one's bytes with the changed
entries put in their place, in git's order, hashed by hashlib and written as git writes a loose object.

Only when the images answer for every tree on the way (each found by its id, from the root tree of HEAD
down) and the change is one of files in folders that exist and stay: anything else (a folder made or
emptied, a name that is a folder in the tree, an unmerged entry) is None, and git's write-tree does it."""

from __future__ import annotations

import array
import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

TREE_MODE = b"40000"
_FILE_MODES = (b"100644", b"100755", b"120000", b"160000")


class TreeImage:
    """One tree object's bytes and the offset of each of its entries (`mode name\\0` and a 20-byte id)."""

    __slots__ = ("offsets", "raw", "sha")

    def __init__(self, sha: str, raw: bytes) -> None:
        offsets = array.array("I")
        add = offsets.append
        find = raw.index
        pos, end = 0, len(raw)
        try:
            while pos < end:
                add(pos)
                pos = find(b"\0", pos) + 21
        except ValueError:
            raise ValueError("not a tree object") from None
        if pos != end:
            raise ValueError("not a tree object")
        self.sha = sha
        self.raw = raw
        self.offsets = offsets

    @classmethod
    def made(cls, sha: str, raw: bytes, offsets: array.array[int]) -> TreeImage:
        """The image of a tree whose entries' offsets are known already (advance)."""
        image = cls.__new__(cls)
        image.sha, image.raw, image.offsets = sha, raw, offsets
        return image

    def __len__(self) -> int:
        return len(self.offsets)

    def entry(self, i: int) -> tuple[bytes, bytes, bytes]:
        """The mode, the name and the binary id of entry `i`."""
        raw, start = self.raw, self.offsets[i]
        space = raw.index(b" ", start)
        nul = raw.index(b"\0", space)
        return raw[start:space], raw[space + 1 : nul], raw[nul + 1 : nul + 21]

    def key(self, i: int) -> bytes:
        """Entry `i`'s name as git orders it: a tree's with a slash after it."""
        mode, name, _ = self.entry(i)
        return name + b"/" if mode == TREE_MODE else name

    def locate(self, key: bytes) -> tuple[int, bool]:
        """Where `key` is or would go, and whether it is there."""
        lo, hi = 0, len(self.offsets)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.key(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo, lo < len(self.offsets) and self.key(lo) == key

    def span(self, i: int) -> tuple[int, int]:
        """The bytes of entry `i` (or the empty place at the end)."""
        n = len(self.offsets)
        start = self.offsets[i] if i < n else len(self.raw)
        end = self.offsets[i + 1] if i + 1 < n else len(self.raw)
        return start, end

    def child(self, name: bytes) -> str | None:
        """The id of the tree named `name` in this one, or None."""
        i, found = self.locate(name + b"/")
        return self.entry(i)[2].hex() if found else None


_IMAGES: dict[str, TreeImage] = {}  # the images kept (keep), by tree id


def kept(sha: str) -> TreeImage | None:
    return _IMAGES.get(sha)


def keep(root: str, folders: Iterable[str], batch: Callable[[bytes], bytes | None]) -> None:
    """Keep the images of the tree `root` and of its trees at `folders` (paths from the top, "/" between
    names, and every folder above them); those kept before and not among them are let go. `batch` runs
    `git cat-file --batch` on its input (None when it cannot). What cannot be read (a folder not in the
    tree) is not kept."""
    wanted = {""}
    for folder in folders:
        parts = [p for p in folder.split("/") if p]
        wanted.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    images: dict[str, TreeImage] = {}
    missing: list[str] = []
    top = _IMAGES.get(root)
    found: dict[str, TreeImage] = {"": top} if top is not None else {}  # those still kept, by folder
    for folder in sorted(wanted):
        image = _image_at(folder, found)
        if image is not None:
            images[image.sha] = image
        else:
            missing.append(folder)
    if missing:
        spec = "".join(f"{root}:{folder}\n" if folder else f"{root}\n" for folder in missing)
        out = batch(spec.encode("utf-8", "surrogateescape")) or b""
        pos = 0
        for _ in missing:
            eol = out.find(b"\n", pos)
            if eol < 0:
                break
            head = out[pos:eol].split(b" ")
            pos = eol + 1
            if len(head) != 3 or not head[2].isdigit():
                continue  # "SPEC missing" (SPEC may hold spaces)
            size = int(head[2])
            if head[1] == b"tree":
                with contextlib.suppress(ValueError):
                    image = TreeImage(head[0].decode("ascii"), out[pos : pos + size])
                    images[image.sha] = image
            pos += size + 1
    _IMAGES.clear()
    _IMAGES.update(images)


Signature = tuple[int, int, int, int, int, int]


def signature(path: Path) -> Signature | None:
    """A file's identity, size, mode and times (lstat); None when it is not there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns)


def staged_as_git(
    worktree: Path, root: str, paths: list[str]
) -> tuple[dict[str, tuple[bytes, bytes] | None], dict[str, Signature | None]] | None:
    """The entries git's update-index stages for `paths` (mode and binary blob id; None: not on disk, taken
    out), worked out from the files as git hashes them when nothing converts their bytes, with each file's
    signature as read (for the caller to compare once git has staged them: the same file, unchanged).
    None when a .gitattributes is in a folder on the way (on disk, or in the tree `root` as kept), when a
    file is neither a regular file nor a symbolic link, or changed while it was read. The caller answers
    for what lies outside the folders (git's settings, attributes files elsewhere)."""
    import hashlib

    top = _IMAGES.get(root)
    if top is None:
        return None
    folders: dict[str, TreeImage] = {"": top}
    changes: dict[str, tuple[bytes, bytes] | None] = {}
    signatures: dict[str, Signature | None] = {}
    for path in paths:
        parts = path.split("/")
        for i in range(len(parts)):
            here = "/".join(parts[:i])
            image = _image_at(here, folders)
            if image is None:
                return None  # (a folder made: git's write-tree makes the trees)
            if image.locate(b".gitattributes")[1] or os.path.lexists(worktree / here / ".gitattributes"):
                return None
        full = worktree / path
        before = signature(full)
        if before is None:
            changes[path], signatures[path] = None, None
            continue
        mode = before[3]
        try:
            if stat.S_ISLNK(mode):
                data = os.fsencode(os.readlink(full))
                kind = b"120000"
            elif stat.S_ISREG(mode):
                with open(full, "rb") as handle:
                    data = handle.read()
                kind = b"100755" if mode & stat.S_IXUSR else b"100644"
            else:
                return None
        except OSError:
            return None
        if signature(full) != before or (len(data) != before[2] and not stat.S_ISLNK(mode)):
            return None  # changed while it was read
        hashed = hashlib.sha1(b"blob %d\0" % len(data))
        hashed.update(data)
        changes[path], signatures[path] = (kind, hashed.digest()), before
    return changes, signatures


def counted(tell: Callable[[], None] | None) -> None:
    """`tell` is called each time a commit's trees are made from the images (build); None: nothing is."""
    _TELL[:] = [] if tell is None else [tell]


_TELL: list[Callable[[], None]] = []


def forget() -> None:
    _IMAGES.clear()


def build(objects: Path, root: str, changes: Mapping[str, tuple[bytes, bytes] | None]) -> str | None:
    """The id of the root tree `root` with `changes` made (a path from the top: its mode and binary id,
    or None for a file taken out), its new trees written as loose objects in `objects`; None when the
    kept images cannot make it (see the module's text)."""
    new = _new_trees(root, changes, offsets=False)
    if new is None:
        return None
    made, _ = new
    for sha_hex, body, _ in made:
        _write_loose(objects, sha_hex, body)
    for tell in _TELL:
        tell()
    return made[-1][0]


def advance(root: str, changes: Mapping[str, tuple[bytes, bytes] | None]) -> str | None:
    """The trees build makes of `root` with `changes`, kept as images (with their entries' offsets worked
    out from the old ones', not found again in 7 MB of bytes) without reading them from git: the id of the
    new root tree, or None when the images cannot make it. An image is kept by the id hashed from its
    bytes, so it is found (keep, build) only where a tree of that id is wanted: when the commit was made
    of exactly these changes, keep finds the new HEAD's trees here. The images of the trees they replace
    are let go (keep would read them again if they were wanted)."""
    new = _new_trees(root, changes, offsets=True)
    if new is None:
        return None
    made, replaced = new
    for sha_hex in replaced:
        _IMAGES.pop(sha_hex, None)
    for sha_hex, body, offsets in made:
        assert offsets is not None
        _IMAGES[sha_hex] = TreeImage.made(sha_hex, body, offsets)
    return made[-1][0]


def _new_trees(
    root: str, changes: Mapping[str, tuple[bytes, bytes] | None], offsets: bool
) -> tuple[list[tuple[str, bytes, array.array[int] | None]], list[str]] | None:
    """Each tree on the way to `changes` in the root tree `root`, changed (deepest first, the root last):
    its id, its bytes and, if asked, its entries' offsets; and the ids of the trees they replace. None
    when the kept images cannot make them."""
    top = _IMAGES.get(root)
    if top is None:
        return None
    import hashlib  # (only here: OpenSSL's module takes milliseconds to load)

    by_folder: dict[str, dict[bytes, tuple[bytes, bytes] | None]] = {}
    for path, entry in changes.items():
        folder, _, name = path.rpartition("/")
        if not name or (entry is not None and entry[0] not in _FILE_MODES):
            return None
        by_folder.setdefault(folder, {})[name.encode("utf-8", "surrogateescape")] = entry
    images: dict[str, TreeImage] = {"": top}  # the image of every folder on the way
    if any(_image_at(folder, images) is None for folder in by_folder):
        return None
    pending = {folder: dict(entries) for folder, entries in by_folder.items()}
    made: list[tuple[str, bytes, array.array[int] | None]] = []
    for folder in sorted(images, key=lambda f: f.count("/") + 1 if f else 0, reverse=True):
        changed = _changed(images[folder], pending.get(folder, {}), offsets)
        if changed is None:
            return None
        body, where = changed
        hashed = hashlib.sha1(b"tree %d\0" % len(body))
        hashed.update(body)
        digest = hashed.digest()
        made.append((digest.hex(), body, where))
        if folder:
            parent, _, name = folder.rpartition("/")
            pending.setdefault(parent, {})[name.encode("utf-8", "surrogateescape")] = (TREE_MODE, digest)
    return made, [image.sha for image in images.values()]


def _image_at(folder: str, found: dict[str, TreeImage]) -> TreeImage | None:
    """The kept image of the tree at `folder` (a path from the top), found through those of the folders
    above it; `found` holds the ones found so far, by path ("": the top's), and gets those on the way."""
    image = found.get(folder)
    if image is None and folder:
        parent, _, name = folder.rpartition("/")
        above = _image_at(parent, found)
        sha = above.child(name.encode("utf-8", "surrogateescape")) if above is not None else None
        image = _IMAGES.get(sha) if sha is not None else None
        if image is not None:
            found[folder] = image
    return image


def _changed(
    image: TreeImage, entries: Mapping[bytes, tuple[bytes, bytes] | None], offsets: bool = False
) -> tuple[bytes, array.array[int] | None] | None:
    """The tree's bytes with `entries` (by name) put in or taken out, and (`offsets`) where each of its
    entries then begins, from the old offsets moved by what changed before them; None when a name is a
    folder in the tree (or a folder's entry is a file there), or when the tree would be left empty."""
    raw, old = image.raw, image.offsets
    pieces: list[bytes] = []
    where = array.array("I") if offsets else None
    pos = 0  # the old bytes copied so far
    done = 0  # the old entries copied so far
    moved = 0  # how far the entries after the changes so far have moved
    count = len(image)
    for name in sorted(entries, key=lambda n: n + b"/" if (entries[n] or (b"",))[0] == TREE_MODE else n):
        entry = entries[name]
        is_tree = entry is not None and entry[0] == TREE_MODE
        key = name + b"/" if is_tree else name
        other = name if is_tree else name + b"/"
        if image.locate(other)[1]:
            return None  # a file where a folder is, or the other way round
        i, found = image.locate(key)
        start, end = image.span(i)
        if start < pos:
            return None  # (two changes of one name)
        pieces.append(raw[pos:start])
        if where is not None:
            where.extend(old[done:i] if not moved else map(moved.__add__, old[done:i]))
        pos = end if found else start
        done = i + 1 if found else i
        if entry is not None:
            piece = entry[0] + b" " + name + b"\0" + entry[1]
            pieces.append(piece)
            if where is not None:
                where.append(start + moved)
            moved += len(piece) - (end - start if found else 0)
            count += 0 if found else 1
        elif found:
            moved -= end - start
            count -= 1
    pieces.append(raw[pos:])
    if where is not None:
        where.extend(old[done:] if not moved else map(moved.__add__, old[done:]))
    if count <= 0:
        return None
    return b"".join(pieces), where


def _write_loose(objects: Path, sha: str, body: bytes) -> None:
    """A tree object written as git writes a loose one (a temporary file in its folder, then linked to its
    name: an object already there stays), stored without compression, as kb's write-tree does."""
    folder = objects / sha[:2]
    final = folder / sha[2:]
    if os.path.exists(final):
        return
    import zlib

    folder.mkdir(exist_ok=True)
    packer = zlib.compressobj(0)
    data = packer.compress(b"tree %d\0" % len(body)) + packer.compress(body) + packer.flush()
    temporary = folder / f"tmp_obj_kb{os.getpid()}_{sha[2:10]}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # the same object, written meanwhile
            os.link(temporary, final)
    finally:
        os.unlink(temporary)  # (a full disk, say: git's write-tree then writes the trees)
