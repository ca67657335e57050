"""Ablations and peer baselines: register tokens (Table 7), LiT (Table 2), the Long-CLIP recipe (Table 2)."""

import dataclasses

import pytest
import torch
from open_clip.loss import ClipLoss

from lotlip.config import ConfigError, load_config, run_config
from lotlip.model import LongClipLoss, create_model, get_tokenizer
from lotlip.model.checkpoint import load_image_tower, load_model, save_model
from lotlip.model.loss import SmoothedClipLoss, pca_reconstruct
from lotlip.model.text_tower import stretch_positional_embedding
from lotlip.train import loop
from tests.conftest import TINY

K, R = 2, 3
TOWERS = ["lotlip-tiny", "lotlip_bert-tiny"]
TEXT = "a red circle at the top. a blue square on grey"


def _embedding(model):
    text = model.text
    return text.token_embedding.weight if hasattr(text, "token_embedding") else \
        text.transformer.get_input_embeddings().weight


def _last_hidden_module(model):
    """The module whose output is the final per-token hidden state (before pooling)."""
    text = model.text
    return text.transformer if hasattr(text, "token_embedding") else text.transformer.encoder


@pytest.fixture(scope="module", params=TOWERS)
def reg_tower(request):
    torch.manual_seed(0)
    model = create_model(request.param, num_corner_tokens=K, num_register_tokens=R).eval()
    return model, get_tokenizer(request.param, num_corner_tokens=K, num_register_tokens=R)


def test_tokenizers_place_registers_after_corners(reg_tower):
    model, tok = reg_tower
    row = tok([TEXT])[0]
    assert row[1: 1 + K].tolist() == tok.corner_ids and row[1 + K: 1 + K + R].tolist() == tok.register_ids
    assert tok.register_ids == list(range(tok.corner_ids[-1] + 1, tok.corner_ids[-1] + 1 + R))
    assert _embedding(model).shape[0] == tok.vocab_size


def test_features_are_cls_and_corners_only(reg_tower):
    model, tok = reg_tower
    with torch.no_grad():
        feats, cls = model.encode_text_all(tok([TEXT, "a red circle"])), model.encode_text(tok([TEXT]))
    assert feats.shape[:2] == (2, 1 + K)
    assert torch.allclose(cls, feats[:1, 0], atol=1e-5)


def test_register_outputs_never_reach_the_features(reg_tower):
    model, tok = reg_tower
    text = tok([TEXT])

    def scramble_registers(_module, _inputs, output):
        hidden = output if isinstance(output, torch.Tensor) else output[0]
        hidden[:, 1 + K: 1 + K + R] += 100 * torch.randn_like(hidden[:, 1 + K: 1 + K + R])

    with torch.no_grad():
        base = model.encode_text_all(text)
        handle = _last_hidden_module(model).register_forward_hook(scramble_registers)
        try:
            scrambled = model.encode_text_all(text)
        finally:
            handle.remove()
    assert torch.equal(base, scrambled)


def _perturbed(model, tok, token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    emb = _embedding(model)
    text = tok([TEXT])
    with torch.no_grad():
        base = model.encode_text_all(text)
        saved = emb[token_id].clone()
        emb[token_id] += torch.randn(emb.shape[1])  # random: LayerNorm would erase a constant shift
        moved = model.encode_text_all(text)
        emb[token_id] = saved
    return base[0], moved[0]


def test_registers_are_plain_attention_memory_read_by_cls(reg_tower):
    """Decision: under the corner mask registers attend / are attended like words, so [CLS] reads them."""
    model, tok = reg_tower
    base, moved = _perturbed(model, tok, tok.register_ids[0])
    assert not torch.allclose(base[0], moved[0], atol=1e-5)


def test_corners_stay_isolated_with_registers(reg_tower):
    """[CLS] and corner 0 are blind to corner 1 (so registers, which [CLS] reads, never saw it either)."""
    model, tok = reg_tower
    base, moved = _perturbed(model, tok, tok.corner_ids[1])
    assert torch.allclose(base[:2], moved[:2], atol=1e-6)
    assert not torch.allclose(base[2], moved[2], atol=1e-4)


def test_register_model_round_trips_through_a_checkpoint(tmp_path):
    model = create_model("lotlip-tiny", num_corner_tokens=K, num_register_tokens=R, context_length=96)
    save_model(tmp_path / "m.pt", model, "lotlip-tiny", True, {})
    loaded, tok, _ = load_model(tmp_path / "m.pt")
    assert loaded.num_register_tokens == R and loaded.context_length == 96 and tok.register_ids


# --- LiT -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_checkpoint(tmp_path_factory):
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("init") / "source.pt"
    save_model(path, create_model("lotlip-tiny", num_corner_tokens=0), "lotlip-tiny", True, {})
    return path


def _visual(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith("visual.")}


def test_image_init_copies_visual_weights_only(source_checkpoint):
    src = torch.load(source_checkpoint, weights_only=True)["state_dict"]
    torch.manual_seed(0)
    model = create_model("lotlip-tiny", num_corner_tokens=K)
    text_before = model.text.token_embedding.weight.clone()
    load_image_tower(model, source_checkpoint)
    assert all(torch.equal(v, src[k]) for k, v in _visual(model.state_dict()).items())
    assert torch.equal(model.text.token_embedding.weight, text_before)


def test_image_init_names_missing_keys(source_checkpoint, tmp_path):
    payload = torch.load(source_checkpoint, weights_only=True)
    del payload["state_dict"]["visual.proj"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"experiment.image_init .*missing keys \(1\): visual.proj"):
        load_image_tower(create_model("lotlip-tiny"), tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="experiment.image_init"):
        load_image_tower(create_model("lotlip-tiny"), tmp_path / "nope.pt")


def test_locked_image_tower_has_no_optimizer_state(tiny_cfg):
    exp = dataclasses.replace(tiny_cfg.experiments["lotlip"], lock_image=True)
    model, _ = loop.build_model("lotlip-tiny", exp)
    loop.prepare_image_tower(model, exp, fresh=True)
    optimized = {id(p) for group in loop._optimizer(model, run_config(tiny_cfg, "lotlip")).param_groups
                 for p in group["params"]}
    assert not optimized & {id(p) for p in model.visual.parameters()}
    assert {id(p) for p in model.text.parameters()} <= optimized


def _cfg(**experiments):
    return load_config({**TINY, "experiments": experiments})


def _run(cfg, name, **train):
    rc = run_config(cfg, name)
    return dataclasses.replace(rc, train=dataclasses.replace(rc.train, **train))


def test_lit_step_keeps_visual_weights_and_trains_text(tiny_world, source_checkpoint, tmp_path):
    _, _, shards = tiny_world
    cfg = _cfg(lit={"method": "long", "lock_image": True, "image_init": str(source_checkpoint)})
    run = _run(cfg, "lit", steps=2)
    loop.train(run, shards, tmp_path / "lit" / "model.pt")
    trained = torch.load(tmp_path / "lit" / "model.pt", weights_only=True)["state_dict"]
    src = torch.load(source_checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(v, src[k]) for k, v in _visual(trained).items())
    torch.manual_seed(run.train.seed)
    initial = loop.build_model(run.train.model, run.experiment)[0].state_dict()
    assert not torch.equal(trained["text.token_embedding.weight"], initial["text.token_embedding.weight"])
    assert not torch.equal(trained["text.text_projection"], initial["text.text_projection"])


# --- Long-CLIP -----------------------------------------------------------------------------------------


def test_positional_stretch_keeps_first_20_rows_and_has_248():
    pos = torch.randn(77, 16)
    out = stretch_positional_embedding(pos)
    assert out.shape == (248, 16)
    assert torch.equal(out[:20], pos[:20])
    assert torch.allclose(out[20::4], pos[20:], atol=1e-6)  # old rows are the interpolation nodes
    assert torch.allclose(out[21], 0.75 * pos[20] + 0.25 * pos[21], atol=1e-6)


def test_model_stretch_grows_the_native_context():
    model = create_model("lotlip-tiny", num_corner_tokens=0)
    first = model.text.positional_embedding[:20].detach().clone()
    model.stretch_text_context()
    assert model.context_length == model.text.context_length == 248
    assert torch.equal(model.text.positional_embedding[:20], first)
    with torch.no_grad():
        assert model.encode_text(torch.randint(1, 1000, (2, 248))).shape == (2, 128)
    with pytest.raises(ValueError, match="native text tower"):
        create_model("lotlip_bert-tiny").stretch_text_context()


def test_pca_reconstruction_is_exact_for_rank_32():
    torch.manual_seed(0)
    feats = torch.randn(64, 32, dtype=torch.float64) @ torch.randn(32, 128, dtype=torch.float64)
    assert torch.allclose(pca_reconstruct(feats, 32), feats, atol=1e-8)
    fuller = torch.randn(64, 128, dtype=torch.float64)
    assert not torch.allclose(pca_reconstruct(fuller, 32), fuller, atol=1e-2)


def test_label_smoothing_changes_the_loss_and_zero_is_clip_loss():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    txt = torch.nn.functional.normalize(img + 0.3 * torch.randn(8, 16), dim=-1)
    scale = torch.tensor(10.0)
    assert torch.allclose(SmoothedClipLoss(0.0)(img, txt, scale), ClipLoss()(img, txt, scale))
    assert not torch.allclose(SmoothedClipLoss(0.1)(img, txt, scale), ClipLoss()(img, txt, scale))


def test_long_clip_loss_matches_short_against_primary_components():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(40, 64), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(40, 3, 64), dim=-1)
    scale = torch.tensor(10.0)
    out = LongClipLoss(pca_dim=8)(img, txt, scale)
    smooth = SmoothedClipLoss(0.1)
    primary = torch.nn.functional.normalize(pca_reconstruct(img, 8), dim=-1)
    short = smooth(primary, txt[:, 0], scale)
    long = (smooth(img, txt[:, 1], scale) + smooth(img, txt[:, 2], scale)) / 2
    assert torch.allclose(out["loss"], (short + long) / 2) and torch.allclose(out["short_loss"], short)


def test_run_config_resolves_the_new_knobs():
    cfg = _cfg(lc={"method": "longclip", "corner_tokens": 2}, reg={"method": "lotlip", "register_tokens": 4},
               plain={"method": "long"})
    assert run_config(cfg, "lc").experiment.corner_tokens == 0
    assert run_config(cfg, "reg").experiment.register_tokens == 4
    plain = run_config(cfg, "plain").experiment
    assert plain.register_tokens == 0 and not plain.lock_image and plain.image_init is None
    with pytest.raises(ConfigError, match="experiments.bad.register_tokens"):
        run_config(_cfg(bad={"method": "longclip", "register_tokens": 1}), "bad")
    with pytest.raises(ConfigError, match="experiments.bad.n_subcaptions"):
        run_config(_cfg(bad={"method": "longclip", "n_subcaptions": 0}), "bad")
    with pytest.raises(ConfigError, match="experiments.x.method: 'clip'"):
        _cfg(x={"method": "clip"})


# --- every method trains ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, exp", [
    ("short", {"method": "short"}),
    ("long", {"method": "long"}),
    ("lotlip", {"method": "lotlip", "corner_tokens": 2}),
    ("nomask", {"method": "lotlip", "corner_tokens": 2, "corner_mask": False}),
    ("registers", {"method": "long", "register_tokens": 2}),
    ("longclip", {"method": "longclip"}),
    ("lit", {"method": "lotlip", "lock_image": True}),
])
def test_two_step_run_of_each_method(tiny_world, tmp_path, name, exp):
    _, _, shards = tiny_world
    run = _run(_cfg(**{name: exp}), name, steps=2)
    summary = loop.train(run, shards, tmp_path / name / "model.pt")
    assert summary["steps"] == 2 and summary["final_loss"] > 0
    model, tok, _ = load_model(tmp_path / name / "model.pt")
    assert model.num_corner_tokens == run.experiment.corner_tokens
    assert model.num_register_tokens == run.experiment.register_tokens
    assert model.context_length == (248 if name == "longclip" else 77) == tok.context_length
