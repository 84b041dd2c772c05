"""`python -m leadlens`: the command line."""

from leadlens.cli import main

main()
