"""Note-aware diff of two versions, pure: front matter fields, Markdown sections, lines and words.

`unified()` writes a patch that `patch` and `git apply` accept and that turns version A's file into
version B's byte for byte (missing final newlines and CRLF line endings included).
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kb.notes import parse_note

T = TypeVar("T")

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^(```|~~~)")
_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
TOP = "(top)"


@dataclass(frozen=True)
class FieldChange:
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class SectionChange:
    title: str
    level: int
    status: str  # "added", "removed", "changed"
    added: int
    removed: int


@dataclass(frozen=True)
class NoteDiff:
    a_label: str
    b_label: str
    a_path: str
    b_path: str
    fields: tuple[FieldChange, ...]
    tags_added: tuple[str, ...]
    tags_removed: tuple[str, ...]
    sections: tuple[SectionChange, ...]
    added: int
    removed: int
    patch: str  # the unified diff; "" when the versions are identical

    @property
    def identical(self) -> bool:
        return not self.patch


def _fields(raw: bytes) -> tuple[dict[str, Any], tuple[str, ...], str]:
    note = parse_note(raw)
    values: dict[str, Any] = {"title": note.title, "created": note.created, "modified": note.modified}
    for key, value in note.extra.items():
        values[key] = value
    body = note.body if note.doc is not None and not note.problem else raw.decode("utf-8", "replace")
    return values, note.tags, body


_CANDIDATE = re.compile(r"\n[#`~]")  # a line a heading or a fence can start (faster than ^ with MULTILINE)


def section_texts(body: str) -> list[tuple[str, int, str]]:
    """(heading, level, text) for the text before the first heading and each heading's section: the
    section's lines as they are in the body, endings included. Only the lines that begin with a mark a
    heading or a fence begins with are looked at one by one."""
    found: list[tuple[str, int, int, int]] = []  # (heading, level, where its line starts, where it ends)
    fenced = False
    starts = (m.start() + 1 for m in _CANDIDATE.finditer(body))
    for start in itertools.chain((0,) if body[:1] in ("#", "`", "~") else (), starts):
        end = body.find("\n", start)
        end = len(body) if end < 0 else end + 1
        line = body[start:end].rstrip("\r\n")
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            found.append((match.group(2), len(match.group(1)), start, end))
    result: list[tuple[str, int, str]] = []
    top = body[: found[0][2]] if found else body
    if top.strip():
        result.append((TOP, 0, top))
    for i, (title, level, _, end) in enumerate(found):
        stop = found[i + 1][2] if i + 1 < len(found) else len(body)
        result.append((title, level, body[end:stop]))
    return result


def section_lines(text: str) -> list[str]:
    """A section's lines without their endings (a line's trailing carriage returns go with them)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    return lines


def sections(body: str) -> list[tuple[str, int, list[str]]]:
    """(heading, level, lines) for the text before the first heading and each heading's section."""
    return [(title, level, section_lines(text)) for title, level, text in section_texts(body)]


def _keyed(parts: list[tuple[str, int, list[str]]]) -> dict[tuple[str, int], tuple[int, list[str]]]:
    seen: dict[str, int] = {}
    keyed = {}
    for title, level, lines in parts:
        seen[title] = seen.get(title, 0) + 1
        keyed[(title, seen[title])] = (level, lines)
    return keyed


def shortest_counts(a: Sequence[str], b: Sequence[str]) -> tuple[int, int]:
    """Lines added and removed from a to b in a shortest diff (Myers' O((N+M)D) algorithm: fast when
    two versions differ in a few lines, as revisions of a note mostly do; difflib took 4-8 ms per pair of
    500-line notes, seconds for a log of 200 revisions)."""
    lo, n, m = 0, len(a), len(b)
    while lo < n and lo < m and a[lo] == b[lo]:
        lo += 1
    while n > lo and m > lo and a[n - 1] == b[m - 1]:
        n, m = n - 1, m - 1
    a, b = a[lo:n], b[lo:m]
    n, m = len(a), len(b)
    if not n or not m:
        return m, n
    if n + m > MAX_EDIT_SCRIPT:
        return _difflib_counts(a, b)
    d = edit_distance(a, b, n + m)
    common = (n + m - (n + m if d is None else d)) // 2  # d = n + m always ends the search
    return m - common, n - common


def edit_distance(
    a: Sequence[T], b: Sequence[T], limit: int, trace: list[list[int]] | None = None
) -> int | None:
    """Lines added plus removed in a shortest diff from a to b (Myers' forward search), None when more
    than `limit`. With `trace`, the search's state before each step is appended to it (what matching_runs
    follows back)."""
    n, m = len(a), len(b)
    offset = n + m + 1
    v = [0] * (2 * offset + 1)
    for d in range(min(n + m, limit) + 1):
        if trace is not None:
            trace.append(v[:])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x, y = x + 1, y + 1
            v[offset + k] = x
            if x >= n and y >= m:
                return d
    return None


def matching_runs(a: Sequence[T], b: Sequence[T], limit: int = 500) -> list[tuple[int, int, int]]:
    """(i, j, n): a[i:i+n] == b[j:j+n], the items `b` keeps from `a` in a shortest diff (followed back from
    edit_distance's search); beyond `limit` items added and removed, difflib's matching blocks."""
    trace: list[list[int]] = []
    if edit_distance(a, b, limit, trace) is None:
        blocks = difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
        return [(i, j, size) for i, j, size in blocks if size]
    offset = len(a) + len(b) + 1
    x, y = len(a), len(b)
    matched = []
    for d in range(len(trace) - 1, -1, -1):
        v = trace[d]
        k = x - y
        before = k + 1 if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]) else k - 1
        before_x = v[offset + before]
        before_y = before_x - before
        while x > before_x and y > before_y:
            x, y = x - 1, y - 1
            matched.append((x, y))
        if d > 0:
            x, y = before_x, before_y
    runs: list[tuple[int, int, int]] = []
    for i, j in reversed(matched):
        if runs and runs[-1][0] + runs[-1][2] == i and runs[-1][1] + runs[-1][2] == j:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((i, j, 1))
    return runs


MAX_EDIT_SCRIPT = 20_000  # lines in the two versions together; beyond, difflib's heuristic answer


def _difflib_counts(a: Sequence[str], b: Sequence[str]) -> tuple[int, int]:
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def section_changes(a_body: str, b_body: str) -> list[SectionChange]:
    a, b = _keyed(sections(a_body)), _keyed(sections(b_body))
    changes: list[SectionChange] = []
    for key, (level, lines) in b.items():
        if key not in a:
            changes.append(SectionChange(key[0], level, "added", len([x for x in lines if x.strip()]), 0))
        elif a[key][1] != lines:
            added, removed = shortest_counts(a[key][1], lines)
            changes.append(SectionChange(key[0], level, "changed", added, removed))
    for key, (level, lines) in a.items():
        if key not in b:
            changes.append(SectionChange(key[0], level, "removed", 0, len([x for x in lines if x.strip()])))
    return changes


def _quote(name: str) -> str:
    """A path as git writes it in a patch header: C-quoted when it holds anything but plain ASCII."""
    if all(32 < ord(ch) < 127 and ch not in '"\\' for ch in name.replace(" ", "x")):
        return name
    out = []
    for byte in name.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def unified(a: bytes, b: bytes, a_path: str, b_path: str, context: int = 3) -> str:
    """A unified diff from a to b with git-style headers. Lines keep their own endings."""
    if a == b and a_path == b_path:
        return ""
    a_lines = lines_of(a.decode("utf-8", "surrogateescape"))
    b_lines = lines_of(b.decode("utf-8", "surrogateescape"))
    out: list[str] = []
    a_name = _quote("a/" + a_path)
    b_name = _quote("b/" + b_path)
    if a_path != b_path:
        out.append(f"diff --git {a_name} {b_name}\n")
        out.append(f"rename from {_quote(a_path)}\n")
        out.append(f"rename to {_quote(b_path)}\n")
    if a_lines == b_lines:
        return "".join(out)
    out.append(f"--- {a_name}\n")
    out.append(f"+++ {b_name}\n")
    matcher = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out.extend(_line(" ", line) for line in a_lines[a1:a2])
                continue
            out.extend(_line("-", line) for line in a_lines[a1:a2])
            out.extend(_line("+", line) for line in b_lines[b1:b2])
    return "".join(out).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def lines_of(text: str) -> list[str]:
    """Lines with their endings, split at "\n" only (str.splitlines also splits at \x1c, \x85, ...)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _range(start: int, end: int) -> str:
    length = end - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def _line(mark: str, line: str) -> str:
    if line.endswith("\n"):
        return mark + line
    return mark + line + "\n\\ No newline at end of file\n"


def line_counts(a: bytes, b: bytes) -> tuple[int, int]:
    """Lines added and removed from a to b."""
    return shortest_counts(lines_of(a.decode("utf-8", "replace")), lines_of(b.decode("utf-8", "replace")))


def changed_sections(a_body: str, b_body: str) -> tuple[str, ...]:
    """The titles section_changes gives, in its order, without counting lines."""

    def keyed(body: str) -> dict[tuple[str, int], str]:
        seen: dict[str, int] = {}
        found = {}
        for title, _, text in section_texts(body):
            seen[title] = seen.get(title, 0) + 1
            found[(title, seen[title])] = text
        return found

    a, b = keyed(a_body), keyed(b_body)
    titles = [
        key[0]
        for key, text in b.items()
        if key not in a or (a[key] != text and section_lines(a[key]) != section_lines(text))
    ]
    titles.extend(key[0] for key in a if key not in b)
    return tuple(titles)


def _comparable_lines(text: str) -> list[str]:
    """lines_of(text) as values that compare as those lines do: each line without its newline, a last
    line without one given a newline (which no other value holds)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    else:
        lines[-1] += "\n"
    return lines


def change_summary(a: bytes, b: bytes) -> tuple[int, int, tuple[str, ...]]:
    """Lines added and removed from a to b, and the sections added, removed or changed: note_diff's
    counts without reading the front matter's YAML or writing a patch."""
    from kb.notes import split_document

    a_text, b_text = a.decode("utf-8", "replace"), b.decode("utf-8", "replace")
    added, removed = shortest_counts(_comparable_lines(a_text), _comparable_lines(b_text))
    a_body, b_body = split_document(a_text)[0].body, split_document(b_text)[0].body
    return added, removed, changed_sections(a_body, b_body)


def note_diff(a: bytes, b: bytes, a_path: str, b_path: str, a_label: str, b_label: str) -> NoteDiff:
    a_fields, a_tags, a_body = _fields(a)
    b_fields, b_tags, b_body = _fields(b)
    changes = [
        FieldChange(key, a_fields.get(key), b_fields.get(key))
        for key in dict.fromkeys([*a_fields, *b_fields])
        if a_fields.get(key) != b_fields.get(key)
    ]
    added, removed = shortest_counts(
        lines_of(a.decode("utf-8", "replace")), lines_of(b.decode("utf-8", "replace"))
    )
    return NoteDiff(
        a_label=a_label,
        b_label=b_label,
        a_path=a_path,
        b_path=b_path,
        fields=tuple(changes),
        tags_added=tuple(t for t in b_tags if t not in a_tags),
        tags_removed=tuple(t for t in a_tags if t not in b_tags),
        sections=tuple(section_changes(a_body, b_body)),
        added=added,
        removed=removed,
        patch=unified(a, b, a_path, b_path),
    )


def word_spans(old: str, new: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """The two lines split into (text, changed) runs, changed words marked, for highlighting."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    left: list[tuple[str, bool]] = []
    right: list[tuple[str, bool]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        left.append(("".join(a[i1:i2]), tag != "equal"))
        right.append(("".join(b[j1:j2]), tag != "equal"))
    return [x for x in left if x[0]], [x for x in right if x[0]]


def inline_words(old: str, new: str) -> list[tuple[str, str]]:
    """One line from two: ("=", text) unchanged, ("-", text) removed, ("+", text) added, in order."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    parts: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            parts.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            parts.append(("+", "".join(b[j1:j2])))
    return parts
