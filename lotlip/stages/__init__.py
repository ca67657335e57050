"""One module per workflow stage: the typed entry functions that ``lotlip <command>`` (:mod:`lotlip.cli`) calls.

images (training images, synthetic benchmarks), fetch (datasets, weights, real benchmarks), relabel, shards, train,
evaluate, report, snapshot (a study's results, committed). Heavy dependencies (torch, pandas) are imported inside
the functions, so the CLI starts fast.
"""
