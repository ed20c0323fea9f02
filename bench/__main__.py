"""`python -m bench` (`make bench`): see bench/cli.py and docs/benchmark.md."""

from bench.cli import main

main()
