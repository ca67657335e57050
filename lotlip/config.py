"""Typed configuration: one dataclass tree, the single source of truth for every key.

The workflow's YAML (``config/config.yaml`` and tier overrides) is merged onto these dataclasses with
omegaconf, which rejects unknown keys and wrong types; ``validate`` then checks ranges and choices declared
beside each field (``metadata``). Every failure is a :class:`ConfigError` whose message is one line naming the
full key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


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
class WorldConfig:
    """Procedural synthetic world (the embedded default's data source)."""

    seed: int = _f(0, "seed of the training-split scenes", min=0)
    image_size: int = _f(32, "rendered image side in pixels", min=16, max=512)
    n_train: int = _f(6000, "number of training images", min=1)
    min_objects: int = _f(3, "fewest objects per scene", min=1, max=9)
    max_objects: int = _f(5, "most objects per scene", min=1, max=9)


BENCHMARK_KINDS = ("long", "short", "zeroshot")
LONG_STYLES = ("dci", "iiw", "sharegpt4v", "llava")


@dataclass
class BenchmarkConfig:
    """A synthetic evaluation set made of groups of images that share their salient object.

    ``long``: one long text per image (retrieval within a group needs the details); ``short``: several
    salient-only captions per image (COCO-like); ``zeroshot``: a group is a class (ImageNet-like).
    """

    kind: str = _f("long", "long | short | zeroshot", choices=BENCHMARK_KINDS)
    style: str = _f("dci", "writer of long texts: dci | iiw | sharegpt4v | llava", choices=LONG_STYLES)
    n_groups: int = _f(25, "number of groups (distinct salient objects, 40 at most before repeats)", min=1)
    group_size: int = _f(20, "images per group; a salient-only model gets about 1/group_size", min=1)
    captions_per_image: int = _f(5, "captions per image (short kind)", min=1, max=20)
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
    strict: bool = _f(False, "stop at the first bad training sample instead of counting a skip")
    max_caption_chars: int = _f(4000, "captions longer than this are bad samples (about 50x a long caption)",
                                min=1)


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
    device: str = _f("cpu", "torch device (cpu, cuda, cuda:0, ...)")
    seed: int = _f(0, "seed of initialisation and data order", min=0)


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
    steps: int | None = _f(None, "override train.steps", min=1)
    seed: int | None = _f(None, "override train.seed", min=0)


@dataclass
class EvalConfig:
    """Evaluation."""

    batch_size: int = _f(256, "encoding batch size", min=1)


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


def _check_ranges(obj: Any, path: str) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_ranges(value, f"{path}.{key}")
        return
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{path}.{f.name}".lstrip(".")
        meta = f.metadata
        if value is None or not meta:
            _check_ranges(value, key)
            continue
        if meta.get("choices") is not None:
            allowed = meta["choices"]
            bad = [v for v in value if v not in allowed] if isinstance(value, list) else (
                [] if value in allowed else [value])
            if bad:
                raise ConfigError(f"{key}: {bad[0]!r} is not one of {', '.join(map(str, allowed))}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if meta.get("min") is not None and value < meta["min"]:
                raise ConfigError(f"{key}: {value} is below the minimum {meta['min']}")
            if meta.get("max") is not None and value > meta["max"]:
                raise ConfigError(f"{key}: {value} is above the maximum {meta['max']}")
        _check_ranges(value, key)


def _check_relations(cfg: LotlipConfig) -> None:
    if cfg.world.min_objects > cfg.world.max_objects:
        raise ConfigError(f"world.min_objects: {cfg.world.min_objects} exceeds world.max_objects "
                          f"{cfg.world.max_objects}")
    for name in cfg.relabel.captioners:
        if name not in CAPTIONERS:
            raise ConfigError(f"relabel.captioners: {name!r} is not one of {', '.join(CAPTIONERS)}")
    if not cfg.relabel.captioners:
        raise ConfigError("relabel.captioners: at least one captioner is required")
    if cfg.relabel.backend == "hf":
        missing = [c for c in cfg.relabel.captioners if c not in cfg.relabel.hf.models]
        if missing:
            raise ConfigError(f"relabel.hf.models: no model for captioner {missing[0]!r}")
    if cfg.relabel.backend == "precomputed" and not cfg.relabel.precomputed.path:
        raise ConfigError("relabel.precomputed.path: required by the precomputed backend")
    model = Path(cfg.train.model)
    bundled = resources.files("lotlip") / "model_configs" / f"{cfg.train.model}.json"
    if not bundled.is_file() and not (model.suffix == ".json" and model.is_file()):
        raise ConfigError(f"train.model: {cfg.train.model!r} is neither a bundled model config nor an existing "
                          f"JSON file")
    if not cfg.experiments:
        raise ConfigError("experiments: at least one run must be declared")
    for name in list(cfg.experiments) + list(cfg.benchmarks):
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"experiments/benchmarks: name {name!r} may use only letters, digits, '_' and '-'")


def load_config(*sources: dict | DictConfig | str | Path, origin: str = "config") -> LotlipConfig:
    """Merge YAML files or mappings (later wins) onto the defaults, validate, return typed config.

    Raises:
        ConfigError: one line naming the offending key (or file) and what was expected.
    """
    schema = OmegaConf.structured(LotlipConfig)
    merged = schema
    for src in sources:
        where = str(src) if isinstance(src, str | Path) else origin
        try:
            if isinstance(src, str | Path):
                if not Path(src).is_file():
                    raise ConfigError(f"{src}: config file not found")
                data = OmegaConf.load(src)
            else:
                data = OmegaConf.create(src if isinstance(src, DictConfig) else dict(src))
            merged = OmegaConf.merge(merged, data)
        except OmegaConfBaseException as exc:
            raise ConfigError(f"{where}: {_describe(exc)}") from None
    try:
        cfg: LotlipConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{origin}: {_describe(exc)}") from None
    _check_ranges(cfg, "")
    _check_relations(cfg)
    return cfg


def _describe(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None) or "?"
    msg = str(getattr(exc, "msg", exc)).splitlines()[0]
    if "not in" in msg and "Key" in msg:
        return f"unknown key '{key}'"
    if msg.startswith("Missing mandatory value"):
        return f"missing value for '{key}'"
    return f"key '{key}': {msg}"


def to_dict(cfg: Any) -> dict:
    """A plain JSON-serialisable dict of any config node."""
    return json.loads(json.dumps(dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg))


@dataclass
class RunConfig:
    """Everything one training run needs, resolved from the root config and its experiment."""

    name: str = MISSING
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def run_config(cfg: LotlipConfig, name: str) -> RunConfig:
    """Resolve experiment ``name``: apply its overrides to sampling and train settings.

    Corner tokens only for ``lotlip``; register tokens as declared (default 0); ``short`` draws no long texts;
    ``longclip`` needs long texts and takes no registers. Contradictions raise a ``ConfigError`` naming the field.
    """
    if name not in cfg.experiments:
        raise ConfigError(f"experiments: no run named {name!r} (declared: {', '.join(cfg.experiments)})")
    exp = cfg.experiments[name]
    sampling = dataclasses.replace(cfg.sampling)
    train = dataclasses.replace(cfg.train)
    if exp.method == "short":
        sampling.n_subcaptions = 0
    elif exp.n_subcaptions is not None:
        sampling.n_subcaptions = exp.n_subcaptions
    if exp.steps is not None:
        train.steps = exp.steps
    if exp.seed is not None:
        train.seed = exp.seed
    experiment = dataclasses.replace(exp)
    if exp.method != "lotlip":
        experiment.corner_tokens = 0
    key = f"experiments.{name}"
    if exp.method == "longclip" and exp.register_tokens:
        raise ConfigError(f"{key}.register_tokens: {exp.register_tokens} is not used by method longclip (set 0)")
    if exp.method == "longclip" and sampling.n_subcaptions < 1:
        raise ConfigError(f"{key}.n_subcaptions: method longclip needs at least 1 long text")
    if exp.image_init is not None and not exp.image_init.strip():
        raise ConfigError(f"{key}.image_init: empty path (use null for a random image tower)")
    return RunConfig(name=name, experiment=experiment, sampling=sampling, train=train)


def run_config_from_dict(data: dict) -> RunConfig:
    """Rebuild a RunConfig from its JSON form (as passed by the workflow), validating it."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.create(data))
        rc: RunConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"run config: {_describe(exc)}") from None
    _check_ranges(rc, "")
    return rc
