#!/usr/bin/env bash
# Set up kb in .venv and take a short tour on the default knowledge base ($KB_HOME, else ~/.kb):
# add a note, edit it, show it, list notes and tags, search, and show its history and a diff.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/kb ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e . --config-settings editable_mode=compat
fi
kb=.venv/bin/kb
title="kb tour $(date -u +%Y-%m-%dT%H-%M-%S)"
run() { printf '\n$ kb %s\n' "$*"; "$kb" "$@"; }
run add "$title" -t Tour/Getting-started -b "Every note is a Markdown file; every change is a git revision."
run edit "$title" -a "Edits keep created, update modified, and make one commit each."
run edit "$title" -t Tour/Edited
run show "$title" --raw
run list --sort modified
run tags
run search "git revision"
run log "$title"
run diff "$title" 1 3
