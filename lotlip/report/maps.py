"""Text-to-image similarity maps (paper Fig. 1/6 analog) by occlusion, and a focus score from them.

For a scene and a text about one of its *non-salient* objects, a square occluder painted in the background colour
slides over the image; the drop in image-text cosine similarity at each position is the map. The focus score of
a scene is the share of the positive drop that falls in the mentioned object's grid cell (and, for contrast, in
the salient object's cell): the paper's Fig. 1 shows a short-caption model looking at the salient object even
when the text is about another one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from lotlip.io import read_jsonl
from lotlip.model.transform import image_transform
from lotlip.world.describe import Fact, plain_sentence
from lotlip.world.scene import BACKGROUNDS, Scene, SceneObject


def mentioned_object(scene: Scene) -> SceneObject:
    """The largest non-salient object (first in scene order on ties); the text is about it."""
    order = {"large": 0, "medium": 1, "small": 2}
    others = [o for o in scene.objects if not o.salient]
    if not others:
        raise ValueError(f"scene {scene.key}: no non-salient object to describe")
    return min(others, key=lambda o: order[o.size])


def occluded_images(image: Image.Image, colour: tuple[int, int, int], patch: int,
                    stride: int) -> tuple[list[Image.Image], list[tuple[int, int]]]:
    """Copies of ``image`` with one ``patch``-square painted ``colour``, and each occluder's top-left corner."""
    side = image.size[0]
    corners = [(x, y) for y in range(0, side - patch + 1, stride) for x in range(0, side - patch + 1, stride)]
    out = []
    for x, y in corners:
        img = image.copy()
        ImageDraw.Draw(img).rectangle((x, y, x + patch - 1, y + patch - 1), fill=colour)
        out.append(img)
    return out, corners


@torch.no_grad()
def occlusion_map(model: torch.nn.Module, tokenizer, image: Image.Image, background: tuple[int, int, int],
                  text: str, patch: int, stride: int) -> np.ndarray:
    """Similarity drop per occluder position, shape [rows, cols] (positive: the region supports the text)."""
    transform = image_transform(model, is_train=False)
    variants, corners = occluded_images(image, background, patch, stride)
    batch = torch.stack([transform(im) for im in [image, *variants]])
    img_feats = model.encode_image(batch, normalize=True)
    txt = model.encode_text(tokenizer([text]), normalize=True)[0]
    sims = (img_feats @ txt).numpy()
    n = int(round(len(corners) ** 0.5))
    return (sims[0] - sims[1:]).reshape(n, n)


def cell_share(drop: np.ndarray, obj: SceneObject, side: int, patch: int, stride: int) -> float:
    """Share of the positive drop whose occluder centre lies in ``obj``'s third-of-the-image grid cell."""
    positive = np.clip(drop, 0.0, None)
    total = positive.sum()
    if total <= 0:
        return 0.0
    row, col = obj.row_col
    centres = np.arange(drop.shape[0]) * stride + patch / 2.0
    in_row = (centres >= row * side / 3) & (centres < (row + 1) * side / 3)
    in_col = (centres >= col * side / 3) & (centres < (col + 1) * side / 3)
    return float(positive[np.ix_(in_row, in_col)].sum() / total)


def scene_records(bench_dir: str | Path, n: int) -> list[tuple[Scene, Path]]:
    """The first ``n`` scenes of a synthetic long benchmark that have a non-salient object, with image paths."""
    bench_dir = Path(bench_dir)
    out = []
    for record in read_jsonl(bench_dir / "texts.jsonl"):
        if "scene" not in record:
            raise ValueError(f"{bench_dir / 'texts.jsonl'}: record {record.get('key')!r} has no field 'scene' "
                             "(maps need a synthetic benchmark)")
        scene = Scene.from_dict(record["scene"])
        if any(not o.salient for o in scene.objects):
            out.append((scene, bench_dir / "images" / f"{scene.key}.png"))
        if len(out) == n:
            break
    return out


def model_maps(model: torch.nn.Module, tokenizer, scenes: list[tuple[Scene, Path]], patch: int,
               stride: int) -> list[dict]:
    """Per scene: text, map, and the shares of the map in the mentioned and in the salient object's cell."""
    out = []
    for scene, path in scenes:
        image = Image.open(path).convert("RGB")
        target = mentioned_object(scene)
        text = plain_sentence(Fact("object", target))
        drop = occlusion_map(model, tokenizer, image, BACKGROUNDS[scene.background], text, patch, stride)
        side = image.size[0]
        out.append({"key": scene.key, "text": text, "map": drop,
                    "mentioned_share": cell_share(drop, target, side, patch, stride),
                    "salient_share": cell_share(drop, scene.salient, side, patch, stride)})
    return out
