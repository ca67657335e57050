"""Render a scene graph to an RGB image (drawn at 4x, downsampled for smooth edges)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from lotlip.world.scene import BACKGROUNDS, COLOURS, Scene, SceneObject

_SUPERSAMPLE = 4
_EXTENT = {"large": 0.30, "medium": 0.14, "small": 0.10}  # half-extent as a fraction of the image side


def _texture(img: Image.Image, obj: SceneObject, side: int) -> None:
    """Overlay stripes or dots in a darker shade, clipped to the object's silhouette."""
    if obj.texture == "plain":
        return
    mask = Image.new("L", img.size, 0)
    _draw(ImageDraw.Draw(mask), obj, side, fill=255)
    pattern = Image.new("L", img.size, 0)
    pen = ImageDraw.Draw(pattern)
    step = max(side // 16, 4)
    if obj.texture == "striped":
        for y in range(0, img.size[1], step):
            pen.rectangle((0, y, img.size[0], y + step // 2 - 1), fill=255)
    elif obj.texture == "dotted":
        for y in range(step // 2, img.size[1], step):
            for x in range(step // 2, img.size[0], step):
                pen.ellipse((x - step // 4, y - step // 4, x + step // 4, y + step // 4), fill=255)
    else:
        raise ValueError(f"scene object: unknown texture {obj.texture!r}")
    base = COLOURS[obj.colour]
    dark = sum(base) < 240
    shade = tuple(int(c + (255 - c) * 0.6) if dark else int(c * 0.45) for c in base)
    clip = Image.composite(pattern, Image.new("L", img.size, 0), mask)
    img.paste(shade, (0, 0, *img.size), clip)


def _draw(draw: ImageDraw.ImageDraw, obj: SceneObject, side: int, fill=None) -> None:
    row, col = obj.row_col
    cx, cy = (col + 0.5) * side / 3, (row + 0.5) * side / 3
    r = _EXTENT[obj.size] * side
    fill = COLOURS[obj.colour] if fill is None else fill
    box = (cx - r, cy - r, cx + r, cy + r)
    if obj.shape == "circle":
        draw.ellipse(box, fill=fill)
    elif obj.shape == "square":
        draw.rectangle((cx - 0.85 * r, cy - 0.85 * r, cx + 0.85 * r, cy + 0.85 * r), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fill)
    elif obj.shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    elif obj.shape == "cross":
        t = r / 3
        draw.rectangle((cx - r, cy - t, cx + r, cy + t), fill=fill)
        draw.rectangle((cx - t, cy - r, cx + t, cy + r), fill=fill)
    else:
        raise ValueError(f"scene object: unknown shape {obj.shape!r}")


def render(scene: Scene, image_size: int) -> Image.Image:
    """The scene as an ``image_size`` x ``image_size`` RGB image; the salient object is drawn first."""
    side = image_size * _SUPERSAMPLE
    img = Image.new("RGB", (side, side), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    for obj in sorted(scene.objects, key=lambda o: not o.salient):
        _draw(draw, obj, side)
        _texture(img, obj, side)
    return img.resize((image_size, image_size), Image.Resampling.LANCZOS)
