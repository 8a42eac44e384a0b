"""kb search --history (every committed version of every note) and kb search --as-of WHEN, through the CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import git


@pytest.fixture
def story(kb, root, monkeypatch):
    """Alpha loses the word 'fox' in revision 2; Beta is renamed Gamma and keeps it; Delta is deleted."""
    steps = [
        ("2021-11-01T10:00:00Z", ["add", "Alpha", "-b", "the quick brown fox jumps"]),
        ("2021-11-05T10:00:00Z", ["edit", "Alpha", "-b", "a lazy dog sleeps"]),
        ("2021-11-10T10:00:00Z", ["add", "Beta", "-b", "a fox in the henhouse"]),
        ("2021-11-15T10:00:00Z", ["mv", "Beta", "Gamma"]),
        ("2021-11-20T10:00:00Z", ["edit", "Gamma", "-b", "the fox again, in gamma"]),
        ("2021-11-25T10:00:00Z", ["add", "Delta", "-b", "a fox to be deleted, and a walrus"]),
        ("2021-12-02T10:00:00Z", ["rm", "Delta"]),
    ]
    for now, args in steps:
        monkeypatch.setenv("KB_NOW", now)
        result = kb(*args)
        assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("KB_NOW", "2022-01-01T00:00:00Z")
    return root


def _hits(kb, *args):
    result = kb("search", "--history", *args, "--json")
    assert result.exit_code in (0, 1) and result.stdout, result.stderr  # no match is JSON too, an error not
    return {hit["title"]: hit for hit in json.loads(result.stdout)["hits"]}


def test_text_removed_later_is_found_with_its_revisions(kb, story):
    hits = _hits(kb, "quick")
    assert list(hits) == ["Alpha"]
    alpha = hits["Alpha"]
    assert alpha["revisions"] == [1] and alpha["count"] == 2
    assert alpha["current"] is False and alpha["deleted"] is False
    assert alpha["first"].startswith("2021-11-01") and alpha["last"].startswith("2021-11-05")
    assert "quick brown fox" in alpha["snippets"][0]["text"]
    assert kb("search", "quick").exit_code == 1  # the normal search no longer finds it


def test_a_deleted_note_is_found_and_says_when_it_was_deleted(kb, story):
    hits = _hits(kb, "walrus")
    assert list(hits) == ["Delta"]
    assert hits["Delta"]["deleted"] is True and hits["Delta"]["deleted_in"] == 2
    plain = kb("search", "--history", "walrus")
    assert plain.exit_code == 0
    assert "revision 1 of 2" in plain.stdout
    assert "deleted in revision 2 on 2021-12-02" in plain.stdout


def test_a_renamed_note_is_one_result_with_its_title_now(kb, story):
    hits = _hits(kb, "fox")
    assert sorted(hits) == ["Alpha", "Delta", "Gamma"]
    gamma = hits["Gamma"]
    assert gamma["path"] == "notes/Gamma.md" and gamma["revisions"] == [1, 2, 3]
    assert gamma["current"] is True and gamma["last"] is None
    henhouse = _hits(kb, "henhouse")["Gamma"]
    assert henhouse["revisions"] == [1, 2] and henhouse["current"] is False
    beta = _hits(kb, "title:beta")["Gamma"]  # the old title, before the rename
    assert beta["revisions"] == [1] and beta["path_then"] == "notes/Beta.md" and beta["title_then"] == "Beta"
    assert kb("search", "--history", "title:beta", "-l").stdout == "notes/Beta.md\n"
    assert "revision 1 was 'Beta' (notes/Beta.md)" in kb("search", "--history", "title:beta").stdout


def test_the_current_flag_and_the_limit(kb, story):
    hits = _hits(kb, "fox")
    assert [hits[t]["current"] for t in ("Alpha", "Gamma", "Delta")] == [False, True, False]
    limited = kb("search", "--history", "fox", "-n", "1", "--json")
    data = json.loads(limited.stdout)
    assert data["total"] == 3 and len(data["hits"]) == 1
    assert kb("search", "--history", "nothingatall").exit_code == 1


def test_new_commits_are_taken_in_without_a_rebuild(kb, story, monkeypatch):
    assert _hits(kb, "fox")  # built
    monkeypatch.setenv("KB_NOW", "2022-01-02T00:00:00Z")
    assert kb("edit", "Alpha", "-b", "an otter swims").exit_code == 0
    result = kb("search", "--history", "otter")
    assert result.exit_code == 0 and "built" not in result.stderr
    assert "Alpha" in result.stdout and "current version matches" in result.stdout
    # a commit made by git itself, outside kb
    (story / "notes" / "Alpha.md").write_text("# Alpha\n\na beaver builds\n")
    (story / "notes" / "Outside.md").write_text("# Outside\n\nbeaver notes\n")
    git(story, "add", "-A")
    git(story, "-c", "user.name=x", "-c", "user.email=x@example.org", "commit", "-q", "-m", "by hand")
    result = kb("search", "--history", "beaver", "--json")
    assert result.exit_code == 0 and "built" not in result.stderr
    hits = {hit["title"]: hit for hit in json.loads(result.stdout)["hits"]}
    assert sorted(hits) == ["Alpha", "Outside"]
    assert hits["Alpha"]["revisions"] == [4] and hits["Alpha"]["current"] is True
    assert _hits(kb, "otter")["Alpha"]["revisions"] == [3]


def test_the_index_is_rebuilt_when_deleted_damaged_or_history_rewritten(kb, story, monkeypatch):
    assert _hits(kb, "walrus")
    shutil.rmtree(story / "index" / "history")
    result = kb("search", "--history", "walrus")
    assert result.exit_code == 0 and "The history index was built." in result.stderr
    for toc in (story / "index" / "history").glob("*.toc"):
        toc.write_bytes(b"garbage")
    result = kb("search", "--history", "walrus")
    assert result.exit_code == 0 and "built" in result.stderr and "Delta" in result.stdout
    # kb reindex leaves the history index alone
    assert kb("reindex").exit_code == 0
    assert any((story / "index" / "history").glob("*.toc"))
    assert "built" not in kb("search", "--history", "walrus").stderr
    # the last commit (the deletion of Delta) is taken back: HEAD no longer descends from it
    monkeypatch.setenv("KB_NOW", "2022-01-03T00:00:00Z")
    git(story, "reset", "-q", "--hard", "HEAD~1")
    hit = _hits(kb, "walrus")["Delta"]
    assert hit["deleted"] is False and hit["current"] is True


def test_as_of_searches_the_notes_as_they_were(kb, story):
    def titles(when):
        result = kb("search", "fox", "--as-of", when, "--json")
        assert result.exit_code in (0, 1), result.stderr
        return sorted(hit["title"] for hit in json.loads(result.stdout)["hits"])

    assert titles("2021-11-01") == ["Alpha"]
    assert titles("2021-11-05") == []
    assert titles("2021-11-12") == ["Beta"]
    assert titles("2021-11") == ["Delta", "Gamma"]
    assert titles("2021-12-02") == ["Gamma"]
    assert titles("2021") == ["Gamma"]
    added = git(story, "log", "-1", "--format=%H", "--grep=^Add: Alpha").strip()
    assert titles(added[:10]) == ["Alpha"]
    paths = kb("search", "henhouse", "--as-of", "2021-11-12", "-l")
    assert paths.stdout == "notes/Beta.md\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "not a date"], "cannot read the date"),
        (["--as-of", "deadbeef1"], "there is no commit 'deadbeef1'"),
        (["--as-of", "2021-11-12", "--history"], "do not go together"),
        (["--history", "--sort", "title"], "relevance only"),
        (["--history", "links:Alpha"], "current notes only"),
    ],
)
def test_bad_as_of_is_a_usage_error(kb, story, args, message):
    result = kb("search", "fox", *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_as_of_before_the_first_commit_says_when_it_starts(kb, story):
    result = kb("search", "fox", "--as-of", "2020-06-01")
    assert result.exit_code == 1 and result.stdout == ""
    assert "no revisions yet on 2020-06-01; its first is dated 2021-11-01" in result.stderr


@pytest.mark.cold_only("it lowers when a build shares its work, in this process")
def test_a_build_shared_by_two_processes_answers_as_one_does(kb, story, monkeypatch):
    from kb.index import bulk

    queries = ("fox", "quick", "walrus", "henhouse", "gamma", '"brown fox"', "dog OR walrus")
    one = {query: _hits(kb, query) for query in queries}
    shutil.rmtree(story / "index" / "history")
    monkeypatch.setattr(bulk, "PARALLEL", 2)
    monkeypatch.setattr(bulk.os, "cpu_count", lambda: 2)
    two = {query: _hits(kb, query) for query in queries}
    assert two == one
    assert one["fox"] and one["walrus"] and one['"brown fox"']
    assert len(list((story / "index" / "history").glob("*.toc"))) == 1
    assert not (story / "index" / "history.part").exists()


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("fox modified:2021-11-01", {"Alpha"}),  # the version of that day, its text since removed
        ("fox modified:[2021-11-09 to 2021-11-21]", {"Gamma"}),
        ("fox modified:>2021-11-24", {"Delta"}),
        ("modified:2021-11-05", {"Alpha"}),
        ("fox created:<2021-11-02", {"Alpha"}),
        ("walrus modified:2021-10", set()),
    ],
)
def test_date_fields_search_every_revision_at_their_dates(kb, story, query, titles):
    assert set(_hits(kb, query)) == titles


def test_a_killed_builds_leftovers_are_removed_by_the_next_build(kb, story):
    left = story / "index" / "history.part"
    left.mkdir(parents=True)
    (left / "MAIN_x.pst").write_bytes(b"half a segment")
    shutil.rmtree(story / "index" / "history", ignore_errors=True)
    assert _hits(kb, "fox")
    assert not left.exists()
