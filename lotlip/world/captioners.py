"""Simulated MLLM captioners standing in for InstructBLIP, LLaVA-1.5 and ShareGPT4V.

Each style sees the ground-truth scene and writes a short and a long caption with its own detail level,
ordering, phrasing and error rates (omitted objects, wrong colours, hallucinated objects). One fact per
sentence, as the sub-caption sampler expects.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from lotlip.world.describe import Fact, cells_apart, grid_position, scene_facts, shape_list
from lotlip.world.scene import CELLS, COLOURS, SHAPES, Scene, SceneObject


@dataclass(frozen=True)
class CaptionerStyle:
    """How one simulated captioner writes."""

    name: str
    object_templates: tuple[str, ...]
    relation_template: str
    background_template: str
    count_template: str
    short_template: str
    max_objects: int  # detail level: objects mentioned
    max_relations: int
    mention_background: bool
    mention_count: bool
    omit_rate: float  # per non-salient object
    wrong_colour_rate: float
    hallucination_rate: float
    shuffle: bool  # ordering: salient first, then shuffled (True) or scene order (False)
    scene_template: str = ""  # if set, background and count are stated together in this one sentence


STYLES: dict[str, CaptionerStyle] = {
    "instructblip": CaptionerStyle(
        name="instructblip",
        object_templates=("The image shows a {colour} {shape}.", "There is a {size} {colour} {shape}."),
        relation_template="The {a} is {rel} the {b}.",
        background_template="It is on a {bg} background.",
        count_template="There are {n} shapes.",
        short_template="a {colour} {shape} on a {bg} background",
        max_objects=3, max_relations=1, mention_background=True, mention_count=False,
        omit_rate=0.3, wrong_colour_rate=0.10, hallucination_rate=0.05, shuffle=False,
    ),
    "llava": CaptionerStyle(
        name="llava",
        object_templates=("In the {pos} there is a {size} {colour} {shape}.",
                          "A {size} {colour} {shape} appears in the {pos}."),
        relation_template="The {a} is positioned {rel} the {b}.",
        background_template="The scene has a {bg} backdrop.",
        count_template="Overall the image contains {n} shapes.",
        short_template="The image features a {colour} {shape} with other shapes around it",
        max_objects=9, max_relations=2, mention_background=True, mention_count=True,
        omit_rate=0.1, wrong_colour_rate=0.05, hallucination_rate=0.05, shuffle=True,
    ),
    "sharegpt4v": CaptionerStyle(
        name="sharegpt4v",
        object_templates=("A {bare_size} {colour} {shape} with a {texture} surface sits at the {pos}, in {grid}.",
                          "At the {pos}, in {grid}, a {bare_size} {texture} {colour} {shape} is visible."),
        relation_template="The {a_full} lies {rel} the {b_full}, {apart}.",
        background_template="The whole composition is set against a {bg} background.",
        count_template="In total {n} distinct shapes are depicted.",
        short_template="A large {colour} {shape} dominates a {bg} scene with smaller shapes",
        scene_template="The whole composition is set against a {bg} background and depicts {n} distinct shapes "
                       "in total, namely {shapes}.",
        max_objects=9, max_relations=4, mention_background=True, mention_count=True,
        omit_rate=0.03, wrong_colour_rate=0.03, hallucination_rate=0.03, shuffle=True,
    ),
}


def _perturb(obj: SceneObject, style: CaptionerStyle, rng: random.Random) -> SceneObject:
    if rng.random() < style.wrong_colour_rate:
        return replace(obj, colour=rng.choice([c for c in COLOURS if c != obj.colour]))
    return obj


def _object_sentence(obj: SceneObject, style: CaptionerStyle, rng: random.Random) -> str:
    template = rng.choice(style.object_templates)
    size = obj.size if obj.texture == "plain" else f"{obj.size} {obj.texture}"
    return template.format(colour=obj.colour, shape=obj.shape, size=size, pos=CELLS[obj.cell], bare_size=obj.size,
                           texture=obj.texture, grid=grid_position(obj))


def _relation_sentence(fact: Fact, style: CaptionerStyle) -> str:
    """One relation; templates may name the objects with their sizes and say how far apart they are."""
    a, b = fact.subject, fact.other
    return style.relation_template.format(a=a.name, rel=fact.value, b=b.name, a_full=f"{a.size} {a.name}",
                                          b_full=f"{b.size} {b.name}", apart=cells_apart(a, b))


def _scene_sentences(scene: Scene, seen: list[SceneObject], style: CaptionerStyle) -> list[str]:
    """Background and count sentences (one joint sentence with ``scene_template``)."""
    if style.scene_template and style.mention_background and style.mention_count:
        return [style.scene_template.format(bg=scene.background, n=len(seen), shapes=shape_list(seen))]
    out = [style.background_template.format(bg=scene.background)] if style.mention_background else []
    return out + ([style.count_template.format(n=len(seen))] if style.mention_count else [])


def caption_scene(scene: Scene, style: CaptionerStyle, seed: int) -> dict[str, str]:
    """A short and a long caption of ``scene`` in ``style`` (deterministic per seed and key)."""
    rng = random.Random(f"lotlip-captioner:{style.name}:{seed}:{scene.key}")
    facts = scene_facts(scene, max_relations=style.max_relations)
    objects = [f.subject for f in facts if f.kind == "object"]
    salient, others = objects[0], objects[1:]
    others = [o for o in others if rng.random() >= style.omit_rate][: style.max_objects - 1]
    if style.shuffle:
        rng.shuffle(others)
    seen = [_perturb(o, style, rng) for o in [salient, *others]]
    sentences = [_object_sentence(o, style, rng) for o in seen]
    if rng.random() < style.hallucination_rate:
        ghost = SceneObject(shape=rng.choice(SHAPES), colour=rng.choice(list(COLOURS)), size="small",
                            cell=rng.randrange(9))
        sentences.insert(rng.randrange(1, len(sentences) + 1), _object_sentence(ghost, style, rng))
    kept = {id(o) for o in [salient, *others]}
    for fact in facts:
        if fact.kind == "relation" and id(fact.subject) in kept and id(fact.other) in kept:
            sentences.append(_relation_sentence(fact, style))
    sentences += _scene_sentences(scene, seen, style)
    short = style.short_template.format(colour=seen[0].colour, shape=seen[0].shape, bg=scene.background)
    return {"short": short, "long": " ".join(sentences)}


def simulated_facts(scene: Scene) -> list[Fact]:
    """The ground truth a simulated captioner starts from (exposed for tests)."""
    return scene_facts(scene)
