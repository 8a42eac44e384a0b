"""A deterministic corpus of Notable-format notes: `python bench/generate.py DIR --notes N [--words MIN MAX]`.

Bodies have headings, paragraphs, lists, code and links, with words drawn from a Zipf-distributed
vocabulary, so common words are common and rare words rare, as in real notes. The same seed and size
always give the same bytes.
"""

from __future__ import annotations

import argparse
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
TAGS = [
    "Notebooks/Skills/Tech",
    "Notebooks/Skills/Cooking",
    "Notebooks/Work/Projects",
    "Notebooks/Work/Meetings",
    "Notebooks/Personal/Journal",
    "Notebooks/Personal/Health",
    "Reading/Books",
    "Reading/Papers",
    "Ideas",
]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def zipf_cumulative(size: int) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) for rank in range(size)))


def note_text(
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
    rng = random.Random(seed)
    vocab = vocabulary(rng, 20000)
    weights = zipf_cumulative(len(vocab))
    (folder / "notes").mkdir(parents=True, exist_ok=True)
    titles = []
    for i in range(notes):
        title, text = note_text(rng, i, vocab, weights, lo, hi)
        (folder / "notes" / f"{title}.md").write_text(text)
        titles.append(title)
    return titles


def generate_vault(
    folder: Path, notes: int, folders: int, lo: int = 100, hi: int = 1500, seed: int = 1
) -> list[str]:
    """The same notes as an Obsidian vault keeps them: `folders` topic folders, file names from titles, no
    title or dates in the front matter (the title is the first-line heading), an inline #tag in some, and a
    wiki link to another note in most. Returns the paths relative to `folder`."""
    rng = random.Random(seed)
    vocab = vocabulary(rng, 20000)
    weights = zipf_cumulative(len(vocab))
    topics = [f"{vocab[k * 7 + 3]}-{k}" for k in range(folders)]
    paths: list[str] = []
    titles: list[str] = []
    for i in range(notes):
        title, text = note_text(rng, i, vocab, weights, lo, hi)
        body = text.split("---\n\n", 2)[-1]
        if rng.random() < 0.3:
            body += f"\n#{rng.choice(TAGS).lower()}\n"
        if titles and rng.random() < 0.8:
            body += f"\nSee [[{rng.choice(titles)}]].\n"
        rel = f"{topics[i % folders]}/{title}.md"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        paths.append(rel)
        titles.append(title)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--words", type=int, nargs=2, default=(100, 1500), metavar=("MIN", "MAX"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folders", type=int, default=0, help="an Obsidian-style vault in this many folders")
    args = parser.parse_args()
    if args.folders:
        generate_vault(args.folder, args.notes, args.folders, args.words[0], args.words[1], args.seed)
    else:
        generate(args.folder, args.notes, args.words[0], args.words[1], args.seed)


if __name__ == "__main__":
    main()
