"""Untrusted content (notes, file names, commit messages, remotes, repositories, queries) cannot drive
the terminal, run code, reach outside, hang kb or lose a change. Each test goes through the real CLI."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import git

# ---------------------------------------------------------------- output: control sequences and markup

OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # writes "pwned" to the clipboard
OSC0 = "\x1b]0;window title\x1b\\"
CLEAR = "\x1b[2J"
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
C1_CSI = "\x9b2J"
HOSTILE = OSC52 + OSC0 + CLEAR + OSC8 + C1_CSI
SGR = re.compile(rb"\x1b\[[0-9;]*m")  # colours: what kb's own rich output may contain


def on_terminal(*args: str, root: Path) -> bytes:
    """Run kb with stdout and stderr on a pseudo-terminal, as a user sees it; returns what it printed."""
    master, slave = pty.openpty()
    env = {**os.environ, "KB_HOME": str(root), "TERM": "xterm-256color", "COLUMNS": "400"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    proc.wait(timeout=60)
    return out


def assert_inert(out: bytes) -> None:
    """Nothing in the output can act on a terminal: no ESC but kb's own colours, no BEL, no C1 control."""
    rest = SGR.sub(b"", out).decode("utf-8", "surrogateescape")
    assert "\x1b" not in rest, rest[max(0, rest.find("\x1b") - 40) : rest.find("\x1b") + 40]
    assert "\x07" not in rest
    assert not re.search("[\x80-\x9f\udc80-\udc9f]", rest), rest  # C1 controls, encoded or as bytes


@pytest.fixture
def hostile_kb(kb, root: Path) -> Path:
    """A knowledge base whose content came from elsewhere: control sequences in a title (read from the
    file), a body, a file name, and a commit message made with git."""
    assert kb("add", "Plain", "-b", "plain words").exit_code == 0
    notes = root / "notes"
    (notes / "Evil.md").write_text(
        '---\ntitle: "Evil \\e]0;pwned\\a title"\ntags: [safe]\n---\n\n# Evil\n\nclipboard word '
        + HOSTILE
        + "\n"
    )
    (notes / f"Name {CLEAR} file.md").write_text("# Named\n\nclipboard in a file name\n")
    git(root, "add", "-A")
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m",
         f"Outside {OSC52} commit {OSC0}"],
        check=True,
    )  # fmt: skip
    (notes / "Evil.md").write_text((notes / "Evil.md").read_text() + f"\nsecond {CLEAR} line\n")
    assert kb("search", "plain").exit_code == 0  # the index is built (no progress bar later)
    return root


READS = [
    ("show", "Evil"),
    ("show", "Evil", "--raw"),
    ("list",),
    ("tags",),
    ("search", "clipboard"),
    ("search", "clipboard", "-l"),
    ("log",),
    ("log", "Evil"),
    ("diff", "Evil"),
    ("diff", "Evil", "--stat"),
    ("show", "notes/Name \x1b[2J file.md"),
]


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_control_sequences_never_reach_the_terminal(args, hostile_kb):
    out = on_terminal(*args, root=hostile_kb)
    assert out.strip(), out
    assert_inert(out)
    if args[0] != "tags":
        assert "␛".encode() in out  # made visible, not dropped


@pytest.mark.parametrize("args", [a for a in READS if a != ("show", "Evil", "--raw")], ids=" ".join)
def test_control_sequences_are_escaped_in_pipes_too(args, kb, hostile_kb):
    r = kb(*args)
    assert r.exit_code == 0, r.stderr
    assert_inert(r.stdout_bytes + r.stderr.encode())


def test_raw_show_into_a_pipe_is_byte_exact(kb, hostile_kb):
    data = (hostile_kb / "notes" / "Evil.md").read_bytes()
    assert kb("show", "Evil", "--raw").stdout_bytes == data
    assert kb("show", "Evil").stdout_bytes != data


def test_json_output_has_no_raw_control_characters(kb, hostile_kb):
    for args in (("show", "Evil"), ("list",), ("search", "clipboard"), ("log", "Evil"), ("log",)):
        r = kb(*args, "--json")
        assert r.exit_code == 0
        assert_inert(r.stdout_bytes)


def test_error_messages_are_escaped(kb, hostile_kb):
    r = kb("show", "Nothing \x1b]0;x\x07 here")
    assert r.exit_code == 1
    assert_inert(r.stderr.encode())
    out = on_terminal("show", "Nothing \x1b]0;x\x07 here", root=hostile_kb)
    assert_inert(out)


MARKUP = "[link=file:///etc/passwd]x[/link] [red]red[/red] :smile:"


def test_rich_markup_in_titles_tags_paths_and_messages_is_shown_literally(kb, root):
    assert kb("add", MARKUP, "-t", "[bold]tag", "-b", "markup body").exit_code == 0
    for args in (("list",), ("log", MARKUP), ("tags",), ("search", "markup"), ("show", MARKUP), ("log",)):
        out = on_terminal(*args, root=root)
        text = SGR.sub(b"", out).decode("utf-8", "replace")
        assert b"\x1b]8;" not in out, args
        if args[0] == "tags":
            assert "[bold]tag" in text, text
        else:
            assert "[link=file:///etc/passwd]x[/link]" in text and "[red]red[/red]" in text, (args, text)
            assert ":smile:" in text


# ---------------------------------------------------------------- repository code never runs

HOOKS = [
    "pre-commit", "commit-msg", "prepare-commit-msg", "post-commit", "reference-transaction",
    "post-index-change", "pre-push", "post-merge", "post-checkout", "pre-auto-gc", "post-rewrite",
    "pre-merge-commit", "fsmonitor-watchman",
]  # fmt: skip


def booby_trap(repo: Path, markers: Path) -> None:
    """Hooks, an fsmonitor and a filter in the repository's own configuration, each leaving a marker."""
    markers.mkdir(exist_ok=True)
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        script = hooks / name
        script.write_text(f"#!/bin/sh\ntouch '{markers}/{name}'\ncat >/dev/null 2>&1 </dev/null\nexit 0\n")
        script.chmod(0o755)
    monitor = markers.parent / "fsmonitor.sh"
    monitor.write_text(f"#!/bin/sh\ntouch '{markers}/fsmonitor'\nexit 1\n")
    monitor.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(monitor))
    git(repo, "config", "filter.trap.clean", f"sh -c \"touch '{markers}/clean'; cat\"")
    git(repo, "config", "filter.trap.smudge", f"sh -c \"touch '{markers}/smudge'; cat\"")
    git(repo, "config", "filter.trap.required", "true")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "attributes").write_text("* filter=trap\n")


def trapped_folder(root: Path, tmp_path: Path) -> Path:
    """Someone else's folder at `root`: a note and a git repository whose configuration is booby-trapped
    (booby_trap); the folder the traps leave their markers in."""
    root.mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "Theirs.md").write_text("# Theirs\n\ntheir words\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    markers = tmp_path / "markers"
    booby_trap(root, markers)
    return markers


def test_kb_runs_no_hooks_fsmonitor_or_filters_of_the_repository(kb, root, tmp_path):
    # Someone else's folder with a .git: kb init adopts it, then every command works on it.
    markers = trapped_folder(root, tmp_path)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    booby_trap(remote, markers)
    steps = [
        ("init", str(root)),
        ("add", "Mine", "-b", "my words"),
        ("edit", "Mine", "-a", "more"),
        ("mv", "Mine", "Renamed"),
        ("reindex",),
        ("search", "words"),
        ("list",),
        ("log", "Renamed"),
        ("diff", "Renamed"),
        ("restore", "Renamed", "1"),
        ("sync", "--remote", str(remote)),
        ("rm", "Theirs"),
        ("sync",),
    ]
    for args in steps:
        r = kb("--debug", *args)
        assert r.exit_code == 0, (args, r.stderr)
        assert sorted(p.name for p in markers.iterdir()) == [], args
    other = tmp_path / "other"
    assert kb("--kb", str(other), "sync", "--remote", str(remote)).exit_code == 0
    booby_trap(other, markers)
    assert kb("--kb", str(other), "add", "From other", "-b", "x").exit_code == 0
    assert kb("--kb", str(other), "sync").exit_code == 0
    assert kb("sync").exit_code == 0
    assert (root / "notes" / "From other.md").exists()
    assert sorted(p.name for p in markers.iterdir()) == []


def test_a_signing_requirement_is_refused_naming_the_setting(kb, root, tmp_path):
    assert kb("add", "Note", "-b", "x").exit_code == 0
    gpg = tmp_path / "gpg.sh"
    gpg.write_text(f"#!/bin/sh\ntouch '{tmp_path}/gpg-ran'\nexit 1\n")
    gpg.chmod(0o755)
    git(root, "config", "commit.gpgSign", "true")
    git(root, "config", "gpg.program", str(gpg))
    head = git(root, "rev-parse", "HEAD")
    r = kb("edit", "Note", "-a", "more")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "commit.gpgSign" in r.stderr and "git -C" in r.stderr
    assert git(root, "rev-parse", "HEAD") == head and git(root, "status", "--porcelain") == ""
    assert not (tmp_path / "gpg-ran").exists()
    git(root, "config", "commit.gpgSign", "false")
    assert kb("edit", "Note", "-a", "more").exit_code == 0


def test_repository_config_cannot_run_commands_through_the_remote(kb, root, tmp_path):
    assert kb("add", "Note", "-b", "x").exit_code == 0
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    assert kb("sync", "--remote", str(remote)).exit_code == 0
    marker = tmp_path / "ran"
    git(root, "config", "remote.origin.uploadpack", f"touch '{marker}'; git-upload-pack")
    git(root, "config", "remote.origin.receivepack", f"touch '{marker}'; git-receive-pack")
    assert kb("add", "Second", "-b", "y").exit_code == 0
    assert kb("sync").exit_code == 0
    assert not marker.exists()


# ---------------------------------------------------------------- a signal during a commit


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def slow_git(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A `git` first on PATH that runs the real one and, after a commit has landed (`git commit`, or the
    `git update-ref` that moves HEAD to it), waits before exiting: the window in which kb is still waiting
    for git although its commit is in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    landed = tmp_path / "commit-landed"
    wrapper = bin_dir / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"'{shutil.which('git')}' \"$@\"\nrc=$?\n"
        f'for a in "$@"; do case "$a" in commit|update-ref) touch \'{landed}\'; sleep 1; break;; esac; done\n'
        "exit $rc\n"
    )
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "KB_LOCK_TIMEOUT": "30"}, landed


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_git_commits_an_import_loses_nothing(sig, kb, root, tmp_path):
    assert kb("add", "Seed", "-b", "seed").exit_code == 0
    source = tmp_path / "to-import"
    source.mkdir()
    for i in range(60):
        (source / f"Imported {i}.md").write_text(f"# Imported {i}\n\nimported text {i}\n")
    env, landed = slow_git(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", "import", str(source)],
        env={**os.environ, **env},
        preexec_fn=_default_signals,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not landed.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert landed.exists(), proc.communicate()[1]
    proc.send_signal(sig)  # kb alone: git goes on
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, -sig, 128 + sig), (proc.returncode, err)
    # The next commands: a read (which finishes what was left) and a write.
    assert kb("list").exit_code == 0
    assert kb("add", "After", "-b", "after").exit_code == 0
    names = {p.name for p in (root / "notes").iterdir()}
    assert {f"Imported {i}.md" for i in range(60)} <= names
    tree = git(root, "ls-tree", "--name-only", "HEAD", "notes/")
    assert all(f"notes/Imported {i}.md" in tree.splitlines() for i in range(60))
    assert git(root, "log", "--diff-filter=D", "--name-only", "--format=").strip() == ""
    assert git(root, "status", "--porcelain") == ""
    assert "kb-tmp" not in git(root, "log", "--all", "--name-only", "--format=")
    assert not (root / ".git" / "kb-journal").exists()


def test_temp_files_of_an_interrupted_run_are_never_committed(kb, root):
    assert kb("add", "Note", "-b", "x").exit_code == 0
    (root / "notes" / ".kb-tmp-abc123").write_text("half a note")
    (root / "notes" / "sub").mkdir()
    (root / "notes" / "sub" / ".kb-tmp-def456").write_text("half another")
    assert kb("add", "Second", "-b", "y").exit_code == 0
    assert "kb-tmp" not in git(root, "log", "--all", "--name-only", "--format=")
    assert not list(root.rglob(".kb-tmp-*"))
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_run_killed_while_putting_files_back_is_put_back(kb, root):
    """The journal of a run that died during its roll-back: the next command restores HEAD's version,
    it does not commit the half-restored state."""
    import json

    assert kb("add", "Note", "-b", "original").exit_code == 0
    path = root / "notes" / "Note.md"
    committed = path.read_bytes()
    path.write_text(path.read_text().replace("original", "half written"))
    (root / "notes" / "New.md").write_text("# New\n\nnot committed\n")
    (root / ".git" / "kb-journal").write_text(
        json.dumps({"pid": 1, "rollback": True, "paths": ["notes/Note.md", "notes/New.md"]})
    )
    head = git(root, "rev-parse", "HEAD")
    assert kb("list").exit_code == 0
    assert path.read_bytes() == committed and not (root / "notes" / "New.md").exists()
    assert git(root, "rev-parse", "HEAD") == head
    assert git(root, "status", "--porcelain") == ""


# ---------------------------------------------------------------- hostile queries

HOSTILE_QUERIES = {
    "1000 NOT": (" ".join(f"NOT zz{i}" for i in range(1000)), "at most 256"),
    "300 -word": ("word " + " ".join(f"-zz{i}" for i in range(300)), "at most 256"),
    "200 wildcards": (
        " OR ".join(f"*{chr(97 + i % 26)}{chr(97 + i // 26)}*" for i in range(200)),
        "at most 16",
    ),
    "500 fuzzy": (" OR ".join(f"w{i}~2" for i in range(500)), "at most 256"),
    "20 fuzzy": (" OR ".join(f"w{i}~2" for i in range(20)), "at most 16"),
    "5000 parentheses": ("(" * 5000 + "word" + ")" * 5000, "more than 32 deep"),
    "bad comparison date": ("created:>1", "cannot read the date '1'"),
    "bad range date": ("modified:[1 to 2]", "cannot read the date '1'"),
    "year zero": ("created:>0000-00-00", "cannot read the date '0000-00-00'"),
    "fuzzy prefix": ("word~/2", "a fuzzy term is word~ or word~2"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_QUERIES))
def test_hostile_queries_are_usage_errors_in_kbs_words(name, kb, root):
    assert kb("add", "Note", "-b", "word other").exit_code == 0
    query, expected = HOSTILE_QUERIES[name]
    r = kb("search", "--", query)
    assert r.exit_code == 2, (r.exit_code, r.stderr[:300])
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1, r.stderr[:300]
    assert expected in r.stderr, r.stderr
    for python_words in ("Recursion", "invalid literal", "parseable", "out of range", "Traceback"):
        assert python_words not in r.stderr


def test_many_negations_are_one_exclusion(kb, root):
    from datetime import UTC, datetime

    from whoosh import query as wq

    from kb.index.query import parse_query

    for i in range(3):
        assert kb("add", f"Note {i}", "-b", f"common word{i}").exit_code == 0
    text = " ".join(f"NOT zz{i}" for i in range(200))
    parsed = parse_query(text, datetime.now(UTC))
    assert isinstance(parsed, wq.Not) and isinstance(parsed.query, wq.Or)  # one matcher, not 200 nested
    assert len(parsed.query.subqueries) == 200
    r = kb("search", "-l", "--", text)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    r = kb("search", "-l", "--", "common -word0 -word1 " + " ".join(f"-zz{i}" for i in range(200)))
    assert r.stdout.splitlines() == ["notes/Note 2.md"]


@pytest.mark.cold_only("it lowers a budget of kb's in this process")
def test_a_query_shares_one_budget_across_its_expanding_terms(kb, root, monkeypatch):
    import kb.index.query as query_module

    words = " ".join(f"alpha{i} beta{i}" for i in range(30))
    assert kb("add", "Many", "-b", words).exit_code == 0
    assert kb("add", "Other", "-b", "gamma").exit_code == 0
    # one segment holding both notes (each add writes a segment of its own; in one that holds only "Many"
    # every note matches after the first word, and nothing more is read, nor needs to be)
    assert kb("reindex").exit_code == 0
    monkeypatch.setattr(query_module, "QUERY_WORDS_BUDGET", 10)
    r = kb("search", "-l", "alpha* OR beta*")
    assert r.exit_code == 0 and r.stdout == "notes/Many.md\n"
    assert "were not searched" in r.stderr


# ---------------------------------------------------------------- sync: deadlines, failed remotes


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("scheme", ["ssh", "git"])
def test_sync_to_a_remote_that_never_answers_gives_up_and_keeps_the_working_remote(
    scheme, kb, root, tmp_path, silent_server
):
    if scheme == "ssh" and shutil.which("ssh") is None:
        pytest.skip("no ssh client")
    assert kb("add", "Note", "-b", "x").exit_code == 0
    working = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(working)], check=True)
    assert kb("sync", "--remote", str(working)).exit_code == 0
    url = f"{scheme}://127.0.0.1:{silent_server}/x.git"
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "sync", "--remote", url],
        env={**os.environ, "KB_HOME": str(root), "KB_SYNC_TIMEOUT": "3"},
        capture_output=True,
        timeout=90,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert err.startswith("Error: git fetch timed out") and url in err and "KB_SYNC_TIMEOUT" in err, err
    assert err.count("\n") == 1
    assert git(root, "remote", "get-url", "origin").strip() == str(working)
    assert kb("add", "Later", "-b", "y").exit_code == 0
    assert kb("sync").exit_code == 0


def test_a_remote_that_fails_keeps_the_previous_one_and_the_error_is_gits_whole_message(kb, root, tmp_path):
    assert kb("add", "Note", "-b", "x").exit_code == 0
    working = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(working)], check=True)
    assert kb("sync", "--remote", str(working)).exit_code == 0
    r = kb("sync", "--remote", str(tmp_path / "missing.git"))
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("Error: git fetch failed: ")
    assert "does not appear to be a git repository" in r.stderr and "and the repository exists." in r.stderr
    assert git(root, "remote", "get-url", "origin").strip() == str(working)
    fresh = tmp_path / "fresh"
    r = kb("--kb", str(fresh), "sync", "--remote", str(tmp_path / "missing.git"))
    assert r.exit_code == 1 and git(fresh, "remote") == ""


def test_the_sync_deadline_must_be_a_number(kb, root):
    r = kb("sync", env={"KB_SYNC_TIMEOUT": "soon"})
    assert r.exit_code == 2 and "KB_SYNC_TIMEOUT" in r.stderr


# ---------------------------------------------------------------- the editor and large notes

EDITS = {
    "a list as title": ("sed -i 's/^title: .*/title: [a, b]/' \"$1\"", "'title' is not text"),
    "created removed": ("sed -i '/^created:/d' \"$1\"", "'created' was removed"),
    "created invalid": (
        'sed -i "s/^created: .*/created: \'someday\'/" "$1"',
        "'created' is not a valid date",
    ),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_the_editor_cannot_save_what_add_would_refuse(name, kb, root, tmp_path):
    assert kb("add", "Mine", "-b", "x").exit_code == 0
    before = (root / "notes" / "Mine.md").read_bytes()
    head = git(root, "rev-parse", "HEAD")
    script, expected = EDITS[name]
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\n" + script + "\n")
    editor.chmod(0o755)
    r = kb("edit", "Mine", "--editor", env={"EDITOR": str(editor)})
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert expected in r.stderr and "your text is kept in" in r.stderr
    assert (root / "notes" / "Mine.md").read_bytes() == before and git(root, "rev-parse", "HEAD") == head


def test_the_editor_cannot_give_a_note_the_title_of_another(kb, root, tmp_path):
    assert kb("add", "Taken", "-b", "x").exit_code == 0
    (root / "notes" / "untitled.md").write_text("---\ntags: [a]\n---\n\nno title yet\n")
    assert kb("add", "Other", "-b", "y").exit_code == 0  # commits the file above
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^tags: \\[a\\]/tags: [a]\\ntitle: taken/' \"$1\"\n")
    editor.chmod(0o755)
    r = kb("edit", "notes/untitled.md", "--editor", env={"EDITOR": str(editor)})
    assert r.exit_code == 1 and "a note titled 'Taken' already exists" in r.stderr, r.stderr
    assert "title:" not in (root / "notes" / "untitled.md").read_text()


def test_a_very_large_note_is_edited_with_a_warning(kb, root):
    assert kb("add", "Huge", "-b", "start").exit_code == 0
    path = root / "notes" / "Huge.md"
    with open(path, "a") as handle:
        handle.write(("word " * 20 + "\n") * 110_000)  # 11 MB
    r = kb("edit", "Huge", "-a", "appended")
    assert r.exit_code == 0
    assert "Warning: notes/Huge.md is 11 MB" in r.stderr
    assert path.read_text().endswith("appended\n")
