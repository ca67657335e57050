import dataclasses

import pytest
import torch

from lotlip.config import run_config
from lotlip.eval.retrieval import evaluate_long_retrieval, recall_at_k
from lotlip.model.checkpoint import load_model
from lotlip.train import loop
from lotlip.world.build import build_benchmark


def test_recall_at_k_blocked_equals_direct():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(50, 8), dim=-1)
    txt = torch.nn.functional.normalize(img + 0.5 * torch.randn(50, 8), dim=-1)
    sims = img @ txt.T
    i2t = 100 * (sims.argmax(1) == torch.arange(50)).float().mean().item()
    t2i = 100 * (sims.argmax(0) == torch.arange(50)).float().mean().item()
    assert recall_at_k(img, txt, block=7) == pytest.approx((i2t, t2i))
    assert recall_at_k(img, img) == (100.0, 100.0)
    assert recall_at_k(img, img.flip(0)) == (0.0, 0.0)


def test_text_features_count(tiny_cfg):
    from lotlip.model import create_model

    model = create_model("lotlip-tiny", num_corner_tokens=2)
    tokens = torch.randint(1, 1000, (4, 4, 10))  # [B, 1+N, L], N = 3
    assert loop.text_features(model, tokens).shape == (4, 1 + 3 * 3, 128)


def _run(tiny_cfg, name, **train):
    rc = run_config(tiny_cfg, name)
    return dataclasses.replace(rc, train=dataclasses.replace(rc.train, **train))


def test_train_writes_a_loadable_checkpoint_and_evaluates(tiny_cfg, tiny_world, tmp_path):
    _, _, shards = tiny_world
    summary = loop.train(_run(tiny_cfg, "lotlip"), shards, tmp_path / "lotlip" / "model.pt")
    assert summary["steps"] == 4 and summary["final_loss"] > 0
    assert not (tmp_path / "lotlip" / "last.pt").exists()
    lines = (tmp_path / "lotlip" / "log.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss") and len(lines) == 5
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tmp_path / "lotlip" / "tensorboard"))
    board.Reload()
    losses = board.Scalars("loss/total")
    assert [e.step for e in losses] == [1, 2, 3, 4]
    assert losses[-1].value == pytest.approx(float(lines[-1].split(",")[1]), rel=1e-4)
    assert {"lr", "samples_per_s", "loss/short", "loss/long"} <= set(board.Tags()["scalars"])
    model, tok, meta = load_model(tmp_path / "lotlip" / "model.pt")
    assert model.num_corner_tokens == 2 and meta["seed"] == 0 and meta["config"]["name"] == "lotlip"
    build_benchmark(tiny_cfg.benchmarks["dci_syn"], tiny_cfg.world, tmp_path / "bench")
    metrics = evaluate_long_retrieval(model, tok, tmp_path / "bench")
    assert metrics["n_images"] == 12 and 0 <= metrics["i2t_r1"] <= 100


@pytest.mark.parametrize(("workers", "precision", "accum_steps"), [
    (0, "fp32", 1), (2, "fp32", 1),
    pytest.param(0, "bf16", 2, marks=pytest.mark.slow),  # ~40 s: bf16 is emulated on CPUs without bf16 instructions
])
def test_interrupted_training_resumes_to_identical_weights(tiny_cfg, tiny_world, tmp_path, monkeypatch, workers,
                                                           precision, accum_steps):
    _, _, shards = tiny_world
    run = _run(tiny_cfg, "lotlip", steps=4, checkpoint_every=2, workers=workers, precision=precision,
               accum_steps=accum_steps, grad_clip_norm=1.0)
    loop.train(run, shards, tmp_path / "a" / "model.pt")

    real_batches = loop.parallel_train_batches

    def dying_batches(*args, **kwargs):
        for i, batch in enumerate(real_batches(*args, **kwargs)):
            if i == 3:
                raise KeyboardInterrupt("simulated kill at step 3")
            yield batch

    monkeypatch.setattr(loop, "parallel_train_batches", dying_batches)
    with pytest.raises(KeyboardInterrupt):
        loop.train(run, shards, tmp_path / "b" / "model.pt")
    assert (tmp_path / "b" / "last.pt").exists() and not (tmp_path / "b" / "model.pt").exists()
    monkeypatch.setattr(loop, "parallel_train_batches", real_batches)
    summary = loop.train(run, shards, tmp_path / "b" / "model.pt")
    assert summary["resumed_from"] == 2
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "model": "lotlip-tiny", "num_corner_tokens": 0, "corner_mask": True,
                "x": Evil()}, path)
    with pytest.raises(ValueError, match="refused to load with weights_only=True"):
        load_model(path)


def test_bert_family_trains_and_reloads(tiny_cfg, tiny_world, tmp_path):
    _, _, shards = tiny_world
    run = _run(tiny_cfg, "lotlip", steps=2, model="lotlip_bert-tiny")
    summary = loop.train(run, shards, tmp_path / "bert" / "model.pt")
    assert summary["steps"] == 2
    model, tok, _ = load_model(tmp_path / "bert" / "model.pt")
    assert type(model.text).__name__ == "BertCornerTextEncoder" and tok.num_corners == 2
    build_benchmark(tiny_cfg.benchmarks["dci_syn"], tiny_cfg.world, tmp_path / "bench")
    assert evaluate_long_retrieval(model, tok, tmp_path / "bench")["n_images"] == 12
