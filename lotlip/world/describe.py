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
