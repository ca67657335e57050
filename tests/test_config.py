import pytest

from lotlip.config import ConfigError, load_config, run_config, run_config_from_dict, to_dict
from tests.conftest import REPO


def test_default_config_file_loads_and_declares_two_runs():
    cfg = load_config(REPO / "config" / "config.yaml")
    assert set(cfg.experiments) == {"short", "lotlip"}
    assert cfg.experiments["lotlip"].corner_tokens == 2


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
    ],
)
def test_bad_values_raise_one_line_naming_the_key(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(override)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_run_config_applies_experiment_overrides():
    cfg = load_config({"experiments": {"short": {"method": "short", "corner_tokens": 2},
                                       "long6": {"method": "long", "n_subcaptions": 6, "steps": 7, "seed": 3}}})
    short = run_config(cfg, "short")
    assert short.sampling.n_subcaptions == 0 and short.experiment.corner_tokens == 0
    long6 = run_config(cfg, "long6")
    assert long6.sampling.n_subcaptions == 6 and long6.train.steps == 7 and long6.train.seed == 3
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
