"""A training run resolved from the whole config: an experiment's overrides applied to the root sections.

Pure resolution, unchecked; :func:`lotlip.config.load.run_config` resolves and checks
(:func:`lotlip.config.checks.check_run`).
"""

from __future__ import annotations

import dataclasses

from lotlip.config.schema import ConfigError, LotlipConfig, RunConfig


def experiment_seeds(cfg: LotlipConfig, name: str) -> list[int]:
    """The seeds experiment ``name`` is trained with: its own ``seeds``, the root ``seeds`` or ``[train.seed]``."""
    exp = cfg.experiments[name]
    return list(exp.seeds or cfg.seeds or [cfg.train.seed])


def resolve_run(cfg: LotlipConfig, name: str, seed: int | None = None) -> RunConfig:
    """Experiment ``name`` trained with ``seed`` (default: its first seed), its overrides applied.

    Corner tokens only for ``lotlip``; ``short`` draws no long texts. Raises ``ConfigError`` only for an
    undeclared ``name``.
    """
    if name not in cfg.experiments:
        raise ConfigError(f"experiments: no run named {name!r} (declared: {', '.join(cfg.experiments)})")
    exp = cfg.experiments[name]
    sampling = dataclasses.replace(cfg.sampling)
    train = dataclasses.replace(cfg.train)
    if exp.method == "short":
        sampling.n_subcaptions = 0
    elif exp.n_subcaptions is not None:
        sampling.n_subcaptions = exp.n_subcaptions
    for knob in ("merged_num", "policy"):
        if getattr(exp, knob) is not None:
            setattr(sampling, knob, getattr(exp, knob))
    if exp.steps is not None:
        train.steps = exp.steps
    if exp.precision is not None:
        train.precision = exp.precision
    train.seed = experiment_seeds(cfg, name)[0] if seed is None else seed
    experiment = dataclasses.replace(exp)
    if exp.method != "lotlip":
        experiment.corner_tokens = 0
    return RunConfig(name=name, experiment=experiment, sampling=sampling, train=train)
