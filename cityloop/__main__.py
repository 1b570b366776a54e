"""`python -m cityloop` is the `cityloop` command."""

from cityloop.cli import main

main()
