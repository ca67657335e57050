"""Data-parallel LoTLIP loss: 2 gloo processes on halves of a batch match 1 process on the whole batch.

With the gather with gradient the averaged gradients equal the single-process ones; with the release's no-grad
gather every gradient is the single-process one divided by the world size, except the logit scale's (exact).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from lotlip.train import distributed
from lotlip.train.distributed import DistInfo

WORLD = 2
BATCH = 8  # global
WORDS = ["red", "blue", "green", "circle", "square", "left", "right", "small", "large", "top", "bottom", "star"]


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed global batch: images [B, 3, 32, 32] and tokens [B, 1 + N, L] (raw caption + N = 2 long texts)."""
    from lotlip.model import get_tokenizer
    from lotlip.model.tokenizer import trim_padding

    g = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, 32, 32, generator=g)
    texts = [" ".join(WORDS[j] for j in torch.randint(len(WORDS), (4 + k % 5,), generator=g).tolist())
             for k in range(BATCH * 3)]
    tok = get_tokenizer("lotlip-tiny", num_corner_tokens=2)
    return images, trim_padding(tok(texts), tok.pad_id).view(BATCH, 3, -1)


def _loss_and_grads(info: DistInfo, images: torch.Tensor, tokens: torch.Tensor,
                    with_grad: bool = True) -> tuple[float, dict]:
    """The trainer's step (lotlip.train.step) up to the synchronised gradients, on this rank's part of the batch."""
    from lotlip.model import MultiTextClipLoss, create_model
    from lotlip.train.step import TrainStep

    torch.manual_seed(0)  # identical initial weights on every rank
    model = create_model("lotlip-tiny", num_corner_tokens=2)
    part = slice(info.rank * BATCH // info.world_size, (info.rank + 1) * BATCH // info.world_size)
    loss_fn = MultiTextClipLoss(**distributed.gather_kwargs(info, with_grad=with_grad))
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0), loss_fn, torch.device("cpu"))
    loss = step.compute_gradients(images[part], tokens[part])["loss"]
    distributed.average_gradients(model)
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    info = distributed.setup(backend="gloo")
    try:
        images, tokens = _batch()
        loss, grads = _loss_and_grads(info, images, tokens, with_grad=True)
        loss_nograd, grads_nograd = _loss_and_grads(info, images, tokens, with_grad=False)
        gathered = distributed.all_gather_with_grad(torch.full((1, 2), float(rank), requires_grad=True))
        torch.save({"loss": loss, "grads": grads, "loss_nograd": loss_nograd, "grads_nograd": grads_nograd,
                    "info": info, "gathered": gathered.detach()},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        distributed.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    """Run the 2 ranks. Forked (as DataLoader workers are) so they share this process's imports: spawn would
    spend about 10 s importing torch and open_clip twice on 2 cores. Each worker uses 1 intra-op thread."""
    import lotlip.model  # noqa: F401  (imported once, before the fork)
    import lotlip.train.loop  # noqa: F401

    out = tmp_path_factory.mktemp("ddp")
    ctx = mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False, start_method="fork")
    deadline = time.monotonic() + 60
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("the 2 gloo workers did not finish within 60 s")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.parametrize("gather", ["with_grad", "nograd"])
def test_two_ranks_against_one_process_on_the_global_batch(ddp_results, gather):
    """with_grad: the single-process gradients exactly; nograd (the release's): divided by the world size, except
    the logit scale's (every rank uses it in full)."""
    torch.set_num_threads(1)
    images, tokens = _batch()
    loss, grads = _loss_and_grads(DistInfo(), images, tokens)
    suffix = "" if gather == "with_grad" else "_nograd"
    for res in ddp_results:
        assert res[f"loss{suffix}"] == pytest.approx(loss, rel=1e-5)
        assert res[f"grads{suffix}"].keys() == grads.keys() and len(grads) > 10
        for name, g in grads.items():
            expected = g if gather == "with_grad" or name == "logit_scale" else g / WORLD
            torch.testing.assert_close(res[f"grads{suffix}"][name], expected, rtol=1e-4, atol=1e-6, msg=name)
    assert "logit_scale" in grads and grads["logit_scale"].abs().item() > 0


def test_ranks_and_gather(ddp_results):
    assert [r["info"] for r in ddp_results] == [DistInfo(0, 2, 0), DistInfo(1, 2, 1)]
    for res in ddp_results:
        assert res["gathered"].tolist() == [[0.0, 0.0], [1.0, 1.0]]


def test_rank_shards_and_batch_split():
    urls = [f"s{i}.tar" for i in range(5)]
    assert distributed.rank_shards(urls, DistInfo(0, 2)) == ["s0.tar", "s2.tar", "s4.tar"]
    assert distributed.rank_shards(urls, DistInfo(1, 2)) == ["s1.tar", "s3.tar"]
    assert distributed.rank_shards(urls, DistInfo()) == urls
    with pytest.raises(ValueError, match="5 shards cannot feed 8 processes"):
        distributed.rank_shards(urls, DistInfo(0, 8))
    assert distributed.local_batch_size(128, DistInfo(0, 4)) == 32
    with pytest.raises(ValueError, match="train.batch_size: 10 is not divisible by the 4 processes"):
        distributed.local_batch_size(10, DistInfo(0, 4))


def test_single_process_needs_no_process_group(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(var, raising=False)
    assert distributed.setup() == DistInfo() and distributed.current() == DistInfo()
    x = torch.ones(2, 3)
    assert distributed.all_gather_with_grad(x) is x
    assert distributed.device_for("cuda", DistInfo(1, 2, 1)) == torch.device("cuda", 1)
    assert distributed.device_for("cpu", DistInfo(1, 2, 1)) == torch.device("cpu")
