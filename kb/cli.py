"""The command line: parse arguments, make one call into kb.service, hand the result to kb.render.

Heavy modules (git, whoosh, rich's Markdown, even kb.service) are imported inside the commands so that
`kb --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from kb import __version__, completion, helptext, quick, terminal
from kb.errors import AmbiguousNote, BadLimit, KbError, NoteNotFound, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from typer import _click

    from kb.service import EditorFn

T = TypeVar("T")


class _State:
    kb: str | None = None
    debug: bool = False


STATE = _State()


class _ClosedPipe(Exception):
    """A closed pipe, carried past click (which would end the command with status 1, saying nothing)."""


class KbGroup(TyperGroup):
    """One exit point: KbError -> `Error: <message>` and its exit code; usage errors exit 2."""

    def invoke(self, ctx: _click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _ClosedPipe from exc

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: object,
    ) -> NoReturn:
        from typer import _click

        STATE.kb, STATE.debug = None, "--debug" in (args or sys.argv[1:])
        terminal.configure()
        if not os.environ.get(completion.COMPLETE_VAR):  # `kb search vim -emacs`: a word left out
            args = quick.search_argv(list(args if args is not None else sys.argv[1:]))
        for arg in args if args is not None else sys.argv[1:]:
            if not arg.isascii():
                from kb.notes import is_utf8, shown_name

                if not is_utf8(arg):  # a file name's bytes, say: no note, tag or path of kb's holds them
                    _error(f"an argument is not UTF-8: {shown_name(arg)}")
                    sys.exit(2)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except KbError as exc:
            if STATE.debug:
                raise
            sys.exit(quick.failed(exc))
        except _click.exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _error(f"{exc.format_message()}{hint}")
            sys.exit(2)
        except _click.exceptions.ClickException as exc:
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.exit(quick.failed(KeyboardInterrupt()))
        except (KeyboardInterrupt, BrokenPipeError) as exc:
            sys.exit(quick.failed(exc))
        except _ClosedPipe as exc:
            if STATE.debug and exc.__cause__ is not None:
                raise exc.__cause__ from None
            sys.exit(quick.failed(exc.__cause__ or exc))
        except Exception as exc:  # the one place an unexpected failure becomes a clear exit
            if STATE.debug:
                raise
            sys.exit(quick.failed(exc))
        if rv == 130:  # typer turns Ctrl-C into exit code 130 before it reaches the handlers above
            _error("interrupted")
        sys.exit(rv if isinstance(rv, int) else 0)


def _error(message: str) -> None:
    from kb import render  # light: rich is imported only where it draws

    render.error(message)


app = typer.Typer(
    cls=KbGroup,
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="kb: a versioned personal knowledge base. Markdown notes, every change a git revision.",
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"kb {__version__}\n")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _global(
    ctx: typer.Context,
    kb: Annotated[
        str | None,
        typer.Option("--kb", help="Knowledge base folder (default: $KB_HOME, else ~/.kb).", metavar="PATH"),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    color: Annotated[
        str,
        typer.Option(
            "--color",
            help="Colour: auto (on a terminal, unless $NO_COLOR; $FORCE_COLOR forces it), always, never.",
            metavar="WHEN",
        ),
    ] = "auto",
    no_pager: Annotated[
        bool, typer.Option("--no-pager", help="Never page output ($KB_PAGER, $PAGER, else less -FRX).")
    ] = False,
) -> None:
    if kb is not None and not kb.strip():
        raise UsageError("--kb needs a folder (an empty one would mean the default, ~/.kb)")
    STATE.kb = kb
    STATE.debug = debug
    for mode in terminal.COLOR_MODES:
        if color == mode:
            terminal.configure(color=mode, pager=not no_pager)
            break
    else:
        raise UsageError(f"--color must be auto, always or never, not {color!r}")
    if ctx.invoked_subcommand is None:
        from kb import render

        render.help_page(helptext.USAGE)
        raise typer.Exit(0)


def _root() -> Path:
    from kb import config

    return config.resolve_root(STATE.kb)


def _reading_root() -> Path:
    """The knowledge base a reading command reads: it must be one already (reading creates nothing)."""
    return quick.reading_root(STATE.kb)


def _stdin_text() -> str | None:
    """Piped stdin as text; None on a terminal."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return None
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not valid UTF-8 (byte offset {exc.start})") from None


def _editor(root: Path) -> EditorFn:
    """The editor, for a change about to be written in it: asked for before anything is changed (in the
    warm server's worker this hands the command back to the client, which has the terminal)."""
    from kb import terminal
    from kb.editor import run_editor

    if terminal.SETTINGS.before_terminal is not None:
        terminal.SETTINGS.before_terminal()
    return lambda initial, stem: run_editor(initial, stem, root)


def _missing(name: str) -> NoReturn:
    from typer import _click
    from typer._click.globals import get_current_context

    raise _click.exceptions.UsageError(f"Missing argument {name!r}.", get_current_context(silent=True))


PREVIEW_LINES = 40  # of the highlighted note, below the picker's list


def _picked(root: Path, paths: tuple[str, ...] | None = None) -> str:
    """The note chosen in the picker (kb.picker) among every note, most recently modified first, or among
    `paths`."""
    from kb import picker, service, terminal

    if terminal.SETTINGS.before_terminal is not None:
        terminal.SETTINGS.before_terminal()
    listed = service.list_notes(root, paths=frozenset(paths) if paths is not None else None)
    choices = [picker.Choice(n.title, n.path, n.modified) for n in listed.notes]

    def preview(choice: picker.Choice) -> str:
        return "\n".join(service.show(root, choice.path).body.strip("\n").splitlines()[:PREVIEW_LINES])

    return picker.pick(choices, preview).path


def _on_note(root: Path, note: str | None, call: Callable[[str], T], name: str = "NOTE") -> T:
    """`call` on NOTE. On a terminal (stdin and stdout), NOTE left out opens the picker on every note, and
    a NOTE that names several notes opens it on those; elsewhere both stay the errors they are."""
    from kb import picker

    if note is None:
        if not picker.interactive():
            _missing(name)
        note = _picked(root)
    try:
        return _looking_back(root, note, call)
    except AmbiguousNote as exc:
        if not exc.paths or not picker.interactive():
            raise
        return call(_picked(root, exc.paths))


def _looking_back(root: Path, note: str, call: Callable[[str], T]) -> T:
    """`call` on NOTE; when NOTE names no note now, but one deleted since or renamed, the error says so."""
    try:
        return call(note)
    except NoteNotFound as exc:
        if exc.ref != note or exc.looked_back:
            raise
        from kb import service

        gone = service.deleted_note(root, note, exc)
        if gone is None:
            raise
        raise gone from None


def _one_tag(tags: list[str] | None, command: str) -> str | None:
    """The one tag of `-t` (given twice, click would keep the last and drop the first without a word)."""
    if tags and len(tags) > 1:
        raise UsageError(
            f"-t is given {len(tags)} times; {command} takes one tag (in a query, tag:A tag:B asks for both)"
        )
    return tags[0] if tags else None


def _no_unknown_options(*values: str | None) -> None:
    """For a command whose revisions may start with a dash (`-1`, taken as arguments): a word starting with
    two is still an option it does not have."""
    for value in values:
        if value is not None and value.startswith("--"):
            raise UsageError(f"no such option: {value}")


def _note_and(note: str | None, second: str | None, name: str) -> tuple[str | None, str]:
    """NOTE and the argument after it; on a terminal, one argument alone is the second (the picker asks
    for NOTE)."""
    from kb import picker

    if second is not None:
        return note, second
    if note is None or not picker.interactive():
        _missing("NOTE" if note is None else name)
    return None, note


TagOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tag", "-t", help="A tag (repeatable); '/' nests.", metavar="TAG", autocompletion=completion.tags
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PICK_HELP = (
    "Title, unique title prefix, file name or path. Left out (or naming several notes) on a terminal: "
    "choose in a list."
)
PickArg = Annotated[
    str | None, typer.Argument(help=PICK_HELP, metavar="[NOTE]", autocompletion=completion.notes)
]


@app.command(epilog=helptext.epilog("init"))
def init(
    path: Annotated[
        str | None, typer.Argument(help="Folder (default: --kb, $KB_HOME or ~/.kb).", metavar="[PATH]")
    ] = None,
) -> None:
    """Create a knowledge base, or use an existing folder as one, in place: a Notable directory, an
    Obsidian vault, a folder of Markdown at any depth, a git repository (its history is kept). Idempotent."""
    from kb import config, render, service

    render.init(service.init(config.resolve_root(path) if path else _root(), progress=render.progress()))


@app.command(epilog=helptext.epilog("add"))
def add(
    title: Annotated[str, typer.Argument(help="The note's title.", metavar="TITLE")],
    tag: TagOpt = None,
    body: Annotated[str | None, typer.Option("--body", "-b", help="The body text.", metavar="TEXT")] = None,
    editor: Annotated[bool, typer.Option("--editor", "-e", help="Write the body in $EDITOR.")] = False,
    folder: Annotated[
        str | None,
        typer.Option("--folder", help="A sub-folder of the notes root to put the note in.", metavar="DIR"),
    ] = None,
) -> None:
    """Add a note. The body comes from -b, else piped stdin, else $VISUAL/$EDITOR."""
    from kb import render, service

    root = _root()
    if body is not None and editor:
        raise UsageError("--body and --editor cannot be used together")
    text = body if body is not None or editor else _stdin_text()
    if editor or (body is None and text is None):
        render.change(service.add_with_editor(root, title, tag or [], _editor(root), folder))
    else:
        render.change(service.add(root, title, tag or [], text, folder))


@app.command(epilog=helptext.epilog("edit"))
def edit(
    note: Annotated[
        str | None,
        typer.Argument(
            help=PICK_HELP,
            metavar="[NOTE]",
            autocompletion=completion.notes,
        ),
    ] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="Rename the note (and its file).", metavar="NEW")
    ] = None,
    tag: TagOpt = None,
    untag: Annotated[
        list[str] | None,
        typer.Option(
            "--untag", help="Remove a tag (repeatable).", metavar="TAG", autocompletion=completion.tags
        ),
    ] = None,
    body: Annotated[
        str | None, typer.Option("--body", "-b", help="Replace the body.", metavar="TEXT")
    ] = None,
    append: Annotated[
        str | None, typer.Option("--append", "-a", help="Append a paragraph.", metavar="TEXT")
    ] = None,
    editor: Annotated[bool, typer.Option("--editor", "-e", help="Open the whole file in $EDITOR.")] = False,
    no_links: Annotated[
        bool, typer.Option("--no-links", help="With --title: leave the links to the note as they are.")
    ] = False,
) -> None:
    """Change a note. Without options: piped stdin replaces the body, else the file opens in $EDITOR.

    `modified` changes only when something changed; an edit that changes nothing makes no revision.
    """
    from kb import render, service

    root = _root()
    options = title is not None or tag or untag or body is not None or append is not None
    if editor and options:
        raise UsageError("--editor cannot be combined with other changes")
    if body is not None and append is not None:
        raise UsageError("--body and --append cannot be used together")
    if append is not None and not append.strip():
        raise UsageError("--append needs text: an empty paragraph would change nothing")
    if not options and not editor:
        body = _stdin_text()
        if body is not None and not body.strip():
            _on_note(root, note, lambda ref: service.show(root, ref))  # a NOTE that names none is said first
            raise UsageError(
                f"stdin was {'empty' if not body else 'blank'}; to clear the body say so with -b ''"
            )
        editor = body is None
    if editor:
        render.change(_on_note(root, note, lambda ref: service.edit_with_editor(root, ref, _editor(root))))
        return
    render.change(
        _on_note(
            root,
            note,
            lambda ref: service.edit(
                root,
                ref,
                title=title,
                add_tags=tag or [],
                remove_tags=untag or [],
                body=body,
                append=append,
                update_links=not no_links,
            ),
        )
    )


NoteArg = Annotated[
    str,
    typer.Argument(
        help="Title, unique title prefix, file name or path.", metavar="NOTE", autocompletion=completion.notes
    ),
]
REV_HELP = "A revision: 2 (1 = oldest), -1 (the one before the latest), a commit id, or a date."
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="The knowledge base as it was then: a date (kb help dates) or a commit id. Read-only.",
        metavar="WHEN",
    ),
]


@app.command(epilog=helptext.epilog("show"))
def show(
    note: PickArg = None,
    rev: Annotated[str | None, typer.Option("--rev", "-r", help=REV_HELP, metavar="REV")] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Print the file as it is, front matter included.")
    ] = False,
    json: JsonOpt = False,
    as_of: AsOfOpt = None,
) -> None:
    """Show a note or one of its revisions: rendered on a terminal, the raw file when piped or with --raw."""
    from kb import render, service

    if rev is not None and as_of is not None:
        raise UsageError("--rev and --as-of both choose a version; give one of them")
    root = _reading_root()
    result = _on_note(
        root,
        note,
        lambda ref: service.show(root, ref, as_of) if rev is None else service.show_revision(root, ref, rev),
    )
    render.show(result, raw, json)


@app.command(epilog=helptext.epilog("log"))
def log(
    note: Annotated[
        str | None,
        typer.Argument(
            help="A note (default: recent changes to all notes); naming several notes on a terminal: "
            "choose in a list.",
            metavar="[NOTE]",
            autocompletion=completion.notes,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("-n", "--limit", help="Only the latest N.", metavar="N")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """A note's revisions, numbered 1 (oldest) to n, through renames and deletions; without NOTE, the
    knowledge base's recent changes, newest first."""
    from kb import render, service

    if limit is not None and limit < 1:
        raise BadLimit()
    if note is None:
        render.recent(service.recent(_reading_root(), limit or 20), json)
    else:
        root = _reading_root()
        render.note_log(_on_note(root, note, lambda ref: service.note_log(root, ref)), limit, json)


@app.command(epilog=helptext.epilog("changes"))
def changes(
    notes: Annotated[
        list[str] | None,
        typer.Argument(help="Only these notes.", metavar="[NOTE]...", autocompletion=completion.notes),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="From this date or commit (default: 7 days ago; kb help dates).", metavar="WHEN"
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Up to this date or commit (default: now).", metavar="WHEN")
    ] = None,
    patch: Annotated[bool, typer.Option("--patch", "-p", help="Show each note's diff too.")] = False,
    json: JsonOpt = False,
) -> None:
    """What changed: one entry per note (added, edited, renamed, moved, deleted, restored) with its
    revisions, lines and sections changed in the window, grouped by day, newest first."""
    from kb import render, service

    render.changes(service.changes(_reading_root(), since, until, notes or (), patch), patch, json)


@app.command(context_settings={"ignore_unknown_options": True}, epilog=helptext.epilog("blame"))
def blame(
    note: PickArg = None,
    rev: Annotated[
        str | None, typer.Argument(help="At this revision (default: the latest).", metavar="[REV]")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Every line of a note (front matter included) with the revision that last changed it, its date
    and commit, through renames."""
    from kb import render, service

    _no_unknown_options(note, rev)
    root = _reading_root()
    render.blame(_on_note(root, note, lambda ref: service.blame(root, ref, rev)), json)


@app.command(context_settings={"ignore_unknown_options": True}, epilog=helptext.epilog("diff"))
def diff(
    note: PickArg = None,
    a: Annotated[
        str | None, typer.Argument(help="From this revision (default: the previous one).", metavar="[A]")
    ] = None,
    b: Annotated[
        str | None, typer.Argument(help="To this revision (default: the current file).", metavar="[B]")
    ] = None,
    stat: Annotated[bool, typer.Option("--stat", help="Only the summary: fields and sections.")] = False,
    word_diff: Annotated[bool, typer.Option("--word-diff", help="Show changed words inline.")] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="A plain unified diff (as when piped).")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Compare two versions of a note: front matter, sections, then lines and words.

    Piped or with --no-color it prints a plain unified diff that patch and git apply accept.
    """
    from kb import render, service

    _no_unknown_options(note, a, b)
    root = _reading_root()
    render.diff(
        _on_note(root, note, lambda ref: service.diff(root, ref, a, b)),
        stat=stat,
        word_diff=word_diff,
        plain=no_color,
        json=json,
    )


@app.command(context_settings={"ignore_unknown_options": True}, epilog=helptext.epilog("restore"))
def restore(
    note: PickArg = None,
    rev: Annotated[str | None, typer.Argument(help=REV_HELP, metavar="REV")] = None,
    title_too: Annotated[
        bool,
        typer.Option(
            "--title-too",
            help="Take that revision's title (and file name) back too; links to the note follow.",
        ),
    ] = False,
) -> None:
    """Make an old revision the current version, as a new revision (nothing is lost). The note keeps its
    current title; brings back a deleted note too (name it by its title). On a terminal, `kb restore REV`
    asks which note."""
    from kb import render, service

    _no_unknown_options(note, rev)
    note, wanted = _note_and(note, rev, "REV")
    root = _root()
    render.change(_on_note(root, note, lambda ref: service.restore(root, ref, wanted, title_too=title_too)))


@app.command("list", epilog=helptext.epilog("list"))
def list_(
    tags: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            "-t",
            help="Only notes with this tag or its children, in any case.",
            metavar="TAG",
            autocompletion=completion.tags,
        ),
    ] = None,
    sort: Annotated[
        str, typer.Option("--sort", help="title, created or modified (newest first).", metavar="ORDER")
    ] = "modified",
    folder: Annotated[
        str | None,
        typer.Option("--folder", help="Only notes in this folder or its sub-folders.", metavar="DIR"),
    ] = None,
    json: JsonOpt = False,
    orphans: Annotated[bool, typer.Option("--orphans", help="Only notes no other note links to.")] = False,
    links_to: Annotated[
        str | None, typer.Option("--links-to", help="Only notes that link to this note.", metavar="NOTE")
    ] = None,
    linked_by: Annotated[
        str | None, typer.Option("--linked-by", help="Only notes this note links to.", metavar="NOTE")
    ] = None,
    dead_links: Annotated[bool, typer.Option("--dead-links", help="Only notes with a dead link.")] = False,
    as_of: AsOfOpt = None,
) -> None:
    """List notes."""
    from kb import render, service

    tag = _one_tag(tags, "kb list")
    root = _reading_root()
    paths = None
    if orphans or links_to is not None or linked_by is not None or dead_links:
        if as_of is not None:
            raise UsageError("--as-of does not combine with the link filters yet")
        paths = service.link_filter(
            root, orphans=orphans, links_to=links_to, linked_by=linked_by, dead_links=dead_links
        )
    listed = service.list_notes(root, tag, sort, folder, paths, as_of)
    render.note_list(listed, json)
    if listed.named_nothing:
        raise typer.Exit(1)


@app.command(epilog=helptext.epilog("tags"))
def tags(json: JsonOpt = False, as_of: AsOfOpt = None) -> None:
    """List tags with how many notes carry each; a parent tag counts its children's notes."""
    from kb import render, service

    render.tag_list(service.tags(_reading_root(), as_of), json)


@app.command(epilog=helptext.epilog("rm"))
def rm(
    note: PickArg = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask, even when other notes link to it.")
    ] = False,
) -> None:
    """Delete a note. The deletion is a revision: the note stays in the history.

    The notes that link to it are listed first; on a terminal kb asks before deleting (--yes does not ask;
    with stdin piped it never waits for an answer)."""
    from kb import render, service

    root = _root()

    def remove(ref: str) -> service.ChangeResult:
        if not yes and root.is_dir():
            try:
                linking = service.backlinks(root, ref)
            except AmbiguousNote:
                raise
            except KbError:
                linking = None  # the deletion says what is wrong
            if linking is not None and render.linked_before_delete(linking):
                stdin = sys.stdin
                if stdin is not None and stdin.isatty() and not typer.confirm("Delete it anyway?", err=True):
                    raise KbError("nothing deleted")
        return service.remove(root, ref)

    render.change(_on_note(root, note, remove))


NoLinksOpt = Annotated[
    bool, typer.Option("--no-links", help="Leave the links to the note as they are (they may break).")
]


@app.command(epilog=helptext.epilog("mv"))
def mv(
    note: Annotated[
        str | None,
        typer.Argument(
            help="Title, unique title prefix, file name or path; or the path (from the root) of a file "
            "that is not a note, such as an image. Left out on a terminal: choose in a list.",
            metavar="[NOTE|FILE]",
            autocompletion=completion.notes,
        ),
    ] = None,
    new_title: Annotated[
        str | None,
        typer.Argument(
            help="A new title (the file is renamed to match), or a place: 'folder/' keeps the file name "
            "(so does the name of a folder that is there), 'folder/name.md' names the file. For a FILE: its "
            "new path from the root, or 'folder/'.",
            metavar="NEW_TITLE|DIR/|PATH",
        ),
    ] = None,
    no_links: NoLinksOpt = False,
) -> None:
    """Rename a note (title and file), or move it to another folder. Every link to it in other notes is
    rewritten in the same revision, keeping its form (alias, heading, relative path, encoding); so are
    the note's own relative links when it changes folder. A file that is not a note (an image, a PDF) is
    moved the same way, with every link and embed of it. On a terminal, `kb mv NEW_TITLE` asks which note."""
    from kb import render, service

    note, target = _note_and(note, new_title, "NEW_TITLE|DIR/|PATH.md")
    root = _root()
    render.change(
        _on_note(root, note, lambda ref: service.move(root, ref, target, update_links=not no_links))
    )


SEARCH_HELP = """Search every note through the full-text index (kept in step with notes/ automatically).

\b
Query language:
  machine learning        notes with both words (stemmed: learning = learn = learned)
  postgres                also longer words it begins (PostgreSQL), ranked below the word itself
  vae OR autoencoder      either word;  NOT word  or  -word  excludes
  "chain rule"            the exact phrase
  back*   backprop~   backprop~2    prefix; fuzzy within 1 or 2 edits
  (a OR b) c              grouping
  title:word  body:word  tag:Notebooks/Skills   one field (a tag finds its children too)
  created:2021-11  modified:>2021-11-25  modified:yesterday
  created:[2021-11-01 to 2021-11-30]      dates, comparisons and ranges
  links:NOTE  linkedby:NOTE   notes that link to NOTE, notes NOTE links to (NOT, OR, grouping too)

Snippets are cut to the terminal's width ($COLUMNS in a pipe), without Markdown's marks; -C N shows
numbered lines as grep -C does, --count how many lines of each note match (kb help search).
No match: exit 1 and nothing on stdout. A query that cannot be parsed: exit 2.
"""


@app.command(help=SEARCH_HELP, epilog=helptext.epilog("search"))
def search(
    query: Annotated[list[str], typer.Argument(help="The query (words are joined).", metavar="QUERY...")],
    limit: Annotated[
        int | None,
        typer.Option("-n", "--limit", help="At most N results (default 10; -l: all).", metavar="N"),
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", "-t", help="Only notes with this tag.", metavar="TAG", autocompletion=completion.tags
        ),
    ] = None,
    sort: Annotated[
        str, typer.Option("--sort", help="relevance, modified, created or title.", metavar="ORDER")
    ] = "relevance",
    json: JsonOpt = False,
    paths: Annotated[
        bool, typer.Option("-l", "--paths", help="Print only the paths of matching notes.")
    ] = False,
    null: Annotated[
        bool, typer.Option("-0", "--null", help="With -l: end each path with a NUL byte (for xargs -0).")
    ] = False,
    context: Annotated[
        int | None,
        typer.Option(
            "-C",
            "--context",
            help="The matching lines with N lines around each, numbered (as grep -C).",
            metavar="N",
        ),
    ] = None,
    count_lines: Annotated[
        bool, typer.Option("--count", help="How many lines of each note match (path:count).")
    ] = False,
    history: Annotated[
        bool,
        typer.Option("--history", help="Search every committed version of every note, deleted ones too."),
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Search the notes as they were then (a date or a commit).", metavar="WHEN"
        ),
    ] = None,
) -> None:
    from kb import render, service

    tag = _one_tag(tags, "kb search")
    if (context is not None or count_lines) and (json or paths or null):
        raise UsageError("-C and --count print lines of text; they do not combine with --json or -l")
    paths = paths or null
    n = limit if limit is not None else (None if paths else 10)
    if (context is not None or count_lines) and (history or as_of is not None):
        raise UsageError("-C and --count read the notes as they are now; leave out --history and --as-of")
    if history or as_of is not None:
        raise typer.Exit(_search_history(" ".join(query), history, as_of, n, tag, sort, json, paths, null))
    result = service.search(
        _reading_root(),
        " ".join(query),
        limit=n,
        tag=tag,
        sort=sort,
        snippets=not paths,
        count=json,
        progress=render.progress(),
        line_counts=count_lines,
        context=context,
    )
    lines = "count" if count_lines else "context" if context is not None else None
    raise typer.Exit(render.search(result, json=json, paths=paths, null=null, lines=lines))


def _search_history(
    query: str, history: bool, as_of: str | None, n: int | None, tag: str | None, sort: str, json: bool,
    paths: bool, null: bool,
) -> int:  # fmt: skip
    """kb search --history, and kb search --as-of WHEN."""
    from kb import render, service

    if history and as_of is not None:
        raise UsageError("--as-of and --history do not go together: --history searches every version already")
    progress = render.progress("Indexing history")
    if as_of is not None:
        found = service.search_as_of(
            _reading_root(), query, as_of, limit=n, tag=tag, sort=sort, snippets=not paths, progress=progress
        )
        return render.search(found, json=json, paths=paths, null=null)
    result = service.search_history(
        _reading_root(), query, limit=n, tag=tag, sort=sort, snippets=not paths, progress=progress
    )
    return render.history_search(result, json=json, paths=paths, null=null)


@app.command(epilog=helptext.epilog("reindex"))
def reindex() -> None:
    """Rebuild the search index from the notes (it is also rebuilt automatically when missing or damaged)."""
    from kb import render, service

    render.reindex(service.reindex(_root(), progress=render.progress()))


@app.command("import", epilog=helptext.epilog("import"))
def import_(
    paths: Annotated[list[str], typer.Argument(help="Files and folders to import.", metavar="PATH...")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
    ] = False,
    history: Annotated[
        bool,
        typer.Option("--history", help="Bring a git repository's commits along as the notes' revisions."),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Import folders of Markdown (an Obsidian vault, a TIL repository...), Notable data directories, or
    loose .md/.markdown/.txt files.

    A folder keeps its structure under the notes root, with the files its notes link to beside them;
    every Markdown file comes along (exit 1 if any is skipped, each listed with its reason). A file with
    the same path as a note here is a new revision of it (unchanged when the bytes are equal). A Notable
    directory is imported by title: a file with the title and created date of a note here is a revision
    of it. Dates come from the front matter, else git history, else the file's times.
    """
    from kb import render, service

    result = service.import_notes(
        _root(), paths, dry_run=dry_run, history=history, progress=render.progress("Importing")
    )
    raise typer.Exit(render.imported(result, json))


@app.command("sync", epilog=helptext.epilog("sync"))
def sync_(
    remote: Annotated[
        str | None,
        typer.Option("--remote", help="Set the remote (origin) first: a URL or a path.", metavar="URL"),
    ] = None,
    allow_unrelated: Annotated[
        bool,
        typer.Option(
            "--allow-unrelated", help="Merge a remote whose history has nothing in common with this one."
        ),
    ] = False,
) -> None:
    """Commit pending changes, fetch, merge, push (never forced), and update the search index.

    A note changed on both machines in the same lines keeps the other machine's version; this machine's is
    saved beside it as a conflict copy named after this machine, and the exit code is 1. Nothing is ever
    deleted by a sync. A remote with an unrelated history is refused unless --allow-unrelated.
    """
    from kb import render, service

    raise typer.Exit(render.synced(service.sync(_root(), remote, allow_unrelated=allow_unrelated)))


@app.command(epilog=helptext.epilog("links"))
def links(note: NoteArg, json: JsonOpt = False, as_of: AsOfOpt = None) -> None:
    """The links written in a note: line, target as written, and the note or file it leads to, or
    'dead' (nothing there) or 'ambiguous' (several notes have that name; name one by its path)."""
    from kb import render, service

    if as_of is not None:
        render.links(service.links_as_of(_reading_root(), note, as_of, incoming=False), json)
        return
    root = _root()
    render.links(_looking_back(root, note, lambda ref: service.outgoing(root, ref)), json)


@app.command(epilog=helptext.epilog("backlinks"))
def backlinks(note: NoteArg, json: JsonOpt = False, as_of: AsOfOpt = None) -> None:
    """The notes that link to a note (wiki links, Markdown links, embeds): path:line and the link as
    written. Answered from the index, without reading every note."""
    from kb import render, service

    if as_of is not None:
        render.backlinks(service.links_as_of(_reading_root(), note, as_of, incoming=True), json)
        return
    root = _root()
    render.backlinks(_looking_back(root, note, lambda ref: service.backlinks(root, ref)), json)


@app.command(epilog=helptext.epilog("check"))
def check(
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Make the safe repairs: rebuild a broken index; rewrite dead links to notes renamed since.",
        ),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Find what is wrong, one line each (path:line): dead and ambiguous links, missing embeds and
    attachments, attachments no note links to, front matter that cannot be read, duplicate titles, files
    kb cannot see (symbolic links, binary files), an index out of step. Exit 1 when anything is found."""
    from kb import render, service

    raise typer.Exit(render.checked(service.check(_root(), fix=fix), json, fix=fix))


@app.command("help", epilog=helptext.epilog("help"))
def help_(
    ctx: typer.Context,
    topic: Annotated[
        str | None,
        typer.Argument(help="A command, or a topic: dates, search, revisions.", metavar="[COMMAND|TOPIC]"),
    ] = None,
) -> None:
    """Help on a command, or a topic page: dates, search (the query language), revisions."""
    from kb import render

    group = ctx.parent
    assert group is not None and isinstance(group.command, TyperGroup)
    commands = group.command
    if topic is None:
        render.help_page(group.get_help() + "\n")
    elif topic in helptext.TOPICS:
        render.help_page(helptext.TOPICS[topic])
    else:
        command = commands.get_command(group, topic)
        if command is None:
            names = ", ".join(dict.fromkeys([*helptext.TOPICS, *commands.list_commands(group)]))
            raise UsageError(f"no command or help topic {topic!r}; one of: {names}")
        with typer.Context(command, info_name=topic, parent=group) as sub:
            render.help_page(command.get_help(sub) + "\n")


@app.command("completion", epilog=helptext.epilog("completion"))
def completion_(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", metavar="SHELL")],
) -> None:
    """Print the shell completion script for bash, zsh or fish (commands, options, note titles and paths,
    tags). See README, "Terminal", for where to put it."""
    from kb import render

    if shell not in completion.SHELLS:
        raise UsageError(f"no completion for {shell!r}; one of: {', '.join(completion.SHELLS)}")
    render.help_page(completion.script(shell))


server_app = typer.Typer(
    cls=TyperGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="The knowledge base's warm server (started and stopped on its own; see README, 'Speed').",
)
app.add_typer(server_app, name="server")


@server_app.command("status")
def server_status() -> None:
    """Whether this knowledge base's server runs: its pid, mode (warm, or cold and why), requests, memory."""
    from kb import render, server

    render.server_status(server.status(_root()))


@server_app.command("start")
def server_start(
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Run it in this process (Ctrl-C stops it).")
    ] = False,
) -> None:
    """Start this knowledge base's server (commands start it on their own when it is not running)."""
    from kb import render, server

    root = _reading_root()
    if foreground:
        raise typer.Exit(server.serve(root, foreground=True, announce=render.note))
    result = server.start(root)
    render.server_status(result)
    if not result.running:
        raise KbError("the server did not start")


@server_app.command("stop")
def server_stop() -> None:
    """Stop this knowledge base's server (the next command runs cold and starts it again)."""
    from kb import render, server

    render.note("Stopped the server." if server.stop(_root()) else "No server was running.")


_PREPARED: list[typer.core.TyperGroup] = []


def prepare() -> None:
    """For the warm server: build the click command from the typer app once; the workers it forks use it
    (the cold path builds it on each run, as typer does)."""
    from typer.main import get_command

    command = get_command(app)
    assert isinstance(command, TyperGroup)
    _PREPARED[:] = [command]


def app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command that `argv` names, when it names one exactly: typer builds the click
    form of every command it holds (their signatures and type hints, ~20 ms on each cold start), and a
    command's parsing, help and errors do not depend on the others. Anything else (no command, `--help`
    or `--version` before it, `kb help`, a mistyped or grouped command, shell completion) gets the whole
    app."""
    import copy

    from typer.main import get_command_name

    from kb.client import command_of

    name = command_of(argv)[0]
    if name in (None, "help") or os.environ.get(completion.COMPLETE_VAR):
        return app  # `kb help COMMAND` needs every command
    chosen = [
        info
        for info in app.registered_commands
        if (info.name or (get_command_name(info.callback.__name__) if info.callback else None)) == name
    ]
    if len(chosen) != 1:
        return app
    one = copy.copy(app)
    one.registered_commands = chosen
    one.registered_groups = []
    return one


def run(argv: list[str]) -> int:
    """Run one command line; its exit status, with stdout and stderr flushed (the cold path and the warm
    server's worker both come through here)."""
    os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")
    if os.environ.get(completion.COMPLETE_VAR):
        completion.enable()
    try:
        if _PREPARED:
            _PREPARED[0].main(args=argv, prog_name="kb")
        else:
            app_for(argv)(args=argv, prog_name="kb")
        code: int = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    return quick.flushed(code)


def main() -> None:
    handlers = quick.handlers_now()
    quick.leave(run(sys.argv[1:]), handlers)
