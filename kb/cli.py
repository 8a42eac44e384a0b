"""The command line: parse arguments, make one call into kb.service, hand the result to kb.render.

Heavy modules (git, whoosh, rich's Markdown, even kb.service) are imported inside the commands so that
`kb --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from typer.core import TyperGroup

from kb import __version__, completion, helptext, terminal
from kb.errors import BadLimit, KbError, UsageError

if TYPE_CHECKING:
    from kb.service import EditorFn


class _State:
    kb: str | None = None
    debug: bool = False


STATE = _State()


class KbGroup(TyperGroup):
    """One exit point: KbError -> `Error: <message>` and its exit code; usage errors exit 2."""

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
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except KbError as exc:
            if STATE.debug:
                raise
            _error(str(exc))
            sys.exit(exc.exit_code)
        except _click.exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _error(f"{exc.format_message()}{hint}")
            sys.exit(2)
        except _click.exceptions.ClickException as exc:
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except typer.Abort:
            _error("interrupted")
            sys.exit(130)
        except KeyboardInterrupt:
            _error("interrupted")
            sys.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(1)
        except Exception as exc:  # the one place an unexpected failure becomes a clear exit
            if STATE.debug:
                raise
            _error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")
            sys.exit(1)
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
    from kb.layout import is_knowledge_base

    root = _root()
    if not is_knowledge_base(root):
        state = "does not exist" if not root.exists() else "is not a knowledge base"
        raise KbError(f"{root} {state}; 'kb init' or 'kb add' makes one (or give --kb PATH)")
    return root


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
    from kb.editor import run_editor

    return lambda initial, stem: run_editor(initial, stem, root)


TagOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tag", "-t", help="A tag (repeatable); '/' nests.", metavar="TAG", autocompletion=completion.tags
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


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
        str,
        typer.Argument(
            help="Title, unique title prefix, file name or path.",
            metavar="NOTE",
            autocompletion=completion.notes,
        ),
    ],
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
        if body is not None and not body:
            raise UsageError("stdin was empty; to clear the body say so with -b ''")
        editor = body is None
    if editor:
        render.change(service.edit_with_editor(root, note, _editor(root)))
        return
    render.change(
        service.edit(
            root,
            note,
            title=title,
            add_tags=tag or [],
            remove_tags=untag or [],
            body=body,
            append=append,
            update_links=not no_links,
        )
    )


NoteArg = Annotated[
    str,
    typer.Argument(
        help="Title, unique title prefix, file name or path.", metavar="NOTE", autocompletion=completion.notes
    ),
]
REV_HELP = "A revision: 2 (1 = oldest), -1 (the one before the latest), a commit id, or a date."


@app.command(epilog=helptext.epilog("show"))
def show(
    note: NoteArg,
    rev: Annotated[str | None, typer.Option("--rev", "-r", help=REV_HELP, metavar="REV")] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Print the file as it is, front matter included.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Show a note or one of its revisions: rendered on a terminal, the raw file when piped or with --raw."""
    from kb import render, service

    result = (
        service.show(_reading_root(), note)
        if rev is None
        else service.show_revision(_reading_root(), note, rev)
    )
    render.show(result, raw, json)


@app.command(epilog=helptext.epilog("log"))
def log(
    note: Annotated[
        str | None,
        typer.Argument(
            help="A note (default: recent changes to all notes).",
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
        render.note_log(service.note_log(_reading_root(), note), limit, json)


@app.command(context_settings={"ignore_unknown_options": True}, epilog=helptext.epilog("diff"))
def diff(
    note: NoteArg,
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

    for value in (a, b):
        if value is not None and value.startswith("--"):
            raise UsageError(f"no such option: {value}")
    render.diff(
        service.diff(_reading_root(), note, a, b), stat=stat, word_diff=word_diff, plain=no_color, json=json
    )


@app.command(context_settings={"ignore_unknown_options": True}, epilog=helptext.epilog("restore"))
def restore(note: NoteArg, rev: Annotated[str, typer.Argument(help=REV_HELP, metavar="REV")]) -> None:
    """Make an old revision the current version, as a new revision (nothing is lost). Brings back a
    deleted note too (name it by its title)."""
    from kb import render, service

    render.change(service.restore(_root(), note, rev))


@app.command("list", epilog=helptext.epilog("list"))
def list_(
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag",
            "-t",
            help="Only notes with this tag or its children.",
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
) -> None:
    """List notes."""
    from kb import render, service

    root = _reading_root()
    paths = None
    if orphans or links_to is not None or linked_by is not None or dead_links:
        paths = service.link_filter(
            root, orphans=orphans, links_to=links_to, linked_by=linked_by, dead_links=dead_links
        )
    render.note_list(service.list_notes(root, tag, sort, folder, paths), json)


@app.command(epilog=helptext.epilog("tags"))
def tags(json: JsonOpt = False) -> None:
    """List tags with how many notes carry each; a parent tag counts its children's notes."""
    from kb import render, service

    render.tag_list(service.tags(_reading_root()), json)


@app.command(epilog=helptext.epilog("rm"))
def rm(
    note: Annotated[
        str,
        typer.Argument(
            help="Title, unique title prefix, file name or path.",
            metavar="NOTE",
            autocompletion=completion.notes,
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask, even when other notes link to it.")
    ] = False,
) -> None:
    """Delete a note. The deletion is a revision: the note stays in the history.

    The notes that link to it are listed first; on a terminal kb asks before deleting (--yes does not ask;
    with stdin piped it never waits for an answer)."""
    from kb import render, service

    root = _root()
    if not yes and root.is_dir():
        try:
            linking = service.backlinks(root, note)
        except KbError:
            linking = None  # the deletion says what is wrong
        if linking is not None and render.linked_before_delete(linking):
            stdin = sys.stdin
            if stdin is not None and stdin.isatty() and not typer.confirm("Delete it anyway?", err=True):
                raise KbError("nothing deleted")
    render.change(service.remove(root, note))


NoLinksOpt = Annotated[
    bool, typer.Option("--no-links", help="Leave the links to the note as they are (they may break).")
]


@app.command(epilog=helptext.epilog("mv"))
def mv(
    note: Annotated[
        str,
        typer.Argument(
            help="Title, unique title prefix, file name or path.",
            metavar="NOTE",
            autocompletion=completion.notes,
        ),
    ],
    new_title: Annotated[
        str,
        typer.Argument(
            help="A new title (the file is renamed to match), or a place: 'folder/' keeps the file name, "
            "'folder/name.md' names the file.",
            metavar="NEW_TITLE|DIR/|PATH.md",
        ),
    ],
    no_links: NoLinksOpt = False,
) -> None:
    """Rename a note (title and file), or move it to another folder. Every link to it in other notes is
    rewritten in the same revision, keeping its form (alias, heading, relative path, encoding); so are
    the note's own relative links when it changes folder."""
    from kb import render, service

    render.change(service.move(_root(), note, new_title, update_links=not no_links))


SEARCH_HELP = """Search every note through the full-text index (kept in step with notes/ automatically).

\b
Query language:
  machine learning        notes with both words (stemmed: learning = learn = learned)
  vae OR autoencoder      either word;  NOT word  or  -word  excludes
  "chain rule"            the exact phrase
  back*   backprop~   backprop~2    prefix; fuzzy within 1 or 2 edits
  (a OR b) c              grouping
  title:word  body:word  tag:Notebooks/Skills   one field (a tag finds its children too)
  created:2021-11  modified:>2021-11-25  modified:yesterday
  created:[2021-11-01 to 2021-11-30]      dates, comparisons and ranges
  links:NOTE  linkedby:NOTE   notes that link to NOTE, notes NOTE links to (AND only)

No match: exit 1 and nothing on stdout. A query that cannot be parsed: exit 2.
"""


@app.command(help=SEARCH_HELP, epilog=helptext.epilog("search"))
def search(
    query: Annotated[list[str], typer.Argument(help="The query (words are joined).", metavar="QUERY...")],
    limit: Annotated[
        int | None,
        typer.Option("-n", "--limit", help="At most N results (default 10; -l: all).", metavar="N"),
    ] = None,
    tag: Annotated[
        str | None,
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

    paths = paths or null
    n = limit if limit is not None else (None if paths else 10)
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
    )
    raise typer.Exit(render.search(result, json=json, paths=paths, null=null))


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
def links(note: NoteArg, json: JsonOpt = False) -> None:
    """The links written in a note: line, target as written, and the note or file it leads to, or
    'dead' (nothing there) or 'ambiguous' (several notes have that name; name one by its path)."""
    from kb import render, service

    render.links(service.outgoing(_root(), note), json)


@app.command(epilog=helptext.epilog("backlinks"))
def backlinks(note: NoteArg, json: JsonOpt = False) -> None:
    """The notes that link to a note (wiki links, Markdown links, embeds): path:line and the link as
    written. Answered from the index, without reading every note."""
    from kb import render, service

    render.backlinks(service.backlinks(_root(), note), json)


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

    raise typer.Exit(render.checked(service.check(_root(), fix=fix), json))


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
            names = ", ".join([*helptext.TOPICS, *commands.list_commands(group)])
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


def main() -> None:
    os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")
    if os.environ.get(completion.COMPLETE_VAR):
        completion.enable()
    app(prog_name="kb")
