"""Shell completion for bash, zsh and fish: the scripts `kb completion SHELL` prints, and the completers
of NOTE (titles and paths) and TAG values that typer calls.

The values come from kb.quickcomplete (the catalog's SQLite file, no whoosh, no service), which also answers
most Tabs before this module, typer and the command line are imported at all.
"""

from __future__ import annotations

import typer

from kb.quickcomplete import COMPLETE_VAR, SHELLS, for_shell, note_values, root_of, tag_values

__all__ = ["COMPLETE_VAR", "SHELLS", "enable", "notes", "script", "tags"]


def enable() -> None:
    """Register typer's bash, zsh and fish completion protocols (only when a shell asks)."""
    from typer._completion_classes import completion_init

    completion_init()


def script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="kb", complete_var=COMPLETE_VAR, shell=shell) + "\n"


def notes(ctx: typer.Context, incomplete: str) -> list[str]:
    """Titles, then paths, that start with what was typed."""
    return for_shell(note_values(root_of(ctx.find_root().params.get("kb")), incomplete))


def tags(ctx: typer.Context, incomplete: str) -> list[str]:
    """Tags (and their parents) that start with what was typed."""
    return for_shell(tag_values(root_of(ctx.find_root().params.get("kb")), incomplete))
