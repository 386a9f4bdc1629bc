import dataclasses

import pytest

import modelbased as mb
from modelbased.agents import DynaQConfig
from modelbased.core.config import parse_overrides
from modelbased.core.errors import ConfigError


def test_defaults_then_preset_then_overrides():
    cfg = DynaQConfig.resolve("modelbased/DynaMaze-v0", {"alpha": "0.5"})
    assert cfg.planning_steps == 50 and cfg.alpha == 0.5 and cfg.gamma == 0.95
    assert DynaQConfig.resolve("some-unknown-env").planning_steps == 5


def test_unknown_key_names_key_and_accepted_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'alhpa'.*alpha.*planning_steps"):
        DynaQConfig.from_dict({"alhpa": 0.1})


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("alpha", "abc", "expected a number"),
        ("alpha", 1.5, r"must be in \(0, 1\]"),
        ("planning_steps", "2.5", "expected an integer"),
        ("planning_steps", True, "expected an integer"),
        ("model", "fuzzy", "one of 'deterministic', 'stochastic'"),
        ("eval_every", 0, ">= 1"),
    ],
)
def test_bad_values(key, value, match):
    with pytest.raises(ConfigError, match=match):
        DynaQConfig.from_dict({key: value})


def test_strings_parse_by_type():
    cfg = DynaQConfig.from_dict(
        parse_overrides(["planning_steps=1e2", "alpha=.5", "eval_every=10_000"])
    )
    assert (cfg.planning_steps, cfg.alpha, cfg.eval_every) == (100, 0.5, 10_000)
    assert isinstance(cfg.planning_steps, int)


def test_config_is_frozen_and_round_trips():
    cfg = DynaQConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.alpha = 0.3  # type: ignore[misc]
    assert DynaQConfig.from_dict(cfg.to_dict()) == cfg


def test_agent_rejects_config_of_another_algorithm():
    with pytest.raises(ConfigError, match="takes a DynaQConfig"):
        mb.DynaQ("modelbased/DynaMaze-v0", mb.QLearningConfig())


def test_every_preset_file_is_valid():
    for name, cls in mb.ALGORITHMS.items():
        from modelbased.core.config import load_presets

        for env_id in load_presets(name):
            cls.Config.resolve(env_id)
