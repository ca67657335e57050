"""Torch-free constants shared by the model code and the workflow planner (``lotlip.plan`` must not load torch)."""

LONGCLIP_KEEP = 20  # Long-CLIP keeps the first 20 trained text positions ...
LONGCLIP_FACTOR = 4  # ... and stretches the other 57 four times
LONGCLIP_CONTEXT = 248  # 20 + (77 - 20) * 4
