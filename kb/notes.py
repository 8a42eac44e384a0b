"""The note format, pure: front matter parsing and surgical rewriting, titles to file names, timestamps.

A note file is kept byte for byte. Parsing splits it into a `Document` whose `render()` gives back exactly
the original text; rewriting replaces only the front matter lines of the keys that change.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kb.errors import BrokenNote, UsageError

if TYPE_CHECKING:
    import yaml

BOM = "\ufeff"
MAX_FRONT_MATTER_BYTES = 64 * 1024
# What is read of a note to list or index it: its front matter and the first 4 MiB of its body (the index
# holds at most a million characters of a body). A huge note is not read whole for that.
HEAD_BYTES = MAX_FRONT_MATTER_BYTES + 4 * 1024 * 1024
MAX_YAML_ALIASES = 8  # real notes use none; each one can double what the front matter expands to
MAX_YAML_DEPTH = 32
MAX_TITLE_CHARS = 1024
MAX_STEM_BYTES = 200
KNOWN_KEYS = ("tags", "title", "created", "modified")
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
_FORBIDDEN_IN_NAME = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
_DELIM = re.compile(r"---[ \t]*(\r\n|\n|$)")
_CLOSE = re.compile(r"^---[ \t]*(\r\n|\n|$)", re.MULTILINE)


# ---------------------------------------------------------------- timestamps


def format_timestamp(moment: datetime) -> str:
    """Notable's form: ISO 8601 UTC with milliseconds and `Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime | None:
    """Parse an ISO 8601 date or date-time; naive values are UTC. None when it is not a real date."""
    text = value.strip()
    if not text:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


# ---------------------------------------------------------------- titles and file names


def validate_title(title: str) -> str:
    """A title kb can write: non-empty, one line, no control characters, valid Unicode. Outer spaces go."""
    if not title or not title.strip():
        raise UsageError("the title is empty")
    if len(title) > MAX_TITLE_CHARS:
        raise UsageError(f"the title is longer than {MAX_TITLE_CHARS} characters")
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the title is not valid Unicode") from None
    for ch in title:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            raise UsageError(f"the title contains a control character (U+{ord(ch):04X})")
    return title.strip()


def no_such_tag(tag: str, tags: Iterable[str]) -> str:
    """What to say when no note has `tag`: the closest of `tags` (or of their parents), if one is close."""
    import difflib

    forms: dict[str, str] = {}
    for name in tags:
        parts = name.split("/")
        for n in range(1, len(parts) + 1):
            forms.setdefault("/".join(parts[:n]).casefold(), "/".join(parts[:n]))
    close = difflib.get_close_matches(tag.lstrip("#").casefold(), list(forms), n=1, cutoff=0.75)
    hint = f"; did you mean '{forms[close[0]]}'?" if close else ""
    return f"no note has the tag '{tag}'{hint} (kb tags lists them)"


def validate_tag(tag: str) -> str:
    """Normalise a tag (`/` nests; outer spaces and slashes dropped) or refuse it."""
    cleaned = "/".join(part.strip() for part in tag.strip().strip("/").split("/"))
    if not cleaned or "//" in cleaned or any(not part for part in cleaned.split("/")):
        raise UsageError(f"invalid tag {tag!r}")
    for ch in cleaned:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            raise UsageError(f"the tag {tag!r} contains a control character")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"the tag {tag!r} is not valid Unicode") from None
    return cleaned


def validate_text(text: str) -> str:
    """Body text kb can write: valid Unicode without NUL bytes (a file with NUL bytes reads as binary)."""
    if "\0" in text:
        raise UsageError("the text contains NUL bytes; kb stores text notes only")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the text is not valid Unicode") from None
    return text


def tag_with_parents(tag: str) -> list[str]:
    """A nested tag and every parent: "a/b/c" -> ["a", "a/b", "a/b/c"] (searching a parent finds it)."""
    parts = tag.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def is_utf8(name: str) -> bool:
    """Whether a name read from the file system, git or the command line was UTF-8: other bytes come as
    lone surrogates, which no note, tag, search index or catalog can hold."""
    if name.isascii():  # the common case, at C speed
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(name: str) -> str:
    """A name that is_utf8 refused, shown as its bytes: those that are not UTF-8 as `\\xNN`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def title_key(title: str) -> str:
    """Two titles are the same note when their NFC, case-folded forms are equal."""
    return unicodedata.normalize("NFC", title).casefold()


def file_stem(title: str) -> str:
    """The file name (without `.md`) Notable would give a title, made safe on every file system.

    `/` becomes `∕` and `\\` becomes `∖`; characters Windows forbids are dropped; leading dots and
    trailing dots or spaces go; reserved device names get a `_`; a name over MAX_STEM_BYTES is cut at a
    character boundary and given a hash of the whole title, so it stays unique and deterministic.
    """
    name = unicodedata.normalize("NFC", title)
    name = name.replace("/", "∕").replace("\\", "∖")
    name = _FORBIDDEN_IN_NAME.sub("", name)
    name = name.strip().lstrip(".").rstrip(". ")
    if not name:
        name = "Untitled"
    if name.split(".")[0].upper() in _RESERVED:
        name = name + "_"
    if len(name.encode("utf-8")) > MAX_STEM_BYTES:
        import hashlib  # rarely: its start is 2-3 ms of every command that loads this module

        digest = hashlib.sha256(title.encode("utf-8")).hexdigest()[:10]
        cut = name.encode("utf-8")[: MAX_STEM_BYTES - 12].decode("utf-8", errors="ignore").rstrip(". ")
        name = f"{cut}~{digest}"
    return name


def title_from_stem(stem: str) -> str:
    """The inverse of the slash mapping, for notes that have no title in their front matter."""
    return stem.replace("∕", "/").replace("∖", "\\")


def title_from_path(path: str) -> str:
    """A title from a note's path: its file name without the Markdown suffix."""
    name = path.rsplit("/", 1)[-1]
    for suffix in (".md", ".markdown"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return title_from_stem(name)


_HEADING = re.compile(r" {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FIRST_TEXT = re.compile(r"\s*")


def heading_title(body: str) -> str | None:
    """The text of a level-1 `# Heading` when it is the first non-blank line of the body (never one inside
    fenced code or a later section)."""
    start = _FIRST_TEXT.match(body)
    pos = start.end() if start else 0
    # back to the start of that line (the match also ate its indentation)
    line_start = body.rfind("\n", 0, pos) + 1
    end = body.find("\n", pos)
    line = body[line_start : end if end >= 0 else len(body)].rstrip("\r")
    found = _HEADING.fullmatch(line)
    if not found:
        return None
    text = found.group(1).strip()
    return text if text and not any(unicodedata.category(ch) == "Cc" for ch in text) else None


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_QUOTE = re.compile(r"^(?: {0,3}>)+ ?")
_INLINE_CODE = re.compile(r"(`+)(?:.+?)\1")
_INLINE_TAG = re.compile(r"(?<!\S)#([\w/-]*[^\W\d_][\w/-]*)")
MAX_TAG_SCAN_CHARS = 1_000_000


def _past_title_heading(body: str, title: str | None) -> str:
    """The body after a first line `# TITLE` that repeats the front matter's title (as kb and Notable write
    it): that heading names the note, so a `#` in the title (`kb add "#1 priority"`) makes no tag. Without
    a title in the front matter, the heading is the title's source and its tags count, as in Obsidian."""
    if title is None or "#" not in title:
        return body
    first, _, rest = body.lstrip("\r\n").partition("\n")
    heading = _HEADING.fullmatch(first.rstrip("\r"))
    return rest if heading is not None and heading.group(1).strip() == title.strip() else body


def inline_tags(body: str) -> tuple[str, ...]:
    """`#tag` and `#nested/tag` in the body as Obsidian and zk read them: not inside fenced or inline
    code, not a heading's `#`, at least one letter; in order of first use."""
    if "#" not in body:
        return ()
    found: list[str] = []
    fence: str | None = None
    for line in body[:MAX_TAG_SCAN_CHARS].splitlines():
        line = _QUOTE.sub("", line)  # inside a blockquote or callout, code fences work the same
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        if "#" not in line or line.startswith("    ") or line.startswith("\t"):
            continue
        if "`" in line:
            line = _INLINE_CODE.sub(" ", line)
        for match in _INLINE_TAG.finditer(line):
            tag = match.group(1).strip("/")
            try:
                tag = validate_tag(tag)
            except UsageError:
                continue
            if tag not in found:
                found.append(tag)
    return tuple(found)


OTHER_CREATED_KEYS = ("date", "created-at", "created_at", "createdAt", "date-created", "date_created",
                      "creation_date", "created_on", "created-on")  # fmt: skip
OTHER_MODIFIED_KEYS = ("updated", "updated-at", "updated_at", "updatedAt", "last-modified",
                       "last_modified", "lastmod", "date-modified", "date_modified", "modified_at",
                       "modified-at", "updated_on")  # fmt: skip


# ---------------------------------------------------------------- YAML scalars


def _plain_ok(value: str, in_flow: bool) -> bool:
    if not value or value != value.strip():
        return False
    if value[0] in "!&*-?:,[]{}#|>@`\"'%=~":
        return False
    if ": " in value or " #" in value or value.endswith(":") or "\t" in value:
        return False
    if in_flow and any(ch in value for ch in ",[]{}"):
        return False
    import yaml  # PyYAML is imported when a note is parsed or written (~14 ms), not before

    try:
        loaded = yaml.safe_load(f"[{value}]" if in_flow else value)
    except yaml.YAMLError:
        return False
    return loaded == ([value] if in_flow else value)


def yaml_scalar(value: str, in_flow: bool = False, quote: bool = False) -> str:
    """A string as Notable writes it: plain when YAML reads it back unchanged, else single-quoted."""
    if not quote and _plain_ok(value, in_flow):
        return value
    return "'" + value.replace("'", "''") + "'"


def yaml_value(key: str, value: str | Sequence[str]) -> str:
    if isinstance(value, str):
        return yaml_scalar(value, quote=key in ("created", "modified"))
    return "[" + ", ".join(yaml_scalar(item, in_flow=True) for item in value) + "]"


# ---------------------------------------------------------------- documents


@dataclass(frozen=True)
class Document:
    """A note file split into parts that render back to exactly the same text."""

    bom: str  # "" or the BOM character
    open_line: str  # "---\n" or "" when there is no front matter
    fm_text: str  # the front matter lines, each with its line ending
    close_line: str  # "---\n", "---" at end of file, or ""
    body: str  # everything after the closing line

    @property
    def has_front_matter(self) -> bool:
        return bool(self.open_line)

    @property
    def newline(self) -> str:
        """The file's line ending: its front matter's, else its first line's."""
        if self.open_line:
            return "\r\n" if self.open_line.endswith("\r\n") else "\n"
        end = self.body.find("\n")
        return "\r\n" if end > 0 and self.body[end - 1] == "\r" else "\n"

    def render(self) -> str:
        return self.bom + self.open_line + self.fm_text + self.close_line + self.body


def split_document(text: str) -> tuple[Document, str | None]:
    """Split text into a Document; the second value names a front matter delimiter problem, if any."""
    bom = BOM if text.startswith(BOM) else ""
    rest = text[len(bom) :]
    opening = _DELIM.match(rest)
    if not opening or not opening.group(1):
        return Document(bom, "", "", "", rest), None
    after = rest[opening.end() :]
    closing = _CLOSE.search(after)
    if not closing:
        return Document(bom, "", "", "", rest), "front matter has no closing '---' line"
    return (
        Document(
            bom=bom,
            open_line=opening.group(0),
            fm_text=after[: closing.start()],
            close_line=closing.group(0),
            body=after[closing.end() :],
        ),
        None,
    )


@dataclass(frozen=True)
class ParsedNote:
    """What kb knows of one note file. `problem` set means: show it, never rewrite it."""

    doc: Document | None
    title: str | None
    tags: tuple[str, ...]
    created: str | None
    modified: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)
    problem: str | None = None
    warnings: tuple[str, ...] = ()
    heading: str | None = None  # the title a first-line `# Heading` gives
    inline_tags: tuple[str, ...] = ()  # `#tags` in the body, outside code
    other_created: str | None = None  # a creation date under another tool's key (`date`, `created_at`...)
    other_modified: str | None = None  # likewise `updated`, `last_modified`...

    @property
    def all_tags(self) -> tuple[str, ...]:
        """Front matter tags, then inline tags not among them."""
        if not self.inline_tags:
            return self.tags
        return self.tags + tuple(t for t in self.inline_tags if t not in self.tags)

    @property
    def dates(self) -> tuple[str | None, str | None]:
        """(created, modified) as listed: kb's keys, else the keys other tools write."""
        return self.created or self.other_created, self.modified or self.other_modified

    def title_for(self, path: str) -> str:
        """The title: front matter `title`, else a `# Heading` on the first line of the body, else the file
        name. The same rule in place and on import."""
        return self.title or self.heading or title_from_path(path)

    @property
    def text(self) -> str | None:
        return self.doc.render() if self.doc else None

    @property
    def body(self) -> str:
        return self.doc.body if self.doc else ""


class _FMError(Exception):
    pass


def _line_of(mark: Any, doc: Document) -> int:
    """A 1-based line number in the file for a mark inside the front matter."""
    return int(mark.line) + 2 if mark is not None else 1


def _compose(doc: Document) -> yaml.MappingNode | None:
    import yaml

    safe_loader = _loaders()[0]
    fm = doc.fm_text
    if len(fm.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise _FMError(f"front matter is larger than {MAX_FRONT_MATTER_BYTES // 1024} KiB")
    aliases = 0
    depth = 0
    # Aliases need '*'; nesting deeper than the limit needs that many lines or brackets. Only a front
    # matter that could hold either is walked event by event before it is composed.
    risky = "*" in fm or fm.count("\n") + fm.count("[") + fm.count("{") >= MAX_YAML_DEPTH
    try:
        for event in yaml.parse(fm, Loader=safe_loader) if risky else ():
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_YAML_ALIASES:
                    raise _FMError(f"front matter uses more than {MAX_YAML_ALIASES} YAML aliases")
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise _FMError(f"front matter is nested deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        node = yaml.compose(fm, Loader=safe_loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _FMError(f"invalid front matter at line {_line_of(mark, doc)}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise _FMError(f"invalid front matter: {exc}") from None
    if node is None:
        return None
    if not isinstance(node, yaml.MappingNode):
        raise _FMError("front matter is not a mapping of keys to values")
    _check_tags(node, doc)
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _FMError(f"front matter has a non-text key at line {_line_of(key_node.start_mark, doc)}")
        line = _line_of(key_node.start_mark, doc)
        if key_node.value in seen:
            raise _FMError(f"duplicate key '{key_node.value}' in front matter at line {line}")
        seen[key_node.value] = line
    return node


@functools.cache
def _loaders() -> tuple[Any, Any]:
    """PyYAML's safe loader (libyaml's when PyYAML has it), and the same with dates kept as the text the
    user wrote (a date that does not exist is no error)."""
    import yaml

    safe: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class TextDatesLoader(safe):
        pass

    TextDatesLoader.add_constructor("tag:yaml.org,2002:timestamp", _date_as_text)
    return safe, TextDatesLoader


def _date_as_text(loader: Any, node: yaml.Node) -> Any:
    return node.value


_SAFE_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map", "binary", "set", "omap",
                 "pairs", "merge", "value")
}  # fmt: skip


def _check_tags(node: yaml.Node, doc: Document) -> None:
    """Only YAML's own types: a language tag (`!!python/object/apply:`) is refused, never run."""
    import yaml

    stack = [node]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:  # an alias: its node is checked once, however often it is used
            continue
        seen.add(id(current))
        if current.tag not in _SAFE_TAGS:
            line = _line_of(current.start_mark, doc)
            raise _FMError(f"invalid front matter at line {line}: unsupported tag {current.tag}")
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.extend((key, value))


def _construct(fm_text: str, doc: Document) -> dict[str, Any]:
    import frontmatter  # python-frontmatter's YAML handler, given a safe loader
    import yaml

    try:
        data = frontmatter.YAMLHandler().load(fm_text, Loader=_loaders()[1])
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _FMError(f"invalid front matter at line {_line_of(mark, doc)}: {exc.problem or exc}") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        raise _FMError(f"invalid front matter: {exc}") from None
    return dict(data) if isinstance(data, dict) else {}


def _scalar_text(node: yaml.Node) -> str | None:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.style is None and node.value in ("", "~", "null", "Null", "NULL"):
            return None
        return str(node.value)
    return None


def head_of(raw: bytes, limit: int = HEAD_BYTES) -> bytes:
    """The first `limit` bytes of a file, without a UTF-8 character cut in two at the end."""
    if len(raw) <= limit:
        return raw
    end = limit
    while end > limit - 4 and end > 0 and (raw[end - 1] & 0xC0) == 0x80:
        end -= 1
    if end > 0 and raw[end - 1] >= 0xC0:
        end -= 1  # the first byte of the character that was cut
    return raw[:end]


def split_text(raw: bytes) -> tuple[Document, str | None] | None:
    """split_document() of a file's bytes; None when they are not text (a NUL byte, not UTF-8), which
    parse_note reports as the note's problem."""
    if b"\x00" in raw[:8192]:
        return None
    try:
        return split_document(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def modified_of(raw: bytes) -> str | None:
    """parse_note(raw).modified without the rest of the note (tags, headings, the other keys' checks):
    what numbering a note's revisions needs of each."""
    split = split_text(raw)
    if split is None:
        return None
    doc, delim_problem = split
    if delim_problem or not doc.has_front_matter:
        return None
    try:
        node = _compose(doc)
        if node is not None:
            _construct(doc.fm_text, doc)  # what parse_note reports as a problem, here too
    except _FMError:
        return None
    if node is None:
        return None
    values = {key.value: value for key, value in node.value}
    return _scalar_text(values["modified"]) if "modified" in values else None


def parse_note(raw: bytes, with_extra: bool = True) -> ParsedNote:
    """Parse a note file's bytes. Never raises: problems are reported in the result.

    `with_extra=False` skips building the values of keys kb does not know (faster, for listings)."""
    if b"\x00" in raw[:8192]:
        return ParsedNote(None, None, (), None, None, problem="binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParsedNote(None, None, (), None, None, problem=f"not valid UTF-8 at byte offset {exc.start}")
    doc, delim_problem = split_document(text)
    if delim_problem:
        return ParsedNote(doc, None, (), None, None, problem=delim_problem, heading=heading_title(doc.body),
                          inline_tags=inline_tags(doc.body))  # fmt: skip
    if not doc.has_front_matter:
        return ParsedNote(doc, None, (), None, None, heading=heading_title(doc.body),
                          inline_tags=inline_tags(doc.body))  # fmt: skip
    try:
        node = _compose(doc)
        extra = _construct(doc.fm_text, doc) if node is not None and with_extra else {}
    except _FMError as exc:
        return ParsedNote(doc, None, (), None, None, problem=str(exc), heading=heading_title(doc.body),
                          inline_tags=inline_tags(doc.body))  # fmt: skip
    import yaml

    warnings: list[str] = []
    values: dict[str, yaml.Node] = {}
    if node is not None:
        values = {key.value: value for key, value in node.value}
    title = None
    if "title" in values:
        title = _scalar_text(values["title"])
        if title is None and not isinstance(values["title"], yaml.ScalarNode):
            warnings.append("'title' is not text; the file name is used instead")
        if title is not None:
            title = title.strip() or None
    tags: list[str] = []
    if "tags" in values:
        tags = _read_tags(values["tags"], warnings)
    dates: dict[str, str | None] = {}
    for key in ("created", "modified"):
        dates[key] = _scalar_text(values[key]) if key in values else None
        if dates[key] is not None and parse_timestamp(dates[key] or "") is None:
            warnings.append(f"'{key}' is not a valid date: {dates[key]!r}")
    others: dict[str, str | None] = {"created": None, "modified": None}
    for which, keys in (("created", OTHER_CREATED_KEYS), ("modified", OTHER_MODIFIED_KEYS)):
        if dates[which] is not None:
            continue
        for key in keys:
            value = _scalar_text(values[key]) if key in values else None
            moment = parse_timestamp(value) if value else None
            if moment is not None:
                others[which] = format_timestamp(moment)
                break
    for key in KNOWN_KEYS:
        extra.pop(key, None)
    return ParsedNote(
        doc=doc,
        title=title,
        tags=tuple(tags),
        created=dates["created"],
        modified=dates["modified"],
        extra=extra,
        warnings=tuple(warnings),
        heading=None if title else heading_title(doc.body),
        inline_tags=inline_tags(_past_title_heading(doc.body, title)),
        other_created=others["created"],
        other_modified=others["modified"],
    )


def _read_tags(node: yaml.Node, warnings: list[str]) -> list[str]:
    import yaml

    raw: list[str] = []
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            text = _scalar_text(item)
            if text is None:
                warnings.append("a tag that is not text was ignored")
            else:
                raw.append(text)
    elif isinstance(node, yaml.ScalarNode):
        text = _scalar_text(node)
        if text is not None:
            raw.extend(part for part in text.split(","))
    else:
        warnings.append("'tags' is not a list; it was ignored")
    tags: list[str] = []
    for item in raw:
        try:
            tag = validate_tag(item)
        except UsageError:
            if item.strip():
                warnings.append(f"invalid tag {item!r} was ignored")
            continue
        if tag not in tags:
            tags.append(tag)
    return tags


# ---------------------------------------------------------------- writing


def new_note_text(title: str, tags: Sequence[str], created: str, modified: str, body: str) -> str:
    lines = ["---\n"]
    if tags:
        lines.append(f"tags: {yaml_value('tags', tags)}\n")
    lines.append(f"title: {yaml_scalar(title)}\n")
    lines.append(f"created: {yaml_scalar(created, quote=True)}\n")
    lines.append(f"modified: {yaml_scalar(modified, quote=True)}\n")
    lines.append("---\n\n")
    return "".join(lines) + body


def _key_spans(doc: Document) -> dict[str, tuple[int, int]]:
    """For each top-level key, the [start, end) range of front matter lines that hold it."""
    node = _compose(doc)
    spans: dict[str, tuple[int, int]] = {}
    if node is None:
        return spans
    for key_node, value_node in node.value:
        start = key_node.start_mark.line
        end_mark = value_node.end_mark
        end = end_mark.line if end_mark.column == 0 else end_mark.line + 1
        spans[key_node.value] = (start, max(end, start + 1))
    return spans


def set_fields(doc: Document, updates: Mapping[str, str | Sequence[str] | None]) -> Document:
    """Rewrite only the front matter lines of the keys in `updates` (None removes the key).

    Keys not named, their order, quoting and comments, and the body stay byte-identical.
    The result is verified by parsing it again; a front matter kb cannot edit safely is refused.
    """
    nl = doc.newline
    if not doc.has_front_matter:
        head = "---" + nl
        fm = "".join(f"{k}: {yaml_value(k, v)}{nl}" for k, v in updates.items() if v is not None)
        body = doc.body if doc.body.startswith(("\n", "\r\n")) else nl + doc.body
        result = Document(doc.bom, head, fm, "---" + nl, body)
    else:
        try:
            spans = _key_spans(doc)
        except _FMError as exc:
            raise BrokenNote(str(exc)) from None
        lines = doc.fm_text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += nl
        replacements: dict[int, tuple[int, list[str]]] = {}
        inserts: dict[int, list[str]] = {}
        for key, value in updates.items():
            new_lines = [] if value is None else [f"{key}: {yaml_value(key, value)}{nl}"]
            if key in spans:
                start, end = spans[key]
                replacements[start] = (end, new_lines)
            elif new_lines:
                inserts.setdefault(_insert_line(key, spans, len(lines)), []).extend(new_lines)
        out: list[str] = []
        index = 0
        while index <= len(lines):
            out.extend(inserts.get(index, []))
            if index == len(lines):
                break
            if index in replacements:
                end, new_lines = replacements[index]
                out.extend(new_lines)
                index = end
                continue
            out.append(lines[index])
            index += 1
        result = Document(doc.bom, doc.open_line, "".join(out), doc.close_line, doc.body)
    _verify(doc, result, updates)
    return result


def _insert_line(key: str, spans: Mapping[str, tuple[int, int]], n_lines: int) -> int:
    order = list(KNOWN_KEYS)
    if key in order:
        position = order.index(key)
        for earlier in reversed(order[:position]):
            if earlier in spans:
                return spans[earlier][1]
        for later in order[position + 1 :]:
            if later in spans:
                return spans[later][0]
    return n_lines


def _verify(before: Document, after: Document, updates: Mapping[str, str | Sequence[str] | None]) -> None:
    old = parse_note(before.render().encode("utf-8"))
    new = parse_note(after.render().encode("utf-8"))
    ok = new.problem is None and new.body == after.body and dict(new.extra) == dict(old.extra)
    expected: dict[str, Any] = {
        "title": old.title,
        "tags": old.tags,
        "created": old.created,
        "modified": old.modified,
    }
    for key, value in updates.items():
        expected[key] = (tuple(value) if value is not None else ()) if key == "tags" else value
    for key in KNOWN_KEYS:
        if key in updates or old.problem is None:
            ok = ok and getattr(new, key) == expected[key]
    if not ok:
        raise BrokenNote("kb cannot update this front matter without changing more than asked")
