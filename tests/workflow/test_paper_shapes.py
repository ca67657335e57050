"""The paper's architecture trained in CI through the workflow's own rules: ``lotlip_bert-ViT-B-16`` (timm ViT-B/16
224 px + BERT-base, context 128, 2 corner tokens, 196M parameters) at random init, offline, on 224 px JPEG shards
that the real img2dataset downloads from 127.0.0.1 with DreamLIP caption rows, the image tower initialised from a
timm ImageNet-21k-layout state dict (``image_init``). Two runs of 2 steps at global batch 2: paper.yaml's ``lotlip``
in fp32 with 2 gloo ranks (submitit's local executor, batch 1 each) and ``lotlip_bf16`` in one process with bf16
autocast; both evaluated on tiny sets in the published Urban1k / DCI / IIW layouts; tables; nothing left to re-plan.

Config: config/config.yaml + config/paper.yaml + .test/config/paper_shapes.yaml + a file of fixture paths.
Budget (2 cores): under 5 minutes; about 3.6 GB per training process, 2 of them in the 2-rank run."""

from __future__ import annotations

import io
import itertools
import json
import math
import shutil
import string
import subprocess
import tarfile
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tests.conftest import REPO, env_with_bin, planned_jobs, run_child, snakemake_cmd
from tests.relabel.test_relabel_precomputed import DREAMLIP_HEADER, _dreamlip_row, _write_csv

pytest_plugins = ["tests.http_fixture"]

RUNS = {"lotlip": "fp32", "lotlip_bf16": "bf16"}  # run -> precision
DDP_RUN = "lotlip"  # trained with 2 gloo ranks
BENCHMARKS = ["urban1k", "dci", "iiw"]
N_IMAGES = 10  # 2 shards of 5 (one per rank)
BERT_VOCAB_SIZE = 30522
BERT_SPECIALS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}  # bert-base-uncased ids
CONFIGS = [REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml", REPO / ".test" / "config" /
           "paper_shapes.yaml"]
# Offline: no proxy reaches anything except the loopback server, no Hugging Face hub; 2 cores, 2 threads per op.
ENV = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
       "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
       "TOKENIZERS_PARALLELISM": "false"}
WALL_LIMIT_S = 300  # budget on 2 cores: 287 s measured while other jobs held about half of them


def img2dataset_command() -> str:
    """img2dataset on PATH, else in ``make img2dataset``'s venv; a failure (not a skip) without it: CI runs this."""
    found = shutil.which("img2dataset") or shutil.which("img2dataset", path=str(REPO / ".venv-img2dataset" / "bin"))
    if found is None:
        pytest.fail("img2dataset is not installed: `make img2dataset` puts it in .venv-img2dataset (its own venv: "
                    "it pins webdataset < 0.3); this test needs the real downloader")
    return found


# --- fixtures: images, vocabulary, model config, timm weights, evaluation sets ---------------------------------

def _jpeg(i: int, size: tuple[int, int] = (256, 240)) -> bytes:
    """A distinct, compressible picture: a two-colour gradient per image."""
    w, h = size
    img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    tint = Image.new("RGB", (w, h), (37 * i % 256, 255 - 23 * i % 256, 90 + 13 * i % 160))
    buf = io.BytesIO()
    Image.blend(img, tint, 0.6).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def bert_vocab(extra_words: list[str]) -> list[str]:
    """A 30,522-entry uncased WordPiece vocabulary with bert-base-uncased's special ids: [unusedN] below 100,
    every ASCII character and its ``##`` piece (any lowercase text tokenises without [UNK]), ``extra_words``,
    then letter pairs and triples (whole and ``##``) to fill the size."""
    vocab = [BERT_SPECIALS.get(i, f"[unused{i - 1}]") for i in range(104)]
    chars = string.ascii_lowercase + string.digits + string.punctuation
    combos = ("".join(p) for n in (2, 3) for p in itertools.product(string.ascii_lowercase, repeat=n))
    pieces = itertools.chain(chars, (f"##{c}" for c in chars), extra_words,
                             itertools.chain.from_iterable((c, f"##{c}") for c in combos))
    seen = set(vocab)
    for piece in pieces:
        if piece not in seen:
            seen.add(piece)
            vocab.append(piece)
        if len(vocab) == BERT_VOCAB_SIZE:
            return vocab
    raise AssertionError("vocabulary generator ran out of pieces")


def model_config(path: Path, vocab: Path) -> Path:
    """``lotlip_bert-ViT-B-16`` as bundled, with an offline BERT-base (``hf_config: {}`` = bert-base-uncased's
    architecture, random init) and the local vocabulary; the vision trunk's weights come from ``image_init``."""
    from lotlip.model.factory import get_model_config

    cfg = get_model_config("lotlip_bert-ViT-B-16")
    cfg["vision_cfg"].pop("checkpoint_path", None)  # image_init initialises the trunk (no hub / release file)
    cfg["text_cfg"].update(hf_config={}, hf_tokenizer_name=str(vocab))
    path.write_text(json.dumps(cfg, indent=2))
    return path


def timm_in21k_state_dict(path: Path) -> dict:
    """A random ``vit_base_patch16_224.augreg_in21k`` saved as timm's ``pytorch_model.bin`` (21,843-class head
    included); returns its ``pos_embed`` for checking that ``image_init`` reached the trunk."""
    import timm
    import torch

    torch.manual_seed(1234)  # not the trainer's seed: a fresh tower would differ from this one
    state = timm.create_model("vit_base_patch16_224.augreg_in21k", pretrained=False).state_dict()
    torch.save(state, path)
    return state["pos_embed"].clone()


LONG_TEXTS = [
    "A narrow street lined with red brick houses. A bicycle leans against a lamp post. Clouds cover the sky",
    "Two boats rest on a calm lake at dawn. Pine trees stand on the far shore. A wooden pier reaches the water",
    "A kitchen table holds a bowl of green apples. Sunlight falls through a window. A cat sleeps on a chair",
    "A market square with striped umbrellas. People carry baskets of bread. A fountain stands in the middle",
    "A snowy mountain path with footprints. A blue tent is pitched near a rock. The sun sets behind the peaks",
    "A library with tall shelves of old books. A reading lamp glows on a desk. A ladder leans on the shelves",
]


def _photo(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpeg(i + 20, size=(300, 260)))


def evaluation_sets(data: Path) -> None:
    """Urban1k, DCI and IIW (+ the DCI / DOCCI images it uses) in their published layouts, with the fetch markers,
    so the workflow imports them without downloading anything (as tests/eval/test_release_eval.py)."""
    urban = data / "urban1k" / "Urban1k"
    for i in range(1, 5):
        _photo(urban / "image" / f"{i}.jpg", i)
        (urban / "caption").mkdir(exist_ok=True)
        (urban / "caption" / f"{i}.txt").write_text(LONG_TEXTS[i - 1] + "\n")
    dci = data / "dci" / "densely_captioned_images"
    (dci / "annotations").mkdir(parents=True)
    names = []
    for i in range(4):
        _photo(dci / "photos" / f"sa_{i}.jpg", 10 + i)
        short, extra = LONG_TEXTS[i + 1].split(". ", 1)
        ann = {"image": f"sa_{i}.jpg", "short_caption": short, "extra_caption": extra}
        (dci / "annotations" / f"sa_{i}.json").write_text(json.dumps(ann))
        names.append(f"sa_{i}.json")
    (dci / "splits.json").write_text(json.dumps({"train": names[:2], "valid": names[2:3], "test": names[3:]}))
    docci = data / "docci"
    iiw_sets = {"DOCCI_Test": docci / "images", "IIW-400": docci / "images_aar", "DCI_Test": dci / "photos"}
    for k, (name, folder) in enumerate(iiw_sets.items()):
        image = f"test_{k}.jpg" if name != "DCI_Test" else "sa_3.jpg"
        if name != "DCI_Test":
            _photo(folder / image, 30 + k)
        (data / "iiw" / name).mkdir(parents=True)
        (data / "iiw" / name / "data.jsonl").write_text(json.dumps({"image": image, "IIW": LONG_TEXTS[5 - k]}) + "\n")
    (data / ".fetched").mkdir()
    for name in ("urban1k", "dci", "docci", "iiw"):
        (data / ".fetched" / f"{name}.json").write_text("{}")


# --- measuring the workflow's processes -----------------------------------------------------------------------

class TreeMemory:
    """Peak summed RSS of this process and all its descendants, sampled every ``every_s`` in a thread."""

    def __init__(self, every_s: float = 0.25):
        import psutil

        self._psutil, self.every_s = psutil, every_s
        self.peak_bytes, self.peak_single, self._stop = 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = self._psutil.Process()
        while not self._stop.is_set():
            rss = []
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss.append(proc.memory_info().rss)
                except self._psutil.Error:
                    pass
            self.peak_bytes = max(self.peak_bytes, sum(rss))
            self.peak_single = max(self.peak_single, max(rss, default=0))
            self._stop.wait(self.every_s)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _snakemake(workdir: Path, *args: str, timeout: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the workflow in its own process group; on a time-out the whole group (training jobs, submitit tasks)
    is killed, so that no 7 GB trainer outlives the test."""
    env = env_with_bin(**ENV, **(env or {}))
    cmd = snakemake_cmd(workdir, *args)
    try:
        return run_child(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"snakemake {' '.join(args[:2])} did not finish within {timeout} s\n{(exc.stderr or '')[-3000:]}")


def _failure(done: subprocess.CompletedProcess, workdir: Path) -> str:
    logs = "".join(f"--- {p.relative_to(workdir)}\n{p.read_text(errors='replace')[-2000:]}"
                   for p in sorted((workdir / "logs").rglob("*")) if p.is_file() and p.suffix in (".log", ".out",
                                                                                              ".err"))
    return f"snakemake exit {done.returncode}\n{done.stderr[-3000:]}\n{logs[-6000:]}"


# --- the test -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_paper_architecture_trains_and_evaluates_through_the_workflow(http_server, tmp_path):
    import torch

    from lotlip.model.checkpoint import load_model

    t_start = time.monotonic()
    command = img2dataset_command()
    fixtures, work = tmp_path / "fixtures", tmp_path / "work"
    fixtures.mkdir()
    rows = []
    for i in range(N_IMAGES):
        row = _dreamlip_row(i)
        row["Image Path"] = http_server.add(f"img/{i}.jpg", _jpeg(i))
        rows.append(row)
    csv = _write_csv(fixtures / "cc3m_3long_3short_1raw_captions_url.csv", DREAMLIP_HEADER, rows)
    texts = [*LONG_TEXTS, *(v for row in rows for k, v in row.items() if k != "Image Path")]
    words = sorted({w.strip(string.punctuation).lower() for text in texts for w in text.split()} - {""})
    vocab = fixtures / "vocab.txt"
    vocab.write_text("\n".join(bert_vocab(words)) + "\n", encoding="utf-8")
    arch = model_config(fixtures / "lotlip_bert-ViT-B-16-offline.json", vocab)
    init = fixtures / "pytorch_model.bin"
    pos_embed = timm_in21k_state_dict(init)
    evaluation_sets(work / "resources" / "data")
    paths = {"world": {"img2dataset": {"url_list": str(csv), "command": command}},
             "relabel": {"precomputed": {"path": str(csv)}},
             "train": {"model": str(arch)},
             "experiments": {run: {"image_init": str(init)} for run in RUNS}}
    (fixtures / "paths.yaml").write_text(json.dumps(paths))
    configs = ["--configfile", *map(str, CONFIGS), str(fixtures / "paths.yaml")]
    # `launch` reaches the train rule as a resource, not a param: the 2-rank run is the same run as far as the
    # workflow is concerned, so the later invocations without this file keep its checkpoint.
    (fixtures / "ddp.yaml").write_text(json.dumps({"launch": {"executor": "local", "tasks_per_node": 2,
                                                              "timeout_min": 10}}))
    ckpt = "results/paper/checkpoints/{run}/seed0/model.pt"  # the paper tier's own root
    t_fixtures = time.monotonic() - t_start

    with TreeMemory() as memory:
        t0 = time.monotonic()
        # c10d's DETAIL mode logs every collective per rank ("[Rank 1] Running collective ...") in the task logs:
        # what shows that both ranks joined one gloo group. Passive OpenMP waits: 2 ranks x 2 threads on 2 cores.
        ddp = _snakemake(work, ckpt.format(run=DDP_RUN), *configs, str(fixtures / "ddp.yaml"), timeout=240,
                         env={"TORCH_DISTRIBUTED_DEBUG": "DETAIL", "TORCH_CPP_LOG_LEVEL": "INFO",
                              "OMP_WAIT_POLICY": "PASSIVE"})
        assert ddp.returncode == 0, _failure(ddp, work)
        assert planned_jobs(ddp.stdout + ddp.stderr).get("train") == 1
        t_ddp = time.monotonic() - t0
        done = _snakemake(work, "all", *configs, timeout=300)
        assert done.returncode == 0, _failure(done, work)
        t_all = time.monotonic() - t0 - t_ddp
    planned = planned_jobs(done.stdout + done.stderr)
    assert planned.get("train") == 1 and "images" not in planned, planned  # the 2-rank checkpoint was kept
    shards = sorted((work / "results" / "paper" / "shards" / "train").glob("*.tar"))
    assert len(shards) == 2  # one per rank
    with tarfile.open(shards[0]) as tf:
        jpg = next(m for m in tf.getmembers() if m.name.endswith(".jpg"))
        assert Image.open(io.BytesIO(tf.extractfile(jpg).read())).size == (224, 224)  # img2dataset's resize

    # every run: a checkpoint at paper shapes, 2 finite log rows, its precision and sampling recorded, the locked
    # trunk exactly image_init's weights. Each one reloaded through load_model in its evaluate job (below); here
    # the payload is read memory-mapped, and the 2-rank run's (saved by rank 0 of a submitit job) fully reloaded.
    for run, precision in RUNS.items():
        path = work / ckpt.format(run=run)
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        meta, state = payload["meta"], payload["state_dict"]
        assert (payload["model"], payload["num_corner_tokens"], payload["context_length"]) == (str(arch), 2, 128)
        assert sum(v.numel() for v in state.values()) > 190e6
        assert meta["config"]["train"]["precision"] == precision and meta["summary"]["steps"] == 2
        ranks = 2 if run == DDP_RUN else 1
        assert (meta["summary"]["world_size"], meta["summary"]["per_process_batch"]) == (ranks, 2 // ranks)
        sampling = meta["config"]["sampling"]
        assert (sampling["n_subcaptions"], sampling["merged_num"]) == (1 if run == "lotlip_bf16" else 6, 3)
        assert torch.equal(state["visual.trunk.pos_embed"], pos_embed), f"{run}: trunk is not image_init's"
        log = pd.read_csv(path.parent / "log.csv")
        assert list(log["step"]) == [1, 2] and all(math.isfinite(v) for v in log["loss"]), log
        assert not (path.parent / "last.pt").exists()  # the step-1 resumable state, removed at the end
        del payload, state
    model, tokenizer, meta = load_model(work / ckpt.format(run=DDP_RUN))
    assert model.num_corner_tokens == 2 and tokenizer.context_length == 128
    assert tokenizer.vocab_size == BERT_VOCAB_SIZE + 2 and meta["config"]["name"] == DDP_RUN
    tokens = tokenizer(texts)
    assert tokens[:, 0].eq(101).all() and tokens[:, 1:3].tolist() == [tokenizer.corner_ids] * len(texts)
    assert not tokens.eq(100).any()  # no [UNK]: the fixture vocabulary covers every caption
    del model

    # the 2-rank run: one submitit job with 2 tasks, each with its result, and both ranks ran the collectives of
    # one gloo group (feature all-gathers, gradient all-reduces)
    job_dirs = list((work / "logs" / "submitit" / f"lotlip-train-{DDP_RUN}").iterdir())
    assert len(job_dirs) == 1, job_dirs
    files = sorted(p.name for p in job_dirs[0].iterdir())
    assert sum(name.endswith("_result.pkl") for name in files) == 2, files
    for rank in (0, 1):
        out = (job_dirs[0] / next(n for n in files if n.endswith(f"_{rank}_log.out"))).read_text()
        err = (job_dirs[0] / next(n for n in files if n.endswith(f"_{rank}_log.err"))).read_text()
        assert f"global_rank={rank}(2)" in out, out[-2000:]
        for op in ("ALLGATHER", "ALLREDUCE"):
            assert f"[Rank {rank}] Running collective" in err and f"OpType={op}" in err, err[-3000:]

    # evaluation: one result per (run, benchmark); the long-retrieval table lists them all
    for run in RUNS:
        for bench in BENCHMARKS:
            result = json.loads((work / "results" / "paper" / "eval" / run / "seed0" / f"{bench}.json").read_text())
            assert result["kind"] == "long" and 0.0 <= result["i2t_r1"] <= 100.0, result
    table = pd.read_csv(work / "results" / "paper" / "table_long_retrieval.csv")
    assert sorted(zip(table["run"], table["benchmark"], strict=True)) == sorted(itertools.product(RUNS, BENCHMARKS))
    assert dict(zip(table["benchmark"], table["n_images"], strict=True)) == {"urban1k": 4, "dci": 4, "iiw": 3}

    t0 = time.monotonic()
    for launch in ([], [str(fixtures / "ddp.yaml")]):  # nothing to do, whichever way runs would be launched
        again = _snakemake(work, "-n", "all", *configs, *launch, timeout=120)
        assert again.returncode == 0 and planned_jobs(again.stdout + again.stderr) == {}, again.stdout[-3000:]
    t_plan = time.monotonic() - t0
    wall = time.monotonic() - t_start
    print(f"paper shapes: wall {wall:.0f} s (fixtures {t_fixtures:.0f} s, 2-rank run {t_ddp:.0f} s, "
          f"all {t_all:.0f} s, re-plan {t_plan:.0f} s); peak RSS: process tree {memory.peak_bytes / 2**30:.1f} GiB, "
          f"largest process {memory.peak_single / 2**30:.1f} GiB")
    # ~2 GB; kept when a check fails
    for big in [init, *(work / "results" / "paper" / "checkpoints").rglob("model.pt")]:
        big.unlink()
    if wall > WALL_LIMIT_S:  # a budget, not a failure: a loaded CI machine is slower (the timeouts above bound it)
        warnings.warn(f"paper-shapes test took {wall:.0f} s, over its {WALL_LIMIT_S} s budget", stacklevel=1)
