import pytest
import torch
from open_clip.loss import ClipLoss

from lotlip.model import MultiTextClipLoss, create_model, get_tokenizer, list_models
from lotlip.model.attention_mask import corner_attention_mask
from lotlip.model.tokenizer import trim_padding


def test_registry_lists_bundled_configs():
    assert "lotlip-tiny" in list_models()
    with pytest.raises(ValueError, match="unknown"):
        create_model("no-such-model")


def test_tokenizer_places_corners_after_start_token():
    tok = get_tokenizer("lotlip-tiny", num_corner_tokens=2)
    ids = tok(["a red circle on grey"])[0]
    assert ids[0] == tok._bpe.sot_token_id
    assert ids[1:3].tolist() == tok.corner_ids == [49408, 49409]
    words = ids[3:][ids[3:] != 0]
    assert words[-1] == tok._bpe.eot_token_id and len(words) == 6  # 5 words + EOT
    long = tok(["word " * 200])[0]
    assert long.shape == (77,) and long[-1] == tok._bpe.eot_token_id


def test_mask_matches_the_rule_exactly():
    valid = torch.tensor([[True] * 5 + [False]])  # [CLS] c0 c1 w1 w2 PAD
    allowed = corner_attention_mask(valid, num_corners=2, use_corner_mask=True) == 0
    expected = torch.tensor([
        # CLS   c0     c1     w1    w2    pad
        [True, False, False, True, True, False],  # CLS: itself + words
        [False, True, False, True, True, False],  # c0: itself + words
        [False, False, True, True, True, False],  # c1
        [True, False, False, True, True, False],  # w1: CLS + words, never corners
        [True, False, False, True, True, False],  # w2
        [True, False, False, True, True, False],  # pad query
    ])
    assert torch.equal(allowed[0], expected)
    off = corner_attention_mask(valid, 2, use_corner_mask=False) == 0
    assert off[0, :, :5].all() and not off[0, :, 5].any()


@pytest.fixture(scope="module")
def tower():
    torch.manual_seed(0)
    model = create_model("lotlip-tiny", num_corner_tokens=2).eval()
    return model, get_tokenizer("lotlip-tiny", num_corner_tokens=2)


def test_changing_a_word_changes_cls_and_every_corner(tower):
    model, tok = tower
    with torch.no_grad():
        a, b = model.encode_text_all(tok(["a red circle at the top", "a blue circle at the top"]))
    assert all(not torch.allclose(a[i], b[i], atol=1e-5) for i in range(3))


def test_changing_a_corner_leaves_cls_unchanged_only_with_mask(tower):
    model, tok = tower
    text = tok(["a red circle at the top"])
    with torch.no_grad():
        base = model.encode_text_all(text)
        emb = model.text.token_embedding.weight
        saved = emb[49409].clone()
        emb[49409] += torch.randn(emb.shape[1])  # not a constant shift: LayerNorm would erase it
        moved = model.encode_text_all(text)
        model.text.corner_mask = False
        unmasked = model.encode_text_all(text)
        emb[49409] = saved
        model.text.corner_mask = True
    assert torch.allclose(base[0, 0], moved[0, 0], atol=1e-6)  # [CLS] blind to corners
    assert torch.allclose(base[0, 1], moved[0, 1], atol=1e-6)  # corner 0 blind to corner 1
    assert not torch.allclose(base[0, 2], moved[0, 2], atol=1e-4)  # corner 1 itself moves
    assert not torch.allclose(base[0, 0], unmasked[0, 0], atol=1e-4)  # without the mask [CLS] sees it


def test_padding_length_leaves_outputs_unchanged(tower):
    model, tok = tower
    full = tok(["a red circle", "a much longer text about the blue square at the bottom"])
    with torch.no_grad():
        padded = model.encode_text_all(full)
        trimmed = model.encode_text_all(trim_padding(full))
    assert trimmed.shape == padded.shape
    assert torch.allclose(padded, trimmed, atol=1e-5)


def test_corner_outputs_differ_and_inference_returns_cls(tower):
    model, tok = tower
    text = tok(["a red circle at the top"])
    with torch.no_grad():
        feats = model.encode_text_all(text)
        cls = model.encode_text(text)
    assert not torch.allclose(feats[0, 1], feats[0, 2], atol=1e-4)
    assert torch.allclose(cls, feats[:, 0])


def test_loss_with_unit_weights_is_mean_of_clip_losses():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(8, 5, 16), dim=-1)
    scale = torch.tensor(10.0)
    ours = MultiTextClipLoss()(img, txt, scale)["loss"]
    ref = torch.stack([ClipLoss()(img, txt[:, t], scale) for t in range(5)]).mean()
    assert torch.allclose(ours, ref)
    weighted = MultiTextClipLoss(short_weight=0.0)(img, txt, scale)["loss"]
    assert torch.allclose(weighted, torch.stack([ClipLoss()(img, txt[:, t], scale) for t in range(1, 5)]).mean())
