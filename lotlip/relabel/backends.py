"""Captioner backends behind one interface: scenes (with image paths) in, caption records out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from lotlip.relabel.hf import hf_backend
from lotlip.relabel.precomputed import precomputed_backend
from lotlip.world.captioners import STYLES, caption_scene
from lotlip.world.scene import Scene


def simulated_backend(scenes: Iterable[Scene], captioners: list[str], seed: int) -> Iterator[dict]:
    """Records ``{"key", "captions": {captioner: {"short", "long"}}}`` from the simulated styles."""
    for scene in scenes:
        yield {"key": scene.key,
               "captions": {name: caption_scene(scene, STYLES[name], seed) for name in captioners}}


BACKENDS: dict[str, Callable[..., Iterator[dict]]] = {
    "simulated": simulated_backend, "hf": hf_backend, "precomputed": precomputed_backend}


def relabel_scenes(backend: str, scenes: Iterable[Scene], captioners: list[str], seed: int,
                   **options) -> Iterator[dict]:
    """Dispatch to the configured backend; ``options`` are that backend's keyword settings."""
    if backend not in BACKENDS:
        raise ValueError(f"relabel.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    return BACKENDS[backend](scenes, captioners, seed, **options)
