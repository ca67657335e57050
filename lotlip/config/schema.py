"""The configuration schema: one dataclass tree, the single source of truth for every key.

Each field carries its description and its range or choice rules (``metadata``, checked by
:func:`lotlip.config.checks.check_ranges`); cross-field rules live in :mod:`lotlip.config.checks`, reading and
merging in :mod:`lotlip.config.load`. Import-light: no torch (the Snakefile imports it at parse time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from lotlip.catalog import SOURCES
from lotlip.constants import MODEL_KINDS
from lotlip.constants import TABLES as REPORT_TABLES


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def _f(default: Any, help: str, *, min: float | None = None, max: float | None = None,
       choices: tuple | None = None) -> Any:
    """A dataclass field with its description and range/choice rules beside it."""
    meta = {"help": help, "min": min, "max": max, "choices": choices}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=meta)
    return field(default=default, metadata=meta)


CAPTIONERS = ("instructblip", "llava", "sharegpt4v")


@dataclass
class Img2DatasetConfig:
    """Real training images: img2dataset downloads a url list into webdataset shards (``world.source``)."""

    dataset: str | None = _f(None, "catalog dataset (config/datasets.yaml) fetched first; url_list lies in it")
    url_list: str = _f("", "url table img2dataset reads (csv/tsv/parquet/txt), e.g. the DreamLIP caption CSV")
    input_format: str = _f("csv", "url_list format", choices=("csv", "tsv", "parquet", "txt", "json"))
    url_col: str = _f("Image Path", "column holding the image url")
    caption_col: str | None = _f("raw_caption", "column holding the alt-text (kept as the shard's txt)")
    image_size: int = _f(224, "downloaded images are resized to this side", min=16)
    resize_mode: str = _f("center_crop", "img2dataset resize mode",
                          choices=("no", "keep_ratio", "keep_ratio_largest", "center_crop", "border"))
    samples_per_shard: int = _f(10000, "url rows per img2dataset shard (keys encode shard and row)", min=1)
    processes: int = _f(1, "download processes", min=1)
    threads: int = _f(16, "download threads per process", min=1)
    timeout_s: int = _f(10, "per-image download timeout in seconds", min=1)
    retries: int = _f(2, "per-image retries", min=0)
    command: str = _f("img2dataset", "img2dataset executable (own environment: it pins webdataset < 0.3)")


@dataclass
class WorldConfig:
    """Where training images come from: the procedural synthetic world (default) or img2dataset shards."""

    source: str = _f("synthetic", "training images: synthetic | img2dataset", choices=("synthetic", "img2dataset"))
    img2dataset: Img2DatasetConfig = field(default_factory=Img2DatasetConfig)
    seed: int = _f(0, "seed of the training-split scenes", min=0)
    image_size: int = _f(32, "rendered image side in pixels", min=16, max=512)
    n_train: int = _f(6000, "number of training images", min=1)
    min_objects: int = _f(3, "fewest objects per scene", min=1, max=9)
    max_objects: int = _f(5, "most objects per scene", min=1, max=9)


BENCHMARK_KINDS = ("long", "short", "zeroshot")
BENCHMARK_SOURCES = ("synthetic", *SOURCES)
LONG_STYLES = ("dci", "iiw", "sharegpt4v", "llava")


@dataclass
class BenchmarkConfig:
    """An evaluation set: generated from the synthetic world, or a real set imported from ``resources/data``.

    Synthetic sets are groups of images that share their salient object. ``long``: one long text per image
    (retrieval within a group needs the details); ``short``: several captions per image naming the salient object
    (and with ``caption_facts``, one or two other facts that identify the image; COCO-like);
    ``zeroshot``: a group is a class (ImageNet-like). A real set (``source``) reads only ``kind`` (which must be
    the source's), ``path`` (ImageNet val, user-supplied) and ``check_count``.
    """

    kind: str = _f("long", "long | short | zeroshot", choices=BENCHMARK_KINDS)
    source: str = _f("synthetic", "synthetic, or the real set to import: " + " | ".join(SOURCES),
                     choices=BENCHMARK_SOURCES)
    path: str | None = _f(None, "source imagenet: the val folder, one sub-folder per synset (user-supplied)")
    check_count: bool = _f(True, "real set: require the protocol size (FACTS.md Table 1); off for tiny fixtures")
    style: str = _f("dci", "writer of long texts: dci | iiw | sharegpt4v | llava", choices=LONG_STYLES)
    n_groups: int = _f(25, "number of groups (distinct salient objects, 40 at most before repeats)", min=1)
    group_size: int = _f(20, "images per group; a salient-only model gets about 1/group_size", min=1)
    captions_per_image: int = _f(5, "captions per image (short kind)", min=1, max=20)
    caption_facts: int = _f(0, "short kind: at most this many facts besides the main object per caption; 0: "
                            "captions name the main object only, 1-2: COCO-like captions that identify their image",
                            min=0, max=2)
    primary: bool = _f(True, "counted in the claims and sweep figures (false: a secondary row in tables only)")
    seed: int = _f(1000, "seed of this benchmark's scenes (disjoint from training seeds)", min=0)


@dataclass
class HFRelabelConfig:
    """The ``hf`` backend: one Hugging Face image-to-text model per captioner name."""

    models: dict[str, str] = _f({}, "captioner name -> HF model id (in the local cache) or local folder")
    device: str = _f("cpu", "torch device of the captioner")
    dtype: str = _f("auto", "model dtype", choices=("auto", "float32", "float16", "bfloat16"))
    short_prompt: str | None = _f("Describe the image in one short sentence.", "short-caption prompt (null: none)")
    long_prompt: str | None = _f("Describe the image in detail.", "long-caption prompt (null: none)")
    batch_size: int = _f(8, "images per generate call", min=1)
    max_new_tokens: int = _f(256, "token budget of the long caption", min=1)
    short_max_new_tokens: int = _f(48, "token budget of the short caption (0: none)", min=0)
    strict: bool = _f(False, "an undecodable image stops the run instead of being skipped")


@dataclass
class PrecomputedRelabelConfig:
    """The ``precomputed`` backend: a released long-caption table (DreamLIP CSV, Recap-Long)."""

    path: str = _f("", "caption table (csv, or parquet with pyarrow)")
    layout: str = _f("dreamlip", "column layout", choices=("dreamlip", "recap-long"))
    key_column: str | None = _f(None, "column holding the image key (default: 9-digit row index)")
    columns: dict[str, str] = _f({}, "column-name overrides: url, raw, <captioner>.short|long")
    strict: bool = _f(False, "a bad value stops the run instead of being counted")
    max_ratio: float = _f(50.0, "captions over this x the column median length are skipped", min=1.0)


@dataclass
class RelabelConfig:
    """Long-caption relabeling."""

    backend: str = _f("simulated", "captioner backend", choices=("simulated", "hf", "precomputed"))
    captioners: list[str] = _f(list(CAPTIONERS), "captioner styles that write long captions")
    seed: int = _f(0, "seed of the captioners' sampling and errors", min=0)
    hf: HFRelabelConfig = field(default_factory=HFRelabelConfig)
    precomputed: PrecomputedRelabelConfig = field(default_factory=PrecomputedRelabelConfig)


@dataclass
class ShardsConfig:
    """webdataset shard writing."""

    samples_per_shard: int = _f(2000, "samples per tar shard", min=1)


@dataclass
class SamplingConfig:
    """Sub-caption sampling from long captions (DreamLIP/LoTLIP recipe)."""

    n_subcaptions: int = _f(3, "long texts drawn per image per step (N)", min=0, max=32)
    merged_num: int = _f(2, "consecutive sentences joined into one long text", min=1, max=16)
    policy: str = _f("across", "pool sentences across captioners or within one", choices=("across", "within"))
    pool: str = _f("short+long", "sentences pooled per captioner: short+long (DreamLIP: each captioner's short "
                   "then long caption) or long only", choices=("short+long", "long"))
    strict: bool = _f(False, "stop at the first bad training sample instead of counting a skip")
    max_caption_chars: int = _f(4000, "captions longer than this are bad samples (about 50x a long caption)",
                                min=1)


PRECISIONS = ("fp32", "bf16", "amp")


@dataclass
class TrainConfig:
    """Optimisation and run budget (counted in steps, never seconds)."""

    model: str = _f("lotlip-tiny", "model config name (lotlip/model_configs/<name>.json)")
    steps: int = _f(300, "optimizer steps", min=1)
    batch_size: int = _f(128, "global batch size", min=2)
    lr: float = _f(1e-3, "peak learning rate (AdamW)", min=0.0)
    weight_decay: float = _f(0.1, "AdamW weight decay", min=0.0)
    warmup_steps: int = _f(20, "linear warm-up steps before cosine decay", min=0)
    checkpoint_every: int = _f(100, "steps between resumable checkpoints", min=1)
    threads: int = _f(2, "torch intra-op threads", min=1)
    workers: int = _f(0, "data-loading worker processes per rank (0: decode in the training process)", min=0)
    device: str = _f("cpu", "torch device (cpu, cuda, cuda:0, ...)")
    seed: int = _f(0, "seed of initialisation and data order", min=0)
    precision: str = _f("fp32", "fp32 | bf16 (autocast, CPU or CUDA) | amp (fp16 autocast + GradScaler, CUDA only)",
                        choices=PRECISIONS)
    grad_clip_norm: float | None = _f(None, "clip the global gradient norm to this value (null: no clipping)",
                                      min=0.0)
    accum_steps: int = _f(1, "micro-batches per step; the contrastive batch stays whole (open_clip --accum-freq)",
                          min=1)
    gather_with_grad: bool = _f(False, "DDP: gather features with gradient (exact global-batch gradient) instead of "
                                "the release's no-grad gather (same direction, scaled by 1/world size)")
    augment: bool = _f(False, "train with the model config's train transform (release timm towers: "
                       "RandomResizedCrop 0.9-1.0, bicubic) instead of its eval transform")


@dataclass
class ExperimentConfig:
    """One declared training run: overrides of the method and its knobs.

    Methods (paper Tables 2, 3, 7): ``short``, ``long``, ``lotlip`` and the peer recipe ``longclip`` (Long-CLIP:
    248 text positions, short caption vs the top-32-PCA image feature, label smoothing 0.1, no corners). LiT is
    ``lock_image`` (optionally with ``image_init``) on any method.
    """

    method: str = _f("lotlip", "short: raw captions only; long: + long texts; lotlip: + corner tokens; "
                     "longclip: long texts with the Long-CLIP recipe", choices=("short", "long", "lotlip", "longclip"))
    corner_tokens: int = _f(2, "learnable corner tokens after [CLS] (lotlip only)", min=0, max=8)
    corner_mask: bool = _f(True, "apply the corner-token attention mask")
    register_tokens: int = _f(0, "learnable register tokens after the corners, never pooled (Table 7; not longclip)",
                              min=0, max=8)
    lock_image: bool = _f(False, "LiT: freeze the image tower (no gradients, no optimizer state)")
    image_init: str | None = _f(None, "checkpoint whose visual.* weights initialise the image tower (null: random)")
    n_subcaptions: int | None = _f(None, "override sampling.n_subcaptions", min=0, max=32)
    merged_num: int | None = _f(None, "override sampling.merged_num (sub-captions per long text, Fig. 2)",
                                min=1, max=16)
    policy: str | None = _f(None, "override sampling.policy", choices=("across", "within"))
    captioners: list[str] | None = _f(None, "captioners whose long captions are drawn (Table 9; null: all)")
    context_length: int | None = _f(None, "text token limit (Fig. 4; null: the model config's)", min=8, max=512)
    train_samples: int | None = _f(None, "train on the first N training images only (Table 5 data scale)", min=1)
    short_share: float | None = _f(None, "the raw caption's share of the loss (null: equal weight per text "
                                   "feature, i.e. 1/(1+N(1+K)))", min=0.0, max=1.0)
    text_init: str | None = _f(None, "declared run whose trained text tower initialises this one (null: random)")
    steps: int | None = _f(None, "override train.steps", min=1)
    precision: str | None = _f(None, "override train.precision", choices=PRECISIONS)
    seeds: list[int] | None = _f(None, "override the root `seeds`: this experiment is trained once per seed")


@dataclass
class EvalConfig:
    """Evaluation."""

    batch_size: int = _f(256, "encoding batch size", min=1)


DEFAULT_TABLE_METRICS = {"long": ["i2t_r1", "t2i_r1"], "short": ["i2t_r1", "t2i_r1"], "zeroshot": ["top1"]}
RESERVED_TABLES = (*REPORT_TABLES, "dataset_stats")  # built by lotlip.report.tables / stats
SWEEP_AXES = ("merged_num", "n_subcaptions", "context_length", "corner_tokens", "train_samples", "steps")


@dataclass
class PaperTableConfig:
    """One paper-shaped table: rows are declared runs (mean over seeds), columns benchmark x metric."""

    caption: str = _f("", "what the table shows (report caption)")
    rows: dict[str, str] = _f({}, "declared run -> row label, in order (a later config file's rows replace the "
                              "earlier file's, so its order holds)")
    benchmarks: list[str] | None = _f(None, "column benchmarks, in order (null: every selected one)")
    metrics: dict[str, list[str]] = _f(dict(DEFAULT_TABLE_METRICS), "benchmark kind -> metric columns")


@dataclass
class PaperFigureConfig:
    """One figure: a sweep of runs over one setting, or text-to-image similarity maps of runs."""

    kind: str = _f("sweep", "sweep: metrics vs a run setting; maps: occlusion similarity maps",
                   choices=("sweep", "maps"))
    caption: str = _f("", "what the figure shows (report caption)")
    runs: list[str] = _f([], "declared runs shown")
    x: str = _f("merged_num", "sweep: the run setting on the x axis", choices=SWEEP_AXES)
    flops: bool = _f(False, "sweep over context_length: add the measured text-encoder GFLOPs per text")
    benchmark: str | None = _f(None, "maps: the long benchmark whose scenes are shown")
    n_scenes: int = _f(3, "maps: scenes shown (the focus score averages over up to 100)", min=1, max=12)


@dataclass
class ClaimConfig:
    """A paper claim checked as an effect: treatment run minus control run on one benchmark kind."""

    text: str = _f("", "the claim, as the paper makes it")
    source: str = _f("", "where the paper makes it (table or figure)")
    treatment: str = _f("", "declared run expected to differ")
    control: str = _f("", "declared run compared against")
    kind: str = _f("long", "benchmark kind whose mean metric is compared", choices=("long", "short", "zeroshot"))
    direction: str = _f("increase", "the claimed sign of treatment - control", choices=("increase", "decrease"))


@dataclass
class PaperConfig:
    """What the report builds: paper tables, figures and the claims check."""

    tables: dict[str, PaperTableConfig] = _f({}, "table name -> definition (results/table_<name>.csv)")
    figures: dict[str, PaperFigureConfig] = _f({}, "figure name -> definition (results/figures/<name>.png/.pdf)")
    claims: dict[str, ClaimConfig] = _f({}, "claim id -> definition (results/claims.csv/.md)")


@dataclass
class ModelSourceConfig:
    """A model evaluated as released (release tier), loaded by ``lotlip.model.sources.load_for_eval``."""

    kind: str = _f("release", "lotlip: our checkpoint | release: a LoTLIP model.pt | openclip: open_clip arch + "
                   "weights (OpenAI CLIP) | longclip: Long-CLIP checkpoint", choices=MODEL_KINDS)
    arch: str = _f("", "lotlip model config (release), open_clip name or config JSON (openclip, longclip); "
                   "'' = the kind's default")
    url: str | None = _f(None, "download the weights from here into resources/models/<name>/ (null: use path)")
    sha256: str | None = _f(None, "expected sha256 of the download (null: not verified, the actual hash is logged)")
    path: str | None = _f(None, "local weights file when url is null (e.g. results/checkpoints/<run>/model.pt)")
    context_length: int | None = _f(None, "text context override (null: the architecture's; Long-CLIP: 248)", min=1)


@dataclass
class ReferenceConfig:
    """Published numbers shown beside ours (``results/table_<t>_vs_reference.csv``)."""

    source: str = _f("", "where the numbers come from")
    metrics: list[str] = _f(["i2t_r1", "t2i_r1"], "the metric of each value, in order")
    values: dict[str, dict[str, list[float]]] = _f({}, "run or model -> benchmark -> numbers in metrics order")


@dataclass
class SelectConfig:
    """What this tier builds: subsets of the declared entries (a tier file cannot delete inherited ones)."""

    benchmarks: list[str] | None = _f(None, "benchmarks to build and evaluate (null: all declared)")
    experiments: list[str] | None = _f(None, "declared runs to train and evaluate (null: all; []: none)")
    models: list[str] | None = _f(None, "models to evaluate as released (null: all declared)")
    paper_tables: list[str] | None = _f(None, "paper tables to build (null: every one with a built row); a study "
                                        "names the tables it reports")
    paper_figures: list[str] | None = _f(None, "paper figures to draw (null: every one whose runs are trained)")
    claims: list[str] | None = _f(None, "claims to check (null: every one whose two runs are built)")


EXECUTORS = ("inline", "local", "debug", "slurm")

DEFAULT_TIER = "default"
TIER_NAME = r"[a-z][a-z0-9_]*"
# names the default tier writes at the top of results/, resources/ and logs/: no other tier may take one
RESERVED_TIER_NAMES = ("benchmarks", "captions", "checkpoints", "data", "eval", "figures", "models", "report",
                       "shards", "studies", "submitit", "world", "images", "fetch", "benchmark", "train",
                       "evaluate", "relabel")


@dataclass
class LaunchConfig:
    """Where a training run executes and with which resources (never changes its results)."""

    executor: str = _f("inline", "inline: this process; local: a subprocess; debug: submitit in this process "
                                 "(pdb on error); slurm: an sbatch job", choices=EXECUTORS)
    nodes: int = _f(1, "nodes (slurm)", min=1)
    gpus_per_node: int = _f(0, "GPUs per node", min=0)
    tasks_per_node: int | None = _f(None, "processes per node (default: one per GPU, else 1)", min=1)
    cpus_per_task: int = _f(2, "CPU cores per process (slurm)", min=1)
    mem_gb: float = _f(8.0, "memory per node in GB (slurm)", min=0.0)
    timeout_min: int = _f(60, "time limit of one job slot in minutes; the run is requeued at its end", min=1)
    max_requeues: int = _f(3, "requeues after time-outs (preemptions do not count)", min=0)
    signal_delay_s: int = _f(90, "seconds before the time limit at which the job checkpoints and requeues",
                             min=1)
    partition: str | None = _f(None, "Slurm partition (default: the cluster's default)")
    account: str | None = _f(None, "Slurm account (default: the user's default)")
    qos: str | None = _f(None, "Slurm quality of service")
    sbatch: dict[str, str] = _f({}, "extra sbatch flags, name -> value, e.g. {constraint: a100}")
    log_folder: str = _f("logs/submitit", "submitit's pickles and job logs; must be shared with the nodes")


@dataclass
class LotlipConfig:
    """The whole workflow configuration."""

    world: WorldConfig = field(default_factory=WorldConfig)
    benchmarks: dict[str, BenchmarkConfig] = field(
        default_factory=lambda: {"dci_syn": BenchmarkConfig()},
        metadata={"help": "long-text retrieval sets, name -> definition"},
    )
    relabel: RelabelConfig = field(default_factory=RelabelConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    experiments: dict[str, ExperimentConfig] = field(
        default_factory=lambda: {"short": ExperimentConfig(method="short", corner_tokens=0),
                                 "lotlip": ExperimentConfig()},
        metadata={"help": "declared training runs, name -> overrides"},
    )
    eval: EvalConfig = field(default_factory=EvalConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    models: dict[str, ModelSourceConfig] = field(
        default_factory=dict, metadata={"help": "models evaluated as released, name -> source (release tier)"})
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    seeds: list[int] | None = _f(None, "train every experiment once per seed (null: [train.seed])")
    paper: PaperConfig = field(default_factory=PaperConfig)
    tier: str = _f(DEFAULT_TIER, "the tier this config builds: default writes at the top of results/, resources/ "
                   "and logs/, any other tier under results/<tier>/, resources/<tier>/, logs/<tier>/")
    snapshot: bool = _f(False, "copy the tier's tables, figures and claims into results/studies/<tier>/ (tracked by "
                        "git) with snapshot.json (config hash, commit, seeds, rebuild command); not the default tier")


@dataclass
class RunConfig:
    """Everything one training run needs, resolved from the root config and its experiment."""

    name: str = MISSING
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
