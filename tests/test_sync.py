"""kb sync between two "machines": two knowledge bases syncing through a local bare repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, log_subjects, snapshot


@pytest.fixture
def machines(tmp_path, kb, monkeypatch):
    """Machine A and machine B, both synced with one bare remote; A made the first note."""
    monkeypatch.setenv("KB_HOSTNAME", "laptop")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    a, b = tmp_path / "a", tmp_path / "b"
    body = "\n".join(f"line {i}" for i in range(1, 8))
    assert kb("--kb", str(a), "add", "Shared", "-b", body).exit_code == 0
    assert kb("--kb", str(a), "sync", "--remote", str(remote)).exit_code == 0
    assert kb("--kb", str(b), "sync", "--remote", str(remote)).exit_code == 0
    return a, b, remote


def run(kb, machine: Path, *args: str, now: str | None = None):
    env = {"KB_NOW": now} if now else None
    return kb("--kb", str(machine), *args, env=env)


def body(machine: Path, name: str = "Shared") -> str:
    return (machine / "notes" / f"{name}.md").read_text()


def test_a_note_travels_to_the_other_machine(machines, kb):
    a, b, _ = machines
    assert body(b) == body(a)
    run(kb, a, "add", "Only on A", "-b", "hello")
    assert run(kb, a, "sync").exit_code == 0
    assert run(kb, b, "sync").exit_code == 0
    assert body(b, "Only on A") == body(a, "Only on A")
    assert json.loads(run(kb, b, "search", "hello", "--json").stdout)["hits"][0]["title"] == "Only on A"
    assert git(b, "status", "--porcelain") == ""


def test_edits_to_different_notes_and_different_lines_merge(machines, kb):
    a, b, _ = machines
    run(kb, a, "add", "From A", "-b", "a")
    run(kb, b, "add", "From B", "-b", "b")
    run(kb, a, "edit", "Shared", "-b", body(a).split("---\n", 2)[2].replace("line 1", "line 1 by A").lstrip(),
        now="2026-05-01T00:00:00.000Z")  # fmt: skip
    run(kb, b, "edit", "Shared", "-b", body(b).split("---\n", 2)[2].replace("line 7", "line 7 by B").lstrip(),
        now="2026-05-02T00:00:00.000Z")  # fmt: skip
    assert run(kb, a, "sync").exit_code == 0
    assert run(kb, b, "sync").exit_code == 0
    assert run(kb, a, "sync").exit_code == 0
    for machine in (a, b):
        text = body(machine)
        assert "line 1 by A" in text and "line 7 by B" in text
        assert "modified: '2026-05-02T00:00:00.000Z'" in text
        assert (machine / "notes" / "From A.md").exists() and (machine / "notes" / "From B.md").exists()
        assert not list((machine / "notes").glob("*conflict*"))
    assert body(a) == body(b)


def test_conflicting_edits_keep_both_versions(machines, kb):
    a, b, _ = machines
    run(kb, a, "edit", "Shared", "-b", "# Shared\n\nA's version\n", now="2026-05-01T00:00:00.000Z")
    run(kb, b, "edit", "Shared", "-b", "# Shared\n\nB's version\n", now="2026-05-02T00:00:00.000Z")
    assert kb("--kb", str(a), "sync", env={"KB_HOSTNAME": "alpha"}).exit_code == 0
    r = kb("--kb", str(b), "sync", env={"KB_HOSTNAME": "beta", "KB_NOW": "2026-05-03T00:00:00.000Z"})
    assert r.exit_code == 1
    assert "Conflict: 'Shared' changed on both machines" in r.stderr
    assert "A's version" in body(b)
    # The copy holds B's text, and is named after B, the machine whose text it holds.
    copy = b / "notes" / "Shared (conflict 2026-05-03 beta).md"
    assert "B's version" in copy.read_text()
    assert "title: Shared (conflict 2026-05-03 beta)\n" in copy.read_text()
    assert git(b, "status", "--porcelain") == ""
    assert run(kb, a, "sync").exit_code == 0
    assert copy.read_text() == (a / "notes" / copy.name).read_text()


def test_edit_on_one_side_and_delete_on_the_other_keeps_the_edit(machines, kb):
    a, b, _ = machines
    run(kb, a, "edit", "Shared", "-a", "edited on A")
    run(kb, b, "rm", "Shared")
    assert run(kb, b, "sync").exit_code == 0
    r = run(kb, a, "sync")
    assert r.exit_code == 0 and "deleted on the other machine but edited here" in r.stderr
    assert "edited on A" in body(a)
    assert run(kb, b, "sync").exit_code == 0
    assert "edited on A" in body(b)


def test_an_unrelated_remote_deletes_nothing(tmp_path, kb):
    other = tmp_path / "other"
    remote = tmp_path / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    run(kb, other, "add", "Theirs", "-b", "t")
    run(kb, other, "sync", "--remote", str(remote))
    mine = tmp_path / "mine"
    run(kb, mine, "add", "Mine", "-b", "m", now="2026-03-04T00:00:00.000Z")  # not the same first commit
    before = snapshot(mine)
    refused = run(kb, mine, "sync", "--remote", str(remote))
    assert (
        refused.exit_code == 1
        and "nothing in common" in refused.stderr
        and "--allow-unrelated" in refused.stderr
    )
    assert snapshot(mine) == before and git(mine, "remote") == ""
    assert run(kb, mine, "sync", "--remote", str(remote), "--allow-unrelated").exit_code == 0
    assert sorted(p.name for p in (mine / "notes").iterdir()) == ["Mine.md", "Theirs.md"]


def test_a_force_pushed_remote_deletes_nothing(machines, kb, tmp_path):
    a, b, remote = machines
    run(kb, a, "add", "Second", "-b", "two")
    run(kb, a, "sync")
    run(kb, b, "sync")
    # someone rewinds the remote to its first commit
    first = git(a, "rev-list", "--max-parents=0", "HEAD").split()[0]
    subprocess.run(
        [
            "git",
            "--git-dir",
            str(remote),
            "update-ref",
            "refs/heads/" + git(a, "branch", "--show-current").strip(),
            first,
        ],
        check=True,
    )
    assert run(kb, b, "sync").exit_code == 0
    assert (b / "notes" / "Second.md").exists() and (b / "notes" / "Shared.md").exists()


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/pwned", "-oProxyCommand=x", "fd::17",
            "weird://host/repo"],
)  # fmt: skip
def test_dangerous_remote_urls_are_refused(kb, root, url):
    run(kb, root, "add", "X", "-b", "x")
    before = snapshot(root)
    r = run(kb, root, "sync", "--remote", url)
    assert r.exit_code == 1 and r.stderr.startswith("Error: refusing the remote")
    assert snapshot(root) == before
    assert git(root, "remote") == ""


def test_sync_without_a_remote_says_how(kb, root):
    run(kb, root, "add", "X", "-b", "x")
    r = run(kb, root, "sync")
    assert r.exit_code == 2 and "kb sync --remote URL" in r.stderr


def test_sync_refuses_in_a_merge_state(machines, kb):
    a, _, _ = machines
    (a / ".git" / "MERGE_HEAD").write_text(git(a, "rev-parse", "HEAD"))
    before = snapshot(a)
    r = run(kb, a, "sync")
    assert r.exit_code == 1 and "merge is in progress" in r.stderr
    assert snapshot(a) == before


def test_pending_outside_edits_are_committed_and_sent(machines, kb):
    a, b, _ = machines
    (a / "notes" / "Dropped.md").write_text("# Dropped\n\nfrom a script\n")
    assert run(kb, a, "sync").exit_code == 0
    assert log_subjects(a)[0] == "External edit: Dropped"
    run(kb, b, "sync")
    assert (b / "notes" / "Dropped.md").read_text() == "# Dropped\n\nfrom a script\n"
