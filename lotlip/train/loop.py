"""The LoTLIP training loop (CPU or GPU, one process or DDP ranks), resumable from its last checkpoint.

One loop for every method (paper Tables 2, 3, 7): ``short``/``long``/``lotlip`` use the multi-text loss,
``longclip`` the Long-CLIP loss on a 248-position text tower; ``lock_image`` makes any of them LiT-style.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from open_clip_train.scheduler import cosine_lr
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from lotlip.config import ExperimentConfig, RunConfig, to_dict
from lotlip.constants import train_context_length
from lotlip.data.loader import parallel_train_batches
from lotlip.data.shards import first_keys, shard_urls
from lotlip.data.sizes import shard_counts
from lotlip.data.validate import SkipCounter
from lotlip.io import atomic_path, writing
from lotlip.model import LongClipLoss, MultiTextClipLoss, create_model, get_tokenizer
from lotlip.model.checkpoint import load_image_tower, load_text_tower, save_checkpoint, save_model
from lotlip.model.factory import LoTLIP
from lotlip.model.hf_tokenizer import BertCornerTokenizer
from lotlip.model.release import read_checkpoint
from lotlip.model.tokenizer import CornerTokenizer
from lotlip.model.transform import image_transform
from lotlip.provenance import provenance
from lotlip.train import distributed
from lotlip.train.step import TrainStep, text_features

__all__ = ["build_model", "loss_for", "prepare_image_tower", "text_features", "train"]

log = logging.getLogger(__name__)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimizer(model: LoTLIP, run: RunConfig) -> torch.optim.Optimizer:
    """AdamW with no weight decay on gains, biases, embeddings and the logit scale (open_clip's rule).

    ``fused=True``: one kernel per parameter group instead of a Python loop over tensors (CPU and CUDA alike;
    the step went from 12-15 ms to 4 ms for lotlip-tiny in ``bench/``).
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exclude = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if exclude else decay).append(p)
    return torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                              {"params": decay, "weight_decay": run.train.weight_decay}],
                             lr=run.train.lr, betas=(0.9, 0.98), eps=1e-6, fused=True)


def build_model(model_name: str, exp: ExperimentConfig) -> tuple[LoTLIP, CornerTokenizer | BertCornerTokenizer]:
    """Model and tokenizer of one experiment (random init).

    ``longclip`` builds its text tower with Long-CLIP's 248 positions directly: runs start from scratch, so
    there are no trained 77 positions to stretch (``LoTLIP.stretch_text_context`` does that for a pretrained
    native tower).
    """
    context = train_context_length(exp.method, exp.context_length)
    kwargs = {"num_corner_tokens": exp.corner_tokens, "num_register_tokens": exp.register_tokens,
              "context_length": context}
    model = create_model(model_name, corner_mask=exp.corner_mask, **kwargs)
    return model, get_tokenizer(model_name, **kwargs)


def prepare_image_tower(model: LoTLIP, exp: ExperimentConfig, fresh: bool) -> None:
    """LiT (paper Table 2): copy ``image_init``'s visual weights on a fresh start, then lock the tower if asked."""
    if exp.image_init and fresh:
        load_image_tower(model, exp.image_init)
    if exp.lock_image:
        model.lock_image_tower(unlocked_groups=0, freeze_bn_stats=True)


def loss_for(exp: ExperimentConfig, **clip_loss_kwargs) -> torch.nn.Module:
    """The training objective of a method (``clip_loss_kwargs``: open_clip's gather settings)."""
    if exp.method == "longclip":
        return LongClipLoss(**clip_loss_kwargs)
    return MultiTextClipLoss(short_share=exp.short_share, **clip_loss_kwargs)


def _save_state(path: Path, model, optimizer, train_step: TrainStep, step: int) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "torch_rng": torch.get_rng_state(), "train_step": train_step.state_dict()}
    save_checkpoint(state, path)


def _trim_log(log_path: Path, step: int) -> bool:
    """Keep the header and the rows of steps <= ``step`` (the resumed checkpoint's), rewritten atomically: rows
    written after that checkpoint (flushed before an interrupt) are done again and must not appear twice.
    Returns False when the log has no header (it is then started anew)."""
    with open(log_path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][:1] != ["step"]:
        return False
    kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
    with atomic_path(log_path) as tmp, open(tmp, "w", newline="") as fh:
        csv.writer(fh).writerows(kept)
    return True


def _remove_stale_temps(work: Path, out_path: Path) -> None:
    """Drop the temp files of checkpoint writes a killed run left (``atomic_path`` cleans up on errors only)."""
    for tmp in [*work.glob(".last.pt.*.tmp"), *work.glob(f".{out_path.name}.*.tmp")]:
        log.info("removing %s, left by an interrupted checkpoint write", tmp)
        tmp.unlink(missing_ok=True)


def train(run: RunConfig, shard_dir: str | Path, out_path: str | Path,
          text_init: str | Path | None = None) -> dict:
    """Train ``run`` on the shards in ``shard_dir``; write the final model to ``out_path``.

    Per-step loss, learning rate and samples/s go to ``<out dir>/log.csv`` and to TensorBoard
    (``<out dir>/tensorboard``), with a progress bar on a terminal. A resumable state is kept in
    ``<out dir>/last.pt`` every ``checkpoint_every`` steps and training resumes from it when present (log rows
    after its step are dropped; temp files of a killed checkpoint write are removed first).
    ``text_init``: the checkpoint of the run named by ``experiment.text_init``, whose text tower starts this
    one. Returns a summary (final loss, steps, samples/s).
    """
    out_path = Path(out_path)
    work = out_path.parent
    with writing(out_path):  # a read-only folder: one error naming the output
        work.mkdir(parents=True, exist_ok=True)
    tc, exp = run.train, run.experiment
    torch.set_num_threads(tc.threads)
    _seed_everything(tc.seed)
    dist_info = distributed.current()  # several processes when the job runs several tasks (see launcher)
    device = distributed.device_for(tc.device, dist_info)
    local_batch = distributed.local_batch_size(tc.batch_size, dist_info)
    if local_batch % tc.accum_steps:
        raise ValueError(f"train.accum_steps: {tc.accum_steps} does not divide the per-process batch {local_batch} "
                         f"(train.batch_size {tc.batch_size} over {dist_info.world_size} processes)")
    model, tokenizer = build_model(tc.model, exp)
    state_path = work / "last.pt"
    if dist_info.is_main:
        _remove_stale_temps(work, out_path)
    prepare_image_tower(model, exp, fresh=not state_path.is_file())
    if exp.text_init and not state_path.is_file():
        if text_init is None:
            raise ValueError(f"run {run.name}: experiment.text_init is {exp.text_init!r} but no checkpoint was given")
        fresh_keys = load_text_tower(model, text_init)
        log.info("text tower initialised from %s (%d tensors left fresh)", text_init, len(fresh_keys))
    model = model.to(device)
    transform = image_transform(model, is_train=tc.augment)
    optimizer = _optimizer(model, run)
    scheduler = cosine_lr(optimizer, tc.lr, tc.warmup_steps, tc.steps)
    loss_fn = loss_for(exp, **distributed.gather_kwargs(dist_info, with_grad=tc.gather_with_grad))
    train_step = TrainStep(model, optimizer, loss_fn, device, precision=tc.precision, accum_steps=tc.accum_steps,
                           grad_clip_norm=tc.grad_clip_norm, sync_gradients=distributed.average_gradients)

    start = 0
    if state_path.is_file():
        state = read_checkpoint(state_path)  # weights_only=True; a damaged file is one error naming it
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        train_step.load_state_dict(state.get("train_step", {}))
        start = int(state["step"])
        log.info("resuming %s from step %d", run.name, start)

    skips = SkipCounter(strict=run.sampling.strict)
    urls = shard_urls(shard_dir)
    keep = first_keys(urls, exp.train_samples) if exp.train_samples else None
    batches = parallel_train_batches(distributed.rank_shards(urls, dist_info), tc.workers, start_step=start,
                                     skips=skips, sampling=run.sampling, tokenizer=tokenizer, transform=transform,
                                     batch_size=local_batch,
                                     seed=tc.seed, captioners=exp.captioners, keep=keep,
                                     sizes=shard_counts(shard_dir))
    log_path = work / "log.csv"
    new_log = start == 0 or not log_path.is_file()
    if not new_log and dist_info.is_main:
        new_log = not _trim_log(log_path, start)
    model.train()
    if exp.lock_image:
        model.visual.eval()  # LiT: the locked tower runs in inference mode
    t0, loss_value = time.perf_counter(), float("nan")
    board = SummaryWriter(str(work / "tensorboard"), purge_step=start) if dist_info.is_main else None
    progress = tqdm(range(start, tc.steps), initial=start, total=tc.steps, desc=run.name, unit="step",
                    disable=None if dist_info.is_main else True)  # None: shown only on a terminal
    log_file = log_path if dist_info.is_main else os.devnull
    with writing(log_path), open(log_file, "w" if new_log else "a", newline="") as fh:  # full disk: names log.csv
        writer = csv.writer(fh)
        if new_log:
            writer.writerow(["step", "loss", "short_loss", "long_loss", "lr", "logit_scale", "samples_per_s"])
        for step in progress:
            t_step = time.perf_counter()
            images, tokens = next(batches)
            lr = scheduler(step)
            try:
                losses = train_step(images, tokens)
            except FloatingPointError as exc:
                raise FloatingPointError(f"run {run.name}: {exc} at step {step}") from None
            loss_value = losses["loss"]
            speed = tc.batch_size / (time.perf_counter() - t_step)
            writer.writerow([step + 1, f"{loss_value:.5f}", f"{float(losses['short_loss']):.5f}",
                             f"{float(losses['long_loss']):.5f}", f"{lr:.6g}",
                             f"{model.logit_scale.exp().item():.3f}", f"{speed:.1f}"])
            if board is not None:
                for tag, value in (("loss/total", loss_value), ("loss/short", float(losses["short_loss"])),
                                   ("loss/long", float(losses["long_loss"])), ("lr", lr),
                                   ("logit_scale", model.logit_scale.exp().item()), ("samples_per_s", speed)):
                    board.add_scalar(tag, value, step + 1)
            progress.set_postfix(loss=f"{loss_value:.3f}", sps=f"{speed:.0f}", refresh=False)
            if (step + 1) % 10 == 0:
                fh.flush()
            if (step + 1) % tc.checkpoint_every == 0 and step + 1 < tc.steps and dist_info.is_main:
                fh.flush()
                _save_state(state_path, model, optimizer, train_step, step + 1)
    progress.close()
    batches.close()  # stops loader workers, if any
    if board is not None:
        board.close()
    elapsed = time.perf_counter() - t0
    summary = {"steps": tc.steps, "resumed_from": start, "final_loss": loss_value,
               "world_size": dist_info.world_size, "per_process_batch": local_batch,
               "train_seconds": round(elapsed, 2),
               "samples_per_s": round((tc.steps - start) * tc.batch_size / max(elapsed, 1e-9), 1),
               "skipped_samples": dict(skips.counts)}
    if skips.counts:
        log.warning("run %s skipped bad samples: %s", run.name, dict(skips.counts))
    if not dist_info.is_main:
        return summary
    meta = {**provenance(to_dict(run), tc.seed), "summary": summary}
    save_model(out_path, model, tc.model, exp.corner_mask, meta)
    if state_path.is_file():
        os.remove(state_path)
    return summary
