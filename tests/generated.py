"""Deterministic generated notes for tests: bodies with headings, lists, code and links, words drawn from a
Zipf-distributed vocabulary, so common words are common and rare words rare. The same seed gives the same
bytes. (bench/generate.py makes the benchmark corpora the same way; the tests do not depend on bench/.)"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ra",
    "tu",
    "vo",
    "shi",
    "den",
    "mar",
    "pel",
    "qua",
    "ron",
    "sil",
    "tor",
    "ul",
    "ver",
    "wyn",
    "xen",
    "yor",
    "zal",
    "bri",
    "cor",
    "dra",
    "fen",
    "gal",
    "hur",
    "ith",
    "jor",
]
TAGS = (
    "Notebooks/Skills/Tech",
    "Notebooks/Skills/Cooking",
    "Notebooks/Work/Projects",
    "Notebooks/Work/Meetings",
    "Notebooks/Personal/Journal",
    "Notebooks/Personal/Health",
    "Reading/Books",
    "Reading/Papers",
    "Ideas",
)


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def _note_text(
    rng: random.Random, i: int, vocab: list[str], weights: list[float], lo: int, hi: int
) -> tuple[str, str]:
    def words(n: int) -> list[str]:
        return rng.choices(vocab, cum_weights=weights, k=n)

    title = f"{' '.join(words(rng.randint(2, 5))).title()} {i}"
    created = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10 * 365 * 86400))
    modified = created + timedelta(seconds=rng.randint(0, 365 * 86400))
    tags = rng.sample(TAGS, rng.randint(0, 2))
    target = rng.randint(lo, hi)
    parts = [f"# {title}\n"]
    count = 0
    while count < target:
        kind = rng.random()
        if kind < 0.12:
            parts.append(f"### {' '.join(words(rng.randint(1, 4))).capitalize()}\n")
            count += 3
        elif kind < 0.2:
            items = [f"- {' '.join(words(rng.randint(3, 10)))}" for _ in range(rng.randint(2, 5))]
            parts.append("\n".join(items) + "\n")
            count += 20
        elif kind < 0.25:
            parts.append(f"```python\ndef {rng.choice(vocab)}(x):\n    return x * {rng.randint(2, 9)}\n```\n")
            count += 8
        elif kind < 0.3:
            parts.append(f"See [{rng.choice(vocab)}](https://example.org/{rng.choice(vocab)}/{i}).\n")
            count += 3
        else:
            n = rng.randint(20, 80)
            sentence = words(n)
            sentence[0] = sentence[0].capitalize()
            parts.append(" ".join(sentence) + ".\n")
            count += n
    fm = "---\n"
    if tags:
        fm += f"tags: [{', '.join(tags)}]\n"
    fm += f"title: {title}\n"
    fm += f"created: '{created.strftime('%Y-%m-%dT%H:%M:%S')}.{rng.randint(0, 999):03d}Z'\n"
    fm += f"modified: '{modified.strftime('%Y-%m-%dT%H:%M:%S')}.{rng.randint(0, 999):03d}Z'\n"
    fm += "---\n\n"
    return title, fm + "\n".join(parts)


def generate(folder: Path, notes: int, lo: int = 100, hi: int = 1500, seed: int = 1) -> list[str]:
    """Write `notes` notes of `lo`..`hi` words into `folder`/notes; return their titles."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 20000)
    weights = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))
    (folder / "notes").mkdir(parents=True, exist_ok=True)
    titles = []
    for i in range(notes):
        title, text = _note_text(rng, i, vocab, weights, lo, hi)
        (folder / "notes" / f"{title}.md").write_text(text)
        titles.append(title)
    return titles
