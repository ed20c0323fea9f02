"""`python -m foundry_operator ...` is the `foundry-operator` command."""

from foundry_operator.cli import main

main()
