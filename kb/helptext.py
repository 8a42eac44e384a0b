"""The help kb prints beyond each option's line: the short usage of a bare `kb`, the topic pages of
`kb help TOPIC`, and the examples that end every command's --help. Plain text, kept in one place (pure: no
imports, so `kb --help` stays fast)."""

from __future__ import annotations

USAGE = """\
kb: a versioned personal knowledge base. Markdown notes, every change a git revision.

Usage: kb [--kb PATH] COMMAND [ARGS]...

Most used:
  kb add TITLE -b TEXT       add a note (or pipe the body, or write it in $EDITOR)
  kb edit NOTE               change a note in $EDITOR; -a TEXT appends, -t TAG tags
  kb show NOTE               show a note; --rev REV an old revision
  kb list                    list notes; -t TAG, --folder DIR, --sort title
  kb search QUERY...         full-text search, ranked
  kb log [NOTE]              a note's revisions, or recent changes
  kb diff NOTE [A [B]]       what changed between revisions
  kb changes [--since WHEN]  what changed in the whole knowledge base (default: the last 7 days)

More: kb --help (every command), kb help COMMAND, kb help dates|search|revisions.
"""

TOPICS: dict[str, str] = {
    "dates": """\
Dates in kb

A note's dates are its front matter's `created` and `modified`, written as '2021-11-19T16:02:40.897Z'
(UTC). Notes from other tools: `date`, `created-at`, `updated`, `last_modified`... are read too, else the
file's first and last commit in git, else the file's times. `created` never changes; `modified` changes
only when a command changes something.

Wherever kb takes a date (--rev, --as-of, --since, --until, the created: and modified: search fields),
it reads one set of forms. Each names a span of time; days are UTC days, as the notes' dates are UTC:
  2021-11-19                 that day
  2021-11-19T16:02, 2021-11-19 16:02:40Z, ...+02:00   a moment
  2021-11, 2021              a month, a year
  today, yesterday, now
  monday, last monday        the most recent such day before today
  3 days ago, 2 weeks ago, a month ago, 1 year ago    that day;  2 hours ago: that moment
  last week, last 3 days, last month                  from then until now
  this week, this month, this year                    from its start until now
  5ed210c0                   a commit id (--rev, --as-of, --since, --until): the moment of that commit
--since takes the start of the span, --until, --as-of and --rev its end (the version current at the end of
that day; kb changes without --since starts at "7 days ago"). A commit's moment is its author date, or
the latest one before it on the line if that is later (a commit rebased onto newer ones keeps its older
date); a commit that changed no note (the first one, with .gitignore) moves no moment.
A search field matches the whole span, and compares with it:
  modified:>2021-11-25       after that day;  >= from it; < before it; <= up to its end
  created:[2021-11-01 to 2021-11-30]   a range; either end may be left out: [2021-11 to], [to yesterday]
  modified:"last week"       quote a date that has spaces
A date kb cannot read is an error (exit 2) that lists these forms.

Examples:
  kb search 'modified:"last week"' postgres
  kb show "Machine Learning" --rev 2021-11-19
  kb show "Machine Learning" --rev "2 weeks ago"
""",
    "search": """\
Searching with kb search

  machine learning        notes with both words (stemmed: learning = learn = learned)
  postgres                also longer words it begins (PostgreSQL), ranked below the word itself
  vae OR autoencoder      either word;  NOT word  or  -word  excludes
  "chain rule"            the exact phrase
  back*   backprop~   backprop~2    a prefix; within 1 or 2 edits
  (a OR b) c              grouping
  title:word  body:word  tag:Notebooks/Skills  folder:postgres   one field (a tag finds its children)
  created:2021-11  modified:>2021-11-25  modified:yesterday      dates (kb help dates)
  links:NOTE  linkedby:NOTE  -links:NOTE   notes that link to NOTE, that NOTE links to, or not

Results are ranked, the title weighted above the body; --sort modified|created|title sorts instead.
-n N limits (default 10), -t TAG filters, -l prints only paths (for xargs; -l -0 ends each with a
NUL byte, for xargs -0), --json prints objects (the notes' own text and the matches' offsets).
Snippets are shown without Markdown's marks, cut to the terminal's width ($COLUMNS in a pipe) around
their matches. -C N prints the matching lines with N lines around each, numbered as in the file
(path:N:line, as grep -n -C does); --count prints how many lines of each note match (path:count).
No match exits 1 with nothing on stdout, like grep; a query that cannot be parsed exits 2.

Every revision:
  --history               every committed version of every note, deleted notes and removed text too:
                          one result per note (through renames), with the revisions that match
                          ("revisions 2-5 of 9"), since and until when, whether the current version
                          matches or when the note was deleted; -l prints each note's path at the match
  --as-of WHEN            the notes as they were at the end of WHEN (a date, kb help dates) or right
                          after a commit (its id); not with --history

Examples:
  kb search chain rule
  kb search '"chain rule" OR backprop*' -n 5
  kb search tag:Study modified:>2021-11-01 -l | xargs wc -l
  kb search --history "api key"
  kb search backprop --as-of 2021-11
""",
    "revisions": """\
Revisions

Every change is a git commit; a note's revisions are numbered 1 (the oldest) to n, through renames and
deletion. Where a command takes REV:
  2          revision 2 (1 is the oldest)
  -1  ~1     the one before the latest (0: the latest)
  5ed210c0   a commit id or prefix
  2021-11-19 the version current at the end of that day (UTC); any date of kb help dates works too

Examples:
  kb log "Machine Learning"
  kb diff "Machine Learning" 1 2 --stat
  kb restore "Machine Learning" -1
""",
}

EXAMPLES: dict[str, tuple[str, ...]] = {
    "init": ("kb init", "kb --kb ~/vault init"),
    "add": (
        'kb add "Machine Learning" -t Study -b "Definitions and tips."',
        'pbpaste | kb add "Clipping" --folder inbox',
        'kb add "Journal 2026-01-02" --editor',
    ),
    "edit": (
        'kb edit machine -a "A new paragraph."',
        'kb edit "Machine Learning" --title ML -t Study --untag Drafts',
        "kb edit ML",
    ),
    "show": ("kb show ML", "kb show ML --rev 1", "kb show ML --raw > ml.md"),
    "log": ("kb log", 'kb log "Machine Learning" -n 5', "kb log ML --json"),
    "diff": ("kb diff ML", "kb diff ML 1 2 --stat", "kb diff ML -1 --word-diff"),
    "changes": (
        "kb changes",
        "kb changes --since 'last monday' --patch",
        'kb changes --since 2021-11 --until 2021-12 "Machine Learning"',
    ),
    "blame": ('kb blame "Machine Learning"', 'kb blame "Machine Learning" 3', "kb blame ML --json"),
    "restore": ("kb restore ML 1", 'kb restore "Deleted note" -1', 'kb restore ML "2 weeks ago" --title-too'),
    "list": ("kb list", "kb list -t Study --sort title", "kb list --folder postgres --json"),
    "tags": ("kb tags", "kb tags --json"),
    "rm": ('kb rm "Old note"', "kb rm notes/old.md"),
    "mv": (
        'kb mv ML "Machine Learning"',
        "kb mv Autovacuum archive/",
        "kb mv attachments/diagram.png media/",
    ),
    "search": (
        "kb search '\"chain rule\" OR backprop*' -n 5",
        "kb search --history 'old wording'",
        "kb search chain rule --as-of 2021-11-30",
    ),
    "reindex": ("kb reindex",),
    "import": ("kb import ~/Notable", "kb import --history ~/src/til", "kb import notes.md --dry-run"),
    "sync": ("kb sync --remote git@example.org:me/notes.git", "kb sync"),
    "help": ("kb help", "kb help search", "kb help edit"),
    "links": ('kb links "Machine Learning"', "kb links postgres/index.md --json"),
    "backlinks": ('kb backlinks "Machine Learning"', "kb backlinks ML --json"),
    "check": ("kb check", "kb check --fix", "kb check --json | jq '.problems[]'"),
    "completion": (
        "kb completion bash > ~/.local/share/bash-completion/completions/kb",
        "kb completion fish",
    ),
}


def epilog(command: str) -> str:
    """The examples that end a command's --help (\\b keeps click from rewrapping them)."""
    lines = "\n".join(f"  {example}" for example in EXAMPLES.get(command, ()))
    return f"\b\nExamples:\n{lines}"
