"""Stage ``train``: one declared run, in this process or submitted through submitit (:mod:`lotlip.train.launcher`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from lotlip.config import LaunchConfig, RunConfig

log = logging.getLogger(__name__)


def launch_settings(launch: dict | str | None, executor: str | None = None) -> LaunchConfig:
    """The config's ``launch`` block (a mapping or its JSON text), ``executor`` overriding ``launch.executor``."""
    from lotlip.train.launcher import launch_config

    cfg = launch_config(launch)
    return dataclasses.replace(cfg, executor=executor) if executor else cfg


def train_run(run: RunConfig, shards: Path, out: Path, launch: LaunchConfig, text_init: Path | None = None) -> dict:
    """Train ``run`` as ``launch`` says (blocking) and return the training summary. SIGTERM (how Snakemake stops a
    rule) interrupts it, so a submitted job is cancelled, not orphaned."""
    from lotlip.train.launcher import launch_train, sigterm_interrupts

    with sigterm_interrupts():
        summary = launch_train(run, shards, out, launch, text_init=text_init)
    log.info("trained %s: %s", run.name, summary)
    return summary
