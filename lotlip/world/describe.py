"""Ground-truth facts of a scene, the alt-text-like raw caption and the benchmark annotator's long text.

Every fact is one sentence, so sub-caption splitting on ``.`` recovers facts as it does on MLLM output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lotlip.world.scene import CELLS, COLOURS, SHAPES, Scene, SceneObject


@dataclass(frozen=True)
class Fact:
    """One statement about a scene: ``kind`` in object / relation / background / count."""

    kind: str
    subject: SceneObject | None = None
    other: SceneObject | None = None
    value: str = ""


def relation(a: SceneObject, b: SceneObject) -> str:
    """Where ``a`` is relative to ``b``: vertical if their rows differ, else horizontal."""
    (ra, ca), (rb, cb) = a.row_col, b.row_col
    if ra != rb:
        return "above" if ra < rb else "below"
    return "to the left of" if ca < cb else "to the right of"


def scene_facts(scene: Scene, max_relations: int = 5) -> list[Fact]:
    """All facts: each object, up to ``max_relations`` pairwise relations, background, count."""
    facts = [Fact("object", o) for o in scene.objects]
    pairs = [(a, b) for i, a in enumerate(scene.objects) for b in scene.objects[i + 1:]]
    facts += [Fact("relation", a, b, relation(a, b)) for a, b in pairs[:max_relations]]
    facts.append(Fact("background", value=scene.background))
    facts.append(Fact("count", value=str(len(scene.objects))))
    return facts


_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def plain_sentence(fact: Fact) -> str:
    """The annotator's neutral phrasing of one fact."""
    if fact.kind == "object":
        o = fact.subject
        return f"There is a {o.described} at the {CELLS[o.cell]}."
    if fact.kind == "relation":
        return f"The {fact.subject.name} is {fact.value} the {fact.other.name}."
    if fact.kind == "background":
        return f"The background is {fact.value}."
    n = int(fact.value)
    return f"There {'is' if n == 1 else 'are'} {_NUMBERS.get(n, n)} object{'s' if n != 1 else ''} in total."


def annotator_text(scene: Scene, seed: int) -> str:
    """A benchmark long text (DCI-like): every fact, salient object first, the rest shuffled."""
    rng = random.Random(f"lotlip-annotator:{seed}:{scene.key}")
    facts = scene_facts(scene)
    head, rest = facts[0], facts[1:]
    rng.shuffle(rest)
    return " ".join(plain_sentence(f) for f in [head, *rest])


def iiw_text(scene: Scene, seed: int) -> str:
    """An IIW-like long text: denser than DCI, every object, up to ten relations, salient object first."""
    rng = random.Random(f"lotlip-iiw:{seed}:{scene.key}")
    facts = scene_facts(scene, max_relations=10)
    objects = [f for f in facts if f.kind == "object"]
    rest = [f for f in facts if f.kind != "object"]
    rng.shuffle(rest)
    sentences = [f"The image is dominated by a {objects[0].subject.described} placed at the "
                 f"{CELLS[objects[0].subject.cell]}."]
    sentences += [f"Next to it, a {f.subject.described} can be seen at the {CELLS[f.subject.cell]}."
                  for f in objects[1:]]
    sentences += [plain_sentence(f) for f in rest]
    return " ".join(sentences)


SHORT_TEMPLATES = ("a {c} {s}", "a large {c} {s}", "a picture of a {c} {s}", "the big {c} {s}",
                   "a {c} {s} in the image", "one {c} {s}", "a {c} coloured {s}", "a drawing of a {c} {s}")
ZERO_SHOT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image showing a {}.", "a drawing of a {}.",
                       "a {} in the scene.", "a large {}.")


def short_captions(scene: Scene, seed: int, n: int) -> list[str]:
    """``n`` distinct COCO-like captions naming only the salient object (no noise: human-written)."""
    rng = random.Random(f"lotlip-short:{seed}:{scene.key}")
    templates = rng.sample(SHORT_TEMPLATES, min(n, len(SHORT_TEMPLATES)))
    templates += [rng.choice(SHORT_TEMPLATES) for _ in range(n - len(templates))]
    return [t.format(c=scene.salient.colour, s=scene.salient.shape) for t in templates]


def raw_caption(scene: Scene, seed: int, noise: float = 0.15) -> str:
    """Alt-text: short, names only the salient object, sometimes wrong or vague (rate ``noise``)."""
    rng = random.Random(f"lotlip-alttext:{seed}:{scene.key}")
    o = scene.salient
    colour, shape = o.colour, o.shape
    if rng.random() < noise:
        if rng.random() < 0.5:
            colour = rng.choice([c for c in COLOURS if c != o.colour])
        else:
            shape = rng.choice([s for s in SHAPES if s != o.shape])
    template = rng.choice(["a {c} {s}", "{c} {s}", "photo of a {c} {s}", "the {c} {s}", "{c} {s} image"])
    return template.format(c=colour, s=shape)
