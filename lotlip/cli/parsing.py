"""Turn command-line option values (JSON text) into typed objects; a bad value is a one-line ConfigError."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lotlip.config import ConfigError, LotlipConfig, load_config, parse_json


def config_arg(text: str) -> LotlipConfig:
    """The validated config of ``--cfg`` (a stage's slice of the workflow config, as JSON)."""
    return load_config(parse_json(text, "--cfg"), origin="--cfg")


def dataclass_arg(text: str, cls: type, what: str) -> Any:
    """``cls(**value)`` of a ``--spec`` JSON object; ``what`` names the definition in the error."""
    try:
        return cls(**json.loads(text))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigError(f"--spec: not a valid {what} definition ({exc})") from None


def add_images_arg(parser: argparse.ArgumentParser) -> None:
    """``--images``: the training images (the ``images`` stage's output); ``--world`` is its old name."""
    parser.add_argument("--images", "--world", required=True, type=Path,
                        help="the training images (the images stage's output); --world: its old name")
