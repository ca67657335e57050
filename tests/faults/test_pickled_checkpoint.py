"""Fault 7: a checkpoint whose pickle would run code is refused by every loader (``weights_only=True``): the code
never runs, and the error names the file.

The planted object's ``__reduce__`` calls ``open(marker, "w")``: a loader that unpickled it would create ``marker``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from lotlip.cli import main
from lotlip.model import create_model
from lotlip.model.checkpoint import load_image_tower, load_model, load_text_tower
from lotlip.model.sources import load_for_eval
from lotlip.train import loop


class _Planted:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil(tmp_path: Path, name: str = "evil.pt") -> tuple[Path, Path]:
    """A lotlip-format checkpoint (real tiny weights) with a planted object; (path, marker)."""
    marker = tmp_path / "PWNED"
    model = create_model("lotlip-tiny", num_corner_tokens=2)
    payload = {"state_dict": model.state_dict(), "model": "lotlip-tiny", "num_corner_tokens": 2,
               "corner_mask": True, "meta": {"note": _Planted(marker)}}
    path = tmp_path / name
    torch.save(payload, path)
    return path, marker


def _open_clip_config(tmp_path: Path) -> str:
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    path = tmp_path / "faults-tiny-clip.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _fresh():
    return create_model("lotlip-tiny", num_corner_tokens=2)


LOADERS = {
    "evaluate-checkpoint": lambda p, tmp: load_model(p),
    "image-init": lambda p, tmp: load_image_tower(_fresh(), p),
    "text-init": lambda p, tmp: load_text_tower(_fresh(), p),
    "released-weights": lambda p, tmp: create_model("lotlip-tiny", pretrained=str(p), num_corner_tokens=2),
    "eval-kind-lotlip": lambda p, tmp: load_for_eval({"kind": "lotlip", "path": str(p)}),
    "eval-kind-release": lambda p, tmp: load_for_eval({"kind": "release", "arch": "lotlip-tiny", "path": str(p)}),
    "eval-kind-longclip": lambda p, tmp: load_for_eval({"kind": "longclip", "arch": _open_clip_config(tmp),
                                                        "path": str(p)}),
    "eval-kind-openclip": lambda p, tmp: load_for_eval({"kind": "openclip", "arch": _open_clip_config(tmp),
                                                        "path": str(p)}),
}
@pytest.mark.parametrize("loader", LOADERS)
def test_planted_code_never_runs(loader, tmp_path):
    path, marker = _evil(tmp_path)
    with pytest.raises(Exception) as err:  # noqa: B017 - any refusal, as long as it is the weights_only one
        LOADERS[loader](path, tmp_path)
    assert "weights_only" in str(err.value), err.value
    assert not marker.exists(), f"{loader} executed code from the checkpoint"


@pytest.mark.parametrize("loader", LOADERS)
def test_refusal_is_one_error_naming_the_file(loader, tmp_path):
    path, _ = _evil(tmp_path)
    with pytest.raises(ValueError) as err:
        LOADERS[loader](path, tmp_path)
    message = str(err.value)
    assert str(path) in message and "weights_only=True" in message and "\n" not in message


def test_evaluate_command_refuses_with_one_line(tmp_path, capsys):
    path, marker = _evil(tmp_path)
    rc = main(["evaluate", "--cfg", "{}", "--run", "lotlip", "--name", "dci_syn", "--checkpoint", str(path),
               "--benchmark", str(tmp_path / "bench"), "--out", str(tmp_path / "eval.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and str(path) in err and "refused" in err, err
    assert not marker.exists() and not (tmp_path / "eval.json").exists()


def _resume_from(last_pt_payload, tiny_cfg, tiny_world, tmp_path):
    from tests.faults.conftest import tiny_run

    run = tiny_run(tiny_cfg, steps=2, batch_size=8)
    (tmp_path / "run").mkdir()
    torch.save(last_pt_payload, tmp_path / "run" / "last.pt")
    return loop.train(run, tiny_world[2], tmp_path / "run" / "model.pt")


def test_training_never_runs_code_from_last_pt(tiny_cfg, tiny_world, tmp_path):
    marker = tmp_path / "PWNED"
    with pytest.raises(Exception) as err:  # noqa: B017
        _resume_from({"model": {}, "step": 1, "x": _Planted(marker)}, tiny_cfg, tiny_world, tmp_path)
    assert "weights_only" in str(err.value)
    assert not marker.exists() and not (tmp_path / "run" / "model.pt").exists()


def test_training_refuses_a_pickled_last_pt_naming_it(tiny_cfg, tiny_world, tmp_path):
    with pytest.raises(ValueError) as err:
        _resume_from({"model": {}, "step": 1, "x": _Planted(tmp_path / "PWNED")}, tiny_cfg, tiny_world, tmp_path)
    assert str(tmp_path / "run" / "last.pt") in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("field", ["image_init", "text_init"])
def test_training_refuses_pickled_init_checkpoints(field, tiny_cfg, tiny_world, tmp_path):
    from tests.faults.conftest import tiny_run

    path, marker = _evil(tmp_path)
    run = tiny_run(tiny_cfg, steps=1, batch_size=8)
    run = dataclasses.replace(run, experiment=dataclasses.replace(run.experiment, **{field: "src"} if
                              field == "text_init" else {field: str(path)}))
    with pytest.raises(ValueError, match="refused to load with weights_only=True") as err:
        loop.train(run, tiny_world[2], tmp_path / "run" / "model.pt", text_init=path if field == "text_init" else None)
    assert str(path) in str(err.value) and not marker.exists()
