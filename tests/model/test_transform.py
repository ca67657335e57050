"""Image preprocessing declared with the model: the release's timm towers (mean = std = 0.5, bicubic resize + centre
crop; train RandomResizedCrop 0.9-1.0, no flip), today's transform for the tiny configs, open_clip's for baselines."""

from __future__ import annotations

import copy
import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from timm.data import create_transform
from torchvision import transforms as T

from lotlip.model import create_model, get_model_config
from lotlip.model.external import load_longclip, load_open_clip
from lotlip.model.transform import image_transform, resolve_preprocess_cfg

SIZES = [(300, 200), (200, 300), (224, 224), (640, 480), (50, 80)]  # PIL (width, height)
HALF = (0.5, 0.5, 0.5)


def _images(sizes=SIZES) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def _same(a, b, images) -> None:
    for im in images:
        ta, tb = a(im), b(im)
        assert ta.shape == tb.shape and torch.equal(ta, tb), im.size


@pytest.fixture(scope="module")
def release_like(tmp_path_factory):
    """The bundled B/16 config (vision tower and preprocess_cfg verbatim) with a tiny native text tower: no BERT."""
    cfg = copy.deepcopy(get_model_config("lotlip_bert-ViT-B-16"))
    cfg["text_cfg"] = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                       "no_causal_mask": True, "pool_type": "first"}
    cfg["lotlip"] = {"text_tower": "native"}
    path = tmp_path_factory.mktemp("cfg") / "release-like.json"
    path.write_text(json.dumps(cfg))
    return create_model(str(path))


@pytest.mark.parametrize("name", ["lotlip-tiny", "lotlip_bert-tiny"])
def test_tiny_configs_keep_todays_transform(name):
    model = create_model(name)
    today = open_clip.image_transform(32, is_train=False)
    _same(image_transform(model, is_train=False), today, _images())
    _same(image_transform(model, is_train=True), today, _images())  # no augmentation declared: eval transform
    assert tuple(model.visual.preprocess_cfg["mean"]) == open_clip.OPENAI_DATASET_MEAN
    assert model.visual.aug_cfg is None


def test_release_eval_transform_is_timms(release_like):
    assert tuple(release_like.visual.preprocess_cfg["mean"]) == HALF == tuple(release_like.visual.image_std)
    timm_eval = create_transform(224, interpolation="bicubic", crop_pct=1.0, mean=HALF, std=HALF)
    _same(image_transform(release_like, is_train=False), timm_eval, _images())


def test_release_train_transform_crops_without_flip(release_like):
    ours = image_transform(release_like, is_train=True)
    steps = [type(t).__name__ for t in ours.transforms]
    assert not any("Flip" in s for s in steps), steps
    crop = ours.transforms[0]
    assert isinstance(crop, T.RandomResizedCrop) and crop.scale == (0.9, 1.0)
    assert crop.interpolation == T.InterpolationMode.BICUBIC and crop.size == (224, 224)
    reference = T.Compose([T.RandomResizedCrop(224, scale=(0.9, 1.0), interpolation=T.InterpolationMode.BICUBIC),
                           T.ToTensor(), T.Normalize(HALF, HALF)])
    for seed in range(3):
        for im in _images():
            torch.manual_seed(seed)
            a = ours(im)
            torch.manual_seed(seed)
            assert torch.equal(a, reference(im)), (seed, im.size)


def test_release_train_crop_area_and_orientation(release_like):
    """Crops cover 90-100% of the area; a left-right gradient image never comes out mirrored."""
    crop = image_transform(release_like, is_train=True).transforms[0]
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 400, dtype=np.uint8)[None, :, None], (300, 1, 3)))
    ours = image_transform(release_like, is_train=True)
    torch.manual_seed(0)
    for _ in range(50):
        top, left, h, w = crop.get_params(ramp, crop.scale, crop.ratio)
        assert 0.9 * 400 * 300 - 1 <= h * w <= 400 * 300
        out = ours(ramp)[0]
        assert out[:, -1].mean() > out[:, 0].mean()


def test_b32_declares_the_same_preprocessing():
    b16, b32 = (get_model_config(n)["preprocess_cfg"] for n in ("lotlip_bert-ViT-B-16", "lotlip_bert-ViT-B-32"))
    assert b16 == b32
    cfg, aug = resolve_preprocess_cfg(b32, (224, 224))
    assert cfg["mean"] == cfg["std"] == HALF and cfg["interpolation"] == "bicubic" and cfg["size"] == (224, 224)
    assert aug == {"scale": (0.9, 1.0)}


def _open_clip_arch(tmp_path, context: int = 16) -> str:
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": context, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    path = tmp_path / f"transform-tiny-clip-{context}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


@pytest.mark.parametrize("kind", ["openclip", "longclip"])
def test_open_clip_baselines_keep_openai_normalisation(kind, tmp_path):
    context = 248 if kind == "longclip" else 16
    arch = _open_clip_arch(tmp_path, context)
    open_clip.add_model_config(arch)
    torch.save(open_clip.create_model(f"transform-tiny-clip-{context}").state_dict(), tmp_path / "w.pt")
    loader = load_longclip if kind == "longclip" else load_open_clip
    model, _ = loader(arch, tmp_path / "w.pt")
    today = open_clip.image_transform(32, is_train=False)
    _same(image_transform(model, is_train=False), today, _images())
    _same(image_transform(model, is_train=True), today, _images())


def test_wrapped_model_uses_the_inner_models_cfg(release_like):
    wrapper = torch.nn.Module()
    wrapper.module = release_like  # as DistributedDataParallel
    timm_eval = create_transform(224, interpolation="bicubic", crop_pct=1.0, mean=HALF, std=HALF)
    _same(image_transform(wrapper, is_train=False), timm_eval, _images(SIZES[:2]))


@pytest.mark.parametrize("block, message", [
    ({"size": 64}, r"preprocess_cfg: unknown key 'size' .*vision_cfg.image_size"),
    ({"means": [0.5]}, "preprocess_cfg: unknown key 'means'"),
    ({"interpolation": "nearest"}, r"preprocess_cfg.interpolation: 'nearest' is not one of"),
    ({"aug_cfg": {"hflip": 0.5}}, r"preprocess_cfg.aug_cfg: unknown key 'hflip'"),
])
def test_bad_preprocess_cfg_is_named(block, message, tmp_path):
    cfg = {**get_model_config("lotlip-tiny"), "preprocess_cfg": block}
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=f"model '.*bad.json': {message}"):
        create_model(str(tmp_path / "bad.json"))
