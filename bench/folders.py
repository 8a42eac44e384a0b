"""A knowledge base of notes in folders against the flat layout, measured side by side in one run.

    python bench/folders.py --notes 10000 --folders 100 [--runs 7] [--out bench/results]

Generates the same N notes twice (bench/generate.py): flat in Notable's layout (`notes/<Title>.md`, titles
and dates in front matter) and as an Obsidian vault (`<topic>/<Title>.md` in F folders, title from the
first-line heading, no dates: they come from git), the vault a git repository with one commit. Measures,
once each, `kb init` of both in place (index built) and `kb import` of the vault into a new knowledge base
(wall time and peak RSS), then, alternating between the two so that both see the same machine, the
medians of `kb search` (a rare word), `kb list` and `kb add` in each. Writes a Markdown table and a JSON
file; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate, generate_vault
from run import GNU_TIME, Figure, _timed, kb_cmd


def once(name: str, argv: list[str], env: dict[str, str]) -> Figure:
    seconds, rss = _timed(argv, None, env)
    return Figure.of(name, " ".join(argv[2:]), [seconds * 1000], [rss])


def rare_word(path: Path) -> str:
    words = [w for w in path.read_text().split() if w.isalpha() and len(w) > 8]
    return words[len(words) // 2].lower() if words else "kalo"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10000)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kb-bench-folders-"))
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "KB_LOCK_TIMEOUT": "60"}
    env.pop("KB_HOME", None)
    flat, vault, imported = work / "flat", work / "vault", work / "imported"
    generate(flat, args.notes)
    paths = generate_vault(vault, args.notes, args.folders)
    who = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q", str(vault)], check=True)
    subprocess.run(["git", "-C", str(vault), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(vault), *who, "commit", "-qm", "notes"], check=True)
    rows = [
        once("kb init in place, flat (Notable's layout)", kb_cmd(flat, "init"), env),
        once(f"kb init in place, vault ({args.folders} folders)", kb_cmd(vault, "init"), env),
        once("kb import of the vault into a new knowledge base", kb_cmd(imported, "import", str(vault)), env),
    ]
    word = rare_word(vault / paths[len(paths) // 2])
    times: dict[str, list[tuple[float, float]]] = {}
    commands: dict[str, list[str]] = {}
    for i in range(args.runs):
        for layout, root in (("flat", flat), ("vault", vault)):
            for what, argv in (
                ("search", kb_cmd(root, "search", word)),
                ("list", kb_cmd(root, "list")),
                ("add", kb_cmd(root, "add", f"Bench note {i}", "-b", "A new note.")),
            ):
                key = f"kb {what}, {layout}"
                commands[key] = argv
                times.setdefault(key, []).append(_timed(argv, None, env))
    for key, samples in times.items():
        ms = [s * 1000 for s, _ in samples]
        shown = " ".join(commands[key][2:]).replace(str(work), "$TMP")
        rows.append(Figure.of(key, shown, ms, [r for _, r in samples]))
    for row in rows:
        row.command = row.command.replace(str(work), "$TMP")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"folders-{args.notes}"
    head = f"{args.notes} notes, {args.folders} folders; {platform.python_version()}, {os.cpu_count()} cores"
    lines = [f"# Folders against the flat layout ({head})", "", f"Rare word searched: `{word}`.", ""]
    lines += [
        "| figure | command | median ms | min | max | peak RSS MiB | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        figures = f"{r.median_ms} | {r.min_ms} | {r.max_ms} | {r.peak_rss_mib} | {r.runs}"
        lines.append(f"| {r.name} | `{r.command}` | {figures} |")
    if not GNU_TIME:
        lines += ["", "GNU time was not found: peak RSS figures are upper bounds."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    print("\n".join(lines))
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
