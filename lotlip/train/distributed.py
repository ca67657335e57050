"""torch.distributed for training jobs: setup from the job's environment, a feature all-gather that keeps
gradients, per-rank shards and batch sizes.

The environment is read from torchrun's variables (``RANK``, ``WORLD_SIZE``, ...) when set, else from a
submitit job (Slurm or local executor, via ``submitit.helpers.TorchDistributedEnvironment``); anything else
is one process. NCCL is used when CUDA is available, gloo otherwise.

Loss and gradients: every rank computes the loss of the *global* batch (global logits). Two gathers:

- the release's default (``train.gather_with_grad: false``, open_clip's default): the other ranks' features are
  constants, so each rank back-propagates only through its own features; after averaging over ranks every
  feature-side gradient is the single-process gradient of the global batch divided by ``world_size``, while the
  logit scale (used in full by every rank) gets its exact gradient. AdamW normalises each parameter's gradient,
  so the update differs from the exact one only through ``eps`` and global-norm clipping.
- ``gather_with_grad: true``: ``torch.distributed.nn.all_gather`` sums the gradients of the gathered copies back
  onto each rank's own features, each rank holds ``world_size`` times its share, and averaging gives exactly the
  single-process gradient of the global batch.

``tests/train/test_ddp.py`` checks both statements with 2 gloo ranks.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _export_submitit_env() -> None:
    """Set MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK from the submitit job (one GPU set for all tasks)."""
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def env_info() -> DistInfo:
    """Rank and world size from the environment (torchrun's variables, else a submitit job, else one process)."""
    if "RANK" not in os.environ and os.environ.get("SUBMITIT_EXECUTOR") in ("slurm", "local"):
        _export_submitit_env()
    if "RANK" not in os.environ:
        return DistInfo()
    return DistInfo(rank=int(os.environ["RANK"]), world_size=int(os.environ.get("WORLD_SIZE", 1)),
                    local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def current() -> DistInfo:
    """The initialised process group's place, or one process."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def setup(backend: str | None = None, timeout_min: float = 30.0) -> DistInfo:
    """Join the job's process group when it has more than one process (idempotent); returns this process's place."""
    if dist.is_available() and dist.is_initialized():
        return current()
    info = env_info()
    if info.world_size == 1:
        return info
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend, rank=info.rank, world_size=info.world_size,
                            timeout=datetime.timedelta(minutes=timeout_min))
    return info


def cleanup() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(requested: str, info: DistInfo) -> torch.device:
    """``cuda`` becomes this process's GPU (``cuda:<local_rank>``); other devices are kept."""
    device = torch.device(requested)
    if device.type == "cuda" and device.index is None and info.world_size > 1:
        return torch.device("cuda", info.local_rank)
    return device


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0; gradients flow back to each rank's own part."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch.distributed.nn.functional as dist_fn

    return torch.cat(dist_fn.all_gather(x), dim=0)


def gather_kwargs(info: DistInfo, with_grad: bool = False) -> dict:
    """open_clip ``ClipLoss`` settings for a loss over the global batch (none for one process).

    ``with_grad``: gather with gradient (exact global-batch gradient) instead of the release's no-grad gather.
    """
    if info.world_size == 1:
        return {}
    return {"rank": info.rank, "world_size": info.world_size, "gather_with_grad": with_grad, "local_loss": False}


def average_gradients(module: torch.nn.Module) -> None:
    """Average parameter gradients over ranks with one all-reduce (what DDP does), for models used without DDP."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(dist.get_world_size())
    for g, synced in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(synced.view_as(g))


def rank_shards(urls: list[str], info: DistInfo) -> list[str]:
    """This rank's shards: ``urls[rank::world_size]`` (each rank reads its own files)."""
    if info.world_size > len(urls):
        raise ValueError(f"{len(urls)} shards cannot feed {info.world_size} processes: write at least one shard "
                         f"per process (lower shards.samples_per_shard)")
    return urls[info.rank::info.world_size]


def local_batch_size(global_batch: int, info: DistInfo) -> int:
    """Per-process batch of a global batch split evenly over the ranks."""
    if global_batch % info.world_size:
        raise ValueError(f"train.batch_size: {global_batch} is not divisible by the {info.world_size} processes")
    return global_batch // info.world_size
