"""The knowledge base in time, through the real CLI: --as-of views at several dates, kb changes windows,
kb blame through a rename. KB_NOW fixes each step's time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from tests.conftest import git, isolate, snapshot

STEPS = [
    ("2026-01-01T10:00:00.000Z", ["add", "Alpha", "-t", "one", "-b", "first alpha"]),
    ("2026-01-02T10:00:00.000Z", ["add", "Hub", "-b", "See [[Alpha]] and [[Nowhere]]."]),
    ("2026-01-05T10:00:00.000Z", ["add", "Beta", "-t", "two", "-b", "beta text"]),
    ("2026-01-10T10:00:00.000Z", ["mv", "Alpha", "Gamma"]),
    ("2026-01-12T10:00:00.000Z", ["edit", "Gamma", "-a", "more gamma", "-t", "three"]),
    ("2026-01-14T10:00:00.000Z", ["add", "Delta", "-b", "delta"]),
    ("2026-01-15T10:00:00.000Z", ["mv", "Delta", "archive/"]),
    ("2026-01-15T11:00:00.000Z", ["rm", "Beta", "--yes"]),
    ("2026-01-17T10:00:00.000Z", ["restore", "Beta", "1"]),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("timeline")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp)
        for now, args in STEPS:
            mp.setenv("KB_NOW", now)
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
    return tmp / "kb"


@pytest.fixture
def timeline(built: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(built, root, symlinks=True)
    monkeypatch.setenv("KB_NOW", "2026-01-18T00:00:00.000Z")
    return root


def listed(kb, *args: str) -> list[tuple[str, str, list[str]]]:
    r = kb("list", "--sort", "title", "--json", *args)
    assert r.exit_code == 0, r.stderr
    return [(n["title"], n["path"], n["tags"]) for n in json.loads(r.stdout)["notes"]]


# ---------------------------------------------------------------- --as-of


def test_list_and_tags_as_of_several_dates(timeline, kb):
    assert listed(kb, "--as-of", "2026-01-06") == [
        ("Alpha", "notes/Alpha.md", ["one"]),
        ("Beta", "notes/Beta.md", ["two"]),
        ("Hub", "notes/Hub.md", []),
    ]
    assert listed(kb, "--as-of", "2026-01-12") == [
        ("Beta", "notes/Beta.md", ["two"]),
        ("Gamma", "notes/Gamma.md", ["one", "three"]),
        ("Hub", "notes/Hub.md", []),
    ]
    assert [t for t, _, _ in listed(kb, "--as-of", "2026-01-16")] == ["Delta", "Gamma", "Hub"]  # no Beta then
    assert [t for t, _, _ in listed(kb)] == ["Beta", "Delta", "Gamma", "Hub"]
    r = kb("tags", "--as-of", "2026-01-06", "--json")
    assert [(t["tag"], t["count"]) for t in json.loads(r.stdout)["tags"]] == [("one", 1), ("two", 1)]
    assert listed(kb, "--as-of", "2026-01-06", "-t", "two") == [("Beta", "notes/Beta.md", ["two"])]
    assert [t for t, _, _ in listed(kb, "--as-of", "2026-01-16", "--folder", "archive")] == ["Delta"]


def test_as_of_a_commit_and_human_dates(timeline, kb, root):
    third = git(root, "log", "--format=%H", "--reverse").split()[3]  # init, Alpha, Hub, Beta
    assert listed(kb, "--as-of", third[:10]) == listed(kb, "--as-of", "2026-01-06")
    assert listed(kb, "--as-of", "yesterday") == listed(kb, "--as-of", "2026-01-17")
    assert listed(kb, "--as-of", "8 days ago") == listed(kb, "--as-of", "2026-01-10")


def test_show_as_of_finds_notes_by_their_title_of_that_day(timeline, kb):
    r = kb("show", "Alpha", "--as-of", "2026-01-06", "--raw")
    assert r.exit_code == 0, r.stderr
    assert "title: Alpha\n" in r.stdout and "first alpha" in r.stdout and "more gamma" not in r.stdout
    assert kb("show", "Alpha").exit_code == 1  # renamed since
    gamma = kb("show", "Gamma", "--as-of", "2026-01-13", "--json")
    assert json.loads(gamma.stdout)["tags"] == ["one", "three"]
    gone = kb("show", "Beta", "--as-of", "2026-01-16")
    assert gone.exit_code == 1 and "no note matched 'Beta' on 2026-01-16" in gone.stderr


def test_as_of_is_read_only_and_checks_its_date(timeline, kb, root):
    before = snapshot(root)
    bad = kb("list", "--as-of", "soon")
    assert bad.exit_code == 2 and "3 days ago" in bad.stderr and bad.stderr.count("\n") == 1
    early = kb("list", "--as-of", "2025-06-01")
    assert early.exit_code == 1 and "no revisions yet on 2025-06-01" in early.stderr
    assert kb("show", "Gamma", "--rev", "1", "--as-of", "2026-01-06").exit_code == 2
    assert kb("edit", "Gamma", "-a", "x", "--as-of", "2026-01-06").exit_code == 2
    assert kb("list", "--orphans", "--as-of", "2026-01-06").exit_code == 2
    assert snapshot(root) == before


def test_links_and_backlinks_as_of(timeline, kb):
    then = json.loads(kb("links", "Hub", "--as-of", "2026-01-06", "--json").stdout)["links"]
    assert [(link["target"], link["status"], link["path"]) for link in then] == [
        ("Alpha", "ok", "notes/Alpha.md"),
        ("Nowhere", "dead", None),
    ]
    now = json.loads(kb("links", "Hub", "--json").stdout)["links"]
    assert now[0]["path"] == "notes/Gamma.md"  # the rename rewrote the link
    back = json.loads(kb("backlinks", "Alpha", "--as-of", "2026-01-06", "--json").stdout)["links"]
    assert [(link["source"], link["line"]) for link in back] == [("notes/Hub.md", 9)]
    assert json.loads(kb("backlinks", "Beta", "--as-of", "2026-01-06", "--json").stdout)["links"] == []


# ---------------------------------------------------------------- kb changes


def changes(kb, *args: str) -> list[dict]:
    r = kb("changes", "--json", *args)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)["changes"]


def test_changes_default_window_is_the_last_seven_days(timeline, kb):
    found = {c["title"]: c for c in changes(kb)}  # 2026-01-11 to 2026-01-18
    assert set(found) == {"Beta", "Delta", "Gamma"}
    assert found["Gamma"]["kind"] == "edited" and found["Gamma"]["revisions"] == 1
    assert found["Gamma"]["added"] == 4 and found["Gamma"]["removed"] == 2  # tags, modified, a paragraph
    assert found["Delta"]["kind"] == "added" and found["Delta"]["path"] == "notes/archive/Delta.md"
    assert found["Beta"]["kind"] == "restored" and found["Beta"]["revisions"] == 2
    assert [c["title"] for c in changes(kb)] == ["Beta", "Delta", "Gamma"]  # newest first


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("2026-01-09", "2026-01-11", {"Gamma": ("renamed", "notes/Alpha.md"), "Hub": ("edited", None)}),
        ("2026-01-15", "2026-01-15", {"Delta": ("moved", "notes/Delta.md"), "Beta": ("deleted", None)}),
        (
            "2026-01-01",
            "2026-01-05",
            {"Alpha": ("added", None), "Beta": ("added", None), "Hub": ("added", None)},
        ),
        ("2025-01-01", "2025-12-31", {}),
    ],
)
def test_changes_windows(timeline, kb, since, until, expected):
    found = {c["title"]: (c["kind"], c["old_path"]) for c in changes(kb, "--since", since, "--until", until)}
    assert found == expected


def test_changes_of_named_notes_and_patches(timeline, kb):
    only = changes(kb, "--since", "2026-01-01", "Gamma")
    assert [(c["title"], c["kind"], c["old_path"], c["revisions"]) for c in only] == [
        ("Gamma", "added", "notes/Alpha.md", 3)
    ]
    plain = kb("changes", "--since", "2026-01-12", "--until", "2026-01-12", "--patch")
    assert plain.exit_code == 0
    assert plain.stdout.startswith("2026-01-12\tedited\tGamma\tnotes/Gamma.md\t1 revision\t+4 -2\n")
    assert "+more gamma\n" in plain.stdout


def test_changes_made_outside_kb_count(timeline, kb, root):
    path = root / "notes" / "Gamma.md"
    path.write_text(path.read_text() + "\nby hand\n")
    git(root, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-qam", "by hand")
    found = {c["title"]: c for c in changes(kb, "--since", "today")}
    # KB_NOW fixes kb's clock, not git's: the commit is dated now, which is after KB_NOW's day
    assert found == {} or found["Gamma"]["kind"] == "edited"
    found = {c["title"]: c for c in changes(kb, "--since", "2026-01-12", "--until", "2100-01-01")}
    assert found["Gamma"]["revisions"] == 2 and found["Gamma"]["kind"] == "edited"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "cannot read the --since 'soon'"),
        (["--since", "2026-01-10", "--until", "2026-01-01"], "is before --since"),
        (["--since", ""], "--since needs a date or a commit id"),
        (["--until", " "], "--until needs a date or a commit id"),
    ],
)
def test_changes_refuses_bad_windows(timeline, kb, args, message):
    r = kb("changes", *args)
    assert r.exit_code == 2 and message in r.stderr and r.stderr.count("\n") == 1


# ---------------------------------------------------------------- kb blame


def test_blame_follows_the_note_through_its_rename(timeline, kb):
    r = kb("blame", "Gamma", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["title"] == "Gamma" and doc["revision"] == 3
    by_text = {line["text"]: line for line in doc["lines"]}
    assert by_text["first alpha"]["revision"] == 1 and by_text["first alpha"]["date"].startswith("2026-01-01")
    assert by_text["title: Gamma"]["revision"] == 2
    assert by_text["more gamma"]["revision"] == 3
    assert by_text["---"]["revision"] == 1
    assert [line["line"] for line in doc["lines"]] == list(range(1, len(doc["lines"]) + 1))
    old = json.loads(kb("blame", "Gamma", "1", "--json").stdout)
    assert old["revision"] == 1 and {line["revision"] for line in old["lines"]} == {1}
    assert "title: Alpha" in [line["text"] for line in old["lines"]]
    plain = kb("blame", "Gamma").stdout.splitlines()
    assert plain[-1].startswith("3 2026-01-12 ") and plain[-1].endswith(") more gamma")
    assert kb("blame", "Gamma", "-2").stdout == kb("blame", "Gamma", "1").stdout  # back from the latest
    r = kb("blame", "Gamma", "--nope")
    assert r.exit_code == 2 and r.stderr == "Error: no such option: --nope\n"


def test_blame_of_a_note_renamed_away_says_where_it_went(timeline, kb):
    r = kb("blame", "notes/Alpha.md")
    assert r.exit_code == 0 and r.stdout.splitlines()[-1].endswith(") first alpha")
    assert r.stderr == "This note was renamed: it is notes/Gamma.md now.\n"
    doc = json.loads(kb("blame", "notes/Alpha.md", "--json").stdout)
    assert doc["renamed_to"] == "notes/Gamma.md" and doc["exists"] is False
    now = json.loads(kb("blame", "Gamma", "--json").stdout)
    assert now["renamed_to"] is None and now["exists"] is True and kb("blame", "Gamma").stderr == ""
    away = kb("blame", "notes/Alpha.md", "2")  # the revision that renamed it: no lines under that name
    assert away.exit_code == 1 and away.stderr.startswith(
        "Error: revision 2 took the note away from notes/Alpha.md"
    )
    kb("rm", "Delta")  # moved to archive/ before: the old path's log and blame say it went, then was deleted
    for command in ("blame", "log"):
        r = kb(command, "notes/Delta.md")
        assert r.exit_code == 0 and r.stderr.endswith(
            "This note was renamed to notes/archive/Delta.md, and deleted since; "
            "'kb log notes/archive/Delta.md' shows it.\n"
        ), (command, r.stderr)
    kb("add", "Epsilon", "-b", "epsilon")
    kb("rm", "Epsilon")
    gone = kb("blame", "notes/Epsilon.md")
    assert gone.exit_code == 0
    assert gone.stderr == "This note is deleted; 'kb restore NOTE REV' brings it back.\n"


def test_blame_of_a_deleted_revision_or_unknown_note(timeline, kb):
    assert kb("blame", "Nothing here").exit_code == 1
    assert kb("blame", "Beta", "2").exit_code == 1  # revision 2 deleted it
    assert kb("blame", "Beta", "99").exit_code == 2


def test_blame_on_a_terminal_colours_the_gutter_by_age(timeline, root):
    from tests.test_terminal import spawn

    out, status = spawn(["--kb", str(root), "blame", "Gamma"], {"KB_PAGER": "cat"}, rows=40)
    assert status == 0, out
    assert "Gamma (notes/Gamma.md), revision 3" in out
    lines = [line for line in out.splitlines() if "│" in line]
    assert len(lines) == 12
    colours = {line.split("\x1b[", 2)[1].split("m", 1)[0] for line in lines if "\x1b[" in line}
    assert len(colours) == 3  # three revisions, three ages


def test_changes_keeps_its_summaries_and_reads_them_back(timeline, kb, root):
    import sqlite3

    first = changes(kb, "--since", "2026-01-01")
    db = sqlite3.connect(root / "index" / "versions.sqlite3")
    with db:
        assert db.execute("SELECT COUNT(*) FROM summaries").fetchone()[0] == len(first)
        db.execute("UPDATE summaries SET added = 999")  # what is kept is what is shown
    db.close()
    assert {c["added"] for c in changes(kb, "--since", "2026-01-01")} == {999}
    (root / "index" / "versions.sqlite3").unlink()
    assert changes(kb, "--since", "2026-01-01") == first
    (root / "index" / "versions.sqlite3").write_bytes(b"not a database" * 100)  # damaged: not used
    assert changes(kb, "--since", "2026-01-01") == first


def _reference_sections(body: str) -> list[tuple[str, int, list[str]]]:
    """kb.diff.sections as a loop over every line (what it was before it looked only at candidates)."""
    import re

    heading, fence = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$"), re.compile(r"^(```|~~~)")
    result: list[tuple[str, int, list[str]]] = [("(top)", 0, [])]
    fenced = False
    parts = body.split("\n")
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for line in (ln.rstrip("\r\n") for ln in lines):
        if fence.match(line):
            fenced = not fenced
        match = None if fenced else heading.match(line)
        if match:
            result.append((match.group(2), len(match.group(1)), []))
        else:
            result[-1][2].append(line)
    if not any(line.strip() for line in result[0][2]):
        result.pop(0)
    return result


_PIECES = ["# A", "## A", "#B", "  # A", "```", "~~~", " ```", "text", "", " ", "---", "# A #", "\x1c", "é"]
_ENDS = ["\n", "\r\n", "\r\r\n", "\r", ""]


@pytest.mark.parametrize("seed", range(3))
def test_sections_and_change_summary_match_a_line_by_line_reading(seed):
    import random

    from kb.diff import change_summary, line_counts, section_changes, sections

    rng = random.Random(seed)

    def text() -> str:
        return "".join(rng.choice(_PIECES) + rng.choice(_ENDS) for _ in range(rng.randint(0, 10)))

    for _ in range(3000):
        a = text()
        b = rng.choice([text(), a + text(), a[: rng.randint(0, len(a))]])
        assert sections(a) == _reference_sections(a), a
        summary = change_summary(a.encode(), b.encode())
        assert summary[:2] == line_counts(a.encode(), b.encode()), (a, b)
        from kb.notes import split_document

        bodies = [split_document(t)[0].body for t in (a, b)]
        assert summary[2] == tuple(s.title for s in section_changes(*bodies)), (a, b)


# ---------------------------------------------------------------- a commit dated before the ones under it


def _commit_by_hand(root: Path, path: str, text: str, author_date: str, commit_date: str) -> None:
    """A note committed outside kb with its own author date (as a rebase or cherry-pick keeps it)."""
    (root / path).write_text(text)
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": author_date,
        "GIT_COMMITTER_DATE": commit_date,
        "GIT_AUTHOR_NAME": "o",
        "GIT_AUTHOR_EMAIL": "o@o",
        "GIT_COMMITTER_NAME": "o",
        "GIT_COMMITTER_EMAIL": "o@o",
    }
    for args in (["add", "--", path], ["commit", "-qm", f"Add {path} by hand"]):
        subprocess.run(["git", "-C", str(root), *args], env=env, check=True, capture_output=True)


@pytest.fixture
def went_back(root: Path, kb, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Notes of Sep 29 and Oct 3, 10 and 19, then on top of them a commit whose author date is Jul 28."""
    for now, title in [
        ("2025-09-29T10:00:00.000Z", "September"),
        ("2025-10-03T10:00:00.000Z", "October 3"),
        ("2025-10-10T10:00:00.000Z", "October 10"),
        ("2025-10-19T10:00:00.000Z", "October 19"),
    ]:
        monkeypatch.setenv("KB_NOW", now)
        assert kb("add", title, "-b", f"{title} text").exit_code == 0
    _commit_by_hand(
        root, "notes/Rebased.md", "# Rebased\n\nold work\n", "2025-07-28T10:00:00Z", "2025-10-19T12:00:00Z"
    )
    monkeypatch.setenv("KB_NOW", "2025-11-01T00:00:00.000Z")
    return root


def test_as_of_counts_a_commit_from_the_latest_date_before_it(went_back, kb, root):
    assert [t for t, _, _ in listed(kb, "--as-of", "2025-10-01")] == ["September"]
    assert [t for t, _, _ in listed(kb, "--as-of", "2025-10-05")] == ["October 3", "September"]
    assert [t for t, _, _ in listed(kb, "--as-of", "2025-10-19T09:00")] == [
        "October 10",
        "October 3",
        "September",
    ]
    # its moment is Oct 19's 10:00, the latest date before it
    assert [t for t, _, _ in listed(kb, "--as-of", "2025-10-19T10:00")] == [
        "October 10",
        "October 19",
        "October 3",
        "Rebased",
        "September",
    ]
    # before the first commit, nothing (the Jul 28 commit holds the October notes: it is not of July)
    r = kb("list", "--as-of", "2025-08-01")
    assert r.exit_code == 1 and "had no revisions yet on 2025-08-01" in r.stderr
    r = kb("show", "Rebased", "--as-of", "2025-10-01")
    assert r.exit_code == 1 and "no note matched 'Rebased'" in r.stderr
    assert "old work" in kb("show", "Rebased", "--as-of", "2025-10-20").stdout
    r = kb("tags", "--as-of", "2025-10-01", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["tags"] == []
    r = kb("search", "text", "--as-of", "2025-10-01", "--json")
    assert r.exit_code == 0, r.stderr
    assert [hit["title"] for hit in json.loads(r.stdout)["hits"]] == ["September"]


def test_changes_take_a_commit_by_the_latest_date_before_it(went_back, kb, root):
    assert changes(kb, "--since", "2025-07-01", "--until", "2025-08-31") == []
    found = changes(kb, "--since", "2025-10-19", "--until", "2025-10-19")
    assert {c["title"] for c in found} == {"Rebased", "October 19"}
    assert [c["title"] for c in changes(kb, "--since", "2025-10-01", "--until", "2025-10-18")] == [
        "October 10",
        "October 3",
    ]
    # a commit id as --since is the moment of that commit: the Jul 28 one is Oct 19's
    rebased = git(root, "rev-parse", "HEAD").strip()
    assert {c["title"] for c in changes(kb, "--since", rebased[:10])} == {"Rebased", "October 19"}


# ---------------------------------------------------------------- kb changes' default window


def test_changes_default_window_starts_at_the_start_of_the_day_seven_days_ago(root, kb, monkeypatch):
    monkeypatch.setenv("KB_NOW", "2026-01-02T10:00:00.000Z")
    assert kb("add", "Early", "-b", "first").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-11T08:00:00.000Z")  # early on the day 7 days before the 18th
    assert kb("edit", "Early", "-a", "second").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-18T15:00:00.000Z")
    default = kb("changes", "--json")
    given = kb("changes", "--json", "--since", "7 days ago")
    assert default.exit_code == 0 and given.exit_code == 0
    assert default.stdout == given.stdout
    result = json.loads(default.stdout)
    assert result["since"] == "2026-01-11T00:00:00.000Z"
    assert [(c["title"], c["kind"]) for c in result["changes"]] == [("Early", "edited")]
    assert kb("changes").stdout == kb("changes", "--since", "7 days ago").stdout


def test_changes_tell_a_new_note_from_one_that_left_its_path(root, kb, monkeypatch):
    monkeypatch.setenv("KB_NOW", "2026-01-02T10:00:00.000Z")
    assert kb("add", "Backprop", "-b", "Chain rule stuff.").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-10T10:00:00.000Z")
    assert kb("mv", "Backprop", "Backpropagation").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-11T10:00:00.000Z")
    assert kb("add", "Backprop", "-b", "Another note at the old name.").exit_code == 0
    monkeypatch.setenv("KB_NOW", "2026-01-12T10:00:00.000Z")
    for since in ("2026-01-09", "2026-01-01"):
        result = json.loads(kb("changes", "--json", "--since", since).stdout)
        found = sorted(
            (c["title"], c["kind"], c["path"], c["old_path"], c["revisions"]) for c in result["changes"]
        )
        first = "renamed" if since == "2026-01-09" else "added"
        old = "notes/Backprop.md"  # where it was when the window opened, or where it began
        revisions = 1 if since == "2026-01-09" else 2
        assert found == [
            ("Backprop", "added", "notes/Backprop.md", None, 1),
            ("Backpropagation", first, "notes/Backpropagation.md", old, revisions),
        ]
    patch = kb("changes", "--patch", "--since", "2026-01-09").stdout
    assert "Another note at the old name." in patch


def test_a_history_replayed_onto_a_new_knowledge_base_keeps_its_dates(root, kb, monkeypatch):
    """Older commits on top of the first one (which holds only .gitignore): as `kb import --history` makes."""
    monkeypatch.setenv("KB_NOW", "2026-01-18T10:00:00.000Z")
    assert kb("init").exit_code == 0
    _commit_by_hand(
        root, "notes/Old.md", "# Old\n\nfrom 2020\n", "2020-03-01T10:00:00Z", "2026-01-18T11:00:00Z"
    )
    _commit_by_hand(
        root, "notes/Later.md", "# Later\n\nfrom 2021\n", "2021-05-01T10:00:00Z", "2026-01-18T11:00:00Z"
    )
    monkeypatch.setenv("KB_NOW", "2026-01-19T00:00:00.000Z")
    assert [t for t, _, _ in listed(kb, "--as-of", "2020-06-01")] == ["Old"]
    assert [t for t, _, _ in listed(kb, "--as-of", "2021-06-01")] == ["Later", "Old"]
    result = json.loads(kb("changes", "--json", "--since", "2020-01-01", "--until", "2020-12-31").stdout)
    assert [(c["title"], c["kind"]) for c in result["changes"]] == [("Old", "added")]
    assert json.loads(kb("changes", "--json").stdout)["changes"] == []  # nothing of this week


def test_blame_keeps_the_lines_of_a_shortest_diff():
    """Against the line counts of kb.diff (a shortest diff): as many lines kept, each the same line."""
    import random

    from kb.diff import matching_runs, shortest_counts

    rng = random.Random(3)
    for _ in range(400):
        a = [rng.choice([b"x", b"y", b"z", b"", b"# h"]) for _ in range(rng.randint(0, 30))]
        b = list(a)
        for _ in range(rng.randint(0, 6)):
            where = rng.randint(0, len(b))
            kind = rng.random()
            if kind < 0.4:
                b.insert(where, rng.choice([b"x", b"new", b""]))
            elif kind < 0.8 and b:
                del b[min(where, len(b) - 1)]
            elif b:
                b[min(where, len(b) - 1)] = b"changed"
        runs = matching_runs(a, b)
        last_i = last_j = -1
        kept = 0
        for i, j, size in runs:
            assert i > last_i and j > last_j and a[i : i + size] == b[j : j + size]
            last_i, last_j = i + size - 1, j + size - 1
            kept += size
        added, removed = shortest_counts([x.decode() for x in a], [x.decode() for x in b])
        assert kept == len(a) - removed == len(b) - added
