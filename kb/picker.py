"""The note picker: NOTE left out (or ambiguous) on a terminal opens a list of notes to choose from.

Type to filter fuzzily (the letters typed, in order, anywhere in the title or path), Up/Down to move, Enter
to choose, Esc or Ctrl-C to cancel; the highlighted note's first lines are shown below the list.

`fuzzy_score` is pure and light; `pick` imports prompt_toolkit only when it runs (a command that does not
open the picker never loads it). Every title, path and preview line comes from a note and is untrusted: it
passes through render.visible, and line breaks and tabs in a title or path become spaces.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kb.errors import KbError

# Scoring: every matched character scores 1; one that follows the previous match directly scores
# CONTIGUOUS more; one at the start of a word (the text's start, or after a space, '/', '-', '_', '.')
# scores WORD_START more. Each gap between two matched characters costs GAP_OPEN plus GAP_EXTEND per
# character skipped after the first (at most MAX_GAP a gap), so letters found together beat letters
# gathered from word starts all over the line; a match that starts later loses a little (GAP per skipped
# char, at most MAX_GAP_PENALTY), so "ab" prefers "about" to "a tab".
CONTIGUOUS = 5
WORD_START = 6
GAP_OPEN = 3
GAP_EXTEND = 1
MAX_GAP = 12
GAP = 1
MAX_GAP_PENALTY = 10
_SEPARATORS = frozenset(" /-_.:([")


def fuzzy_score(query: str, text: str) -> tuple[int, tuple[int, ...]] | None:
    """How well `query` matches `text` as a subsequence, ignoring case, and the positions of the matched
    characters; None when it does not. Higher is better. An empty query matches everything with 0.

    Greedy from each place the first character occurs, keeping the best: enough for titles and paths."""
    if not query:
        return 0, ()
    q = query.casefold()
    t = text.casefold()
    if len(t) != len(text):  # casefold changed lengths (ß -> ss): positions would not line up
        t = text.lower()
    best: tuple[int, tuple[int, ...]] | None = None
    start = t.find(q[0])
    while start >= 0:
        found = _match_from(q, t, start)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
        start = t.find(q[0], start + 1)
    return best


def _match_from(q: str, t: str, start: int) -> tuple[int, tuple[int, ...]] | None:
    positions: list[int] = []
    score = 0
    at = start
    for ch in q:
        at = t.find(ch, at)
        if at < 0:
            return None
        score += 1
        if positions and at == positions[-1] + 1:
            score += CONTIGUOUS
        elif positions:
            score -= min(MAX_GAP, GAP_OPEN + GAP_EXTEND * (at - positions[-1] - 2))
        if at == 0 or t[at - 1] in _SEPARATORS:
            score += WORD_START
        positions.append(at)
        at += 1
    score -= min(MAX_GAP_PENALTY, positions[0] * GAP)
    return score, tuple(positions)


@dataclass(frozen=True)
class Choice:
    """One note in the picker: what is shown and what choosing it returns (the path)."""

    title: str
    path: str
    modified: str | None = None


def filtered(query: str, choices: Sequence[Choice]) -> list[tuple[Choice, tuple[int, ...]]]:
    """The choices that match `query`, best first (ties keep the given order: most recent first), with
    the positions matched in `label(choice)`."""
    if not query.strip():
        return [(c, ()) for c in choices]
    scored = []
    for n, choice in enumerate(choices):
        found = fuzzy_score(query.strip(), label(choice))
        if found is not None:
            scored.append((-found[0], n, choice, found[1]))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [(choice, positions) for _, _, choice, positions in scored]


def label(choice: Choice) -> str:
    """A choice's line: its title and its path, one line of visible characters."""
    from kb.render import visible

    return visible(f"{choice.title}  {choice.path}".replace("\n", " ").replace("\t", " "))


class Cancelled(KbError):
    """Esc in the picker: nothing chosen, nothing done."""


def interactive() -> bool:
    """Whether the picker may open: stdin and stdout are terminals."""
    from kb import terminal

    return terminal.is_terminal(sys.stdin) and terminal.is_terminal(sys.stdout)


def pick(choices: Sequence[Choice], preview: Callable[[Choice], str], prompt: str = "note> ") -> Choice:
    """Run the picker on the terminal; the chosen note. Esc raises Cancelled, Ctrl-C KeyboardInterrupt."""
    if not choices:
        raise KbError("there are no notes to choose from")
    from prompt_toolkit.application import Application
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.formatted_text import StyleAndTextTuples
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
    from prompt_toolkit.layout import HSplit, Layout, Window
    from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
    from prompt_toolkit.layout.dimension import Dimension
    from prompt_toolkit.layout.processors import BeforeInput
    from prompt_toolkit.styles import Style

    from kb.render import visible

    state = {"selected": 0, "top": 0}
    shown: list[list[tuple[Choice, tuple[int, ...]]]] = [filtered("", choices)]
    previews: dict[str, str] = {}

    def refilter(_: Buffer) -> None:
        shown[0] = filtered(buffer.text, choices)
        state["selected"], state["top"] = 0, 0

    buffer = Buffer(multiline=False, on_text_changed=refilter)
    list_window: Window

    def list_lines() -> StyleAndTextTuples:
        rows = shown[0]
        height = list_window.render_info.window_height if list_window.render_info else 10
        if state["selected"] < state["top"]:
            state["top"] = state["selected"]
        elif state["selected"] >= state["top"] + height:
            state["top"] = state["selected"] - height + 1
        out: StyleAndTextTuples = []
        for n in range(state["top"], min(len(rows), state["top"] + height)):
            choice, positions = rows[n]
            current = n == state["selected"]
            base = "class:current" if current else ""
            text = label(choice)
            marks = set(positions)
            out.append((base, "> " if current else "  "))
            title_end = len(visible(choice.title.replace("\n", " ").replace("\t", " ")))
            for i, ch in enumerate(text):
                style = (
                    base + (" class:match" if i in marks else "") + (" class:path" if i >= title_end else "")
                )
                out.append((style, ch))
            out.append(("", "\n"))
        return out

    def status() -> StyleAndTextTuples:
        return [("class:status", f"  {len(shown[0])}/{len(choices)}  Enter: choose  Esc: cancel")]

    def preview_lines() -> StyleAndTextTuples:
        rows = shown[0]
        if not rows:
            return [("class:status", "  no note matches")]
        choice = rows[state["selected"]][0]
        if choice.path not in previews:
            try:
                previews[choice.path] = preview(choice)
            except KbError as exc:
                previews[choice.path] = f"({exc})"
        text = visible(previews[choice.path].replace("\t", "    "))
        return [("class:preview", text)]

    bindings = KeyBindings()

    def move(step: int) -> None:
        if shown[0]:
            state["selected"] = max(0, min(len(shown[0]) - 1, state["selected"] + step))

    @bindings.add("up")
    @bindings.add("c-p")
    def _up(event: KeyPressEvent) -> None:
        move(-1)

    @bindings.add("down")
    @bindings.add("c-n")
    def _down(event: KeyPressEvent) -> None:
        move(1)

    @bindings.add("pageup")
    def _page_up(event: KeyPressEvent) -> None:
        move(-10)

    @bindings.add("pagedown")
    def _page_down(event: KeyPressEvent) -> None:
        move(10)

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        if shown[0]:
            event.app.exit(result=shown[0][state["selected"]][0])

    @bindings.add("escape", eager=True)
    def _escape(event: KeyPressEvent) -> None:
        event.app.exit(result=None)

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        event.app.exit(exception=KeyboardInterrupt())

    list_window = Window(
        FormattedTextControl(list_lines), height=Dimension(min=3, weight=2), wrap_lines=False
    )
    layout = Layout(
        HSplit(
            [
                Window(
                    BufferControl(buffer, input_processors=[BeforeInput(prompt, style="class:prompt")]),
                    height=1,
                ),
                Window(FormattedTextControl(status), height=1),
                list_window,
                Window(char="─", height=1, style="class:rule"),
                Window(
                    FormattedTextControl(preview_lines), height=Dimension(min=3, weight=1), wrap_lines=False
                ),
            ]
        ),
        focused_element=buffer,
    )
    style = Style.from_dict(
        {
            "current": "reverse",
            "match": "bold fg:ansiyellow",
            "path": "fg:ansibrightblack",
            "status": "fg:ansibrightblack",
            "prompt": "bold",
            "rule": "fg:ansibrightblack",
        }
    )
    app: Application[Choice | None] = Application(
        layout=layout, key_bindings=bindings, style=style, full_screen=True, mouse_support=False
    )
    app.ttimeoutlen = 0.05  # Esc alone is Esc, not the start of a key sequence
    chosen = app.run()
    if chosen is None:
        raise Cancelled("nothing chosen")
    return chosen
