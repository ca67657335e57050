"""Benchmarks of lotlip (issue #10): ``python -m bench`` writes ``bench/results.md`` and ``bench/results.json``."""
