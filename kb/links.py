"""Links between notes, pure: finding them in a note's text, resolving them as Obsidian does, and writing
a link's target anew in the form it had.

What is a link:
- wiki links `[[Title]]`, `[[Title|alias]]`, `[[Title#Heading]]`, `[[Title#^block]]`, `[[folder/Note]]`;
  embeds `![[file.png]]`, `![[Note]]`;
- Markdown links and images `[text](Other%20Note.md)`, `[text](../postgres/x.md#section)`,
  `[text](<Other Note.md>)`, `![alt](x.png "title")`, and a bare `<Other Note.md>` or `<attachments/x.png>`
  (an image, a PDF, media or office file);
- Notable's `[text](@note/Title.md)` and `[x](@attachment/x.png)`.
Never a link: anything in fenced code or an inline code span, a URL with a scheme (`https:`, `mailto:`),
an anchor in the same note (`[[#Heading]]`, `[x](#section)`).

Every link carries the exact span (`start`, `end`, offsets in the text parsed) of its target's text as
written (still URL-encoded in a Markdown link, without fragment or alias), so a rename replaces just that.

Resolution, as Obsidian does it: a path relative to the linking note's folder, else a path from the notes
root, else the one note whose file name (or title) is the target, ignoring case. Two or more such notes
make the link ambiguous (never guessed); none makes it dead.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from kb.notes import ParsedNote, title_key

WIKI = "wiki"
MARKDOWN = "markdown"
ANGLE = "angle"
NOTABLE = "notable"

NOTABLE_NOTE = "@note/"
NOTABLE_ATTACHMENT = "@attachment/"
NOTE_EXTENSIONS = (".md", ".markdown")
MAX_LINK_SCAN_CHARS = 2_000_000  # of one note's text; links further on are not seen

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_WIKI_LINK = re.compile(r"(!?)\[\[([^\[\]\n]*)\]\]")
_MD_OPEN = re.compile(r"(!?)\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\(")
# Files that are attachments when nothing says otherwise: what notes embed or link to.
ATTACHMENT_EXTENSIONS = (
    "png", "jpg", "jpeg", "gif", "webp", "svg", "bmp", "tif", "tiff", "heic", "avif", "pdf", "mp3", "wav",
    "m4a", "ogg", "flac", "mp4", "webm", "mov", "mkv", "zip", "docx", "xlsx", "pptx", "odt", "ods", "csv",
    "excalidraw",
)  # fmt: skip
# a bare <Other Note.md> or <attachments/x.png> (never an HTML tag's attributes, an e-mail address)
_BARE_ANGLE = re.compile(
    rf"<([^<>\n=\"'@]+\.(?:md|markdown|{'|'.join(ATTACHMENT_EXTENSIONS)}))>", re.IGNORECASE
)
_TITLE = re.compile(r"""[ \t]+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\))[ \t]*\)|[ \t]*\)""")


@dataclass(frozen=True)
class Link:
    kind: str  # wiki, markdown, angle (a bare <Note.md>), notable (@note/..., @attachment/...)
    target: str  # what it names, decoded, without fragment or alias: "Other Note.md", "../pg/x.md", "Title"
    fragment: str | None  # "Heading", "^block", "section" (after the #), or None
    alias: str | None  # a wiki link's alias, a Markdown link's text
    embed: bool  # ![[...]] or ![...](...)
    line: int  # 1-based, in the text parsed (plus the line it was told the text starts at)
    start: int  # offsets of the target's text as written, in the text parsed
    end: int

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "target": self.target,
            "fragment": self.fragment,
            "alias": self.alias,
            "embed": self.embed,
            "line": self.line,
            "start": self.start,
            "end": self.end,
        }


# ---------------------------------------------------------------- finding links


def _mask_code(line: str) -> str:
    """The line with its inline code spans blanked (same length, so offsets stay)."""
    if "`" not in line:
        return line
    return _CODE_SPAN.sub(lambda m: " " * len(m.group()), line)


def parse_links(text: str, first_line: int = 1) -> tuple[Link, ...]:
    """Every link of `text`, in order. Offsets are in `text`; `first_line` is the number of its first line."""
    found: list[Link] = []
    fence: str | None = None
    pos = 0
    number = first_line - 1
    scanned = text[:MAX_LINK_SCAN_CHARS]
    for line in scanned.split("\n"):
        number += 1
        base, pos = pos, pos + len(line) + 1
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                rest = line[opening.end() :].strip()
                if not rest:
                    fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        if "[" not in line and "<" not in line:
            continue
        found.extend(_line_links(_mask_code(line.removesuffix("\r")), base, number))
    return tuple(found)


def _line_links(line: str, base: int, number: int) -> list[Link]:
    out: list[Link] = []
    taken: list[tuple[int, int]] = []
    for match in _WIKI_LINK.finditer(line):
        taken.append(match.span())
        link = _wiki(match, base, number)
        if link is not None:
            out.append(link)
    wiki = list(taken)
    pos = 0
    while (opening := _MD_OPEN.search(line, pos)) is not None:
        pos = opening.start() + 1
        if any(a <= opening.start() < b for a, b in wiki):
            continue
        parsed = _markdown(line, opening, base, number)
        if parsed is None:
            continue
        link, end = parsed
        taken.append((opening.start(), end))
        if link is not None:
            out.append(link)
        pos = opening.start(2)  # a link inside the text: [![diagram](d.png)](page.md)
    for match in _BARE_ANGLE.finditer(line):
        if any(a <= match.start() < b for a, b in taken):
            continue
        raw = match.group(1)
        if _SCHEME.match(raw) or not raw.strip():
            continue
        target, fragment = _split_fragment(raw)
        start = base + match.start(1)
        out.append(Link(ANGLE, target, fragment, None, False, number, start, start + len(target)))
    out.sort(key=lambda link: link.start)
    return out


def _split_fragment(raw: str) -> tuple[str, str | None]:
    target, sep, fragment = raw.partition("#")
    return target, (fragment if sep else None)


def _wiki(match: re.Match[str], base: int, number: int) -> Link | None:
    inner = match.group(2)
    inner_start = match.start(2)
    # `\|` separates the alias inside a table row
    cut = inner.find("|")
    escaped = cut > 0 and inner[cut - 1] == "\\"
    head = inner[: cut - 1] if escaped else (inner if cut < 0 else inner[:cut])
    alias = None if cut < 0 else inner[cut + 1 :]
    name, sep, fragment = head.partition("#")
    stripped = name.strip()
    if not stripped or _SCHEME.match(stripped):
        return None
    offset = inner_start + (len(name) - len(name.lstrip()))
    start = base + offset
    return Link(
        WIKI,
        stripped,
        fragment.strip() if sep else None,
        alias,
        bool(match.group(1)),
        number,
        start,
        start + len(stripped),
    )


def _markdown(line: str, match: re.Match[str], base: int, number: int) -> tuple[Link | None, int] | None:
    """A Markdown link or image from its `[text](` on: the link (None when it is not one kb follows) and
    where it ends; None when the destination is not well formed."""
    i = match.end()
    while i < len(line) and line[i] in " \t":
        i += 1
    if i < len(line) and line[i] == "<":
        close = line.find(">", i + 1)
        if close < 0 or "<" in line[i + 1 : close]:
            return None
        dest_start, dest_end, after = i + 1, close, close + 1
    else:
        depth = 0
        j = i
        while j < len(line):
            ch = line[j]
            if ch == "\\" and j + 1 < len(line):
                j += 2
                continue
            if ch in " \t":
                break
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            j += 1
        dest_start, dest_end, after = i, j, j
    tail = _TITLE.match(line, after)
    if tail is None:
        return None
    end = tail.end()
    raw = line[dest_start:dest_end]
    raw_target, fragment = _split_fragment(raw)
    if not raw_target.strip() or _SCHEME.match(raw_target) or raw_target.startswith("//"):
        return None, end
    raw_target = raw_target.split("?", 1)[0]
    kind = NOTABLE if raw_target.startswith((NOTABLE_NOTE, NOTABLE_ATTACHMENT)) else MARKDOWN
    start = base + dest_start
    link = Link(
        kind,
        unquote(raw_target),
        unquote(fragment) if fragment is not None else None,
        match.group(2),
        bool(match.group(1)),
        number,
        start,
        start + len(raw_target),
    )
    return link, end


# ---------------------------------------------------------------- resolving links


@dataclass(frozen=True)
class Resolved:
    status: str  # "ok", "dead" or "ambiguous"
    path: str | None  # the root-relative path it names, when ok
    how: str = ""  # "relative", "root", "name" (by file name or title), "notable"
    candidates: tuple[str, ...] = ()  # the notes an ambiguous link could mean


DEAD = Resolved("dead", None)


_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})$")


def is_note_target(target: str) -> bool:
    """Whether a link names a note (no extension, or a Markdown one) rather than an attachment: `v1.2 notes`
    and `Dr. Who` name notes, `file.png` a file."""
    name = target.rsplit("/", 1)[-1]
    found = _EXTENSION.search(name)
    return name.lower().endswith(NOTE_EXTENSIONS) or found is None or found.start() == 0


def name_key(target: str) -> str:
    """What the catalog files a link under: its last path part, case-folded, without a Markdown
    extension. A note is found under the key of its file name and of its title."""
    name = target.rstrip("/").rsplit("/", 1)[-1]
    for ext in NOTE_EXTENSIONS:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return title_key(name)


class Vault:
    """The notes (path -> title) and other files of a knowledge base, for resolving links. Paths are
    root-relative; `prefix` is the notes root ("" or "notes/")."""

    def __init__(self, notes: Mapping[str, str], files: Iterable[str] = (), prefix: str = "") -> None:
        self.prefix = prefix
        self.notes = dict(notes)
        self.files = set(files)
        self._folded: dict[str, list[str]] = {}
        for path in (*self.notes, *self.files):
            self._folded.setdefault(title_key(path), []).append(path)
        self._by_name: dict[str, list[str]] = {}
        for path, title in self.notes.items():
            keys = {name_key(path), title_key(title)}
            for key in keys:
                self._by_name.setdefault(key, []).append(path)
        self._files_by_name: dict[str, list[str]] = {}
        for path in self.files:
            self._files_by_name.setdefault(title_key(path.rsplit("/", 1)[-1]), []).append(path)

    def _exists(self, path: str) -> str | None:
        if path in self.notes or path in self.files:
            return path
        found = self._folded.get(title_key(path), [])
        return found[0] if len(found) == 1 else None

    def _path_candidates(self, target: str, note: bool) -> list[str]:
        if target.lower().endswith(NOTE_EXTENSIONS):
            return [target]
        return [f"{target}.md", target] if note else [target, f"{target}.md"]

    def resolve(self, link: Link, source: str) -> Resolved:
        """Where `link`, written in the note at `source`, leads."""
        target = link.target.strip()
        note = is_note_target(target)
        if link.kind == NOTABLE:
            if target.startswith(NOTABLE_NOTE):
                path = self._exists(self.prefix + target[len(NOTABLE_NOTE) :])
            else:
                path = self._exists("attachments/" + target[len(NOTABLE_ATTACHMENT) :])
            return Resolved("ok", path, "notable") if path else DEAD
        folder = posixpath.dirname(source)
        tries: list[tuple[str, str]] = []
        if target.startswith("/"):
            tries.append(("root", self.prefix + target.lstrip("/")))
        else:
            tries.append(("relative", posixpath.join(folder, target)))
            tries.append(("root", self.prefix + target))
        for how, joined in tries:
            for candidate in self._path_candidates(joined, note):
                normal = posixpath.normpath(candidate)
                if normal.startswith("../") or normal == "..":
                    continue
                found = self._exists(normal)
                if found is not None:
                    return Resolved("ok", found, how)
        by_name = self._by_file_name(target, note)
        if by_name.status == "dead" and not note:
            return self._by_file_name(target, True)  # [[node.js]]: a note of that name, when no file is
        return by_name

    def _by_file_name(self, target: str, note: bool) -> Resolved:
        clean = target.strip("/")
        if not note:
            name = title_key(clean.rsplit("/", 1)[-1])
            found = sorted(
                p for p in self._files_by_name.get(name, []) if _ends_with(p, clean) or "/" not in clean
            )
        else:
            found = sorted(
                {
                    p
                    for p in self._by_name.get(name_key(clean), [])
                    if "/" not in clean or _ends_with(p, clean)
                }
                # a title with a slash in it: [[A/B]] for the note titled "A/B"
                | {
                    p
                    for p in self._by_name.get(title_key(clean), [])
                    if title_key(self.notes[p]) == title_key(clean)
                }
            )
        if len(found) == 1:
            return Resolved("ok", found[0], "name")
        if len(found) > 1:
            return Resolved("ambiguous", None, "name", tuple(found))
        return DEAD


def _ends_with(path: str, target: str) -> bool:
    """Whether `path` ends with the folders and name of `target` (its Markdown extension optional)."""
    key = title_key(path)
    want = title_key(target)
    for ext in ("", *NOTE_EXTENSIONS):
        tail = want + ext
        if key == tail or key.endswith("/" + tail):
            return True
    return False


# ---------------------------------------------------------------- writing a target anew

_WIKI_FORBIDDEN = set("[]|#^\n\r")


def new_target_text(
    link: Link,
    raw: str,
    how: str,
    old_path: str,
    new_source: str,
    new_path: str,
    new_title: str,
    prefix: str = "",
    angled: bool = False,
) -> str | None:
    """The text that replaces `raw` (the link's target as written) so that the link, written in the note
    now at `new_source`, leads to `new_path` in the form it had: by name stays by name (the title when it
    named the title, else the file name), a partial path keeps its number of parts, a relative path stays
    relative, a path from the root stays one, an extension stays (or stays away), URL-encoding stays.
    `angled`: a Markdown destination written in <...>. None when the form cannot hold the new target."""
    decoded = link.target.strip()
    had_ext = decoded.lower().endswith(NOTE_EXTENSIONS) or not is_note_target(decoded)
    inner = new_path[len(prefix) :] if prefix and new_path.startswith(prefix) else new_path
    if link.kind == NOTABLE:
        if decoded.startswith(NOTABLE_NOTE):
            text = NOTABLE_NOTE + inner
        else:
            text = NOTABLE_ATTACHMENT + new_path.removeprefix("attachments/")
    elif how == "name" and "/" in decoded.strip("/") and name_key(decoded) != name_key(old_path):
        text = new_title  # it named the title, which has a slash in it
    elif how == "name" and "/" in decoded.strip("/"):
        keep = len(decoded.strip("/").split("/"))
        tail = "/".join(inner.split("/")[-keep:])
        text = tail if had_ext else strip_extension(tail)
    elif how == "name":
        file_name = new_path.rsplit("/", 1)[-1]
        if had_ext:
            text = file_name
        elif name_key(decoded) == name_key(old_path):
            text = strip_extension(file_name)
        else:
            text = new_title
    elif how == "relative":
        rel = posixpath.relpath(new_path, posixpath.dirname(new_source) or ".")
        if decoded.startswith("./") and not rel.startswith("../"):
            rel = "./" + rel
        text = rel if had_ext else strip_extension(rel)
    else:  # from the root
        text = ("/" if decoded.startswith("/") else "") + inner
        text = text if had_ext else strip_extension(text)
    return _encode_like(link, raw, text, angled)


def strip_extension(name: str) -> str:
    for ext in NOTE_EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


_MD_UNSAFE = re.compile(r"[\s()<>%\\#?]")
_SAFE = "/@!$&'*+,;=:~-._"


def _encode_like(link: Link, raw: str, text: str, angled: bool) -> str | None:
    if not text.strip():
        return None
    if link.kind == WIKI:
        return None if any(ch in _WIKI_FORBIDDEN for ch in text) else text
    if link.kind == ANGLE or angled:
        return None if any(ch in "<>#\n\r" for ch in text) else text
    # Markdown and Notable: encoded when it was; a plain destination that cannot hold the text is encoded.
    if raw != link.target or _MD_UNSAFE.search(text):
        return quote(text, safe=_SAFE)
    return text


def replace_spans(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """`text` with each (start, end) span replaced; spans must not overlap."""
    out: list[str] = []
    pos = 0
    for start, end, new in sorted(edits):
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def note_links(parsed: ParsedNote) -> tuple[Link, ...]:
    """The links in a note's body (never its front matter), with line numbers counted in the whole file and
    offsets in the body."""
    doc = parsed.doc
    if doc is None:
        return ()
    head = doc.bom + doc.open_line + doc.fm_text + doc.close_line
    return parse_links(doc.body, head.count("\n") + 1)
