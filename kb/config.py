"""Where the knowledge base is, the clock and the settings. Resolved at call time, never at import time."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from kb.errors import UsageError

DEFAULT_DIRNAME = ".kb"
LOCK_TIMEOUT_SECONDS = 5.0


def resolve_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--kb PATH`, else `$KB_HOME`, else `~/.kb`."""
    if explicit:
        raw = os.fspath(explicit)
    elif os.environ.get("KB_HOME"):
        raw = os.environ["KB_HOME"]
    else:
        raw = str(Path.home() / DEFAULT_DIRNAME)
    if "\0" in raw:
        raise UsageError("the knowledge base path contains a NUL byte")
    found = Path(raw).expanduser().absolute()
    if not str(found).isascii():
        from kb.notes import is_utf8, shown_name

        if not is_utf8(str(found)):
            shown = shown_name(str(found))
            raise UsageError(f"the knowledge base path is not UTF-8: {shown} (rename the folder)")
    return found


def now() -> datetime:
    """The current time in UTC. `$KB_NOW` (ISO 8601) fixes it, for reproducible runs and tests."""
    fixed = os.environ.get("KB_NOW")
    if fixed:
        from kb.notes import parse_timestamp

        parsed = parse_timestamp(fixed)
        if parsed is None:
            raise UsageError(f"KB_NOW is not an ISO 8601 date-time: {fixed!r}")
        return parsed
    return datetime.now(UTC)


SYNC_TIMEOUT_SECONDS = 120.0


def _seconds(name: str, default: float) -> float:
    """A number of seconds from the environment variable `name`, else `default`."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"{name} is not a number of seconds: {raw!r}") from None


def sync_timeout() -> float:
    """The deadline of each network step of `kb sync` (fetch, push): `$KB_SYNC_TIMEOUT` seconds."""
    value = _seconds("KB_SYNC_TIMEOUT", SYNC_TIMEOUT_SECONDS)
    if not value > 0:
        raise UsageError(f"KB_SYNC_TIMEOUT must be more than 0 seconds: {os.environ['KB_SYNC_TIMEOUT']!r}")
    return value


def lock_timeout() -> float:
    return max(0.0, _seconds("KB_LOCK_TIMEOUT", LOCK_TIMEOUT_SECONDS))
