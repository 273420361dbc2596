"""Config rules: null = searched, presets, --set overrides, and one-line errors."""

from __future__ import annotations

import json

import pytest

from avbench.catalog import load_experiment
from avbench.dotted import find_nulls, parse_override
from avbench.errors import ConfigError


def write(path, text):
    path.write_text(text)
    return str(path)


def test_find_nulls_reads_the_raw_file_not_defaults():
    raw = {
        "task": "cremad",
        "train": {"lr": None, "epochs": 3},
        "data": {"root": "x"},
        "presets": {"p": {"train": {"batch_size": None}}},
    }
    assert find_nulls(raw) == ["train.lr"]


def test_repo_experiment_searches_lr_batch_size_and_optimizer(workspace):
    loaded = load_experiment("spectrogram-cnn-cremad")
    assert set(loaded.searched) == {"train.lr", "train.batch_size", "train.optimizer"}
    config = loaded.resolve({"train.lr": 1e-3, "train.batch_size": 8, "train.optimizer": "sgd"})
    assert (config.train.lr, config.train.batch_size, config.train.optimizer) == (1e-3, 8, "sgd")


@pytest.mark.parametrize(
    "text,value",
    [
        ("train.lr=3e-4", 3e-4),
        ("train.epochs=5", 5),
        ("train.optimizer=lion", "lion"),
        ("data.modalities=[audio]", ["audio"]),
        ("train.lr=null", None),
    ],
)
def test_override_values_are_yaml(text, value):
    assert parse_override(text)[1] == value


def test_preset_and_overrides_apply_in_order(workspace):
    loaded = load_experiment("spectrogram-cnn-cremad", preset="tiny", overrides=["train.epochs=7", "train.lr=0.01"])
    assert loaded.config.train.epochs == 7 and loaded.config.train.lr == 0.01
    assert loaded.config.model_args["width"] == 0.25
    assert "train.lr" not in loaded.searched


def test_unknown_key_names_it_with_a_suggestion(tmp_path):
    path = write(tmp_path / "e.yaml", "task: cremad\nmodel: spectrogram-cnn\ntrain: {learning_rate: 0.1, lr: 1}\n")
    with pytest.raises(ConfigError, match=r"train.learning_rate"):
        load_experiment(path)
    path = write(tmp_path / "f.yaml", "task: cremad\nmodel: spectrogram-cnn\ntrian: {lr: 1}\n")
    with pytest.raises(ConfigError, match=r"'trian'.*did you mean 'train'"):
        load_experiment(path)


def test_wrong_type_names_field_and_value(tmp_path):
    path = write(tmp_path / "e.yaml", "task: cremad\nmodel: spectrogram-cnn\ntrain: {epochs: many}\n")
    with pytest.raises(ConfigError, match=r"train.epochs.*integer.*'many'"):
        load_experiment(path)


def test_malformed_yaml_is_one_line_with_position(tmp_path):
    path = write(tmp_path / "e.yaml", "task: cremad\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match=r"malformed .*line \d+") as info:
        load_experiment(path)
    assert "\n" not in str(info.value)


def test_json_experiments_are_accepted(tmp_path):
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"task": "cremad", "model": "spectrogram-cnn", "train": {"lr": None}}))
    loaded = load_experiment(str(path))
    assert loaded.name == "exp" and loaded.searched == ["train.lr"]


def test_unknown_experiment_and_preset_suggest(workspace):
    with pytest.raises(ConfigError, match="did you mean 'spectrogram-cnn-cremad'"):
        load_experiment("spectrogram-cnn-cremd")
    with pytest.raises(ConfigError, match="no preset 'tinyy'.*did you mean 'tiny'"):
        load_experiment("spectrogram-cnn-cremad", preset="tinyy")


def test_resolve_refuses_missing_values(workspace):
    loaded = load_experiment("spectrogram-cnn-cremad")
    with pytest.raises(ConfigError, match="train.optimizer"):
        loaded.resolve({"train.lr": 0.1, "train.batch_size": 8})
