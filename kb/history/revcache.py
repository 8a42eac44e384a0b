"""Which commits changed which path: a cache of the repository's history, kept beside it in the git folder.

`git log -- path` diffs the trees of every commit to find the few that touch one note: with 100,000 notes in
one folder, each such diff reads two trees of 100,000 entries, and a note with 200 revisions in a history of
5,000 commits costs a minute (git's changed-path Bloom filters cut the walk, not the tree diffs of the hits).
The cache records, once per commit, every path it changed with the blob it left; a note's history is then
one indexed query, and its old versions are read by blob id, without resolving any tree.

It is derived data: the file is `kb-revisions.sqlite3` in the git folder (never committed, never synced),
extended with the commits reachable from HEAD that it does not hold yet (one `git log --raw` of just those),
and rebuilt from scratch when HEAD no longer descends from the commit it was last brought up to (history
rewritten outside kb). A missing, damaged or unwritable cache is rebuilt or simply not used. Being
derived, it is written without waiting for the disk (`synchronous=OFF`): a crash of the machine can at
worst leave a file that is rebuilt.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

VERSION = "4"
_VERSIONS = "versions1"  # blob -> its `modified`
_COUNTS = "counts1"  # (blob, blob) -> lines added, removed
NAME = "kb-revisions.sqlite3"
FIELD = "\x1f"
RECORD = "\x1e"
ZERO = "0" * 40
LOG_FORMAT = f"--format={RECORD}%H{FIELD}%aI{FIELD}%s{FIELD}%b{FIELD}"
# The cache's own log also gives each commit's parents ("%H %P" in the first field): they tell whether HEAD
# still descends from the commit the cache was brought up to, without another git process.
PARENTS_FORMAT = f"--format={RECORD}%H %P{FIELD}%aI{FIELD}%s{FIELD}%b{FIELD}"
LOG_ARGS = [
    "log",
    "--root",
    "--no-color",
    # A merge is a revision of a path when its result differs from every parent's (a merge of edits to
    # different lines, a resolved conflict): the combined diff lists exactly those paths.
    "--diff-merges=combined",
    "--no-renames",
    "--raw",
    "--no-abbrev",
    "-z",
    PARENTS_FORMAT,
]


class Row(NamedTuple):
    sha: str
    date: str  # author date, ISO 8601
    subject: str
    body: str
    status: str  # A, M, D or T
    blob: str | None  # the path's blob after the commit; None where it deleted the path


CommitChanges = tuple[str, str, str, list[tuple[str, str]]]  # author date, subject, body, [(path, status)]


class CacheUnavailable(Exception):
    """The cache cannot be used here (unwritable folder, damaged file, git failing): read git instead."""


def parse_log(out: str) -> list[tuple[str, str, str, str, list[tuple[str, str, str]]]]:
    """`git log --raw -z` output in LOG_FORMAT: (sha, date, subject, body, [(path, status, blob)]) in the
    log's order. The one parser of git's log in kb. A rename or copy gives its new path."""
    result = []
    for chunk in out.split(RECORD)[1:]:
        parts = chunk.split(FIELD, 4)
        if len(parts) < 5:
            continue
        sha, date, subject, body, rest = parts
        tokens = rest.split("\0")
        changes: list[tuple[str, str, str]] = []
        i = 0
        while i < len(tokens) and not tokens[i].lstrip("\n").startswith(":"):
            i += 1
        while i + 1 < len(tokens):
            meta = tokens[i].lstrip("\n").split()
            parents = len(meta[0]) - len(meta[0].lstrip(":")) if meta else 0
            if parents == 1 and len(meta) >= 5:
                blob, status = meta[3], meta[4][:1]
                if status in ("R", "C") and i + 2 < len(tokens):
                    changes.append((tokens[i + 2], status, blob))
                    i += 3
                    continue
                changes.append((tokens[i + 1], status, blob))
            elif parents > 1 and len(meta) >= 2 * parents + 3:
                # ::mode mode mode sha sha sha STATUS (one column per parent, then the result)
                shas = meta[parents + 1 : 2 * parents + 2]
                blob = shas[-1]
                if blob == ZERO:
                    status = "D"
                elif all(sha == ZERO for sha in shas[:-1]):
                    status = "A"
                else:
                    status = "M"
                changes.append((tokens[i + 1], status, blob))
            i += 2
        result.append((sha, date, subject, body.strip(), changes))
    return result


class RevisionCache:
    def __init__(self, git_dir: Path, run_git: Any) -> None:
        """`run_git(args) -> (returncode, stdout text)` runs git in the repository."""
        self.path = git_dir / NAME
        self._run_git = run_git
        self._db: sqlite3.Connection | None = None
        self.added: tuple[str, str, list[str]] | None = None  # (from, to, the commits) of the last extension

    def _open(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("PRAGMA synchronous=OFF")  # derived data: see the module's docstring
            version = None
            try:
                row = db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
                version = row[0] if row else None
            except sqlite3.DatabaseError:
                pass
            if version != VERSION:
                db.close()
                self.path.unlink(missing_ok=True)
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA synchronous=OFF")
                db.executescript(
                    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                    "CREATE TABLE commits"
                    " (n INTEGER PRIMARY KEY, sha TEXT, date TEXT, subject TEXT, body TEXT,"
                    " deletions INTEGER);"
                    "CREATE INDEX commits_sha ON commits (sha);"
                    "CREATE TABLE changes (path TEXT, n INTEGER, status TEXT, blob TEXT,"
                    " PRIMARY KEY (path, n)) WITHOUT ROWID;"
                    "CREATE INDEX changes_blob ON changes (blob);"
                    f"INSERT INTO meta VALUES ('version', '{VERSION}');"
                )
            # The changes of given commits (the new ones) are found by their number: without this index,
            # by a walk of every change (40 ms at 50,000 changes).
            with contextlib.suppress(sqlite3.OperationalError):  # a read-only cache goes without
                db.execute("CREATE INDEX IF NOT EXISTS changes_n ON changes (n)")
            # What kb log works out of each version (see versions, counts): the number in the names
            # changes with the way it is worked out.
            with contextlib.suppress(sqlite3.OperationalError):
                db.execute(f"CREATE TABLE IF NOT EXISTS {_VERSIONS} (blob TEXT PRIMARY KEY, modified TEXT)")
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {_COUNTS} (old TEXT, new TEXT, added INTEGER,"
                    " removed INTEGER, PRIMARY KEY (old, new)) WITHOUT ROWID"
                )
        except (sqlite3.Error, OSError) as exc:
            raise CacheUnavailable(str(exc)) from None
        self._db = db
        return db

    def exists(self) -> bool:
        """Whether the cache's file is there (it may still be of another version, or damaged)."""
        return self.path.exists()

    def known_head(self) -> str | None:
        """The commit the cache was last brought up to; None for a new cache."""
        try:
            return self._head(self._open())
        except sqlite3.Error as exc:
            raise CacheUnavailable(str(exc)) from None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _head(self, db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key='head'").fetchone()
        return row[0] if row else None

    def bring_up_to(self, head: str) -> sqlite3.Connection:
        """The cache, holding every commit reachable from `head`."""
        db = self._open()
        try:
            if self._head(db) == head:
                return db
            db.execute("BEGIN IMMEDIATE")
            try:
                known = self._head(db)  # another kb may have done it meanwhile
                if known != head:
                    self._extend(db, known, head)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise CacheUnavailable(str(exc)) from None
        return db

    def _extend(self, db: sqlite3.Connection, known: str | None, head: str) -> None:
        try:
            commits = self._log(head, known)
        except CacheUnavailable:
            if known is None:
                raise
            commits = []  # `known` is gone (history rewritten, then collected): start again
        if known is not None and not _descends(commits, known):
            known = None  # rewritten history: start again
            commits = self._log(head, None)
        if known is None:
            db.execute("DELETE FROM commits")
            db.execute("DELETE FROM changes")
        commits = [
            (sha.split(" ", 1)[0], date, subject, body, changes)
            for sha, date, subject, body, changes in commits
        ]
        top = db.execute("SELECT COALESCE(MAX(n), 0) FROM commits").fetchone()[0]
        count = len(commits)
        db.executemany(
            "INSERT INTO commits VALUES (?, ?, ?, ?, ?, ?)",
            (
                (top + count - k, *commit[:4], sum(status == "D" for _, status, _ in commit[4]))
                for k, commit in enumerate(commits)
            ),
        )
        db.executemany(
            "INSERT OR REPLACE INTO changes VALUES (?, ?, ?, ?)",
            (
                (path, top + count - k, status, None if status == "D" or blob == ZERO else blob)
                for k, (_, _, _, _, changes) in enumerate(commits)
                for path, status, blob in changes
            ),
        )
        db.execute("INSERT OR REPLACE INTO meta VALUES ('head', ?)", (head,))
        self.added = (known or "", head, [commit[0] for commit in commits])

    def _log(
        self, head: str, known: str | None
    ) -> list[tuple[str, str, str, str, list[tuple[str, str, str]]]]:
        """The commits reachable from `head` and not from `known`, newest first, as parse_log gives them,
        with the first field "sha parent parent..."."""
        code, out = self._run_git([*LOG_ARGS, head, *([f"^{known}"] if known else []), "--"])
        if code != 0:
            raise CacheUnavailable("git log failed")
        return parse_log(out)

    def _query(self, head: str, sql: str, params: tuple[str | int, ...]) -> list[Any]:
        """The rows of `sql` in the cache brought up to `head`."""
        db = self.bring_up_to(head)
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise CacheUnavailable(str(exc)) from None

    def _query_in(self, head: str, sql: str, values: list[str]) -> list[Any]:
        """The rows of `sql` for all of `values`: its `IN ({})` is given as many placeholders as values,
        and it is asked 500 values at a time (SQLite's limit on parameters)."""
        rows: list[Any] = []
        for chunk in _chunks(values):
            rows.extend(self._query(head, sql.format(",".join("?" * len(chunk))), tuple(chunk)))
        return rows

    def versions(self, blobs: list[str]) -> dict[str, str | None]:
        """Of these versions (blob ids), those whose `modified` was worked out before
        (kb.notes.modified_of; None: it has none): a version never changes, nor what it holds."""
        found: dict[str, str | None] = {}
        try:
            db = self._open()
            for chunk in _chunks(sorted(set(blobs))):
                sql = f"SELECT blob, modified FROM {_VERSIONS} WHERE blob IN ({','.join('?' * len(chunk))})"
                found.update(db.execute(sql, chunk).fetchall())
        except sqlite3.Error as exc:
            raise CacheUnavailable(str(exc)) from None
        return found

    def counts(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
        """Of these pairs of versions (blob ids, "" for no text), those whose lines added and removed
        from the first to the second were counted before (kb.diff.line_counts)."""
        wanted = set(pairs)
        found: dict[tuple[str, str], tuple[int, int]] = {}
        try:
            db = self._open()
            for chunk in _chunks(sorted({new for _, new in wanted})):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT old, new, added, removed FROM {_COUNTS} WHERE new IN ({marks})"
                for old, new, added, removed in db.execute(sql, chunk):
                    if (old, new) in wanted:
                        found[(old, new)] = (added, removed)
        except sqlite3.Error as exc:
            raise CacheUnavailable(str(exc)) from None
        return found

    def keep(self, versions: dict[str, str | None], counts: dict[tuple[str, str], tuple[int, int]]) -> None:
        """Keep what versions and counts give back, for the next time. A cache that cannot be written (a
        read-only repository, another process writing) keeps nothing: it is only a shortcut."""
        if not versions and not counts:
            return
        try:
            db = self._open()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(f"INSERT OR REPLACE INTO {_VERSIONS} VALUES (?, ?)", versions.items())
                db.executemany(
                    f"INSERT OR REPLACE INTO {_COUNTS} VALUES (?, ?, ?, ?)",
                    [(old, new, added, removed) for (old, new), (added, removed) in counts.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, CacheUnavailable):
            pass

    def path_log(self, head: str, path: str) -> list[Row]:
        """The commits reachable from `head` that changed `path`, newest first."""
        rows = self._query(
            head,
            "SELECT c.sha, c.date, c.subject, c.body, ch.status, ch.blob FROM changes ch"
            " JOIN commits c ON c.n = ch.n WHERE ch.path = ? ORDER BY ch.n DESC",
            (path,),
        )
        return [Row(*row) for row in rows]

    def path_dates(self, head: str, until: str | None = None) -> dict[str, tuple[str, str]]:
        """Every path's first and last commit dates (author dates, ISO 8601); with `until`, counting only
        the commits up to that one in the log's order."""
        # Commits whose date is not their files' (kb's adoption of existing files, an import dated by the
        # notes' own front matter) do not count.
        dated = "SELECT n FROM commits WHERE body NOT LIKE '%Kb-Dated-By:%'"
        params: tuple[str, ...] = ()
        if until is not None:
            dated += " AND n <= (SELECT n FROM commits WHERE sha = ?)"
            params = (until,)
        spans = f"SELECT path, MIN(n) lo, MAX(n) hi FROM changes WHERE n IN ({dated}) GROUP BY path"
        ends = "JOIN commits a ON a.n = p.lo JOIN commits b ON b.n = p.hi"
        sql = f"SELECT p.path, a.date, b.date FROM ({spans}) p {ends}"
        rows = self._query(head, sql, params)
        return {path: (first, last) for path, first, last in rows}

    def commits(self, head: str) -> list[tuple[int, str, str, str, str]]:
        """Every commit reachable from `head` as (n, sha, date, subject, body), oldest first."""
        return [
            tuple(row)
            for row in self._query(head, "SELECT n, sha, date, subject, body FROM commits ORDER BY n", ())
        ]

    def changing(self, head: str, globs: list[str]) -> dict[int, str]:
        """The commits (n: sha) that changed a path one of these GLOB patterns matches."""
        if not globs:
            return {}
        where = " OR ".join("path GLOB ?" for _ in globs)
        sql = f"SELECT n, sha FROM commits WHERE n IN (SELECT n FROM changes WHERE {where})"
        return {int(n): sha for n, sha in self._query(head, sql, tuple(globs))}

    def changes_between(self, head: str, low: int, high: int) -> list[tuple[int, str, str, str | None]]:
        """(n, path, status, blob) of every change made by the commits low..high, in that order."""
        return [
            tuple(row)
            for row in self._query(
                head,
                "SELECT n, path, status, blob FROM changes WHERE n >= ? AND n <= ? ORDER BY n",
                (str(low), str(high)),
            )
        ]

    def blobs_before(self, head: str, paths: list[str], n: int) -> dict[str, str | None]:
        """Each path's blob after its last change before commit n (None: deleted then); paths never
        changed before n are left out."""
        found: dict[str, str | None] = {}
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                head,
                "SELECT ch.path, ch.blob FROM changes ch JOIN (SELECT path, MAX(n) AS n FROM changes"
                f" WHERE n < ? AND path IN ({marks}) GROUP BY path) last"
                " ON ch.path = last.path AND ch.n = last.n",
                (str(n), *chunk),
            )
            found.update((path, blob) for path, blob in rows)
        return found

    def blob_before(self, head: str, path: str, n: int) -> tuple[bool, str | None]:
        """(whether `path` had been changed before commit n, its blob after the last such change)."""
        rows = self._query(
            head,
            "SELECT blob FROM changes WHERE path = ? AND n < ? ORDER BY n DESC LIMIT 1",
            (path, str(n)),
        )
        return (bool(rows), rows[0][0] if rows else None)

    def deleted(self, head: str, prefix: str) -> list[tuple[str, str]]:
        """(commit, path) of every deletion of a path under `prefix`/, newest first."""
        rows = self._query(
            head,
            "SELECT c.sha, ch.path FROM changes ch JOIN commits c ON c.n = ch.n"
            " WHERE ch.status = 'D' AND ch.path >= ? AND ch.path < ? ORDER BY ch.n DESC",
            (prefix + "/", prefix + "0") if prefix else ("", "\U0010ffff"),  # "0" follows "/"
        )
        return [(sha, path) for sha, path in rows]

    def shapes(self, head: str, shas: list[str]) -> dict[str, tuple[str, bool]]:
        """Of each of these commits (reachable from `head`): its message's body, and whether it added any
        path (one that did not renamed nothing)."""
        sql = (
            "SELECT c.sha, c.body, EXISTS (SELECT 1 FROM changes ch WHERE ch.n = c.n AND ch.status = 'A')"
            " FROM commits c WHERE c.sha IN ({})"
        )
        return {sha: (body or "", bool(adds)) for sha, body, adds in self._query_in(head, sql, shas)}

    def deletes_any(self, head: str, sha: str) -> bool:
        """Whether the commit `sha` (reachable from `head`) deleted any path: one that did not renamed
        nothing."""
        rows = self._query(head, "SELECT deletions FROM commits WHERE sha = ?", (sha,))
        return not rows or rows[0][0] > 0

    # ------------------------------------------------------------ every version (kb.index.history)

    def blobs(self, head: str, shas: list[str] | None = None) -> list[tuple[str, str, str]]:
        """(blob, path, author date) of each distinct blob the commits reachable from `head` left, at the
        first path and commit that held it; with `shas`, only the blobs those commits left and no other
        commit did (the blobs new in them)."""
        if shas is None:
            sql = (
                "SELECT ch.blob, ch.path, c.date, MIN(ch.n) FROM changes ch JOIN commits c ON c.n = ch.n"
                " WHERE ch.blob IS NOT NULL GROUP BY ch.blob"
            )
            return [(blob, path, date) for blob, path, date, _ in self._query(head, sql, ())]
        found: dict[str, tuple[str, str, str]] = {}
        numbers: set[int] = set()
        sql = (
            "SELECT ch.blob, ch.path, c.date, ch.n FROM changes ch JOIN commits c ON c.n = ch.n"
            " WHERE c.sha IN ({}) AND ch.blob IS NOT NULL ORDER BY ch.n"
        )
        for blob, path, date, n in self._query_in(head, sql, shas):
            found.setdefault(blob, (blob, path, date))
            numbers.add(n)
        seen_before = {blob for blob, _, _, n in self.holders(head, list(found)) if n not in numbers}
        return [row for blob, row in found.items() if blob not in seen_before]

    def holders(self, head: str, blobs: list[str]) -> list[tuple[str, str, str, int]]:
        """(blob, path, commit, n) of every change that left one of `blobs`."""
        sql = (
            "SELECT ch.blob, ch.path, c.sha, ch.n FROM changes ch JOIN commits c ON c.n = ch.n"
            " WHERE ch.blob IN ({})"
        )
        return self._query_in(head, sql, blobs)

    def changes_of(self, head: str, paths: list[str]) -> list[tuple[str, int, str, str, str]]:
        """(path, n, status, commit, commit body) of every change of `paths`, oldest first."""
        sql = (
            "SELECT ch.path, ch.n, ch.status, c.sha, c.body FROM changes ch JOIN commits c ON c.n = ch.n"
            " WHERE ch.path IN ({})"
        )
        return sorted(self._query_in(head, sql, paths), key=lambda row: row[1])

    def commit_changes(self, head: str, shas: list[str]) -> dict[str, CommitChanges]:
        """commit -> (author date, subject, body, [(path, status)] in git's order of paths) for each of
        `shas` the cache holds."""
        sql = (
            "SELECT c.sha, c.date, c.subject, c.body, ch.path, ch.status FROM commits c"
            " LEFT JOIN changes ch ON ch.n = c.n WHERE c.sha IN ({}) ORDER BY c.n, ch.path"
        )
        found: dict[str, CommitChanges] = {}
        for sha, date, subject, body, path, status in self._query_in(head, sql, shas):
            entry = found.setdefault(sha, (date, subject, body, []))
            if path is not None:
                entry[3].append((path, status))
        return found

    def added_in(self, head: str, n: int) -> list[str]:
        """The paths the commit numbered `n` added."""
        rows = self._query(head, "SELECT path FROM changes WHERE n = ? AND status = 'A'", (n,))
        return [path for (path,) in rows]

    def commit_dates(self, head: str) -> list[tuple[int, str, str]]:
        """(n, sha, author date) of every commit reachable from `head`, in the cache's order."""
        rows = self._query(head, "SELECT n, sha, date FROM commits ORDER BY n", ())
        return [(int(n), sha, date) for n, sha, date in rows]

    def number_of(self, head: str, sha: str) -> int | None:
        """The cache's number of the commit `sha`, or None when it is not reachable from `head`."""
        rows = self._query(head, "SELECT n FROM commits WHERE sha = ?", (sha,))
        return int(rows[0][0]) if rows else None

    def state_at(self, head: str, n: int) -> list[tuple[str, str]]:
        """(path, blob) of every path present right after the commit numbered `n`: each path's latest change
        at or before it, deletions left out."""
        sql = "SELECT path, blob, status, MAX(n) FROM changes WHERE n <= ? GROUP BY path"
        return [
            (path, blob) for path, blob, status, _ in self._query(head, sql, (n,)) if blob and status != "D"
        ]


def _descends(commits: list[tuple[str, str, str, str, list[tuple[str, str, str]]]], known: str) -> bool:
    """Whether `known` is an ancestor of the head whose commits not reachable from `known` these are (their
    first field "sha parent..."): then some of them has `known` as a parent (the last of them on a path
    from the head down to `known`); otherwise none has. No commits: the head is `known` or behind it."""
    return any(known in sha.split(" ")[1:] for sha, *_ in commits)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
