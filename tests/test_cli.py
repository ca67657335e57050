import json
import subprocess
import sys

from lotlip.cli import main


def test_bad_config_key_is_one_clear_line(capsys):
    rc = main(["world", "--cfg", json.dumps({"world": {"n_trian": 3}}), "--out", "unused"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err == "lotlip world: error: --cfg: unknown key 'world.n_trian'"


def test_missing_input_is_one_clear_line(tmp_path, capsys):
    rc = main(["shards", "--cfg", "{}", "--world", str(tmp_path / "nowhere"), "--captions",
               str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nowhere/scenes.jsonl" in err[0]


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "lotlip", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "evaluate" in out.stdout
