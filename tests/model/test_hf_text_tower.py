"""The HF BERT corner-token text tower, its tokenizer and release-checkpoint compatibility (offline, tiny)."""

import itertools
import math
import random

import pytest
import torch
from open_clip.hf_model import HFTextEncoder
from open_clip.model import CustomTextCLIP
from transformers import BertConfig

from lotlip.model import get_model_config
from lotlip.model.attention_mask import corner_attention_mask
from lotlip.model.hf_text_tower import build_hf_text_tower, length_groups
from lotlip.model.hf_tokenizer import build_hf_tokenizer, tiny_vocab
from lotlip.model.release import load_release_checkpoint
from lotlip.model.tokenizer import trim_padding

K = 2
WORDS = ["a", "red", "blue", "circle", "square", "at", "the", "top", "on", "grey", "much", "longer", "text"]
BERT = {"vocab_size": 5 + len(WORDS), "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 128, "max_position_embeddings": 32}


def text_cfg(vocab: str = "", attn: str = "eager", **extra) -> dict:
    return {"context_length": 16, "hf_tokenizer_name": vocab, "hf_config": BERT, "hf_attn_implementation": attn,
            "hf_pooler_type": "cls_pooler", "hf_proj_type": "linear", **extra}


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def tok(vocab_file):
    return build_hf_tokenizer(text_cfg(vocab_file), K)


@pytest.fixture(scope="module", params=["eager", "sdpa"])
def tower(request, vocab_file):
    torch.manual_seed(0)
    model = build_hf_text_tower(text_cfg(vocab_file, request.param), 32, K, corner_mask=True).eval()
    assert model.transformer.config._attn_implementation == request.param
    return model


def ids(words: str) -> list[int]:
    return [5 + WORDS.index(w) for w in words.split()]


def test_tokenizer_layout_sentence_breaks_and_padding(tok):
    assert tok.corner_ids == [len(WORDS) + 5, len(WORDS) + 6] and tok.pad_id == 0
    row = tok("A red circle. At the top")[0]
    expected = [2, *tok.corner_ids, *ids("a red circle"), 3, *ids("at the top"), 3]
    assert row.tolist() == expected + [0] * (16 - len(expected))
    assert tok.count_tokens("A red circle. At the top") == 7  # 6 words + 1 sentence-break [SEP]
    long = tok(["red " * 40, "a"])
    assert long.shape == (2, 16) and long[0, -1] == 3 and (long[0, 3:-1] == ids("red")[0]).all()


def test_tokenizer_checks_vocab_size_against_config(vocab_file):
    with pytest.raises(ValueError, match="hf_config.vocab_size"):
        build_hf_tokenizer({**text_cfg(vocab_file), "hf_config": {**BERT, "vocab_size": 99}}, K)


def test_changing_a_word_changes_cls_and_every_corner(tower, tok):
    with torch.no_grad():
        a, b = tower.forward_all(tok(["a red circle at the top", "a blue circle at the top"]))
    assert all(not torch.allclose(a[i], b[i], atol=1e-5) for i in range(1 + K))


def test_corner_perturbation_is_invisible_only_with_the_mask(tower, tok):
    text = tok(["a red circle at the top"])
    emb = tower.transformer.get_input_embeddings().weight
    with torch.no_grad():
        base = tower.forward_all(text)
        saved = emb[tok.corner_ids[1]].clone()
        emb[tok.corner_ids[1]] += torch.randn(emb.shape[1])  # random: LayerNorm would erase a constant shift
        moved = tower.forward_all(text)
        tower.corner_mask = False
        unmasked = tower.forward_all(text)
        tower.corner_mask = True
        emb[tok.corner_ids[1]] = saved
    assert torch.allclose(base[0, 0], moved[0, 0], atol=1e-6)  # [CLS] blind to corners
    assert torch.allclose(base[0, 1], moved[0, 1], atol=1e-6)  # corner 0 blind to corner 1
    assert not torch.allclose(base[0, 2], moved[0, 2], atol=1e-4)  # corner 1 itself moves
    assert not torch.allclose(base[0, 0], unmasked[0, 0], atol=1e-4)  # without the mask [CLS] sees it


def test_word_outputs_ignore_corners_under_the_mask(tower, tok):
    text = tok(["a red circle at the top"])
    mask = corner_attention_mask(text != 0, K, True)[:, None]
    emb = tower.transformer.get_input_embeddings().weight
    with torch.no_grad():
        before = tower.transformer(input_ids=text, attention_mask=mask).last_hidden_state
        saved = emb[tok.corner_ids[0]].clone()
        emb[tok.corner_ids[0]] += torch.randn(emb.shape[1])
        after = tower.transformer(input_ids=text, attention_mask=mask).last_hidden_state
        emb[tok.corner_ids[0]] = saved
    assert torch.allclose(before[0, 1 + K:], after[0, 1 + K:], atol=1e-6)


def test_padding_length_leaves_outputs_unchanged(tower, tok):
    full = tok(["a red circle", "a much longer text on the grey square at the top"])
    with torch.no_grad():
        padded, trimmed = tower._encode(full), tower._encode(trim_padding(full))
    assert torch.allclose(padded, trimmed, atol=1e-5)


def _fewest_tokens(lengths: list[int], max_groups: int) -> int:
    """Brute force: every way to cut the sorted lengths into at most ``max_groups`` runs."""
    ordered, best = sorted(lengths), math.inf
    for groups in range(1, min(max_groups, len(ordered)) + 1):
        for cuts in itertools.combinations(range(1, len(ordered)), groups - 1):
            bounds = zip((0, *cuts), (*cuts, len(ordered)), strict=True)
            best = min(best, sum((stop - start) * ordered[stop - 1] for start, stop in bounds))
    return best


def test_length_groups_partition_the_rows_at_the_fewest_tokens():
    rng = random.Random(0)
    for _ in range(60):
        lengths = [rng.randint(1, 30) for _ in range(rng.randint(1, 10))]
        groups = length_groups(torch.tensor(lengths), max_groups=3)
        assert sorted(torch.cat([rows for rows, _ in groups]).tolist()) == list(range(len(lengths)))
        assert all(longest == max(lengths[i] for i in rows.tolist()) for rows, longest in groups)
        assert 1 <= len(groups) <= 3
        assert sum(len(rows) * longest for rows, longest in groups) == _fewest_tokens(lengths, 3)
    assert len(length_groups(torch.tensor([7, 7, 7]))) == 1  # a cut that saves nothing is not made
    assert [longest for _, longest in length_groups(torch.tensor([6, 40, 6, 40]))] == [6, 40]


def test_length_groups_leave_features_and_gradients_unchanged(tower, tok):
    texts = ["red", "a much longer text on the grey square at the top", "a red circle", "blue", "the top",
             "a red circle on the grey square at the top much longer", "square"]
    full = tok(texts)
    assert len(length_groups((full != tok.pad_id).sum(1))) > 1  # the batch is encoded in several passes
    results = []
    for encode in (tower.forward_all, tower._encode):  # grouped vs every row at the full context
        tower.zero_grad()
        feats = encode(full)
        feats.square().sum().backward()
        results.append((feats.detach(), [p.grad.clone() for p in tower.parameters() if p.grad is not None]))
    (grouped, grouped_grads), (padded, padded_grads) = results
    tower.zero_grad()
    assert torch.allclose(grouped, padded, atol=1e-5)
    assert len(grouped_grads) == len(padded_grads) > 0
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grouped_grads, padded_grads, strict=True))


def test_corners_differ_and_forward_is_cls(tower, tok):
    text = tok(["a red circle at the top"])
    with torch.no_grad():
        feats, cls = tower.forward_all(text), tower(text)
    assert feats.shape == (1, 1 + K, 32)
    assert not torch.allclose(feats[0, 1], feats[0, 2], atol=1e-4)
    assert torch.allclose(cls, feats[:, 0])


def test_new_embedding_rows_are_drawn_with_std_002():
    torch.manual_seed(0)
    cfg = text_cfg(**{"hf_config": {**BERT, "vocab_size": 16, "hidden_size": 512, "num_attention_heads": 4}})
    weight = build_hf_text_tower(cfg, 32, 8, True).transformer.get_input_embeddings().weight
    assert weight.shape[0] == 16 + 8
    assert abs(weight[16:].std().item() - 0.02) < 0.002 and abs(weight[16:].mean().item()) < 0.002


def test_state_dict_keys_match_open_clip_hf_text_encoder():
    ours = build_hf_text_tower(text_cfg(), 32, K, True).state_dict()
    config = BertConfig(**{**BERT, "vocab_size": BERT["vocab_size"] + K})
    ref = HFTextEncoder("bert", 32, config=config, pooler_type="cls_pooler", proj_type="linear").state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in ref.items()}
    assert "transformer.pooler.dense.weight" in ours and "proj.weight" in ours and "proj.bias" not in ours


def release_model(seed: int) -> CustomTextCLIP:
    """The tiny BERT-family model as open_clip's CustomTextCLIP with our tower (how the release is laid out)."""
    torch.manual_seed(seed)
    cfg = get_model_config("lotlip_bert-tiny")
    stub = {"context_length": 8, "vocab_size": 8, "width": 8, "heads": 1, "layers": 1}
    model = CustomTextCLIP(cfg["embed_dim"], cfg["vision_cfg"], stub)
    model.text = build_hf_text_tower(cfg["text_cfg"], cfg["embed_dim"], K, True)
    return model.eval()


@pytest.mark.parametrize("wrapped", [False, True])
def test_release_round_trip(tmp_path, wrapped):
    src, dst = release_model(0), release_model(1)
    state = src.state_dict()
    if wrapped:  # open_clip training checkpoint: DDP prefix under "state_dict"
        state = {"epoch": 32, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    torch.save(state, tmp_path / "model.pt")
    load_release_checkpoint(dst, tmp_path / "model.pt")
    tok = build_hf_tokenizer(get_model_config("lotlip_bert-tiny")["text_cfg"], K)
    text, image = tok(["a red circle. a blue square at the top"]), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(src.encode_text(text), dst.encode_text(text))
        assert torch.equal(src.text.forward_all(text), dst.text.forward_all(text))
        assert torch.equal(src.encode_image(image), dst.encode_image(image))


def test_release_loader_drops_stale_position_ids(tmp_path):
    src, dst = release_model(0), release_model(1)
    state = {**src.state_dict(), "text.transformer.embeddings.position_ids": torch.arange(64)[None]}
    torch.save(state, tmp_path / "old.pt")
    load_release_checkpoint(dst, tmp_path / "old.pt")


def test_release_loader_names_missing_unexpected_and_shape_mismatch(tmp_path):
    model = release_model(0)
    state = model.state_dict()
    del state["text.proj.weight"]
    state["text.extra.weight"] = torch.zeros(1)
    state["logit_scale"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as err:
        load_release_checkpoint(model, tmp_path / "bad.pt")
    msg = str(err.value)
    assert "missing keys (1): text.proj.weight" in msg and "unexpected keys (1): text.extra.weight" in msg
    assert "logit_scale: checkpoint (3,) vs model ()" in msg


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")  # would create the marker file if unpickling ran code


def test_release_loader_refuses_pickled_code(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"state_dict": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights_only"):
        load_release_checkpoint(release_model(0), tmp_path / "evil.pt")
    assert not marker.exists()


def test_tiny_config_builds_offline():
    cfg = get_model_config("lotlip_bert-tiny")
    assert cfg["text_cfg"]["hf_config"]["vocab_size"] == len(tiny_vocab())
    tok = build_hf_tokenizer(cfg["text_cfg"], K)
    row = tok("A grey square. 7 dots!")[0]
    assert 1 not in row.tolist()  # no [UNK]: characters cover any lowercase ASCII text
    assert row.shape == (64,)


def test_tokenizer_without_a_vocabulary_is_an_error(tmp_path):
    for name in (tmp_path, tmp_path / "missing"):  # an empty folder loads as specials-only in transformers 5
        with pytest.raises(OSError, match="hf_tokenizer_name"):
            build_hf_tokenizer({"hf_tokenizer_name": str(name)}, K)


@pytest.mark.parametrize(("dirty", "clean"), [
    ("a red &amp;amp; blue &lt;circle&gt;", "a red & blue <circle>"),          # HTML, escaped twice
    ("the \u201cred\u201d circle\u2019s side", 'the "red" circle\'s side'),      # curly quotes
    ("a caf\u00c3\u00a9 on the left", "a caf\u00e9 on the left"),              # UTF-8 read as Latin-1
    ("  a   red\n\t circle.   At  the\u00a0top  ", "a red circle. At the top"),  # runs of whitespace
])
def test_texts_are_cleaned_as_the_release_does(dirty, clean):
    from lotlip.model.hf_tokenizer import TINY_VOCAB_NAME

    tok = build_hf_tokenizer({"hf_tokenizer_name": TINY_VOCAB_NAME, "context_length": 48}, K)
    assert tok(dirty).tolist() == tok(clean).tolist()
    raw = tok._tok(dirty, add_special_tokens=False)["input_ids"]  # the guard: uncleaned text tokenises otherwise
    assert raw != tok._tok(clean, add_special_tokens=False)["input_ids"] or dirty.split() == clean.split()


def test_a_break_made_by_cleaning_stays_a_period():
    """The release joins sentences on [SEP] before cleaning: '.\\n' is no break, even once collapsed to '. '."""
    from lotlip.model.hf_tokenizer import TINY_VOCAB_NAME

    tok = build_hf_tokenizer({"hf_tokenizer_name": TINY_VOCAB_NAME, "context_length": 48}, K)
    row = tok("a red.\nblue")[0].tolist()
    assert row.count(tok.sep_id) == 1 and tok._tok.convert_tokens_to_ids(".") in row
