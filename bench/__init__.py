"""The benchmark (see bench/__main__.py and docs/benchmarks.md); not part of the installed package."""
