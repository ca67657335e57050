"""Procedural synthetic world: scene graphs, rendering, ground-truth descriptions."""

from lotlip.world.scene import Scene, SceneObject, sample_group, sample_scene

__all__ = ["Scene", "SceneObject", "sample_scene", "sample_group"]
