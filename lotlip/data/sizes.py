"""``sizes.json``: the sample count of each shard in a folder of shards, the one record of it.

Written where the shards are made (:func:`lotlip.data.shards.write_shards`, and for downloaded images
:func:`lotlip.data.img2dataset.finish_download` from img2dataset's own stats); read wherever shards are listed or
counted (shard lists, the loader's truncated-shard check, dataset statistics).
"""

from __future__ import annotations

import json
from pathlib import Path

from lotlip.io import write_json

SIZES_FILE = "sizes.json"


def read_sizes(folder: str | Path) -> dict[str, int]:
    """Shard file name -> sample count, as recorded in ``folder/sizes.json`` (FileNotFoundError naming it)."""
    path = Path(folder) / SIZES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        return {str(name): int(n) for name, n in json.loads(path.read_text()).items()}
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a mapping of shard name to sample count ({type(exc).__name__})") from None


def write_sizes(folder: str | Path, sizes: dict[str, int]) -> None:
    """Record ``sizes`` (shard file name -> sample count) in ``folder/sizes.json`` (atomically)."""
    write_json(Path(folder) / SIZES_FILE, sizes)


def shard_counts(folder: str | Path) -> dict[str, int]:
    """Shard path (``folder/<name>``) -> recorded sample count: what the loader compares its reads with."""
    return {str(Path(folder) / name): n for name, n in read_sizes(folder).items()}
