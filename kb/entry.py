"""The program's entry point. A Tab on a NOTE or a tag is answered here before the command line (typer,
rich) is imported (kb.quickcomplete.quick: a Tab is one process, and most of its time was importing);
everything else goes to kb.client (the warm server, else the whole command line). Only built-in modules
here (posix, not os: bin/kb starts Python without `site`, and os would cost 2 ms more)."""

import posix
import sys


def _blocking_output() -> None:
    """Standard output and error made to block when they were handed over set not to (O_NONBLOCK: some
    programs leave it on the pipes, sockets or terminal they give their children). Python's writes would
    stop at what the pipe or terminal takes at once (64 kB; a few lines on a terminal) and drop the rest
    without a word. They stay blocking after kb, as they are for almost every program."""
    for fd in (1, 2):
        try:
            if not posix.get_blocking(fd):
                posix.set_blocking(fd, True)
        except OSError:  # closed (`>&-`): said when something is written
            pass


def main(warm: bool = True) -> None:
    """The `kb` program (warm: through kb.client); `python -m kb` passes warm=False (always cold). A Ctrl-C
    before kb's own handling of it began (while its modules are imported) ends it as that handling
    does: one line, exit status 130, no traceback."""
    try:
        _main(warm)
    except KeyboardInterrupt:
        try:
            sys.stderr.write("Error: interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed or gone: the status says it
            pass
        posix._exit(130)


def _main(warm: bool) -> None:
    _blocking_output()
    if posix.environ.get(b"_KB_COMPLETE"):
        from kb.quickcomplete import quick

        answer = quick()
        if answer is not None:
            sys.stdout.write(answer[0])
            sys.stdout.flush()
            sys.exit(answer[1])
    if not warm:
        from kb.cli import main as cold

        cold()
        return
    from kb.client import main as run

    run()
