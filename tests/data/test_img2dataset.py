"""Real training images (``world.source: img2dataset``): img2dataset's published output layout, keys joined to
released caption rows, shards with JPEGs, the trainer's loader, and (when img2dataset is installed) the real
command downloading from 127.0.0.1 through the workflow."""

from __future__ import annotations

import io
import json
import math
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from PIL import Image

from lotlip.config import ConfigError, SamplingConfig, check_stages, load_config
from lotlip.data.img2dataset import (
    REQUEST_FILE,
    Img2DatasetError,
    finish_download,
    image_keys,
    img2dataset_command,
    is_img2dataset_world,
    iter_images,
    row_key,
)
from lotlip.data.loader import train_batches
from lotlip.data.shards import shard_urls, write_shards
from lotlip.io import write_jsonl
from lotlip.relabel import relabel_scenes
from tests.conftest import BIN, REPO, env_with_bin, planned_jobs, run_child
from tests.relabel.test_relabel_precomputed import DREAMLIP_HEADER, _dreamlip_row, _write_csv

pytest_plugins = ["tests.http_fixture"]

IMG2DATASET = shutil.which("img2dataset")


def _jpeg(i: int, size: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (20 * i % 256, 255 - 20 * i % 256, 90)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def img2dataset_layout(folder: Path, n_rows: int, per_shard: int, failed: set[int]) -> None:
    """What img2dataset writes for ``n_rows`` url rows: per shard ``NNNNN.tar`` holding ``<key>.{jpg,txt,json}``
    of each downloaded row and ``NNNNN_stats.json`` (rows in ``failed`` did not download)."""
    digits = math.ceil(math.log10(per_shard))  # img2dataset: ceil(log10(number_sample_per_shard))
    folder.mkdir(parents=True)
    for shard in range((n_rows + per_shard - 1) // per_shard):
        rows = range(shard * per_shard, min(n_rows, (shard + 1) * per_shard))
        ok = [r for r in rows if r not in failed]
        with tarfile.open(folder / f"{shard:05d}.tar", "w") as tf:
            for r in ok:
                key = f"{shard:05d}{r - shard * per_shard:0{digits}d}"
                meta = {"url": f"http://example.com/img/{r}.jpg", "caption": f"alt text {r}", "key": key,
                        "status": "success", "error_message": None, "width": 24, "height": 24}
                _add(tf, f"{key}.jpg", _jpeg(r))
                _add(tf, f"{key}.txt", f"alt text {r}".encode())
                _add(tf, f"{key}.json", json.dumps(meta).encode())
        stats = {"count": len(rows), "successes": len(ok), "failed_to_download": len(rows) - len(ok),
                 "failed_to_resize": 0}
        (folder / f"{shard:05d}_stats.json").write_text(json.dumps(stats))


@pytest.fixture
def downloaded(tmp_path):
    """A finished img2dataset download (10 rows, shards of 4, rows 2 and 7 failed) and its DreamLIP caption table."""
    csv = _write_csv(tmp_path / "cc3m.csv", DREAMLIP_HEADER, [_dreamlip_row(i) for i in range(10)])
    img2dataset_layout(tmp_path / "images.partial", 10, 4, failed={2, 7})
    finish_download(tmp_path / "images.partial", tmp_path / "images", csv, 4)
    return tmp_path / "images", csv


@pytest.mark.parametrize(("key", "per_shard", "row"), [
    ("000000005", 10000, "000000005"), ("000030007", 10000, "000030007"),  # default: the key is the row
    ("0000213", 100, "000000213"), ("000023", 4, "000000011"), ("000012", 1, "000000012")])
def test_row_key_is_the_url_table_row(key, per_shard, row):
    assert row_key(key, per_shard) == row


def test_row_key_refuses_a_key_that_does_not_fit_the_shard_size():
    with pytest.raises(Img2DatasetError, match="sample key 'ab12'"):
        row_key("ab12", 10000)


def test_finished_download_lists_images_by_row(downloaded):
    world, csv = downloaded
    assert is_img2dataset_world(world) and not (world.parent / "world.partial").exists()
    assert json.loads((world / "sizes.json").read_text()) == {"00000.tar": 3, "00001.tar": 3, "00002.tar": 2}
    rows = [f"{r:09d}" for r in (0, 1, 3, 4, 5, 6, 8, 9)]
    assert image_keys(world) == rows
    samples = list(iter_images(world))
    assert [s.key for s in samples] == rows and {s.ext for s in samples} == {"jpg"}
    assert samples[2].caption == "alt text 3" and samples[2].url == "http://example.com/img/3.jpg"
    assert Image.open(io.BytesIO(samples[2].image)).getpixel((5, 5))[0] in range(55, 66)  # row 3's colour


def test_unfinished_or_empty_download_is_refused(tmp_path):
    img2dataset_layout(tmp_path / "a", 4, 4, failed=set())
    (tmp_path / "a" / "00000_stats.json").unlink()
    with pytest.raises(Img2DatasetError, match=r"00000_stats.json: missing; 00000.tar is an unfinished"):
        finish_download(tmp_path / "a", tmp_path / "out", "urls.csv", 4)
    img2dataset_layout(tmp_path / "b", 4, 4, failed={0, 1, 2, 3})
    with pytest.raises(Img2DatasetError, match="urls.csv: img2dataset downloaded no image"):
        finish_download(tmp_path / "b", tmp_path / "out", "urls.csv", 4)
    assert not (tmp_path / "out").exists()


def test_captions_join_images_and_train_batches_read_jpeg_shards(downloaded, tmp_path):
    import open_clip

    from lotlip.model import get_tokenizer

    world, csv = downloaded
    images = [SimpleNamespace(key=k) for k in image_keys(world)]
    records = list(relabel_scenes("precomputed", images, ["sharegpt4v", "llava"], 0, path=csv))
    del records[0]  # a caption row the released table dropped (bad caption): that image is left out
    write_jsonl(tmp_path / "captions.jsonl", records)
    counts = write_shards(world, tmp_path / "captions.jsonl", tmp_path / "shards", samples_per_shard=5)
    assert counts == {"train-000000.tar": 5, "train-000001.tar": 2}
    with tarfile.open(tmp_path / "shards" / "train-000000.tar") as tf:
        names = sorted(m.name for m in tf.getmembers())
        meta = json.loads(tf.extractfile("000000003.json").read())
    assert names[:2] == ["000000001.jpg", "000000001.json"]
    assert meta["raw"] == "alt text 3" and set(meta["captions"]) == {"sharegpt4v", "llava"}
    tokenizer = get_tokenizer("lotlip-tiny")
    batches = train_batches(shard_urls(tmp_path / "shards"), SamplingConfig(n_subcaptions=2), tokenizer,
                            open_clip.image_transform(32, is_train=False), batch_size=7, seed=0, shuffle_buffer=1)
    images_t, tokens = next(batches)
    assert images_t.shape == (7, 3, 32, 32) and tokens.shape[:2] == (7, 3)


def test_command_line_carries_every_setting(tmp_path):
    cfg = load_config(REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml")
    args = img2dataset_command(cfg.world.img2dataset, "urls.csv", tmp_path)
    opts = dict(zip(args[1::2], args[2::2], strict=False))
    assert args[0] == "img2dataset" and opts["--output_format"] == "webdataset"
    assert opts["--url_col"] == "Image Path" and opts["--caption_col"] == "raw_caption"
    assert opts["--number_sample_per_shard"] == "10000" and opts["--incremental_mode"] == "incremental"
    assert cfg.world.source == "img2dataset" and cfg.world.img2dataset.dataset == "dreamlip-cc3m"


@pytest.mark.parametrize(("override", "message"), [
    ({"world": {"source": "img2dataset"}, "relabel": {"backend": "precomputed", "precomputed": {"path": "c.csv"}}},
     "world.img2dataset.url_list: required when world.source is img2dataset"),
    ({"world": {"source": "img2dataset", "img2dataset": {"url_list": "u.csv"}}},
     "relabel.backend: 'simulated' needs the synthetic world"),
    ({"world": {"source": "flickr"}}, "world.source"),
    ({"world": {"img2dataset": {"resize_mode": "stretch"}}}, "world.img2dataset.resize_mode"),
])
def test_config_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        check_stages(load_config(REPO / "config" / "config.yaml", override))


def test_missing_executable_is_one_clear_error(tmp_path):
    from lotlip.data.img2dataset import download_images

    cfg = SimpleNamespace(command="no-such-img2dataset")
    (tmp_path / "u.csv").write_text("url\n")
    with pytest.raises(Img2DatasetError, match="'no-such-img2dataset' is not on PATH"):
        download_images(cfg, tmp_path / "u.csv", tmp_path / "out")
    with pytest.raises(Img2DatasetError, match="missing.csv: url list not found"):
        download_images(cfg, tmp_path / "missing.csv", tmp_path / "out")


# --- the real img2dataset, through the workflow ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(IMG2DATASET is None, reason="img2dataset is not installed (`make img2dataset` puts it in "
                    ".venv-img2dataset; it pins webdataset < 0.3, so it cannot share lotlip's environment)")
def test_workflow_trains_on_images_img2dataset_downloads(http_server, tmp_path):
    rows = []
    for i in range(12):
        row = _dreamlip_row(i)
        row["Image Path"] = http_server.add(f"img/{i}.jpg", _jpeg(i, size=40)) if i != 5 else http_server.url("gone")
        rows.append(row)
    http_server.missing.add("gone")
    csv = _write_csv(tmp_path / "cc3m.csv", DREAMLIP_HEADER, rows)
    tier = {"world": {"source": "img2dataset",
                      "img2dataset": {"url_list": str(csv), "image_size": 32, "samples_per_shard": 8,
                                      "threads": 2, "retries": 0, "timeout_s": 5,
                                      "command": IMG2DATASET}},
            "relabel": {"backend": "precomputed", "precomputed": {"path": str(csv)}},
            "select": {"experiments": ["lotlip"], "benchmarks": ["dci_syn"]},
            "train": {"steps": 2, "batch_size": 4, "threads": 1}, "seeds": [0]}
    (tmp_path / "tier.yaml").write_text(json.dumps(tier))
    # an interrupted download of other urls: incremental mode would keep its finished shard 0 if it were resumed
    img2dataset_layout(tmp_path / "resources" / "images" / "train.partial", 1, 8, failed=set())
    (tmp_path / "resources" / "images" / "train.partial" / REQUEST_FILE).write_text('{"command": ["other"]}')
    env = env_with_bin(no_proxy="127.0.0.1")
    target = ["results/checkpoints/lotlip/seed0/model.pt", "results/table_dataset_stats.csv"]
    configs = ["--configfile", str(REPO / "config" / "config.yaml"), str(REPO / ".test" / "config" / "config.yaml"),
               str(tmp_path / "tier.yaml")]
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2"]
    done = run_child([*cmd, *target, *configs], capture_output=True, text=True, env=env, timeout=900)
    logs = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert done.returncode == 0, (done.stderr[-3000:], logs[-3000:])
    world = tmp_path / "resources" / "images" / "train"
    assert json.loads((world / "sizes.json").read_text()) == {"00000.tar": 7, "00001.tar": 4}
    assert image_keys(world) == [f"{r:09d}" for r in range(12) if r != 5]
    sizes = json.loads((tmp_path / "results" / "shards" / "train" / "sizes.json").read_text())
    assert sum(sizes.values()) == 11
    stats = pd.read_csv(tmp_path / "results" / "table_dataset_stats.csv").set_index("dataset")
    assert stats.loc["train (raw)", "n_images"] == 11
    assert (tmp_path / "results" / "checkpoints" / "lotlip" / "seed0" / "model.pt").is_file()
    again = run_child([*cmd, "-n", *target, *configs], capture_output=True, text=True, env=env, timeout=300)
    assert planned_jobs(again.stdout + again.stderr) == {}


def test_world_params_carry_only_the_configured_source():
    from lotlip.plan import world_settings

    synthetic = load_config(REPO / "config" / "config.yaml")
    assert set(world_settings(synthetic)) == {"seed", "image_size", "n_train", "min_objects", "max_objects"}
    real = load_config(REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml")
    settings = world_settings(real)
    assert set(settings) == {"source", "img2dataset"} and settings["img2dataset"]["url_col"] == "Image Path"
    faster = load_config(REPO / "config" / "config.yaml", {"world": {"img2dataset": {"threads": 99}}})
    assert world_settings(faster) == world_settings(synthetic)  # a download setting leaves the synthetic world
