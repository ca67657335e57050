"""Fault 2: a checkpoint cut off in the middle of its write is never picked up as the latest one; the previous
checkpoint is used and the rerun ends with the uninterrupted run's weights. A checkpoint damaged some other way
(copied halfway, empty, garbage) is one clear error naming the file.

The cut is real: a hook makes the K-th ``torch.save`` of ``lotlip train`` write half its bytes to disk (fsynced),
then the process is SIGKILLed there, as a crash or power loss mid-write leaves it.
"""

from __future__ import annotations

import pytest

from lotlip.cli import main
from lotlip.train import loop
from tests.faults.conftest import assert_same_weights, temp_leftovers


@pytest.fixture(scope="module")
def cut(request, fault_lab, kill_run, tiny_world):
    """Scenario ``request.param`` killed mid-write, then rerun to the end."""
    after_kill = fault_lab.killed(request.param)
    out = fault_lab.out(request.param)
    summary = loop.train(kill_run, tiny_world[2], out)
    return {"after_kill": after_kill, "summary": summary, "out": out, "leftovers": temp_leftovers(out.parent)}


@pytest.mark.parametrize("cut", ["cut-checkpoint"], indirect=True)
def test_checkpoint_cut_mid_write_is_never_the_latest(cut, reference_model):
    after = cut["after_kill"]
    (temp, size), = after["temp_sizes"].items()
    assert temp.startswith(".last.pt.") and size > 0  # the half-written bytes sit in a temp file ...
    assert after["last_step"] == 2  # ... while last.pt is still the complete checkpoint of step 2
    assert "model.pt" not in after["files"]
    assert cut["summary"]["resumed_from"] == 2
    assert_same_weights(cut["out"], reference_model)


@pytest.mark.parametrize("cut", ["cut-model"], indirect=True)
def test_final_model_cut_mid_write_is_never_published(cut, reference_model):
    after = cut["after_kill"]
    assert "model.pt" not in after["files"]  # no half model for evaluation to pick up
    assert [t.startswith(".model.pt.") for t in after["temp_sizes"]] == [True]
    assert after["last_step"] == 4  # the resumable state survives until the model is complete
    assert cut["summary"]["resumed_from"] == 4
    assert_same_weights(cut["out"], reference_model)


@pytest.mark.parametrize("cut", ["cut-checkpoint", "cut-model"], indirect=True)
def test_a_rerun_removes_the_half_written_temp_file(cut):
    """atomic_path's cleanup does not run on SIGKILL; the rerun removes the fragment (loop._remove_stale_temps)."""
    assert cut["leftovers"] == []


def _damaged(reference_model, path, how: str):
    data = reference_model.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes({"truncated": data[: len(data) // 3], "empty": b"", "garbage": b"not a checkpoint" * 64}[how])
    return path


DAMAGE = ["truncated", "empty", "garbage"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_last_pt_is_one_error_naming_it(how, reference_model, kill_run, tiny_world, tmp_path):
    last = _damaged(reference_model, tmp_path / "run" / "last.pt", how)
    with pytest.raises(ValueError) as err:
        loop.train(kill_run, tiny_world[2], tmp_path / "run" / "model.pt")
    assert str(last) in str(err.value) and "\n" not in str(err.value)
    assert "truncated or corrupt" in str(err.value)
    assert last.is_file() and not (tmp_path / "run" / "model.pt").exists()  # nothing overwritten or invented


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_model_is_one_error_naming_it(how, reference_model, tmp_path, capsys):
    model = _damaged(reference_model, tmp_path / "model.pt", how)
    rc = main(["evaluate", "--cfg", "{}", "--run", "lotlip", "--name", "dci_syn", "--checkpoint", str(model),
               "--benchmark", str(tmp_path / "bench"), "--out", str(tmp_path / "eval.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(model) in err[0] and "truncated or corrupt" in err[0], err
    assert not (tmp_path / "eval.json").exists()
