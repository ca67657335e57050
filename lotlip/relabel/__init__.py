"""Long-caption relabeling: captioner backends behind one interface."""

from lotlip.relabel.backends import BACKENDS, relabel_scenes

__all__ = ["BACKENDS", "relabel_scenes"]
