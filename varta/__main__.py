"""``python -m varta``: the ``varta`` command; from the repository root it also has
``varta bench`` (the benchmarks live beside the packages, not in them)."""

from varta.cli import main

main()
