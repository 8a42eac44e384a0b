"""Search snippets shaped for reading (pure): Markdown's marks taken out and the line cut to a width, the
highlighted spans moved along with the text.

A span is a [start, end) character range of a match in the text. Taking characters out maps every span to
the characters that remain of it (a span left empty, a match inside a link's URL, disappears); cutting to a
width never cuts through a span: the window is moved to the first match and ends before a match it cannot
hold whole.
"""

from __future__ import annotations

import re
import unicodedata

Span = tuple[int, int]
ELLIPSIS = "…"

# [[Target#heading|alias]] -> alias, [[Target]] -> Target; ![alt](url "title") and [text](url) -> text.
_WIKI = re.compile(r"!?\[\[([^\]|#\n]*)(#[^\]|\n]*)?(?:\|([^\]\n]*))?\]\]")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\(([^()\s]*(?:\([^()\s]*\))?[^()\s]*)(?:\s+\"[^\"\n]*\")?\)")
# `# ` heading marks (a `#tag` is no mark); **, __, *, _ around words (snake_case and 2 * 3 stay); `code`.
_HEADING = re.compile(r"(?:^|(?<=\s))#{1,6}[ \t]+")
_EMPHASIS = re.compile(r"(?<![\w*_\\])[*_]{1,3}(?=[^\s*_])|(?<=[^\s*_\\])[*_]{1,3}(?![\w*_])")
_CODE = re.compile(r"`+")


def strip_markdown(text: str, spans: tuple[Span, ...] = ()) -> tuple[str, tuple[Span, ...]]:
    """`text` without Markdown's marks (link syntax, heading marks, emphasis, code ticks) and `spans` on
    the text that remains."""
    keep = [True] * len(text)

    def drop(start: int, end: int) -> None:
        for i in range(start, end):
            keep[i] = False

    for match in _WIKI.finditer(text):
        shown = 3 if match.group(3) is not None else 1
        drop(match.start(), match.start(shown))
        drop(match.end(shown), match.end())
    for match in _LINK.finditer(text):
        if not all(keep[match.start() : match.end()]):
            continue  # inside a wiki link
        drop(match.start(), match.start(1))
        drop(match.end(1), match.end())
    for pattern in (_HEADING, _EMPHASIS, _CODE):
        for match in pattern.finditer(text):
            drop(match.start(), match.end())
    if all(keep):
        return text, spans
    before = [0] * (len(text) + 1)  # kept characters before each position
    for i, kept in enumerate(keep):
        before[i + 1] = before[i] + kept
    out = "".join(ch for ch, kept in zip(text, keep, strict=True) if kept)
    moved = []
    for start, end in spans:
        new = (before[start], before[end])
        if new[1] > new[0]:
            moved.append(new)
    return out, tuple(moved)


def cells(text: str) -> int:
    """Terminal columns `text` takes: wide (East Asian) characters two, combining marks none."""
    return sum(_cell(ch) for ch in text)


def _cell(ch: str) -> int:
    if ch.isascii():
        return 1
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def fit(text: str, spans: tuple[Span, ...], width: int) -> tuple[str, tuple[Span, ...]]:
    """`text` cut to at most `width` columns around its first match, `…` where cut, never through a
    match; `spans` on the result (those cut off are gone)."""
    if width <= 0 or cells(text) <= width:
        return text, spans
    first = spans[0][0] if spans else 0
    room = width - 2  # an ellipsis at each end
    # Start a third of the room before the first match, at a word's start when one is near.
    start = first
    used = 0
    while start > 0 and used + _cell(text[start - 1]) <= room // 3:
        start -= 1
        used += _cell(text[start])
    if start > 0:
        space = text.find(" ", start, first)
        if space >= 0 and space - start < 15:
            start = space + 1
    while start < first and text[start] == " ":
        start += 1
    end = start
    used = 0
    while end < len(text) and used + _cell(text[end]) <= room:
        used += _cell(text[end])
        end += 1
    if end >= len(text):  # the end is in: use the room before the start as well
        while start > 0 and used + _cell(text[start - 1]) <= width - 1:
            start -= 1
            used += _cell(text[start])
        if start > 0 and text[start - 1] != " ":  # from a word's start, not the middle of one
            space = text.find(" ", start, first)
            if space >= 0:
                start = space + 1
        while start < first and text[start] == " ":
            start += 1
    if end < len(text):  # end at a word's end when one is near
        space = text.rfind(" ", start, end)
        if space > start and end - space < 15:
            end = space
    for s, e in spans:  # never end inside a match
        if s < end < e and s > start:
            end = s
    body = text[start:end]
    lead = ELLIPSIS if start > 0 and not body.startswith(ELLIPSIS) else ""
    trail = ELLIPSIS if end < len(text) and not body.endswith(ELLIPSIS) else ""
    stripped = body.rstrip() if trail else body
    shift = len(lead) - start
    kept = tuple((s + shift, e + shift) for s, e in spans if s >= start and e <= start + len(stripped))
    return lead + stripped + trail, kept
