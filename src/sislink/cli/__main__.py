"""`python -m sislink.cli`: the same as the `sislink` command."""

from sislink.cli import main

main()
