"""Benchmarks of the settlement platform at programme scale (docs/benchmarks.md).

`python -m bench.run --scale today --runs 3` generates (once, cached under var/bench)
and measures every stage in its own process; see bench/run.py (the command), bench/measure.py,
bench/data.py and bench/results.py.
"""
