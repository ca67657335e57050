import re

import pytest

from lotlip.config import (
    RESERVED_TIER_NAMES,
    ConfigError,
    LaunchConfig,
    RunConfig,
    check_config,
    check_stages,
    experiment_seeds,
    load_config,
    load_section,
    run_config,
    run_config_from_dict,
    to_dict,
)
from lotlip.train.launcher import launch_config
from tests.conftest import REPO


def test_default_config_file_loads_and_declares_the_grid():
    cfg = load_config(REPO / "config" / "config.yaml")
    assert {"short", "long", "longclip", "lotlip", "lotlip_nomask", "register"} <= set(cfg.experiments)
    assert cfg.experiments["lotlip"].corner_tokens == 2
    referenced = {r for t in cfg.paper.tables.values() for r in t.rows} | {
        r for f in cfg.paper.figures.values() for r in f.runs} | {
        r for c in cfg.paper.claims.values() for r in (c.treatment, c.control)}
    assert referenced == set(cfg.experiments)  # every declared run is used by a table, figure or claim


def test_test_config_is_a_short_override():
    cfg = load_config(REPO / "config" / "config.yaml", REPO / ".test" / "config" / "config.yaml")
    assert cfg.world.n_train == 256 and cfg.train.steps == 6
    assert cfg.world.image_size == 32  # inherited from the default


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"train": {"stpes": 3}}, "unknown key 'train.stpes'"),
        ({"trian": {}}, "unknown key 'trian'"),
        ({"train": {"steps": "many"}}, "train.steps"),
        ({"train": {"steps": 0}}, "train.steps: 0 is below the minimum 1"),
        ({"sampling": {"policy": "sideways"}}, "sampling.policy: 'sideways' is not one of across, within"),
        ({"experiments": {"x": {"method": "magic"}}}, "experiments.x.method: 'magic'"),
        ({"experiments": {"x": {"corner_tokens": 9}}}, "experiments.x.corner_tokens: 9 is above the maximum 8"),
        ({"relabel": {"captioners": ["gpt9"]}}, "relabel.captioners: 'gpt9'"),
        ({"world": {"min_objects": 5, "max_objects": 3}}, "world.min_objects"),
        ({"seeds": [1, 1]}, "seeds: [1, 1] must be a non-empty list of distinct seeds"),
        ({"experiments": {"x": {"captioners": ["llava", "gpt9"]}}}, "experiments.x.captioners: 'gpt9'"),
        ({"experiments": {"x": {"text_init": "y"}}}, "experiments.x.text_init: 'y' is not a declared experiment"),
        ({"experiments": {"x": {"text_init": "y"}, "y": {"text_init": "x"}}}, "cycle x -> y -> x"),
        ({"experiments": {"x": {"short_share": 1.5}}}, "experiments.x.short_share: 1.5 is above the maximum 1.0"),
        ({"paper": {"tables": {"t": {"rows": {"ghost": "g"}}}}}, "paper.tables.t.rows: 'ghost' is not a declared"),
        ({"paper": {"tables": {"short_tasks": {"rows": {"lotlip": "x"}}}}}, "paper.tables.short_tasks: name is"),
        ({"paper": {"figures": {"f": {"runs": ["lotlip"], "x": "colour"}}}}, "paper.figures.f.x: 'colour'"),
        ({"paper": {"figures": {"f": {"kind": "maps", "runs": ["lotlip"], "benchmark": "nope"}}}},
         "paper.figures.f.benchmark: 'nope' is not a declared synthetic long benchmark"),
        ({"paper": {"claims": {"c": {"treatment": "lotlip", "control": "lotlip"}}}}, "paper.claims.c: treatment"),
        ({"benchmarks": {"dci_syn": {"caption_facts": 1}}},
         "benchmarks.dci_syn.caption_facts: only short sets take caption facts (kind is 'long')"),
        ({"benchmarks": {"coco_syn": {"caption_facts": 3}}}, "benchmarks.coco_syn.caption_facts: 3 is above"),
        ({"paper": {"claims": {"c": {"treatment": "lotlip", "control": "x", "kind": "long"}}}},
         "paper.claims.c.control: 'x' is not a declared"),
    ],
)
def test_bad_values_raise_one_line_naming_the_key(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(override)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_invalid_yaml_is_one_line_with_its_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: 3\n bad: : x\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line 3, column 2") as info:
        load_config(bad)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_run_config_applies_experiment_overrides():
    cfg = load_config({"experiments": {"short": {"method": "short", "corner_tokens": 2},
                                       "long6": {"method": "long", "n_subcaptions": 6, "steps": 7, "seeds": [3, 4]}}})
    short = run_config(cfg, "short")
    assert short.sampling.n_subcaptions == 0 and short.experiment.corner_tokens == 0
    long6 = run_config(cfg, "long6")
    assert long6.sampling.n_subcaptions == 6 and long6.train.steps == 7 and long6.train.seed == 3
    assert run_config(cfg, "long6", 4).train.seed == 4 and short.train.seed == cfg.train.seed
    assert long6.experiment.corner_tokens == 0  # corners only for the lotlip method
    with pytest.raises(ConfigError, match="no run named 'nope'"):
        run_config(cfg, "nope")


def test_nested_mappings_of_any_type_load_like_dicts():
    """Snakemake reads JSON config files into OrderedDicts, nested too; omegaconf alone refuses them."""
    from collections import OrderedDict

    plain = load_config({"train": {"steps": 3}, "eval": {"batch_size": 8}})
    ordered = load_config(OrderedDict(train=OrderedDict(steps=3), eval=OrderedDict(batch_size=8)))
    assert ordered == plain and ordered.train.steps == 3


def test_run_config_round_trips_through_json():
    cfg = load_config({})
    rc = run_config(cfg, "lotlip")
    assert run_config_from_dict(to_dict(rc)) == rc


def test_missing_model_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"train.model: '.*nope.json' is neither"):
        load_config({"train": {"model": str(tmp_path / "nope.json")}})


# --- check_config: every whole-config check the workflow needs before planning --------------------------------

# Accepted by load_config, refused when a run is resolved (what the workflow did only while computing a train
# rule's params, i.e. after planning had begun): (override, the one line check_config must give)
RUN_ONLY = {
    "longclip-registers": ({"experiments": {"lc": {"method": "longclip", "register_tokens": 2}}},
                           "experiments.lc.register_tokens: 2 is not used by method longclip (set 0)"),
    "longclip-no-long-text": ({"experiments": {"lc": {"method": "longclip", "n_subcaptions": 0}}},
                              "experiments.lc.n_subcaptions: method longclip needs at least 1 long text"),
    "empty-image-init": ({"experiments": {"x": {"image_init": "  "}}},
                         "experiments.x.image_init: empty path (use null for a random image tower)"),
    "amp-on-cpu": ({"experiments": {"half": {"precision": "amp"}}},
                   "experiments.half -> train.precision: 'amp' (fp16 autocast + GradScaler) needs a CUDA device"),
}


@pytest.mark.parametrize("case", RUN_ONLY)
def test_check_config_refuses_what_only_run_resolution_refused(case):
    override, expected = RUN_ONLY[case]
    cfg = load_config(override)  # accepted: the loader sees each section, not the resolved runs
    name = next(iter(override["experiments"]))
    with pytest.raises(ConfigError, match="^" + re.escape(expected)):
        run_config(cfg, name)  # where the workflow used to find out, computing a rule's params
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message, message


def test_check_config_resolves_every_seed_and_unselected_runs():
    cfg = load_config({"experiments": {"lc": {"method": "longclip", "register_tokens": 1, "seeds": [3, 4]}},
                       "select": {"experiments": ["lotlip"]}})
    assert experiment_seeds(cfg, "lc") == [3, 4]
    with pytest.raises(ConfigError, match=r"^experiments.lc.register_tokens: 1 is not used by method longclip"):
        check_config(cfg)


def test_check_config_reads_the_catalog_for_image_inits(tmp_path, monkeypatch):
    from lotlip.catalog import load_catalog
    from lotlip.config import checks

    bad = tmp_path / "datasets.yaml"
    bad.write_text("datasets:\n  vit:\n    files: [{dest: v.pt}]\n")
    monkeypatch.setattr(checks, "load_catalog", lambda: load_catalog(bad))
    check_config(load_config({}))  # no image_init: the catalog is not read
    cfg = load_config({"experiments": {"lit": {"method": "short", "image_init": "resources/data/v.pt"}}})
    with pytest.raises(ConfigError, match=r"^experiments: image_init needs the dataset catalog: .*datasets.yaml: "
                                          r"datasets.vit.files\[0\]: field 'url' missing$"):
        check_config(cfg)


def test_check_config_runs_the_stage_relations():
    cfg = load_config({"world": {"source": "img2dataset", "img2dataset": {"url_list": "u.csv"}}})
    for check in (check_stages, check_config):
        with pytest.raises(ConfigError, match=r"^relabel.backend: 'simulated' needs the synthetic world"):
            check(cfg)


@pytest.mark.parametrize("tier", [None, "release_eval.yaml", "paper.yaml", "full.yaml"])
def test_shipped_configs_pass_check_config(tier):
    files = [REPO / "config" / "config.yaml"] + ([REPO / "config" / tier] if tier else [])
    cfg = load_config(*files)
    check_config(cfg)
    assert cfg.tier == {None: "default", "release_eval.yaml": "release_eval", "paper.yaml": "paper",
                        "full.yaml": "default"}[tier]


# --- tier ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["default", "release_eval", "paper", "t2", "results"])
def test_tier_names_that_are_accepted(tier):
    assert load_config({"tier": tier}).tier == tier


@pytest.mark.parametrize("tier, expected", [
    ("Paper", "tier: 'Paper' must be lower-case letters, digits and '_', starting with a letter"),
    ("2x", "tier: '2x' must be lower-case"),
    ("", "tier: '' must be lower-case"),
    ("a/b", "tier: 'a/b' must be lower-case"),
    ("checkpoints", "tier: 'checkpoints' is a folder the default tier writes at the top of results/"),
    ("submitit", "tier: 'submitit' is a folder the default tier writes"),
])
def test_bad_tier_names_are_one_line(tier, expected):
    with pytest.raises(ConfigError) as info:
        load_config({"tier": tier})
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message, message


def test_every_reserved_tier_name_is_refused():
    for name in RESERVED_TIER_NAMES:
        with pytest.raises(ConfigError, match=f"^tier: '{name}' is a folder"):
            load_config({"tier": name})


# --- the one loader ------------------------------------------------------------------------------------------


def test_one_loader_serves_config_run_and_launch():
    """load_section maps errors the same way for every section: origin, key, what was expected."""
    with pytest.raises(ConfigError, match=r"^run config: unknown key 'train.stpes'$"):
        run_config_from_dict({"name": "r", "train": {"stpes": 3}})
    with pytest.raises(ConfigError, match=r"^run config: missing value for 'name'$"):
        run_config_from_dict({})
    with pytest.raises(ConfigError, match=r"^launch: unknown key 'gpus'$"):
        launch_config({"gpus": 1})
    with pytest.raises(ConfigError, match=r"^launch.nodes: 0 is below the minimum 1$"):
        launch_config('{"nodes": 0}')  # ranges are checked when the section is loaded
    with pytest.raises(ConfigError, match=r"^launch.partition: .* contains a control character"):
        launch_config({"partition": "a\nb"})
    with pytest.raises(ConfigError, match=r"^launch: expected a mapping, got list$"):
        launch_config("[1]")
    with pytest.raises(ConfigError, match=r"^--cfg: key 'train': expected a mapping, got int$"):
        load_section(RunConfig, {"name": "r", "train": 5}, origin="--cfg")
    assert load_section(LaunchConfig, None, {"nodes": 2}, origin="x") == LaunchConfig(nodes=2)
