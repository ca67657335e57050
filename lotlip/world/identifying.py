"""COCO-like short captions that identify their image within a benchmark.

Each caption names the image's main (large) object plus one or two other facts: another object, the
background, the main object's position or texture, or where another object lies relative to it. A caption
*identifies* its image when no other image of the set satisfies every fact it states; sets are built so that
every caption does (:func:`identifying_captions`), which makes R@1 well defined on 500 images that share only
40 main objects.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from lotlip.world.describe import relation
from lotlip.world.scene import CELLS, Scene

PREFIXES = ("", "a picture of ", "an image of ", "a photo of ", "a drawing of ")


@dataclass(frozen=True)
class ShortFact:
    """One fact a caption adds to the main object.

    ``kind``: ``object`` (some other object is ``colour shape``), ``relation`` (some other ``colour shape`` lies
    such that the main object is ``value`` it), ``background``, ``position`` (the main object's cell name) or
    ``texture`` (the main object's).
    """

    kind: str
    value: str = ""
    colour: str = ""
    shape: str = ""

    def holds(self, scene: Scene) -> bool:
        """Whether ``scene`` satisfies this fact."""
        main = scene.salient
        if self.kind == "background":
            return scene.background == self.value
        if self.kind == "position":
            return CELLS[main.cell] == self.value
        if self.kind == "texture":
            return main.texture == self.value
        others = [o for o in scene.objects if not o.salient and (o.colour, o.shape) == (self.colour, self.shape)]
        if self.kind == "object":
            return bool(others)
        if self.kind == "relation":
            return any(relation(main, o) == self.value for o in others)
        raise ValueError(f"short caption fact: unknown kind {self.kind!r}")


def scene_short_facts(scene: Scene) -> list[ShortFact]:
    """Every fact a caption of ``scene`` may add: background, position, texture, each other object (two forms)."""
    main = scene.salient
    facts = [ShortFact("background", scene.background), ShortFact("position", CELLS[main.cell]),
             ShortFact("texture", main.texture)]
    for other in scene.objects:
        if not other.salient:
            facts.append(ShortFact("object", colour=other.colour, shape=other.shape))
            facts.append(ShortFact("relation", relation(main, other), other.colour, other.shape))
    return facts


def _compatible(facts: tuple[ShortFact, ...]) -> bool:
    """At most one fact per kind of main-object attribute and per other object (no 'and a blue square above it')."""
    keys = [(f.colour, f.shape) if f.kind in ("object", "relation") else f.kind for f in facts]
    return len(set(keys)) == len(keys)


def _a(colour: str, shape: str) -> str:
    return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}"


def phrase(scene: Scene, facts: tuple[ShortFact, ...], prefix: str = "") -> str:
    """The caption stating the main object and ``facts``, e.g. ``a large striped red circle above a blue square
    on a sand background`` (relations first, joined by "and"; other objects after a comma if a relation precedes)."""
    main = scene.salient
    texture = next((f.value for f in facts if f.kind == "texture"), None)
    text = " ".join(w for w in (f"{prefix}a large", texture, main.colour, main.shape) if w)
    text += "".join(f" at the {f.value}" for f in facts if f.kind == "position")
    relations = [f"{f.value} {_a(f.colour, f.shape)}" for f in facts if f.kind == "relation"]
    if relations:
        text += " " + " and ".join(relations)
    objects = [_a(f.colour, f.shape) for f in facts if f.kind == "object"]
    if objects:
        text += (", with " if relations else " and ") + " and ".join(objects)
    text += "".join(f" on {_a(f.value, 'background')}" for f in facts if f.kind == "background")
    return text


def caption_options(scene: Scene, max_facts: int) -> list[tuple[ShortFact, ...]]:
    """Every compatible combination of 1..``max_facts`` facts of ``scene``."""
    facts = scene_short_facts(scene)
    return [combo for k in range(1, max_facts + 1) for combo in itertools.combinations(facts, k)
            if _compatible(combo)]


def identifies(scene: Scene, facts: tuple[ShortFact, ...], rivals: list[Scene]) -> bool:
    """Whether no scene in ``rivals`` (other images sharing the main object) satisfies every fact."""
    return not any(all(f.holds(r) for f in facts) for r in rivals)


def identifying_captions(scenes: list[Scene], n: int, max_facts: int, seed: int) -> dict[str, list[str] | None]:
    """Per scene key: ``n`` distinct captions that each identify the scene among ``scenes``, or None when it has
    fewer than ``n`` (the caller redraws that scene). Captions are drawn deterministically per (seed, key)."""
    by_main: dict[tuple[str, str], list[Scene]] = {}
    for scene in scenes:
        by_main.setdefault((scene.salient.colour, scene.salient.shape), []).append(scene)
    out: dict[str, list[str] | None] = {}
    for scene in scenes:
        rivals = [s for s in by_main[(scene.salient.colour, scene.salient.shape)] if s is not scene]
        good = [c for c in caption_options(scene, max_facts) if identifies(scene, c, rivals)]
        if len(good) < n:
            out[scene.key] = None
            continue
        rng = random.Random(f"lotlip-short-identifying:{seed}:{scene.key}")
        out[scene.key] = [phrase(scene, combo, rng.choice(PREFIXES)) for combo in rng.sample(good, n)]
    return out
