"""kb list --orphans/--links-to/--linked-by/--dead-links, and kb rm naming the notes that link to a note."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import log_subjects
from .test_link_commands import write_vault


@pytest.fixture
def vault(root: Path, kb) -> Path:
    write_vault(
        root,
        {
            "hub.md": "# Hub\n\n[[a]] [[b]] [[hub]]\n",
            "a.md": "# A\n\n[[b]] [[gone]]\n",
            "b.md": "# B\n",
            "lonely.md": "# Lonely\n\n[[Nothing here]]\n",
        },
    )
    assert kb("init").exit_code == 0
    return root


def _paths(out: str) -> list[str]:
    return sorted(line.split("\t")[-1] for line in out.splitlines())


def test_list_by_links(vault, kb):
    assert _paths(kb("list", "--orphans").stdout) == ["hub.md", "lonely.md"]  # a self-link does not count
    assert _paths(kb("list", "--links-to", "b").stdout) == ["a.md", "hub.md"]
    assert _paths(kb("list", "--linked-by", "hub").stdout) == ["a.md", "b.md", "hub.md"]
    assert _paths(kb("list", "--dead-links").stdout) == ["a.md", "lonely.md"]
    assert _paths(kb("list", "--dead-links", "--links-to", "b").stdout) == ["a.md"]
    assert kb("list", "--links-to", "no-such-note").exit_code == 1


def test_rm_names_the_linking_notes_and_piped_stdin_never_blocks(vault, kb):
    out = kb("rm", "b", input="")
    assert out.exit_code == 0
    assert "2 notes link to b.md; their links will be dead:" in out.stderr
    assert "a.md:3\tb" in out.stderr and "hub.md:3\tb" in out.stderr
    assert log_subjects(vault)[0] == "Delete: B"
    quiet = kb("rm", "a", "--yes")
    assert quiet.exit_code == 0 and "link to" not in quiet.stderr


def test_rm_asks_on_a_terminal(vault):
    env = {**os.environ, "KB_HOME": str(vault)}

    def run(answer: bytes) -> subprocess.CompletedProcess[bytes]:
        main, other = os.openpty()
        try:
            os.write(main, answer)
            return subprocess.run(
                [sys.executable, "-m", "kb", "rm", "b"], stdin=other, capture_output=True, env=env, timeout=60
            )
        finally:
            os.close(main)
            os.close(other)

    refused = run(b"n\n")
    assert refused.returncode == 1
    assert b"Delete it anyway?" in refused.stderr and b"nothing deleted" in refused.stderr
    assert (vault / "b.md").exists()
    accepted = run(b"y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert not (vault / "b.md").exists()


def test_search_fields_links_and_linkedby(vault, kb):
    def found(query: str) -> list[str]:
        return sorted(kb("search", query, "-l").stdout.split())

    assert found("links:b") == ["a.md", "hub.md"]
    assert found('links:"b" hub') == ["hub.md"]
    assert found("linkedby:hub") == ["a.md", "b.md", "hub.md"]
    assert found("linkedby:hub links:b") == ["a.md", "hub.md"]
    assert found("links:lonely") == []
    assert kb("search", "links:lonely").exit_code == 1
    assert kb("search", "links:no-such-note").exit_code == 1
    assert kb("search", 'links:""').exit_code == 2


def test_link_fields_combine_with_the_query_language(vault, kb):
    write_vault(
        vault,
        {
            "a.md": "---\ntags: [fruit]\n---\n# A\n\n[[b]] [[gone]] apple\n",
            "b.md": "# B\n\napple\n",
        },
    )

    def found(query: str) -> list[str]:
        out = kb("search", "-l", "--", query)
        assert out.exit_code in (0, 1), out.stderr
        return sorted(out.stdout.split())

    assert found("NOT links:b") == ["b.md", "lonely.md"]
    assert found("apple -links:b") == ["b.md"]
    assert found("apple NOT links:b") == ["b.md"]
    assert found("links:b OR linkedby:a") == ["a.md", "b.md", "hub.md"]
    assert found("links:b OR apple") == ["a.md", "b.md", "hub.md"]
    assert found("(links:b OR linkedby:lonely) apple") == ["a.md"]
    assert found("tag:fruit links:b") == ["a.md"]
    assert found("tag:fruit NOT links:b") == []
    assert found("NOT (links:b OR linkedby:hub)") == ["lonely.md"]
    assert found("NOT links:lonely") == ["a.md", "b.md", "hub.md", "lonely.md"]
    assert found("links:lonely OR apple") == ["a.md", "b.md"]
    assert found('"links:b"') == []  # a phrase is words, never a field
    assert found("title:hub OR (linkedby:hub -links:b)") == ["b.md", "hub.md"]
