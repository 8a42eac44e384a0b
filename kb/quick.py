"""The cold path's plain search, `kb [--kb PATH] search WORD...`, without the command line's parser (typer and
click are a sixth of a cold search's time); and what that path shares with kb.cli: the reading root, how a
failure ends the command, how the process ends.

Only the plain form is taken here: global `--kb PATH` at most, then `search` and words, all UTF-8, none of
them an option of search's (a word after a dash, `-emacs`, is a word the query leaves out; `-n 5`, `--json`
or `--help` is not taken). Anything else goes to kb.cli, which prints the same bytes and exit status for
this form too (tests/test_quick.py compares them).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path
from typing import NoReturn

from kb.errors import KbError

# kb search's options as click reads them after the command: short flags, short options with a value
_FLAGS = "l0h"
_VALUED = "ntC"
_GLOBAL_VALUED = frozenset({"--kb", "--color"})
_GLOBAL_FLAGS = frozenset({"--no-pager", "--debug"})


def is_option(token: str) -> bool:
    """Whether `token`, after `kb search`, is one of its options (or a long option it lacks) rather than a
    query word: `-l`, `-l0`, `-n5`, `-C3`, `--json`, `--tag=x` are options; `-draft`, `-tmux`, `-5`, `-`
    are words (the query leaves out notes with a word after a dash, as `kb help search` says)."""
    if token.startswith("--"):
        return True
    for i, letter in enumerate(token[1:], start=2):
        rest = token[i:]
        if letter in _VALUED:  # its value is the next argument, or a number joined to it
            return not rest or (letter != "t" and rest.isdigit())
        if letter not in _FLAGS:
            return False
    return len(token) > 1


def search_argv(argv: list[str]) -> list[str]:
    """`argv` with the query words of `kb search` that start with a dash (`kb search vim -emacs`) put
    after `--`, so that the parser takes them as words rather than unknown options; unchanged when there
    are none, or for any other command."""
    i = 0
    while i < len(argv) and (
        argv[i] in _GLOBAL_VALUED or argv[i] in _GLOBAL_FLAGS or argv[i].startswith(("--kb=", "--color="))
    ):
        i += 2 if argv[i] in _GLOBAL_VALUED else 1
    if i >= len(argv) or argv[i] != "search":
        return argv
    options: list[str] = []
    words: list[str] = []
    rest = argv[i + 1 :]
    j = 0
    while j < len(rest):
        token = rest[j]
        if token == "--":
            words.extend(rest[j + 1 :])
            break
        if token.startswith("-") and is_option(token):
            options.append(token)
            takes = token in _LONG_VALUED or (not token.startswith("--") and token[-1] in _VALUED)
            if takes and j + 1 < len(rest):
                options.append(rest[j + 1])
                j += 1
        else:
            words.append(token)
        j += 1
    if not any(word.startswith("-") for word in words):
        return argv
    return [*argv[: i + 1], *options, "--", *words]


_LONG_VALUED = frozenset({"--limit", "--tag", "--sort", "--context", "--as-of"})


def plain_search(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """(the --kb value, the words) of `[--kb PATH] search WORD...`; None for any other command line."""
    kb: str | None = None
    i = 0
    while i < len(argv) and argv[i].startswith("--kb"):
        arg = argv[i]
        if arg == "--kb" and i + 1 < len(argv) and argv[i + 1].strip() and not argv[i + 1].startswith("-"):
            kb, i = argv[i + 1], i + 2
        elif arg.startswith("--kb=") and arg[5:].strip():
            kb, i = arg[5:], i + 1
        else:
            return None
    words = argv[i + 1 :]
    if i >= len(argv) or argv[i] != "search" or not words:
        return None
    if kb is not None and not (kb.isascii() or _utf8(kb)):
        return None  # kb.cli says which argument is not UTF-8
    for word in words:
        if (word.startswith("-") and is_option(word)) or not (word.isascii() or _utf8(word)):
            return None
    return kb, words


def _utf8(text: str) -> bool:
    from kb.notes import is_utf8

    return is_utf8(text)


def reading_root(kb: str | None) -> Path:
    """The knowledge base a reading command reads (--kb, $KB_HOME, ~/.kb): it must be one already (reading
    creates nothing)."""
    from kb import config
    from kb.layout import is_knowledge_base

    root = config.resolve_root(kb)
    if not is_knowledge_base(root):
        state = "does not exist" if not root.exists() else "is not a knowledge base"
        raise KbError(f"{root} {state}; 'kb init' or 'kb add' makes one (or give --kb PATH)")
    return root


def failed(exc: BaseException) -> int:
    """Say why a command failed in one line on stderr; its exit status. For kb's own errors, an interrupt, a
    closed pipe and (the one place an unexpected failure becomes a clear exit) any other exception."""
    if isinstance(exc, KbError):
        return _said(str(exc), exc.exit_code)
    if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt):
        # (a Ctrl-C while a module is imported can come wrapped: "Error calling __set_name__ ...")
        return _said("interrupted", 130)
    if isinstance(exc, BrokenPipeError) and reader_gone(1):
        return 0
    if isinstance(exc, BrokenPipeError) and reader_gone(2):  # nowhere to say so
        return 1
    why = _unwritable(exc)
    if why is not None:
        return _said(why, 1)
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path typed or pasted
        return _said(f"a name is longer than the file system allows: {exc.filename}", 1)
    if isinstance(exc, PermissionError) and exc.filename:  # a knowledge base or note kb may not read
        return _said(f"permission denied: {exc.filename}", 1)
    return _said(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", 1)


def _said(message: str, code: int) -> int:
    """`code`, once `message` is said on stderr (unless no one reads it any more: `2>&1 | true`)."""
    from kb import render  # light: rich is imported only where it draws

    try:
        render.error(message)
    except BrokenPipeError:
        if not reader_gone(2):
            raise
    return code


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


def _unwritable(exc: BaseException) -> str | None:
    """Why the output could not be written, when that is what `exc` is: standard output closed (`>&-`),
    a full or failing device, a character its encoding has no place for."""
    out = sys.stdout
    if out is None and isinstance(exc, AttributeError):
        return "cannot write the output: standard output is closed"
    utf8 = exc.encoding.lower().replace("-", "") == "utf8" if isinstance(exc, UnicodeEncodeError) else True
    if isinstance(exc, UnicodeEncodeError) and out is not None and exc.encoding == out.encoding and not utf8:
        shown = ascii(exc.object[exc.start : exc.end])
        return f"cannot write {shown} in the output's encoding ({exc.encoding}); use UTF-8 (LC_ALL=C.UTF-8)"
    if isinstance(exc, OSError) and exc.errno in _FULL:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno == errno.EBADF and _read_only(1):
        return "cannot write the output: standard output is open for reading only"
    return None


def _read_only(fd: int) -> bool:
    """Whether this descriptor is open for reading only (`kb list 1</dev/null`)."""
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
    except OSError:
        return False


def reader_gone(fd: int) -> bool:
    """Whether this descriptor (1, 2) is a pipe or socket whose reader has gone (`kb list | head -1`): for
    standard output, the reader took what it wanted, which is no failure, as for ripgrep. The descriptor
    then writes to /dev/null, so that what is left in its buffer goes nowhere rather than failing again.
    A closed pipe anywhere else (to git, say) is a failure, said as one."""
    import select

    try:
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        gone = any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (OSError, ValueError):
        return False
    if gone:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    return gone


def flushed(code: int) -> int:
    """`code`, once stdout and stderr are flushed; 120 when they cannot be (as the interpreter exits), unless
    the command failed already (its error said why: writing the output, say), or the reader of the pipe
    has gone (`kb search x 2>&1 | head -1`: a reader that stops early is no failure)."""
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except BrokenPipeError:
            if not reader_gone(fd):
                code = code or 120
                continue
            with contextlib.suppress(OSError, ValueError):
                stream.flush()  # what was left goes to /dev/null now
        except (OSError, ValueError):
            code = code or 120
    return code


def leave(code: int, handlers: int | None) -> NoReturn:
    """End the process with `code`. The interpreter's teardown (freeing every object: ~10% of a search's
    time) is skipped when it has nothing else to do: streams flushed (flushed()), no exit handler registered
    since the start (`handlers`: atexit's count then; logging, multiprocessing and tempfile register theirs),
    no other thread."""
    import atexit

    count = getattr(atexit, "_ncallbacks", None)
    threading = sys.modules.get("threading")
    alone = threading is None or threading.active_count() == 1
    quiet = count is not None and handlers is not None and count() == handlers
    if quiet and alone and "multiprocessing" not in sys.modules:
        os._exit(code)
    sys.exit(code)


def handlers_now() -> int | None:
    """atexit's count of exit handlers now (see leave)."""
    import atexit

    count = getattr(atexit, "_ncallbacks", None)
    return count() if count is not None else None


def run(argv: list[str]) -> int | None:
    """Run `kb [--kb PATH] search WORD...` as kb.cli would, without its parser; None for any other command
    line (kb.cli runs it)."""
    parsed = plain_search(argv)
    if parsed is None or os.environ.get("_KB_COMPLETE"):
        return None
    kb, words = parsed
    from kb import render, service, terminal

    os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")
    terminal.configure()
    try:
        result = service.search(
            reading_root(kb), " ".join(words), limit=10, snippets=True, progress=render.progress()
        )
        code = render.search(result, json=False, paths=False)
    except Exception as exc:  # kb.cli's exit point, for this one form
        code = failed(exc)
    except KeyboardInterrupt as exc:
        code = failed(exc)
    return flushed(code)
