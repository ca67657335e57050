import json
import sys

from lotlip.cli import main
from tests.conftest import run_child


def test_bad_config_key_is_one_clear_line(capsys):
    rc = main(["images", "--cfg", json.dumps({"world": {"n_trian": 3}}), "--out", "unused"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err == "lotlip images: error: --cfg: unknown key 'world.n_trian'"


def test_world_is_a_deprecated_alias_of_images(tmp_path, capsys):
    cfg = json.dumps({"world": {"n_train": 2, "image_size": 16}})
    assert main(["world", "--cfg", cfg, "--out", str(tmp_path / "old")]) == 0
    assert capsys.readouterr().err.strip() == "lotlip world: deprecated, use `lotlip images`"
    assert main(["images", "--cfg", cfg, "--out", str(tmp_path / "new")]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert (tmp_path / "old" / "scenes.jsonl").read_bytes() == (tmp_path / "new" / "scenes.jsonl").read_bytes()


def test_missing_input_is_one_clear_line(tmp_path, capsys):
    rc = main(["shards", "--cfg", "{}", "--images", str(tmp_path / "nowhere"), "--captions",
               str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nowhere/scenes.jsonl" in err[0]


def test_module_entry_point_runs():
    out = run_child([sys.executable, "-m", "lotlip", "--help"], capture_output=True, text=True, check=True, timeout=120)
    assert "train" in out.stdout and "evaluate" in out.stdout


def test_relabel_stage_reads_a_precomputed_dreamlip_table(tmp_path):
    import pandas as pd

    from lotlip.config import WorldConfig
    from lotlip.io import read_jsonl
    from lotlip.world.build import build_train_split

    build_train_split(WorldConfig(n_train=3), tmp_path / "world")
    keys = [r["key"] for r in read_jsonl(tmp_path / "world" / "scenes.jsonl")]
    table = {"key": keys, "Image Path": [f"http://127.0.0.1/{k}.jpg" for k in keys], "raw_caption": ["r"] * 3}
    for tag in ("IB", "LLA", "SV"):
        table[f"short{tag}_captions"] = [f"short {tag}"] * 3
        table[f"long{tag}_captions"] = [f"Long {tag} one. Long {tag} two."] * 3
    pd.DataFrame(table).to_csv(tmp_path / "dreamlip.csv", index=False)
    cfg = {"relabel": {"backend": "precomputed",
                       "precomputed": {"path": str(tmp_path / "dreamlip.csv"), "key_column": "key"}}}
    rc = main(["relabel", "--cfg", json.dumps(cfg), "--images", str(tmp_path / "world"),
               "--out", str(tmp_path / "captions.jsonl")])
    records = read_jsonl(tmp_path / "captions.jsonl")
    assert rc == 0 and [r["key"] for r in records] == keys
    assert records[0]["captions"]["sharegpt4v"]["long"] == "Long SV one. Long SV two."


def test_check_config_runs_the_whole_config_checks_of_the_workflow(tmp_path, capsys, monkeypatch):
    import lotlip.plan

    checked = []
    monkeypatch.setattr(lotlip.plan, "check_plan", checked.append)
    (tmp_path / "c.yaml").write_text("train:\n  lr: 0.001\n")
    assert main(["check-config", str(tmp_path / "c.yaml")]) == 0
    assert capsys.readouterr().out.strip() == '"ok"' and checked[0].train.lr == 0.001


def test_cli_package_starts_without_torch():
    code = "import sys, lotlip.cli; lotlip.cli.build_parser(); print('torch' in sys.modules)"
    out = run_child([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
