"""``python -m bench --gpu``: exits 2 without CUDA; ``--gpu-dry-run`` runs the same code on the CPU (2 gloo ranks)."""

import json
import sys

import pytest
import torch

from tests.conftest import REPO, run_child


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the GPU check would really run")
def test_gpu_check_without_cuda_exits_2(tmp_path):
    from bench.gpu_check import NO_CUDA

    proc = run_child([sys.executable, "-m", "bench", "--gpu", "--out", str(tmp_path)], cwd=REPO,
                     capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == NO_CUDA, proc.stderr[-2000:]
    assert not list(tmp_path.iterdir())


def test_gpu_dry_run_two_ranks_and_results_md_includes_it(tmp_path):
    proc = run_child([sys.executable, "-m", "bench", "--gpu-dry-run", "--gpu-ranks", "2", "--out", str(tmp_path)],
                     cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    g = json.loads((tmp_path / "gpu_results.json").read_text())
    assert g["mode"] == "dry-run" and g["world_size"] == 2 and g["global_batch"] == 2 * g["batch_per_gpu"] == 4
    assert g["texts_per_image"] == 7 and g["context"] == 128 and g["step_tflop"] > 0
    assert set(g["precisions"]) == {"fp32", "bf16"} and set(g["peak_tflops"]) == {"fp32", "bf16"}
    for name, row in g["precisions"].items():
        assert row["timed_steps"] == 1 and row["samples_per_s"] > 0 and row["achieved_tflops"] > 0, name
        assert set(row["breakdown_ms"]) == {"data_to_device", "forward", "backward", "all_reduce", "optimizer"}
        assert row["breakdown_ms"]["forward"] > 0 and row["breakdown_ms"]["backward"] > 0, name
        assert len(row["per_rank_step_median_s"]) == 2 and row["utilisation_bf16_peak_pct"] > 0, name
    assert [e["precision"] for e in g["eval"]] == ["fp32", "bf16"]
    assert all(e["images_per_s"] > 0 and e["texts_per_s"] > 0 for e in g["eval"])
    md = (tmp_path / "gpu_results.md").read_text()
    assert md.startswith("## 8. GPU check") and "| fp32 | 1 |" in md and "Per rank" in md

    from bench.run import main

    assert main(["--quick", "--only", "eval", "--out", str(tmp_path)]) == 0  # results.md takes figure 8 from the folder
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["gpu"]["precisions"].keys() == g["precisions"].keys()
    assert [x["figure"] for x in r["goals"]] == ["6", "8", "8"]
    assert "## 8. GPU check: the paper's training shapes" in (tmp_path / "results.md").read_text()


def test_paper_model_config_builds_offline_with_bert_vocab(tmp_path, monkeypatch):
    """The GPU check's model: lotlip_bert-ViT-B-16, random init, BERT-base text tower, 30,522-entry vocabulary."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from bench.gpu_check import BERT_VOCAB_SIZE, offline_model_config, synthetic_tokens
    from lotlip.model import create_model, get_tokenizer

    config, source = offline_model_config("lotlip_bert-ViT-B-16", tmp_path)
    cfg = json.loads(config.read_text())
    assert cfg["text_cfg"]["hf_config"] == {"vocab_size": BERT_VOCAB_SIZE} and "hf_model_name" not in cfg["text_cfg"]
    assert cfg["vision_cfg"]["timm_model_pretrained"] is False and source
    tok = get_tokenizer(str(config), context_length=128)
    assert tok.base_vocab_size == BERT_VOCAB_SIZE and tok.corner_ids == [BERT_VOCAB_SIZE, BERT_VOCAB_SIZE + 1]
    assert tok("a red circle")[0, 3].item() != tok._tok.unk_token_id  # real words still tokenise
    tokens = synthetic_tokens(tok, 2, 7, 128, 24, torch.Generator().manual_seed(0))
    assert tokens.shape == (2, 7, 128) and (tokens[:, :, 0] == tok.cls_id).all()
    assert (tokens[:, :, 1:3] == torch.tensor(tok.corner_ids)).all() and (tokens[:, 1:, -1] == tok.sep_id).all()
    assert (tokens[:, 0, 3 + 24] == tok.sep_id).all() and (tokens[:, 0, 3 + 25:] == tok.pad_id).all()
    assert int(tokens.max()) < tok.vocab_size
    model = create_model(str(config), context_length=128)
    text = model.text.transformer.config
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size) == (768, 12, BERT_VOCAB_SIZE + 2)
    assert model.visual.image_size == (224, 224)
    assert 180e6 < sum(p.numel() for p in model.parameters()) < 230e6
