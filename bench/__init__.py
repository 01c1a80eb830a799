"""Benchmarks of Tresen's hot paths; `python -m bench` runs them all and prints a table each."""
