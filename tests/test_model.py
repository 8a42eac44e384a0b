"""A state machine: random add / edit / rename / delete / restore sequences through the CLI, checked
after every step against a model: model == files == HEAD == search results (and a rebuilt index)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule
from typer.testing import CliRunner

from kb.cli import app
from kb.notes import parse_note

words = st.text(alphabet="abcdefghij", min_size=3, max_size=8)
titles = st.lists(words, min_size=1, max_size=3).map(lambda ws: " ".join(ws).capitalize())


class KnowledgeBase(RuleBasedStateMachine):
    notes = Bundle("notes")

    @initialize()
    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="kb-model-"))
        self.root = self.tmp / "kb"
        self.runner = CliRunner()
        self.model: dict[str, str] = {}  # title -> the last paragraph written
        self.deleted: dict[str, str] = {}  # title -> its content before deletion
        self.clock = 0

    def kb(self, *args: str) -> int:
        self.clock += 1
        env = {
            "KB_HOME": str(self.root),
            "KB_NOW": f"2026-01-01T00:{self.clock // 60:02d}:{self.clock % 60:02d}.000Z",
            "HOME": str(self.tmp),
            "GIT_CONFIG_GLOBAL": str(self.tmp / "none"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        result = self.runner.invoke(app, list(args), env=env, catch_exceptions=False)
        return result.exit_code

    def key(self, title: str) -> str:
        return title.casefold()

    @rule(target=notes, title=titles, text=words)
    def add(self, title: str, text: str) -> str:
        code = self.kb("add", title, "-b", text)
        if any(self.key(t) == self.key(title) for t in self.model):
            assert code == 1
        else:
            assert code == 0
            self.model[title] = text
            self.deleted.pop(title, None)
        return title

    @rule(title=notes, text=words)
    def edit(self, title: str, text: str) -> None:
        code = self.kb("edit", title, "-a", text)
        if title in self.model:
            assert code == 0
            self.model[title] = text
        else:
            assert code == 1

    @rule(title=consumes(notes), new=titles)
    def rename(self, title: str, new: str) -> None:
        code = self.kb("mv", title, new)
        clash = any(self.key(t) == self.key(new) and t != title for t in self.model)
        if title in self.model and not clash:
            assert code == 0
            self.model[new] = self.model.pop(title)
        else:
            assert code != 0

    @rule(title=notes)
    def delete(self, title: str) -> None:
        code = self.kb("rm", title)
        if title in self.model:
            assert code == 0
            self.deleted[title] = self.model.pop(title)
        else:
            assert code == 1

    @rule(title=notes)
    def restore(self, title: str) -> None:
        if title in self.deleted and not any(self.key(t) == self.key(title) for t in self.model):
            assert self.kb("restore", title, "-1") == 0
            self.model[title] = self.deleted.pop(title)

    @invariant()
    def files_head_and_search_agree_with_the_model(self) -> None:
        if not hasattr(self, "root") or not (self.root / "notes").is_dir():
            return
        files = {}
        for path in (self.root / "notes").iterdir():
            note = parse_note(path.read_bytes())
            assert note.problem is None
            files[note.title] = path
        assert set(files) == set(self.model)
        for title, text in self.model.items():
            assert files[title].read_text().rstrip("\n").endswith(text)
        tree = subprocess.run(
            ["git", "-C", str(self.root), "ls-tree", "-r", "--name-only", "-z", "HEAD", "--", "notes"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert sorted(p for p in tree.split("\0") if p) == sorted(f"notes/{p.name}" for p in files.values())
        status = subprocess.run(
            ["git", "-C", str(self.root), "status", "--porcelain"], capture_output=True, text=True
        )
        assert status.stdout == ""
        listed = self.runner.invoke(app, ["--kb", str(self.root), "search", "*", "-l"])
        assert sorted(listed.stdout.splitlines()) == sorted(f"notes/{p.name}" for p in files.values())

    def teardown(self) -> None:
        if hasattr(self, "root") and (self.root / "notes").is_dir():
            before = self.runner.invoke(app, ["--kb", str(self.root), "search", "*", "-l"]).stdout
            self.runner.invoke(app, ["--kb", str(self.root), "reindex"])
            after = self.runner.invoke(app, ["--kb", str(self.root), "search", "*", "-l"]).stdout
            assert sorted(before.splitlines()) == sorted(after.splitlines())
        if hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)


TestKnowledgeBase = KnowledgeBase.TestCase
TestKnowledgeBase.settings = settings(
    max_examples=int(os.environ.get("KB_MODEL_EXAMPLES", "8")), stateful_step_count=10, deadline=None
)
