"""ViT initialisation as the release: timm's ImageNet-21k state dict into the timm trunk (``vision_cfg.checkpoint_path``
or ``experiment.image_init``), classifier dropped; lotlip's image features equal timm's own pooled features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

from lotlip.model import create_model, get_model_config
from lotlip.model.checkpoint import load_image_tower, save_model
from lotlip.model.timm_init import is_timm_vit_state_dict, load_timm_checkpoint

TINY_VIT = "vit_tiny_patch16_224.augreg_in21k"  # same family as the release's B/16, 192 wide
TEXT = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1, "no_causal_mask": True,
        "pool_type": "first"}


class _Planted:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _config(tmp_path: Path, checkpoint: Path | None = None, name: str = "tiny-vit", **vision) -> str:
    vision_cfg = {"timm_model_name": TINY_VIT, "timm_model_pretrained": False, "timm_pool": "token",
                  "timm_proj": "none", "image_size": 224, **vision}
    if checkpoint is not None:
        vision_cfg["checkpoint_path"] = str(checkpoint)
    cfg = {"embed_dim": 192, "vision_cfg": vision_cfg, "text_cfg": TEXT, "lotlip": {"text_tower": "native"}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


@pytest.fixture(scope="module")
def hub_file(tmp_path_factory):
    """(path, timm model): a random-init timm ViT saved as timm's hub file is (classifier included)."""
    torch.manual_seed(0)
    ref = timm.create_model(TINY_VIT, pretrained=False).eval()
    assert ref.head.weight.shape[0] == 21843
    path = tmp_path_factory.mktemp("timm") / "pytorch_model.bin"
    torch.save(ref.state_dict(), path)
    return path, ref


def _timm_features(ref: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return ref.forward_head(ref.forward_features(x), pre_logits=True)


def _assert_same_features(model, ref) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = model.eval().encode_image(x), _timm_features(ref, x)
    assert ours.shape == theirs.shape == (2, 192)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def _one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert str(path) in message and "\n" not in message, message
    assert err.value.__cause__ is None, "no traceback chain expected"
    assert err.value.__context__ is None or err.value.__suppress_context__, "no traceback chain expected"
    return message


def test_config_checkpoint_path_initialises_the_trunk(hub_file, tmp_path):
    path, ref = hub_file
    model = create_model(_config(tmp_path, path))
    assert not any(k.startswith("visual.trunk.head") for k in model.state_dict())
    _assert_same_features(model, ref)


def test_create_time_override(hub_file, tmp_path):
    path, ref = hub_file
    _assert_same_features(create_model(_config(tmp_path), vision_checkpoint=path), ref)
    fresh = create_model(_config(tmp_path, path), vision_checkpoint="")  # "" turns the config's file off
    assert not torch.equal(fresh.visual.trunk.pos_embed, ref.pos_embed)


def test_whole_model_weights_skip_the_config_file(hub_file, tmp_path):
    path, _ = hub_file
    donor = create_model(_config(tmp_path))
    torch.save(donor.state_dict(), tmp_path / "full.pt")
    model = create_model(_config(tmp_path, tmp_path / "missing.bin"), pretrained=str(tmp_path / "full.pt"))
    assert torch.equal(model.visual.trunk.pos_embed, donor.visual.trunk.pos_embed)
    with pytest.raises(ValueError, match="not both"):
        create_model(_config(tmp_path), pretrained=str(tmp_path / "full.pt"), vision_checkpoint=path)


def test_image_init_accepts_the_timm_file(hub_file, tmp_path):
    path, ref = hub_file
    model = create_model(_config(tmp_path))
    text_before = model.text.token_embedding.weight.clone()
    assert load_image_tower(model, path) is model
    _assert_same_features(model, ref)
    assert torch.equal(model.text.token_embedding.weight, text_before)


def test_old_in21k_file_with_pre_logits_and_ddp_prefix(hub_file, tmp_path):
    path, ref = hub_file
    state = {f"module.{k}": v for k, v in torch.load(path, weights_only=True).items()}
    state["module.pre_logits.fc.weight"], state["module.pre_logits.fc.bias"] = torch.randn(192, 192), torch.randn(192)
    torch.save(state, tmp_path / "old.bin")
    model = create_model(_config(tmp_path))
    assert load_timm_checkpoint(model.visual, tmp_path / "old.bin") == [
        "head.bias", "head.weight", "pre_logits.fc.bias", "pre_logits.fc.weight"]
    _assert_same_features(model, ref)


def test_layout_detection(hub_file, tmp_path):
    path, _ = hub_file
    assert is_timm_vit_state_dict(torch.load(path, weights_only=True))
    lotlip = create_model(_config(tmp_path)).state_dict()
    assert not is_timm_vit_state_dict(lotlip)
    assert not is_timm_vit_state_dict({"a": torch.zeros(1)})


# --- errors: one line naming the file -------------------------------------------------------------------


def _via_config(tmp_path: Path, path: Path):
    return create_model(_config(tmp_path, path, name="err"))


def _via_image_init(tmp_path: Path, path: Path):
    return load_image_tower(create_model(_config(tmp_path, name="err")), path)


ROUTES = {"checkpoint_path": _via_config, "image_init": _via_image_init}


@pytest.mark.parametrize("route", ROUTES)
def test_missing_file(route, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ROUTES[route](tmp_path, tmp_path / "nope.bin")
    assert ("vision_cfg.checkpoint_path" if route == "checkpoint_path" else "experiment.image_init") in _one_line(
        err, tmp_path / "nope.bin")


@pytest.mark.parametrize("route", ROUTES)
def test_pickled_code_is_refused(route, tmp_path):
    marker = tmp_path / "PWNED"
    torch.save({"cls_token": torch.zeros(1, 1, 192), "note": _Planted(marker)}, tmp_path / "evil.bin")
    with pytest.raises(ValueError) as err:
        ROUTES[route](tmp_path, tmp_path / "evil.bin")
    assert "refused to load with weights_only=True" in _one_line(err, tmp_path / "evil.bin")
    assert not marker.exists()


@pytest.mark.parametrize("what", ["random", "lotlip", "list"])
def test_not_a_vit_state_dict(what, tmp_path):
    path = tmp_path / f"{what}.bin"
    if what == "lotlip":
        save_model(path, create_model("lotlip-tiny"), "lotlip-tiny", True, {})
    else:
        torch.save({"a": torch.randn(3), "b": torch.randn(2, 2)} if what == "random" else [torch.zeros(1)], path)
    with pytest.raises(ValueError) as err:
        _via_config(tmp_path, path)
    message = _one_line(err, path)
    assert "not a timm ViT state dict" in message or "not a state dict of tensors" in message, message


def test_random_tensors_through_image_init_keep_the_existing_error(tmp_path):
    torch.save({"a": torch.randn(3)}, tmp_path / "r.bin")
    with pytest.raises(ValueError, match="experiment.image_init .*image tower does not match the model") as err:
        _via_image_init(tmp_path, tmp_path / "r.bin")
    _one_line(err, tmp_path / "r.bin")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("change, expected", [
    ("drop", r"missing keys \(1\): blocks\.0\.attn\.qkv\.weight"),
    ("extra", r"unexpected keys \(1\): blocks\.99\.gamma"),
    ("shape", r"shape mismatches \(1\): pos_embed: checkpoint \(1, 50, 192\) vs model \(1, 197, 192\)"),
])
def test_mismatches_are_named(route, change, expected, hub_file, tmp_path):
    state = torch.load(hub_file[0], weights_only=True)
    if change == "drop":
        del state["blocks.0.attn.qkv.weight"]
    elif change == "extra":
        state["blocks.99.gamma"] = torch.zeros(3)
    else:
        state["pos_embed"] = torch.zeros(1, 50, 192)
    torch.save(state, tmp_path / "bad.bin")
    with pytest.raises(ValueError, match=expected) as err:
        ROUTES[route](tmp_path, tmp_path / "bad.bin")
    assert "does not match the timm tower vit_tiny_patch16_224" in _one_line(err, tmp_path / "bad.bin")


def test_timm_file_into_a_non_timm_tower(hub_file):
    with pytest.raises(ValueError, match="initialises a timm vision tower .*not open_clip's VisionTransformer"):
        load_image_tower(create_model("lotlip-tiny"), hub_file[0])


def test_checkpoint_path_and_hub_weights_conflict(hub_file, tmp_path):
    with pytest.raises(ValueError, match="timm_model_pretrained and a checkpoint_path"):
        create_model(_config(tmp_path, hub_file[0], timm_model_pretrained=True))


def test_release_b16_tower_takes_timm_in21k_layout(tmp_path):
    """The bundled B/16 config's timm tower (no BERT built) loads the in21k hub layout, 21843-class head dropped."""
    from open_clip.model import _build_vision_tower

    cfg = get_model_config("lotlip_bert-ViT-B-16")
    name = cfg["vision_cfg"]["timm_model_name"]
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False).eval()
    assert ref.head.weight.shape == (21843, 768)
    torch.save(ref.state_dict(), tmp_path / "pytorch_model.bin")
    visual = _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"]).eval()
    assert load_timm_checkpoint(visual, tmp_path / "pytorch_model.bin") == ["head.bias", "head.weight"]
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(visual(x), _timm_features(ref, x), rtol=0, atol=1e-5)
