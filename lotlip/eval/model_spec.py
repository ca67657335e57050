"""The compact model spec of ``lotlip benchmark --model``: ``KIND[:ARCH]@WEIGHTS``, mapped onto ``ModelSpec``.

Torch-free (parsed before anything is loaded); :func:`lotlip.eval.harness.load_model_spec` resolves and loads it.
"""

from __future__ import annotations

import re
from pathlib import Path

KINDS = ("openclip", "longclip", "release", "lotlip")  # the kinds of lotlip.model.sources.ModelSpec
SPEC_HELP = """\
  KIND[:ARCH]@WEIGHTS, KIND one of:
    openclip:ARCH@FILE|TAG  open_clip model ARCH (a name or a model-config JSON) with a local weights file or an
                            open_clip pretrained tag (downloaded by open_clip), e.g. openclip:ViT-B-16-quickgelu@openai,
                            openclip:ViT-B-16-quickgelu@/w/open_clip_model.safetensors
    longclip[:ARCH]@FILE    Long-CLIP checkpoint (longclip-B.pt) in open_clip ARCH (default ViT-B-16-quickgelu),
                            248-token text context
    release[:ARCH]@FILE     released LoTLIP model.pt; ARCH a bundled config (default lotlip_bert-ViT-B-16; or
                            lotlip_bert-ViT-B-32), e.g. release:lotlip_bert-ViT-B-32@/w/model.pt
    lotlip@FILE             a checkpoint written by lotlip train (architecture read from the file)
  OpenAI weights need QuickGELU: use the -quickgelu open_clip names."""
_SPEC = re.compile(r"(?P<kind>[a-z_]+)(?::(?P<arch>[^@]+))?@(?P<path>.+)")


def parse_model_spec(text: str) -> dict[str, str]:
    """``{"kind", "arch", "path"}`` of a spec (``arch`` ``""``: the kind's default); a bad spec is one line."""
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"--model {text!r}: expected KIND[:ARCH]@WEIGHTS (KIND one of {', '.join(KINDS)})")
    kind, arch, path = match["kind"], match["arch"] or "", match["path"]
    if kind not in KINDS:
        raise ValueError(f"--model {text!r}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    if kind == "openclip" and not arch:
        raise ValueError(f"--model {text!r}: openclip needs an architecture (openclip:ARCH@WEIGHTS)")
    if kind == "lotlip" and arch:
        raise ValueError(f"--model {text!r}: lotlip checkpoints name their architecture (use lotlip@FILE)")
    return {"kind": kind, "arch": arch, "path": path}


def default_name(spec: dict[str, str]) -> str:
    """A file-name-safe model name: kind, architecture and weights name."""
    arch = Path(spec["arch"]).stem if spec["arch"] else ""
    parts = [spec["kind"], arch, Path(spec["path"]).stem]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in parts if p))
