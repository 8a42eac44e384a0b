"""Running the user's editor on a draft file. The draft stays on disk until the caller discards it."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kb.errors import EditorError, UsageError


@dataclass
class FileDraft:
    text: str
    path: Path

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


# As git does without $VISUAL and $EDITOR: Debian's `editor` alternative, then the usual two.
FALLBACK_EDITORS = ("editor", "nano", "vi")


def editor_command() -> list[str]:
    raw = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not raw or not raw.strip():
        for name in FALLBACK_EDITORS:
            if shutil.which(name):
                from kb import render

                render.hint(f"No $VISUAL or $EDITOR set; using {name}.")
                return [name]
        raise UsageError(
            "no editor: set $EDITOR (or $VISUAL), or give the text with -b or on stdin "
            f"(none of {', '.join(FALLBACK_EDITORS)} was found)"
        )
    try:
        argv = shlex.split(raw)
    except ValueError as exc:
        raise UsageError(f"cannot read $EDITOR ({raw!r}): {exc}") from None
    if not argv:
        raise UsageError("$EDITOR is empty")
    return argv


def drafts_folder(root: Path) -> Path:
    """Drafts live in the repository's .git folder when there is one (they survive a reboot)."""
    git_dir = root / ".git"
    base = git_dir / "kb-drafts" if git_dir.is_dir() else Path(tempfile.gettempdir()) / "kb-drafts"
    base.mkdir(parents=True, exist_ok=True)
    return base


def run_editor(initial: str, stem: str, root: Path) -> FileDraft:
    """Open `initial` in $VISUAL/$EDITOR. A failed editor keeps what was typed and says where."""
    argv = editor_command()
    folder = Path(tempfile.mkdtemp(prefix="edit-", dir=drafts_folder(root)))
    path = folder / f"{stem[:100] or 'note'}.md"
    path.write_bytes(initial.encode("utf-8"))
    draft = FileDraft(initial, path)
    exe = shutil.which(argv[0])
    if exe is None:
        draft.discard()
        raise EditorError(f"the editor '{argv[0]}' was not found; check $EDITOR")
    try:
        code = subprocess.call([exe, *argv[1:], str(path)])
    except OSError as exc:
        draft.discard()
        raise EditorError(f"cannot run the editor '{argv[0]}': {exc.strerror}") from None
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditorError(
            f"the editor saved text that is not UTF-8 (byte {exc.start}); "
            f"nothing saved, your text is in {path}"
        ) from None
    if code != 0:
        if text != initial:
            raise EditorError(f"the editor exited with status {code}; nothing saved, your text is in {path}")
        draft.discard()
        raise EditorError(f"the editor exited with status {code}; nothing saved")
    draft.text = text
    return draft
