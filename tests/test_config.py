import pytest

from lotlip.config import ConfigError, load_config, run_config, run_config_from_dict, to_dict
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


def test_run_config_round_trips_through_json():
    cfg = load_config({})
    rc = run_config(cfg, "lotlip")
    assert run_config_from_dict(to_dict(rc)) == rc


def test_missing_model_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"train.model: '.*nope.json' is neither"):
        load_config({"train": {"model": str(tmp_path / "nope.json")}})
