"""The only place that prints. Data goes to stdout, chatter (confirmations, warnings, hints) to stderr.

On a terminal output is rich (tables, rendered Markdown); piped it is plain text; `--json` is one documented
JSON document (kb.jsonshape; docs/json.md).

Everything printed comes from notes, file names and git, which are untrusted (synced, imported, edited
elsewhere), so nothing reaches the terminal or a pipe unchecked: `visible()` turns every C0/C1 control
character but tab and newline into a visible stand-in, on the plain paths (`_out`, `_err`) and in the rich
console (whose strings are never read as markup). Only `kb show --raw` into a pipe or file is byte-exact.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, ParamSpec, TextIO, TypeVar

from kb import terminal
from kb.jsonshape import Json, document

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from kb.index import Progress, SearchResult
    from kb.index.document import Snippet
    from kb.server import ServerStatus
    from kb.service.check import CheckResult
    from kb.service.core import (
        ChangeResult,
        InitResult,
        ListResult,
        MadeList,
        NoteInfo,
        ShowResult,
        TagsResult,
    )
    from kb.service.history_search import HistoryHit, HistorySearchResult
    from kb.service.importing import ImportResult
    from kb.service.links import LinkRow, LinksResult
    from kb.service.revisions import Change, DiffResult, NoteLog, RecentLog, Revision
    from kb.service.search import ReindexResult
    from kb.service.sync import SyncResult
    from kb.service.timeline import BlameResult, ChangesResult


def _stdout_is_terminal() -> bool:
    """Whether stdout gets the terminal form (kb.terminal decides: a terminal, or colour forced)."""
    return terminal.styled()


# While a paged command runs, what it prints to stdout is collected here (kb.terminal says when).
_SINK: list[io.StringIO] = []
_HINTS: list[str] = []  # hint()s while output is held in _SINK, printed after it


def _stdout() -> TextIO:
    return _SINK[-1] if _SINK else sys.stdout


P = ParamSpec("P")
R = TypeVar("R")
_SGR = re.compile("\x1b\\[[0-9;]*m")


def _screen_lines(text: str, width: int, most: int) -> int:
    """The rows of a terminal `width` columns wide that `text` fills, counted up to `most` (each line takes
    one row at least: output of thousands of lines is known taller without measuring them)."""
    from rich.cells import cell_len

    if text.count("\n") >= most:
        return most
    rows = 0
    for line in text.splitlines():
        rows += max(1, -(-cell_len(_SGR.sub("", line)) // max(width, 1)))
        if rows >= most:
            return most
    return rows


def _paged(func: Callable[P, R]) -> Callable[P, R]:
    """Output taller than the terminal goes through the pager (kb.terminal.pager_command), as git's does."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        pager = terminal.pager_command()
        lines = terminal.terminal_lines()
        if pager is None or lines <= 0:
            return func(*args, **kwargs)
        buffer = io.StringIO()
        _SINK.append(buffer)
        try:
            result = func(*args, **kwargs)
        except BaseException:
            _SINK.pop()
            sys.stdout.write(buffer.getvalue())
            sys.stdout.flush()
            _held_hints()
            raise
        _SINK.pop()
        text = buffer.getvalue()
        width = shutil.get_terminal_size().columns
        # the hints end the paged text: after the pager they would land under whichever page it left
        tall = _screen_lines(text, width, lines) >= lines
        if tall and _run_pager(pager, text + "".join(f"{visible(hint)}\n" for hint in _HINTS)):
            _HINTS.clear()
            return result
        sys.stdout.write(text)
        sys.stdout.flush()
        _held_hints()
        return result

    return wrapper


def _run_pager(argv: list[str], text: str) -> bool:
    """Pipe `text` into the pager; False when it cannot be started (the caller prints instead)."""
    exe = shutil.which(argv[0])
    if exe is None:
        return False
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # as git sets them
    env.setdefault("LV", "-c")
    sys.stdout.flush()
    if terminal.SETTINGS.run_pager is not None:
        return terminal.SETTINGS.run_pager([exe, *argv[1:]], env, text.encode("utf-8", "replace"))
    import subprocess  # only for a pager (a plain search's cold path never starts one)

    try:
        proc = subprocess.Popen([exe, *argv[1:]], stdin=subprocess.PIPE, env=env)
    except OSError:
        return False
    assert proc.stdin is not None
    import signal

    # A Ctrl-C belongs to the pager while it runs, also while it has not read all the text yet (the write
    # waits for it): kb goes on, as git does, and ends when the pager ends.
    try:
        previous = signal.signal(signal.SIGINT, _pager_has_it)
    except ValueError:  # not the main thread: no handler can be set
        previous = None
    try:
        try:
            proc.stdin.write(text.encode("utf-8", "replace"))
            proc.stdin.close()
        except (BrokenPipeError, OSError):  # the user quit the pager early
            pass
        while True:
            try:
                proc.wait()
                return True
            except KeyboardInterrupt:  # the handler could not be set
                continue
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _pager_has_it(signum: int, frame: object) -> None:
    """SIGINT while the pager runs: the pager's."""


# C0 controls but tab and newline (a carriage return only where no newline follows it: CRLF is a line
# end), DEL and the C1 controls. ESC starts every terminal escape sequence (OSC 52 clipboard writes, OSC 0
# window titles, OSC 8 links, CSI 2J); the C1 controls are 8-bit forms of the same (0x9B is CSI).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
# _CONTROL's characters and every \r, one class: a faster scan than _CONTROL's alternation.
_ANY_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n"
_C1_IN_JSON = re.compile("[\x7f-\x9f]")


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ESC -> U+241B
    if code == 0x7F:
        return "\u2421"
    return f"\\x{code:02x}"


def visible(text: str) -> str:
    """`text` with its control characters (other than tab and newline) made visible: C0 controls and DEL
    as their Control Pictures (ESC as U+241B), C1 controls as `\\x9b`. Nothing else changes."""
    if text.isascii():  # the common case, checked at C speed: delete every printable byte, see what is left
        if not text.encode("ascii").translate(None, _PRINTABLE_ASCII):
            return text
    elif _ANY_CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_stand_in, text)


_IN_A_FIELD = str.maketrans({"\t": "\u2409", "\n": "\u240a", "\r": "\u240d"})  # Control Pictures


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Tab-separated lines, one per row: a tab, newline or carriage return inside a value (a title read
    from a note's front matter, a file's name) shown as its Control Picture, so that a row stays one line
    of its fields. Checked on the whole text at C speed first: the common case changes nothing."""
    if not rows:
        return ""
    text = "".join("\t".join(row) + "\n" for row in rows)
    if _one_line_each(text, len(rows), sum(len(row) - 1 for row in rows)):
        return text
    return "".join("\t".join(value.translate(_IN_A_FIELD) for value in row) + "\n" for row in rows)


def _one_line_each(text: str, rows: int, tabs: int) -> bool:
    """Whether `text`, made of `rows` lines joined by `tabs` tabs in all, has no tab, newline or carriage
    return inside a value: the counts tell, at C speed."""
    return text.count("\n") == rows and text.count("\t") == tabs and "\r" not in text


def _one_line(text: str) -> str:
    """`text` with its tabs, newlines and carriage returns shown as their Control Pictures."""
    return text.translate(_IN_A_FIELD) if ("\n" in text or "\t" in text or "\r" in text) else text


@functools.cache
def _console_class() -> type:
    from rich.console import Console, HighlighterType, JustifyMethod, OverflowMethod
    from rich.style import Style

    class SafeConsole(Console):
        """A console for untrusted text: a string is never markup or emoji codes, and its control
        characters are made visible. (kb's own styles are given as Text objects or style arguments.)"""

        def render_str(
            self,
            text: str,
            *,
            style: str | Style = "",
            justify: JustifyMethod | None = None,
            overflow: OverflowMethod | None = None,
            emoji: bool | None = None,
            markup: bool | None = None,
            highlight: bool | None = None,
            highlighter: HighlighterType | None = None,
        ) -> Text:
            result: Text = super().render_str(
                visible(text), style=style, justify=justify, overflow=overflow, emoji=False, markup=False,
                highlight=False, highlighter=highlighter,
            )  # fmt: skip
            return result

    return SafeConsole


def warm_up() -> None:
    """For the warm server: make what every rich command makes first (the console class)."""
    _console_class()


def _console(stderr: bool = False) -> Console:
    coloured = terminal.color(sys.stderr if stderr else sys.stdout)
    console: Console = _console_class()(
        file=None if stderr else _stdout(),
        stderr=stderr,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=not stderr,
        force_terminal=coloured,
        no_color=not coloured,
    )
    return console


def _text(text: str, style: str = "") -> Text:
    """A rich Text of untrusted text."""
    from rich.text import Text

    return Text(visible(text), style=style)


def _out(text: str) -> None:
    out = _stdout()
    out.write(visible(text))
    out.flush()


def _err(text: str) -> None:
    sys.stderr.write(visible(text) + "\n")
    sys.stderr.flush()


MAX_ERROR_LINE = 1000  # characters of one line of an error; a longer one (a pasted name) loses its middle


def error(message: str) -> None:
    _stop_bars()
    _err("\n".join(_shortened(line) for line in f"Error: {message}".split("\n")))


def _shortened(line: str) -> str:
    """`line`, or its first and last characters around a count of those left out when it is longer than
    MAX_ERROR_LINE (the end of an error says what to do; a 5,000-character name echoed whole hides it)."""
    if len(line) <= MAX_ERROR_LINE:
        return line
    keep = MAX_ERROR_LINE // 2 - 20
    return f"{line[:keep]} …({len(line) - 2 * keep:,} characters left out)… {line[-keep:]}"


def note(message: str) -> None:
    """A line of kb's own chatter on stderr."""
    _err(message)


def server_status(result: ServerStatus) -> None:
    """`kb server status`: one `name: value` line each, on stdout."""
    _out(f"knowledge base: {result.root}\n")
    _out(f"socket: {result.socket or '-'}\n")
    _out(f"running: {'yes' if result.running else 'no'}\n")
    for name, value in result.details:
        if name != "knowledge base":
            _out(f"{name}: {value}\n")
    if result.note:
        _out(f"note: {result.note}\n")


def help_page(text: str) -> None:
    """kb's own help text (kb.helptext, click's --help)."""
    _out(text)


def warnings(items: Iterable[str]) -> None:
    for item in items:
        _err(f"Warning: {item}")


def hint(message: str) -> None:
    """A line of advice on stderr. While the output is held for the pager, it waits for the output: a
    "more are not shown" under the table, not above it."""
    if _SINK:
        _HINTS.append(message)
        return
    _err(message)


def _held_hints() -> None:
    held = _HINTS[:]
    _HINTS.clear()
    for message in held:
        _err(message)


def _json(data: Json) -> None:
    """JSON escapes C0 controls itself; DEL and the C1 controls are written as \\u escapes too."""
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    sys.stdout.write(_C1_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
    sys.stdout.flush()


# ---------------------------------------------------------------- writes


def _external(labels: tuple[str, ...]) -> None:
    if labels:
        shown = ", ".join(labels[:5]) + (" ..." if len(labels) > 5 else "")
        _err(f"Committed changes made outside kb first: {shown}")


def change(result: ChangeResult) -> None:
    _external(result.external)
    warnings(result.warnings)
    note = result.note
    short = f" [{result.commit[:8]}]" if result.commit else ""
    if result.action == "add":
        _err(f"Added: {note.title} ({note.path}){short}")
    elif result.action == "edit":
        _err(f"Edited: {note.title} ({note.path}){short}")
    elif result.action == "rename":
        was = f" (was {result.renamed_from})" if result.renamed_from else ""
        _err(f"Renamed: {note.title} ({note.path}){was}{short}")
    elif result.action == "move":
        _err(f"Moved: {note.title} ({result.renamed_from} -> {note.path}){short}")
    elif result.action == "restore":
        _err(f"Restored: {note.title} ({note.path}){short}")
    elif result.action == "delete":
        _err(f"Deleted: {note.title} ({note.path}){short}; it stays in the history")
    else:
        _err(f"No changes: {note.title} ({note.path})")
    if result.links_updated:
        _err(f"{_count(result.links_updated, 'link')} in {_count(result.link_notes, 'note')} updated")


def init(result: InitResult) -> None:
    state = "Created" if result.created else "Knowledge base at"
    notes = f", {_count(result.notes, 'note')}" if result.notes else ""
    if result.folders:
        notes += f" in {_count(result.folders, 'folder')}"
    if result.history:
        notes += f"; history kept ({_count(result.history, 'commit')})"
    _err(f"{state} {result.root}{notes}")
    if result.in_place:
        _err(
            f"Every Markdown file at any depth is a note ({result.layout}); "
            "kb.toml says which and what to ignore."
        )


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------- reads


@_paged
def show(result: ShowResult, raw: bool, as_json: bool) -> None:
    note = result.note
    if as_json:
        _json(document(result))
        return
    warnings(([f"{note.path}: {note.problem}"] if note.problem else []) + list(note.warnings))
    on_terminal = _stdout_is_terminal()
    if raw and not terminal.is_terminal(sys.stdout):
        sys.stdout.buffer.write(result.raw)  # byte-exact, for files and pipes only
        sys.stdout.flush()
        return
    if raw or not on_terminal:
        _out(result.raw.decode("utf-8", "backslashreplace"))
        return
    from rich.markdown import Markdown

    console = _console()
    header = _text(note.title, style="bold")
    details = "  ".join(
        part
        for part in (
            " ".join(f"#{t}" for t in note.tags),
            f"modified {note.modified}" if note.modified else "",
            note.path,
        )
        if part
    )
    console.print(header)
    console.print(_text(details, style="dim"))
    console.print()
    body = result.body if not note.problem else result.raw.decode("utf-8", "replace")
    body = _without_title_heading(body, note.title)
    # Links are shown with their targets, never as hidden clickable text.
    console.print(Markdown(visible(body), hyperlinks=False), soft_wrap=False)


def _without_title_heading(body: str, title: str) -> str:
    """The body without a first-line `# Title` that repeats the title the header already shows."""
    stripped = body.lstrip("\r\n")
    first, _, rest = stripped.partition("\n")
    if first.startswith("# ") and first[2:].strip().strip("#").strip() == title.strip():
        return rest.lstrip("\r\n")
    return body


def _list_row(note: NoteInfo) -> tuple[str, str, str, str]:
    return (note.modified or "", note.title, ", ".join(note.tags), note.path)


def _plain_list(notes: Sequence[NoteInfo]) -> str:
    """_table of the notes' rows, made in one pass (a tenth of a second at 100,000 notes) when no value
    holds a tab, newline or carriage return."""
    text = "".join([f"{n.modified or ''}\t{n.title}\t{', '.join(n.tags)}\t{n.path}\n" for n in notes])
    if _one_line_each(text, len(notes), 3 * len(notes)):
        return text
    return _table([_list_row(n) for n in notes])


def write_plain_list(notes: Sequence[NoteInfo], fd: int) -> tuple[int, bool]:
    """What note_list prints for `notes` off a terminal, written ahead into the empty file `fd` (in the
    warm server's forked child; kb.service.MadeList): its size in bytes and whether it can be written as
    it is to a UTF-8 stream. Printing it from the notes' records takes a forked worker 130 ms at 100,000
    notes (13.6 MB of text), most of it copying the pages it touches; from this file the kernel copies it
    (_out_made)."""
    text = visible(_plain_list(notes)).encode("utf-8", "surrogatepass")
    view = memoryview(text)
    at = 0
    while at < len(text):
        at += os.pwrite(fd, view[at:], at)
    return len(text), b"\xed" not in text


def _made_chunks(made: MadeList, at: int = 0) -> Iterator[bytes]:
    """The bytes of a list made ahead from `at` on, read from its file a megabyte at a time."""
    fd = made.file.fileno()
    while at < made.size:
        chunk = os.pread(fd, min(made.size - at, 1 << 20), at)
        if not chunk:
            raise OSError(f"kb list's output made ahead ends after {at} of {made.size} bytes")
        yield chunk
        at += len(chunk)


def _send_made(made: MadeList, raw: BinaryIO, out: int | None) -> None:
    """The list made ahead written to stdout (`raw`, its descriptor `out`) by the kernel (sendfile: no
    copy through this process); read and written where there is no descriptor (an in-memory stream) or
    sendfile cannot write to it (a file opened to append, say)."""
    import errno
    import select

    fd = made.file.fileno()
    at = 0
    while out is not None and at < made.size:
        try:
            sent = os.sendfile(out, fd, at, made.size - at)
        except BlockingIOError:  # a stdout set not to block: wait until it takes more
            select.select([], [out], [])
            continue
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            break
        if sent == 0:
            break
        at += sent
    if at < made.size:  # the rest, read and written (the file ending early says so)
        for chunk in _made_chunks(made, at):
            raw.write(chunk)
        raw.flush()


def _out_made(made: MadeList) -> None:
    """Print what write_plain_list made, as _out would have printed its text: its bytes as they are when
    stdout writes UTF-8 and the text holds nothing UTF-8 starts with 0xED (a lone surrogate, and the
    Hangul syllables from U+D000), by the kernel when stdout has a descriptor; otherwise the text,
    through stdout's encoding and error handler."""
    import codecs

    out = _stdout()
    raw = getattr(out, "buffer", None)
    utf8 = codecs.lookup(getattr(out, "encoding", None) or "ascii").name == "utf-8"
    if raw is not None and utf8 and made.as_is:
        out.flush()
        raw.flush()
        try:
            fd: int | None = raw.fileno()
        except (OSError, ValueError):  # io.UnsupportedOperation is both: an in-memory stream
            fd = None
        _send_made(made, raw, fd)
        return
    out.write(b"".join(_made_chunks(made)).decode("utf-8", "surrogatepass"))
    out.flush()


@_paged
def note_list(result: ListResult, as_json: bool) -> None:
    warnings(result.warnings)
    if as_json:
        _json(document(result))
        return
    if not _stdout_is_terminal():
        if result.plain is not None:
            _out_made(result.plain)
            return
        _out(_plain_list(result.notes))
        return
    if not result.notes:
        hint("No notes.")
        return
    notes = result.notes
    columns = [
        [(n.modified or "")[:16].replace("T", " ") for n in notes],
        [n.title for n in notes],
        [", ".join(n.tags) for n in notes],
        [n.path for n in notes],
    ]
    _one_line_table(("Modified", "Title", "Tags", "Path"), columns, ("dim", "bold", "cyan", "dim"))


def _painter(console: Console) -> Callable[[str], Callable[[str], str]]:
    """For a rich style, a function that wraps text in that style's escape codes for `console` (nothing
    when colour is off): what console.print does to styled text, for output of thousands of lines, which
    rich would lay out as an object each."""

    def painter(style: str) -> Callable[[str], str]:
        before, after = _codes(console, style)
        return (lambda text: f"{before}{text}{after}") if before else (lambda text: text)

    return painter


def _codes(console: Console, style: str) -> tuple[str, str]:
    """The escape codes that start and end text in `style` on `console`; ("", "") when colour is off."""
    from rich.console import COLOR_SYSTEMS
    from rich.style import Style

    name = console.color_system if terminal.color(sys.stdout) else None
    system = COLOR_SYSTEMS.get(name) if name is not None else None
    if system is None or not style:
        return "", ""
    before, _, after = Style.parse(style).render("\0", color_system=system).partition("\0")
    return before, after


def _one_line_table(heads: Sequence[str], columns: Sequence[list[str]], styles: Sequence[str]) -> None:
    """A table of one line per row on the terminal, given column by column: columns two spaces apart,
    the headings bold, each column in its style (only when colour is on). When the rows are wider than
    the terminal, the widest column is narrowed first (down to 6 cells), and a cell cut short ends with an
    ellipsis. Written as text rather than through rich's Table, which lays out every cell as an object
    (seconds for 10,000 rows). Cells are made visible and one line here (_visible_column)."""
    from rich.cells import cell_len, set_cell_size

    console = _console()
    count = len(heads)
    cells = [[head, *_visible_column(column)] for head, column in zip(heads, columns, strict=True)]
    single = [all(map(str.isascii, column)) for column in cells]  # each cell as wide as it is long
    lengths = [list(map(len if s else cell_len, column)) for s, column in zip(single, cells, strict=True)]
    widths = [max(column) for column in lengths]
    room = console.width - 2 * (count - 1)
    while sum(widths) > room and max(widths[1:]) > 6:
        widest = max(range(1, count), key=lambda i: widths[i])
        widths[widest] -= 1
    while sum(widths) > room and max(widths) > 1:  # a very narrow terminal: every column, down to one cell
        widest = max(range(count), key=lambda i: widths[i])
        widths[widest] -= 1
    head_before, head_after = _codes(console, "bold")

    def fitted(i: int) -> list[str]:
        """Column i's cells cut or padded to its width (the last column not padded), in their style."""
        width, padded, plain = widths[i], i < count - 1, single[i]

        def fit(cell: str, length: int) -> str:
            if length > width:
                cut = cell[: width - 1] if plain else set_cell_size(cell, width - 1)
                return cut + "\u2026" if width > 0 else ""
            return cell + " " * (width - length) if padded else cell

        before, after = _codes(console, styles[i])
        head = f"{head_before}{fit(cells[i][0], lengths[i][0])}{head_after}"
        pairs = zip(cells[i][1:], lengths[i][1:], strict=True)
        return [head, *(f"{before}{fit(cell, length)}{after}" for cell, length in pairs)]

    rows = zip(*(fitted(i) for i in range(count)), strict=True)
    out = _stdout()
    out.write("".join(["  ".join(row) + "\n" for row in rows]))
    out.flush()


def _visible_column(cells: list[str]) -> list[str]:
    """`cells` each made one line and visible (Control Pictures for tabs and line breaks, then visible());
    the list itself when nothing needs it, which the whole column joined tells at C speed."""
    joined = "\t".join(cells)
    one_line = joined.count("\t") == len(cells) - 1 and "\n" not in joined and "\r" not in joined
    if one_line and visible(joined) is joined:
        return cells
    return [visible(_one_line(cell)) for cell in cells]


def tag_list(result: TagsResult, as_json: bool) -> None:
    warnings(result.warnings)
    if as_json:
        _json(document(result))
        return
    if not _stdout_is_terminal():
        _out(_table([(t.tag, str(t.count)) for t in result.tags]))
        return
    if not result.tags:
        hint("No tags.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("Tag", style="cyan")
    table.add_column("Notes", justify="right")
    for item in result.tags:
        depth = item.tag.count("/")
        table.add_row("  " * depth + item.tag.rsplit("/", 1)[-1], str(item.count))
    _console().print(table)


# ---------------------------------------------------------------- search


def progress(label: str = "Indexing notes") -> Progress:
    """A progress callback that draws a rich bar on stderr, started on first use."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            if not terminal.is_terminal(sys.stderr):  # in a pipe or a log a bar is noise
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=_console(stderr=True),
                transient=True,
            )
            bar.start()
            _BARS.append(bar)
            state["bar"], state["task"] = bar, bar.add_task("index", total=total)
        state["bar"].update(state["task"], completed=done, total=total)
        if done >= total:
            _stop_bars()

    return update


_BARS: list[Any] = []  # the progress bars drawn now (rich redraws them from a thread of its own)


def _stop_bars() -> None:
    """Take the progress bars off the terminal, before an error is said under them."""
    while _BARS:
        _BARS.pop().stop()


def _paths(found: list[str], null: bool) -> int:
    """-l: one path per line (-0: NUL after each); exit 1 when there is none, like grep -l."""
    end = "\0" if null else "\n"
    if null and not _stdout_is_terminal():  # exact for xargs -0: a path's characters are its name
        sys.stdout.write("".join(path + end for path in found))
        sys.stdout.flush()
    else:
        _out("".join(_one_line(path) + end for path in found))
    return 0 if found else 1


@_paged
def search(
    result: SearchResult, json: bool, paths: bool, null: bool = False, lines: str | None = None
) -> int:
    """Print search results; returns the exit code (1 when nothing matched, like grep). `lines`: "count"
    (kb search --count) or "context" (-C N) prints lines of the notes instead of snippets."""
    if result.rebuilt:
        _err("The search index was rebuilt.")
    warnings(result.warnings)
    if json:
        _json(document(result))
        return 0 if result.hits else 1
    if paths:
        return _paths([hit.path for hit in result.hits], null)
    if not result.hits:
        suggestion = f"; did you mean {result.suggestion!r}?" if result.suggestion else ""
        _err(_shortened(f"No notes match {result.query!r}{suggestion}"))
        return 1
    if lines == "count":
        _line_counts(result)
    elif lines == "context":
        _context_lines(result)
    elif _stdout_is_terminal():
        _search_rich(result)
    else:
        width = _columns()
        out = []
        for hit in result.hits:
            tags = " ".join(f"#{t}" for t in hit.tags)
            fields = (f"{hit.rank}. {hit.title}", hit.path, (hit.modified or "")[:10], tags)
            out.append(_table([fields]).rstrip())
            out.extend(f"    {_shown_snippet(snippet, width - 4)[0]}" for snippet in hit.snippets)
        _out("\n".join(out) + "\n")
    if result.total is None:
        shown = len(result.hits)
        hint(f"{shown} note{'s' if shown != 1 else ''} shown, more match; -n N shows more.")
    return 0


def _columns() -> int:
    """The width snippets are cut to in a pipe: $COLUMNS when set, else none (0)."""
    raw = os.environ.get("COLUMNS", "")
    return int(raw) if raw.isdigit() else 0


def _shown_snippet(snippet: Snippet, width: int) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A snippet as it is read: Markdown's marks out, cut to `width` columns (0: not cut) around its
    matches, with the matches' spans on that text. (--json keeps the note's own text.)"""
    from kb.display import fit, strip_markdown

    text, spans = strip_markdown(snippet.text, snippet.matches)
    return fit(text, spans, width) if width > 0 else (text, spans)


def _highlighted(text: str, spans: Iterable[tuple[int, int]], style: str = "") -> Text:
    from rich.text import Text

    line = Text(style=style)
    pos = 0
    for start, end in spans:
        line.append(visible(text[pos:start]))
        line.append(visible(text[start:end]), style="bold yellow")
        pos = end
    line.append(visible(text[pos:]))
    return line


def _line_counts(result: SearchResult) -> None:
    if not _stdout_is_terminal():
        _out("".join(f"{hit.path}:{hit.matching or 0}\n" for hit in result.hits))
        return
    from rich.text import Text

    console = _console()
    width = max(len(str(hit.matching or 0)) for hit in result.hits)
    for hit in result.hits:
        console.print(
            Text.assemble(
                (f"{hit.matching or 0:>{width}}  ", "bold"),
                (visible(hit.title), ""),
                (visible(f"  {hit.path}"), "dim"),
            )
        )


def _context_lines(result: SearchResult) -> None:
    """As grep -n -C does: path:N:line for a matching line, path-N-line around it, -- between groups."""
    if not _stdout_is_terminal():
        out: list[str] = []
        for hit in result.hits:
            previous = None
            for line in hit.lines:
                if out and (previous is None or line.number != previous + 1):
                    out.append("--")
                mark = ":" if line.matches else "-"
                out.append(f"{hit.path}{mark}{line.number}{mark}{line.text}")
                previous = line.number
        _out("".join(row + "\n" for row in out))
        return
    from rich.text import Text

    console = _console()
    for n, hit in enumerate(result.hits):
        if n:
            console.print()
        console.print(Text.assemble((visible(hit.title), "bold"), (visible(f"  {hit.path}"), "dim")))
        width = max((len(str(line.number)) for line in hit.lines), default=1)
        previous = None
        for line in hit.lines:
            if previous is not None and line.number != previous + 1:
                console.print(Text(" " * width + " ⋮", style="dim"))
            number = Text(f"{line.number:>{width}}", style="green" if line.matches else "dim")
            sep = Text(":" if line.matches else "-", style="dim")
            console.print(Text.assemble(number, sep, " ", _highlighted(line.text, line.matches)))
            previous = line.number


def _search_rich(result: SearchResult) -> None:
    from rich.text import Text

    console = _console()
    for hit in result.hits:
        head = Text.assemble(
            (f"{hit.rank:>2}. ", "dim"),
            (visible(_one_line(hit.title)), "bold"),
            (visible("  " + " ".join(f"#{t}" for t in hit.tags)), "cyan"),
            (visible(f"  {(hit.modified or '')[:10]}  {_one_line(hit.path)}"), "dim"),
        )
        console.print(head)
        for snippet in hit.snippets:
            text, spans = _shown_snippet(snippet, console.width - 4)
            console.print(Text("    ").append_text(_highlighted(text, spans)))


def reindex(result: ReindexResult) -> None:
    _external(result.external)
    _err(f"Indexed {result.notes} notes in {result.seconds:.1f} s.")


# ---------------------------------------------------------------- history


@_paged
def note_log(result: NoteLog, limit: int | None, json: bool) -> None:
    revisions = list(result.revisions)
    if json:
        _json(document(result))
        return
    shown = list(reversed(revisions))[: limit or None]
    if not _stdout_is_terminal():
        _out(
            _table(
                [
                    (str(r.number), r.date, r.short, r.action, f"+{r.added} -{r.removed}", r.message)
                    for r in shown
                ]
            )
        )
    else:
        _note_log_table(result, shown)
    if len(shown) < len(revisions):
        hint(f"{len(shown)} of {len(revisions):,} revisions; -n N shows more.")
    _gone(result)


def _gone(result: NoteLog | BlameResult) -> None:
    """kb log's and kb blame's last word on a note that is no longer there."""
    renamed_to = result.renamed_to
    if renamed_to is not None and result.renamed_to_gone:
        hint(f"This note was renamed to {renamed_to}, and deleted since; 'kb log {renamed_to}' shows it.")
    elif renamed_to is not None:
        hint(f"This note was renamed: it is {renamed_to} now.")
    elif not result.exists:
        hint("This note is deleted; 'kb restore NOTE REV' brings it back.")


def _note_log_table(result: NoteLog, shown: list[Revision]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, title=f"{result.title} ({result.path})", title_justify="left")
    for column, style in (
        ("#", "bold"),
        ("Date", "dim"),
        ("Commit", "yellow"),
        ("Action", "cyan"),
        ("Lines", ""),
        ("Message", ""),
    ):
        table.add_column(column, style=style, justify="right" if column == "#" else "left")
    from rich.text import Text

    for r in shown:
        lines = Text.assemble((f"+{r.added}", "green"), " ", (f"-{r.removed}", "red"))
        table.add_row(str(r.number), r.date[:19].replace("T", " "), r.short, r.action, lines, r.message)
    _console().print(table)


@_paged
def recent(result: RecentLog, json: bool) -> None:
    if json:
        _json(document(result))
        return
    if not result.changes:
        hint("No changes yet.")
        return

    def paths(change: Change) -> str:
        # a commit of 1,870 notes is one line with a count, not a line of every path
        shown = ", ".join(p for _, p in change.paths[:3])
        more = len(change.paths) - 3
        return shown + (f" and {more:,} more" if more > 0 else "")

    if _stdout_is_terminal():
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for name in ("date", "commit", "change", "notes"):
            table.add_column(name, overflow="ellipsis", no_wrap=name != "notes")
        for c in result.changes:
            table.add_row(
                _text(c.date[:16].replace("T", " "), "dim"), _text(c.commit[:8], "yellow"), _text(c.message),
                _text(paths(c)),
            )  # fmt: skip
        _console().print(table)
    else:
        rows = [
            f"{c.date[:19].replace('T', ' ')}\t{c.commit[:8]}\t{c.message}\t{paths(c)}\n"
            for c in result.changes
        ]
        _out("".join(rows))
    if result.total > len(result.changes):
        hint(f"{len(result.changes)} of {result.total:,} commits; -n N shows more.")


def _summary_lines(result: DiffResult) -> list[str]:
    d = result.diff
    lines = [f"{result.title}: {d.a_label} -> {d.b_label}"]
    if d.a_path != d.b_path:
        lines.append(f"  renamed: {d.a_path} -> {d.b_path}")
    for f in d.fields:
        old = f.old if f.old is not None else "(none)"
        new = f.new if f.new is not None else "(none)"
        lines.append(f"  {f.key}: {old} -> {new}")
    lines.extend(f"  tag added: {t}" for t in d.tags_added)
    lines.extend(f"  tag removed: {t}" for t in d.tags_removed)
    for s in d.sections:
        counts = f" (+{s.added} -{s.removed})" if s.status == "changed" else ""
        lines.append(f"  section {s.status}: {s.title}{counts}")
    lines.append(f"  lines: +{d.added} -{d.removed}")
    return lines


@_paged
def diff(result: DiffResult, stat: bool, word_diff: bool, plain: bool, json: bool) -> None:
    d = result.diff
    if json:
        _json(document(result))
        return
    if d.identical:
        hint(f"No differences: {d.a_label} and {d.b_label} are the same.")
        return
    if stat:
        _out("\n".join(_summary_lines(result)) + "\n")
        return
    if plain or not _stdout_is_terminal():
        _out(d.patch)
        return
    summary = _summary_lines(result)
    console = _console()
    console.print(_text(summary[0], style="bold"))
    for line in summary[1:]:
        console.print(_text(line, style="cyan"))
    console.print()
    for text in _styled_patch(visible(d.patch), word_diff):
        console.print(text)


def _styled_patch(patch: str, word_diff: bool) -> list[Text]:
    """Coloured lines; where - lines are followed by + lines, the changed words are highlighted
    (or, with word_diff, shown inline in one line)."""
    from rich.text import Text

    from kb.diff import inline_words, word_spans

    lines = patch.splitlines()
    out: list[Text] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(("---", "+++", "diff --git", "rename ")):
            out.append(Text(line, style="bold"))
        elif line.startswith("@@"):
            out.append(Text(line, style="cyan"))
        elif line.startswith("-"):
            minus, plus = [], []
            while i < len(lines) and lines[i].startswith("-"):
                minus.append(lines[i][1:])
                i += 1
            while i < len(lines) and lines[i].startswith("+"):
                plus.append(lines[i][1:])
                i += 1
            for k in range(max(len(minus), len(plus))):
                old = minus[k] if k < len(minus) else None
                new = plus[k] if k < len(plus) else None
                if old is None or new is None:
                    out.append(
                        Text(
                            ("-" + old) if old is not None else ("+" + (new or "")),
                            style="red" if old is not None else "green",
                        )
                    )
                    continue
                left, right = word_spans(old, new)
                if word_diff:
                    text = Text("~")
                    for tag, part in inline_words(old, new):
                        text.append(part, style={"-": "red strike", "+": "green bold"}.get(tag, ""))
                    out.append(text)
                    continue
                t_old, t_new = Text("-", style="red"), Text("+", style="green")
                for part, changed in left:
                    t_old.append(part, style="bold white on red" if changed else "red")
                for part, changed in right:
                    t_new.append(part, style="bold white on green" if changed else "green")
                out.extend([t_old, t_new])
            continue
        elif line.startswith("+"):
            out.append(Text(line, style="green"))
        else:
            out.append(Text(line, style="dim" if line.startswith("\\") else ""))
        i += 1
    return out


def imported(result: ImportResult, json: bool) -> int:
    """The import's report; returns the exit status: 1 when anything was skipped."""
    counts = {s: result.count(s) for s in ("imported", "revised", "unchanged", "skipped")}
    status = 1 if counts["skipped"] else 0
    if json:
        _json(document(result))
        return status
    warnings(result.warnings)
    for item in result.items:
        if item.status == "skipped":
            warnings([f"skipped {item.source}: {item.reason}"])
    would = "would be " if result.dry_run else ""
    lines = [f"{would}{i.status}\t{i.source}\t{i.path or ''}" for i in result.items if i.status != "skipped"]
    _out("".join(line + "\n" for line in lines))
    prefix = "Would import" if result.dry_run else "Imported"
    where = f" into {result.notes_root}" if result.notes_root else ""
    folders = f" in {_count(result.folders, 'folder')}" if result.folders else ""
    history = f", {_count(result.revisions, 'revision')} from git history" if result.revisions else ""
    attachments = _count(result.attachments, "attachment")
    _err(
        f"{prefix}{where}: {counts['imported']} new{folders}, {counts['revised']} revised, "
        f"{counts['unchanged']} unchanged, {counts['skipped']} skipped, {attachments}{history}."
    )
    if result.left_out:
        shown = ", ".join(result.left_out[:3]) + (" ..." if len(result.left_out) > 3 else "")
        _err(
            f"Not copied: {_count(len(result.left_out), 'other file')} that no note links to "
            f"(not Markdown): {shown}"
        )
    return status


def synced(result: SyncResult) -> int:
    if result.external:
        _err(f"Committed changes made outside kb first: {', '.join(result.external[:5])}")
    warnings(result.warnings)
    what = {
        "pushed": "sent your changes",
        "fast-forward": "received changes",
        "merged": "merged changes both ways",
        "up-to-date": "already up to date",
    }[result.action]
    received = f"; {len(result.received)} notes changed here" if result.received else ""
    _err(f"Synced with {result.remote}: {what}{received}.")
    for c in result.conflicts:
        if c.kind == "both-edited":
            _err(
                f"Conflict: '{c.title}' changed on both machines; {c.path} has the other machine's version, "
                f"this machine's is in {c.copy}. Compare them, keep what you want, then 'kb rm' the copy."
            )
        elif c.kind == "edited-here-deleted-there":
            _err(f"Kept '{c.title}' ({c.path}): it was deleted on the other machine but edited here.")
        else:
            _err(f"Restored '{c.title}' ({c.path}): it was deleted here but edited on the other machine.")
    return 1 if result.has_conflicts else 0


# ---------------------------------------------------------------- links


def _leads_to(row: LinkRow) -> str:
    if row.status == "ok":
        return str(row.path)
    if row.status == "ambiguous":
        return "ambiguous: " + ", ".join(row.candidates)
    return "dead"


def _written(row: LinkRow) -> str:
    fragment = f"#{row.fragment}" if row.fragment is not None else ""
    return ("!" if row.embed else "") + row.target + fragment


def links(result: LinksResult, as_json: bool) -> None:
    """A note's outgoing links: line, target as written, where it leads (a path, dead, ambiguous)."""
    warnings(result.warnings)
    if as_json:
        _json(document(result))
        return
    if not result.links:
        hint(f"No links in {result.note.path}.")
        return
    _out("".join(f"{r.line}\t{_written(r)}\t{_leads_to(r)}\n" for r in result.links))


def backlinks(result: LinksResult, as_json: bool) -> None:
    """The links that lead to a note: the linking note and line, and the target as written."""
    warnings(result.warnings)
    if as_json:
        _json(document(result))
        return
    if not result.links:
        hint(f"No note links to {result.note.path}.")
        return
    _out("".join(f"{r.source}:{r.line}\t{_written(r)}\n" for r in result.links))


def checked(result: CheckResult, as_json: bool, fix: bool = False) -> int:
    """kb check's findings, one line each (path:line: what); returns the exit status, 1 when any. After
    --fix: what was repaired, and that what is listed was left (not safe to repair without a person)."""
    status = 1 if result.findings else 0
    if as_json:
        _json(document(result))
        return status
    for item in result.fixed:
        _err(f"Fixed: {item}")
    lines = [
        f"{f.path}:{f.line}: {f.message}" if f.line else f"{f.path}: {f.message}" for f in result.findings
    ]
    _out("".join(line + "\n" for line in lines))
    found = _count(len(result.findings), "problem") if result.findings else "no problems"
    if fix and result.findings:
        found += " left, which --fix does not repair (they need a person: edit the notes or files listed)"
    elif fix:
        found += " left" if result.fixed else " (nothing to repair)"
    _err(f"Checked {_count(result.notes, 'note')} and {_count(result.links, 'link')}: {found}.")
    return status


def linked_before_delete(result: LinksResult) -> bool:
    """Before a deletion: the other notes that link to the note, on stderr. Returns whether there are any."""
    rows = [r for r in result.links if r.source != result.note.path]
    if not rows:
        return False
    notes = sorted({r.source for r in rows})
    _err(f"{_count(len(notes), 'note')} link to {result.note.path}; their links will be dead:")
    for r in rows:
        _err(f"  {r.source}:{r.line}\t{_written(r)}")
    return True


@_paged
def changes(result: ChangesResult, patch: bool, json: bool) -> None:
    """One entry per note, grouped by the day of its last change, newest first."""
    if json:
        _json(document(result))
        return
    if not result.changes:
        since, until = (moment[:16].replace("T", " ") for moment in (result.since, result.until))
        hint(f"No notes changed between {since} and {until}.")
        return
    terminal_out = _stdout_is_terminal()
    if not terminal_out:
        rows = []
        for c in result.changes:
            was = f"\t(was {c.old_path})" if c.old_path else ""
            rows.append(
                f"{c.last[:10]}\t{c.kind}\t{c.title}\t{c.path}\t{_count(c.revisions, 'revision')}"
                f"\t+{c.added} -{c.removed}{was}\n"
            )
            if patch and c.patch:
                rows.append(c.patch if c.patch.endswith("\n") else c.patch + "\n")
        _out("".join(rows))
        return
    console = _console()
    painter = _painter(console)
    bold, dim, green, red = painter("bold"), painter("dim"), painter("green"), painter("red")
    kinds = {
        kind: painter(style)
        for kind, style in (
            ("added", "green"), ("deleted", "red"), ("restored", "magenta"), ("renamed", "yellow"),
            ("moved", "yellow"),
        )
    }  # fmt: skip
    cyan = painter("cyan")
    out = _stdout()
    day = ""
    lines: list[str] = []
    for c in result.changes:
        if c.last[:10] != day:
            day = c.last[:10]
            lines.append(bold(visible(day)) + "\n")
        was = f" (was {visible(_one_line(c.old_path))})" if c.old_path else ""
        lines.append(
            f"  {kinds.get(c.kind, cyan)(f'{c.kind:<9}')} {bold(visible(_one_line(c.title)))}"
            f"{dim(f'  {visible(_one_line(c.path))}{was}')}  {_count(c.revisions, 'revision')}  "
            f"{green(f'+{c.added}')} {red(f'-{c.removed}')}\n"
        )
        if c.sections:
            shown = ", ".join(visible(_one_line(s)) for s in c.sections[:5])
            more = f" and {len(c.sections) - 5} more" if len(c.sections) > 5 else ""
            lines.append(dim(f"            sections: {shown}{more}") + "\n")
        if patch and c.patch:
            out.write("".join(lines))
            lines = []
            for text in _styled_patch(visible(c.patch), False):
                console.print(text)
    out.write("".join(lines))
    out.flush()


_AGE_STYLES = ("bright_green", "green", "yellow", "dark_orange", "red", "bright_black")


@_paged
def blame(result: BlameResult, json: bool) -> None:
    """Each line with its revision, date and commit; on a terminal a gutter coloured by age."""
    if json:
        _json(document(result))
        return
    _blame_lines(result)
    _gone(result)


def _blame_lines(result: BlameResult) -> None:
    """The lines of kb blame, plain off a terminal."""
    width = len(str(max((line.revision for line in result.lines), default=0)))
    if not _stdout_is_terminal():
        _out(
            "".join(
                f"{line.revision:>{width}} {line.date[:10] or '?':10} {line.commit[:8]} "
                f"{line.line:>4}) {visible(line.text)}\n"
                for line in result.lines
            )
        )
        return
    from rich.text import Text

    dates = sorted({line.date for line in result.lines if line.date})
    console = _console()
    console.print(_text(f"{result.title} ({result.path}), revision {result.revision}", "bold"))
    for line in result.lines:
        age = dates.index(line.date) if line.date in dates else -1
        # newest lines brightest: the rank among the note's dates, in len(_AGE_STYLES) steps
        step = 0 if age < 0 else (len(dates) - 1 - age) * (len(_AGE_STYLES) - 1) // max(len(dates) - 1, 1)
        gutter = Text(
            f"{line.revision:>{width}} {line.date[:10] or '?':10} {line.commit[:8]} ", style=_AGE_STYLES[step]
        )
        gutter.append(f"{line.line:>4}│ ", style="dim")
        gutter.append(visible(line.text))
        console.print(gutter, soft_wrap=True)


# ---------------------------------------------------------------- kb search --history


def ranges(numbers: Iterable[int]) -> str:
    """[2, 3, 4, 5, 8] -> "2-5, 8"."""
    parts: list[str] = []
    run: list[int] = []
    for number in sorted(numbers):
        if run and number == run[-1] + 1:
            run.append(number)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [number]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(parts)


def history_summary(hit: HistoryHit) -> str:
    """Which revisions of a note match, since and until when: "revisions 2-5 of 9, 2021-11-19 to
    2021-12-02; deleted in revision 9 on 2021-12-05"."""
    word = "revision" if len(hit.revisions) == 1 else "revisions"
    text = f"{word} {ranges(hit.revisions)} of {hit.count}"
    first = (hit.first or "")[:10]
    if hit.current:
        text += f", since {first}, current version matches"
    else:
        text += f", {first} to {(hit.last or '')[:10]}"
    if hit.deleted:
        text += f"; deleted in revision {hit.deleted_in} on {(hit.deleted_on or '')[:10]}"
    if hit.title_then is not None or hit.path_then != hit.path:
        text += f"; revision {hit.best} was '{hit.title_then or hit.title}' ({hit.path_then})"
    return text


@_paged
def history_search(result: HistorySearchResult, json: bool, paths: bool, null: bool = False) -> int:
    """Print the notes any version of which matched; returns the exit code (1 when none did)."""
    if result.rebuilt:
        _err("The history index was built.")
    warnings(result.warnings)
    if json:
        _json(document(result))
        return 0 if result.hits else 1
    if paths:
        return _paths([hit.path_then for hit in result.hits], null)
    if not result.hits:
        _err(f"No version of any note matches {result.query!r}")
        return 1
    if _stdout_is_terminal():
        from rich.text import Text

        console = _console()
        for hit in result.hits:
            console.print(
                Text.assemble(
                    (f"{hit.rank:>2}. ", "dim"),
                    (visible(hit.title), "bold"),
                    (visible(f"  {hit.path}"), "dim"),
                    (
                        "  deleted" if hit.deleted else "  current" if hit.current else "  removed since",
                        "cyan",
                    ),
                )
            )
            console.print(Text("    " + visible(history_summary(hit)), style="dim"))
            for snippet in hit.snippets:
                text, spans = _shown_snippet(snippet, console.width - 4)
                console.print(Text("    ").append_text(_highlighted(text, spans)))
    else:
        width = _columns()
        lines = []
        for hit in result.hits:
            lines.append(f"{hit.rank}. {hit.title}\t{hit.path}\t{history_summary(hit)}")
            lines.extend(f"    {_shown_snippet(snippet, width - 4)[0]}" for snippet in hit.snippets)
        _out("\n".join(lines) + "\n")
    if len(result.hits) < result.total:
        shown = len(result.hits)
        hint(f"{shown} of {result.total} notes shown; -n N shows more.")
    return 0
