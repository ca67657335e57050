"""Scene graphs: several objects on a 3x3 grid, one large salient object, a background.

The salient object is what alt-text names; everything else (other objects, their positions and relations,
the background) is what only long captions carry. That split is what lets this world show the paper's
long-text effect.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 215, 40),
    "purple": (140, 60, 180), "orange": (245, 140, 30), "white": (245, 245, 245), "black": (20, 20, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "grey": (128, 128, 128), "sand": (194, 170, 120), "sky": (140, 190, 230), "grass": (110, 160, 90),
}
CELLS: tuple[str, ...] = (
    "top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right",
)
SIZES: tuple[str, ...] = ("small", "medium")
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted")


@dataclass
class SceneObject:
    """One object: what it is, where it is (grid cell 0..8) and how big it is."""

    shape: str
    colour: str
    size: str
    cell: int
    salient: bool = False
    texture: str = "plain"

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def described(self) -> str:
        """Size, texture, colour and shape, e.g. ``large striped red circle`` (plain texture unstated)."""
        texture = "" if self.texture == "plain" else f"{self.texture} "
        return f"{self.size} {texture}{self.colour} {self.shape}"

    @property
    def row_col(self) -> tuple[int, int]:
        return divmod(self.cell, 3)


@dataclass
class Scene:
    """Ground truth for one image."""

    key: str
    background: str
    objects: list[SceneObject] = field(default_factory=list)

    @property
    def salient(self) -> SceneObject:
        return next(o for o in self.objects if o.salient)

    def to_dict(self) -> dict:
        return {"key": self.key, "background": self.background, "objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        return cls(key=data["key"], background=data["background"],
                   objects=[SceneObject(**o) for o in data["objects"]])


def _rng(seed: int, key: str) -> random.Random:
    return random.Random(f"lotlip-world:{seed}:{key}")


def sample_scene(seed: int, key: str, n_min: int, n_max: int,
                 salient: tuple[str, str] | None = None) -> Scene:
    """Draw one scene deterministically from (seed, key); ``salient`` fixes (colour, shape) if given."""
    rng = _rng(seed, key)
    n = rng.randint(n_min, n_max)
    cells = rng.sample(range(9), n)
    colour, shape = salient if salient else (rng.choice(list(COLOURS)), rng.choice(SHAPES))
    objects = [SceneObject(shape=shape, colour=colour, size="large", cell=cells[0], salient=True,
                           texture=rng.choice(TEXTURES))]
    used = {(colour, shape)}
    for cell in cells[1:]:
        while True:
            pair = (rng.choice(list(COLOURS)), rng.choice(SHAPES))
            if pair not in used:
                break
        used.add(pair)
        objects.append(SceneObject(shape=pair[1], colour=pair[0], size=rng.choice(SIZES), cell=cell,
                                   texture=rng.choice(TEXTURES)))
    return Scene(key=key, background=rng.choice(list(BACKGROUNDS)), objects=objects)


def salient_classes() -> list[tuple[str, str]]:
    """Every (colour, shape) a salient object can be: the zero-shot classes."""
    return [(c, s) for c in COLOURS for s in SHAPES]


def sample_group(seed: int, group: int, size: int, n_min: int, n_max: int) -> list[Scene]:
    """``size`` scenes sharing one salient (colour, shape) and differing in everything else.

    Groups 0..39 get distinct salient classes (a seeded permutation); later groups repeat the cycle.
    """
    classes = salient_classes()
    _rng(seed, "groups").shuffle(classes)
    salient = classes[group % len(classes)]
    return [sample_scene(seed, f"g{group:04d}_{i:04d}", n_min, n_max, salient=salient) for i in range(size)]
