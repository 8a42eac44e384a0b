"""`python -m kb`: the command line run in this process, never through the warm server (a Tab on a NOTE or a
tag is still answered by kb.quickcomplete first)."""

from kb.entry import main

main(warm=False)
