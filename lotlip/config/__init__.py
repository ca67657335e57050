"""Typed configuration: the schema (:mod:`.schema`), its checks (:mod:`.checks`), run resolution (:mod:`.runs`)
and the one loader (:mod:`.load`). Every failure is a :class:`ConfigError` whose message is one line naming the
full key. Import-light: no torch (the Snakefile imports it at parse time).
"""

from lotlip.config.checks import (
    SBATCH_KEY,
    check_config,
    check_launch_strings,
    check_ranges,
    check_relations,
    check_run,
    check_section,
    check_stages,
    check_tier,
    check_train,
)
from lotlip.config.load import (
    describe_error,
    load_config,
    load_section,
    parse_json,
    read_config_file,
    run_config,
    run_config_from_dict,
    to_dict,
)
from lotlip.config.runs import experiment_seeds, resolve_run
from lotlip.config.schema import (
    BENCHMARK_KINDS,
    BENCHMARK_SOURCES,
    CAPTIONERS,
    DEFAULT_TABLE_METRICS,
    DEFAULT_TIER,
    EXECUTORS,
    LONG_STYLES,
    PRECISIONS,
    RESERVED_TABLES,
    RESERVED_TIER_NAMES,
    SWEEP_AXES,
    TIER_NAME,
    BenchmarkConfig,
    ClaimConfig,
    ConfigError,
    EvalConfig,
    ExperimentConfig,
    HFRelabelConfig,
    Img2DatasetConfig,
    LaunchConfig,
    LotlipConfig,
    ModelSourceConfig,
    PaperConfig,
    PaperFigureConfig,
    PaperTableConfig,
    PrecomputedRelabelConfig,
    ReferenceConfig,
    RelabelConfig,
    RunConfig,
    SamplingConfig,
    SelectConfig,
    ShardsConfig,
    TrainConfig,
    WorldConfig,
)
from lotlip.constants import MODEL_KINDS  # the schema's choices of ModelSourceConfig.kind

__all__ = [
    "BENCHMARK_KINDS", "BENCHMARK_SOURCES", "CAPTIONERS", "DEFAULT_TABLE_METRICS", "DEFAULT_TIER", "EXECUTORS",
    "LONG_STYLES", "MODEL_KINDS", "PRECISIONS", "RESERVED_TABLES", "RESERVED_TIER_NAMES", "SBATCH_KEY",
    "SWEEP_AXES", "TIER_NAME",
    "BenchmarkConfig", "ClaimConfig", "ConfigError", "EvalConfig", "ExperimentConfig", "HFRelabelConfig",
    "Img2DatasetConfig", "LaunchConfig", "LotlipConfig", "ModelSourceConfig", "PaperConfig", "PaperFigureConfig",
    "PaperTableConfig", "PrecomputedRelabelConfig", "ReferenceConfig", "RelabelConfig", "RunConfig",
    "SamplingConfig", "SelectConfig", "ShardsConfig", "TrainConfig", "WorldConfig",
    "check_config", "check_launch_strings", "check_ranges", "check_relations", "check_run", "check_section",
    "check_stages", "check_tier", "check_train", "describe_error", "experiment_seeds", "load_config",
    "load_section", "parse_json", "read_config_file", "resolve_run", "run_config", "run_config_from_dict",
    "to_dict",
]
