"""Ground-truth facts of a scene, the alt-text-like raw caption and the benchmark annotator's long text.

Every fact (IIW: at most two relations of one object) is one sentence, so sub-caption splitting on ``.`` recovers
facts as it does on MLLM output. Long texts state everything known about a fact (size, texture even when plain, cell,
row and column, how many cells apart) so their lengths match the real benchmarks' (paper Table 1).
"""

from __future__ import annotations

import random
from collections import Counter
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
_ORDINALS = ("first", "second", "third")
BACKGROUND_LOOKS = {"grey": "flat neutral grey", "sand": "warm sandy beige", "sky": "pale sky", "grass": "muted grass"}


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


def _counted(n: int, noun: str) -> str:
    """``two rows``, ``one cross``, ``three crosses``."""
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{_NUMBERS.get(n, n)} {noun if n == 1 else plural}"


def full_name(o: SceneObject) -> str:
    """Size, texture (stated even when plain), colour and shape: ``large plain red circle``."""
    return f"{o.size} {o.texture} {o.colour} {o.shape}"


def grid_position(o: SceneObject, ordinal: bool = True) -> str:
    """Row and column of ``o`` on the 3x3 grid: ``the third row and first column`` or ``row three, column one``."""
    row, col = o.row_col
    if ordinal:
        return f"the {_ORDINALS[row]} row and {_ORDINALS[col]} column"
    return f"row {_NUMBERS[row + 1]}, column {_NUMBERS[col + 1]}"


def cells_apart(a: SceneObject, b: SceneObject) -> str:
    """How far apart two objects are on the grid: ``two rows and one column apart``."""
    (ra, ca), (rb, cb) = a.row_col, b.row_col
    steps = [_counted(d, unit) for d, unit in ((abs(ra - rb), "row"), (abs(ca - cb), "column")) if d]
    return " and ".join(steps) + " apart"


def shape_list(objects: list[SceneObject]) -> str:
    """The shapes among ``objects`` with their counts, in order of appearance: ``two circles and one cross``."""
    counts = Counter(o.shape for o in objects)
    items = [_counted(k, shape) for shape, k in counts.items()]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def background_look(background: str) -> str:
    """A few words on what the background looks like (no object colour names)."""
    return BACKGROUND_LOOKS.get(background, f"plain {background}")


def annotator_sentence(fact: Fact, scene: Scene) -> str:
    """The DCI annotator's phrasing of one fact: plain, but stating everything it knows about it."""
    if fact.kind == "object":
        o = fact.subject
        return f"There is a {full_name(o)} at the {CELLS[o.cell]}, in {grid_position(o, ordinal=False)}."
    if fact.kind == "relation":
        a, b = fact.subject, fact.other
        return f"The {a.size} {a.name} is {fact.value} the {b.size} {b.name}, {cells_apart(a, b)}."
    if fact.kind == "background":
        return f"The background is {fact.value}, a {background_look(fact.value)} colour."
    n = int(fact.value)
    return f"There {'is' if n == 1 else 'are'} {_counted(n, 'object')}, {shape_list(scene.objects)}."


def annotator_text(scene: Scene, seed: int) -> str:
    """A benchmark long text (DCI-like): every fact, salient object first, the rest shuffled."""
    rng = random.Random(f"lotlip-annotator:{seed}:{scene.key}")
    facts = scene_facts(scene)
    head, rest = facts[0], facts[1:]
    rng.shuffle(rest)
    return " ".join(annotator_sentence(f, scene) for f in [head, *rest])


def _relation_groups(relations: list[Fact], size: int = 2) -> list[list[Fact]]:
    """Relations sharing a subject, in chunks of at most ``size`` (one IIW sentence each)."""
    by_subject: dict[int, list[Fact]] = {}
    for fact in relations:
        by_subject.setdefault(id(fact.subject), []).append(fact)
    return [group[i:i + size] for group in by_subject.values() for i in range(0, len(group), size)]


def _iiw_object(o: SceneObject, first: bool) -> str:
    """One object: size, texture, colour, shape, cell, row and column (the salient one leads)."""
    lead = "The image is dominated by a" if first else "A"
    verb = "placed" if first else "can also be seen"
    frame = " of the frame" if first else ""
    return (f"{lead} {o.size} {o.colour} {o.shape} with a {o.texture} surface {verb} at the {CELLS[o.cell]}{frame}, "
            f"in {grid_position(o)}.")


def _iiw_relations(group: list[Fact]) -> str:
    """One or two relations of one subject, each with how far apart the objects are."""
    a = group[0].subject
    parts = [f"{f.value} the {f.other.size} {f.other.name}, {cells_apart(a, f.other)}" for f in group]
    return f"The {a.size} {a.name} sits " + ", and ".join(parts) + "."


def _iiw_scene(fact: Fact, scene: Scene) -> str:
    """The background or the count (with the list of shapes)."""
    if fact.kind == "background":
        return (f"The background is {fact.value}, a uniform {background_look(fact.value)} colour that fills every "
                f"empty cell of the grid.")
    return (f"Altogether the picture contains {_counted(int(fact.value), 'object')}, namely "
            f"{shape_list(scene.objects)}.")


def iiw_text(scene: Scene, seed: int) -> str:
    """An IIW-like long text: denser than DCI, every object, up to ten relations (two of one subject a sentence),
    salient object first."""
    rng = random.Random(f"lotlip-iiw:{seed}:{scene.key}")
    facts = scene_facts(scene, max_relations=10)
    objects = [f.subject for f in facts if f.kind == "object"]
    rest = [[f] for f in facts if f.kind in ("background", "count")]
    rest += _relation_groups([f for f in facts if f.kind == "relation"])
    rng.shuffle(rest)
    sentences = [_iiw_object(o, i == 0) for i, o in enumerate(objects)]
    sentences += [_iiw_relations(g) if g[0].kind == "relation" else _iiw_scene(g[0], scene) for g in rest]
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
