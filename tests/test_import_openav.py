"""`avbench import openav` on OpenAV's shipped train_audiovisual.yaml: every key mapped or
listed, the experiment validates, and it trains on an OpenAV-layout copy of the commands
stand-in with OpenAV-format weights files, frozen (requires_grad: av), as OpenAV's default."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from avbench.catalog import load_experiment
from avbench.errors import ConfigError
from avbench.importers.openav import convert
from tests import openav_reference

# openav/rsrs/train_audiovisual.yaml of DmitryRyumin/OpenAV, as shipped (its author's paths).
SHIPPED = """---
hide_metadata: false
hide_libs_vers: false
path_to_dataset: "/Users/dl/@DmitryRyumin/Databases/LRW_TEST/data"
subfolders:
  train: "train"
  val: "val"
  test: "test"
n_classes: 26
classes:
- "1_Левая"
- "2_Правая"
- "3_Нажать_левую"
- "4_Отпустить_левую"
- "5_Нажать_правую"
- "6_Отпустить_правую"
- "7_Двойной_клик"
- "8_Вверх"
- "9_Вниз"
- "10_Ввод"
- "11_Отменить"
- "12_Удалить"
- "13_Выключить_компьютер"
- "14_Новый"
- "15_Открыть"
- "16_Сохранить"
- "17_Вырезать"
- "18_Копировать"
- "19_Закрыть"
- "20_Вставить"
- "21_Печать"
- "22_Вперед"
- "23_Назад"
- "24_Выделить_все"
- "25_Пуск"
- "26_Калибровка"
batch_size: 2
max_segment: 2
epochs: 150
seed: 42
leaning_rate: 0.0001
weight_decay: 0.0
hidden_units: 356
hidden_features: 128
input_dim: 512
patience: 10
shape_audio:
  channels: 1
  n_mels: 64
  samples: 306
shape_video:
  frames: 29
  channels: 3
  width: 88
  height: 88
path_to_model_fa: "/Users/dl/GitHub/OpenAV/models/resnet18_torch_audio.pt"
path_to_model_fv: "/Users/dl/GitHub/OpenAV/models/resnet18_lstm_torch_video.pt"
path_to_save_models: "/Users/dl/GitHub/OpenAV/models"
encoder_decoder: 1
optimizer: "lion"
requires_grad: "av"
"""
CLASSES = yaml.safe_load(SHIPPED)["classes"]
# What makes the run tiny; everything else is the imported experiment (full-size extractors,
# since OpenAV's weights are).
TINY_RUN = {
    "data.num_frames": 2,
    "data.image_size": 16,
    "data.n_mels": 16,
    "data.segment_seconds": 0.5,
    "data.clip_seconds": 1.0,
    "model_args.hidden_features": 4,
    "model_args.hidden_units": 16,
    "train.epochs": 1,
    "train.batch_size": 8,
}


def shipped_with(**paths: str) -> str:
    """The shipped file with its author's paths replaced by this machine's."""
    text = SHIPPED
    for key, path in paths.items():
        text = "\n".join(f'{key}: "{path}"' if line.startswith(f"{key}:") else line for line in text.splitlines())
    return text


def test_every_key_of_the_shipped_config_is_mapped_or_listed(cli, workspace):
    (workspace / "train_audiovisual.yaml").write_text(SHIPPED, encoding="utf-8")
    result = cli("import", "openav", "train_audiovisual.yaml")
    lines = result.output.splitlines()
    assert lines[0] == "wrote experiments/openav-train-audiovisual.yaml (task commands, model av-fusion)"
    for key in yaml.safe_load(SHIPPED):
        assert any(line.startswith(f"  {key} → ") or line.startswith(f"  {key}: no equivalent") for line in lines), key
    assert "  leaning_rate → train.lr" in lines
    assert {line.split(":")[0].strip() for line in lines if "no equivalent" in line} == {
        "hide_metadata",
        "hide_libs_vers",
    }
    assert sum(line.startswith("warning: ") for line in lines) == 3  # the author's two weights files and dataset
    assert lines[-1] == (
        "run it: avbench --results /Users/dl/GitHub/OpenAV/models run experiments/openav-train-audiovisual.yaml"
    )
    config = load_experiment("openav-train-audiovisual").config
    assert (config.task, config.model) == ("commands", "av-fusion")
    assert (config.train.lr, config.train.optimizer, config.train.batch_size, config.train.epochs) == (
        0.0001,
        "lion",
        2,
        150,
    )
    assert (config.train.seed, config.train.patience, config.train.weight_decay) == (42, 10, 0.0)
    assert config.data.classes == CLASSES and config.data.subfolders == {"train": "train", "val": "val", "test": "test"}
    assert config.model_args == {
        "hidden_units": 356,
        "hidden_features": 128,
        "input_dim": 512,
        "path_to_model_fa": "/Users/dl/GitHub/OpenAV/models/resnet18_torch_audio.pt",
        "path_to_model_fv": "/Users/dl/GitHub/OpenAV/models/resnet18_lstm_torch_video.pt",
        "encoder_decoder": 1,
        "requires_grad": "av",
    }
    from avbench.data.dataset import example_shapes

    # OpenAV's tensors: (max_segment, 1, 64, 306) log-mel and (max_segment, 29, 3, 88, 88) lips
    assert example_shapes(config.data) == {"audio": (2, 1, 64, 306), "video": (2, 29, 3, 88, 88)}
    again = cli("import", "openav", "train_audiovisual.yaml", expect=1)
    assert "exists; pass --force" in again.output
    # the author's weights files are not here: validate says so in one line
    checked = cli("validate", "experiments/openav-train-audiovisual.yaml", expect=1)
    assert "model_args.path_to_model_fa: no such file: /Users/dl/GitHub/OpenAV/models/resnet18_torch_audio.pt" in (
        checked.output
    )


def openav_layout_copy(source, root, classes: int = 3):
    """`classes` of the commands stand-in's class folders, named as OpenAV's (some in capitals:
    OpenAV compares classes ignoring case)."""
    for split in ("train", "val", "test"):
        for index, folder in enumerate(sorted((source / split).iterdir())[:classes]):
            name = CLASSES[index].upper() if index % 2 else CLASSES[index]
            shutil.copytree(folder, root / split / name)
    return root


def test_the_imported_experiment_validates_and_trains_on_the_commands_standin(cli, workspace, standin):
    """OpenAV's default workflow: its published extractors frozen (requires_grad av), the fusion trains."""
    import torch

    root = openav_layout_copy(standin("commands"), workspace / "ICANDO")
    audio_file, video_file, _, _ = openav_reference.write_published_weights(workspace)
    models = workspace / "models"
    text = shipped_with(
        path_to_dataset=str(root),
        path_to_model_fa=str(audio_file),
        path_to_model_fv=str(video_file),
        path_to_save_models=str(models),
    )
    (workspace / "train_audiovisual.yaml").write_text(text, encoding="utf-8")
    imported = cli("import", "openav", "train_audiovisual.yaml", "--out", "mine.yaml")
    assert "warning" not in imported.output
    assert imported.output.splitlines()[-1] == f"run it: avbench --results {models} run mine.yaml"
    assert "✓ mine.yaml" in cli("validate", "mine.yaml").output
    overrides = [arg for key, value in TINY_RUN.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    cli("--results", str(models), "run", "mine.yaml", "--no-wandb", *overrides)
    (run,) = (models / "runs" / "mine").iterdir()
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "completed" and 0 <= record["test"]["acc"] <= 1
    assert record["weights"] == f"feature_audio: {audio_file} (frozen); feature_video: {video_file} (frozen)"
    assert record["data_sizes"]["train"] > 0 and not any("not in data.classes" in r for _, r in record["skipped_files"])
    trained = torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model"]
    published = torch.load(audio_file, map_location="cpu", weights_only=True)
    assert all(torch.equal(trained[f"feature_audio.{key}"], value) for key, value in published.items())
    (row,) = json.loads(cli("--results", str(models), "leaderboard", "--format", "json").output)
    assert (row["experiment"], row["model"], row["test/acc"]) == ("mine", "av-fusion", record["test"]["acc"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_classes": 3}, "n_classes is 3 but classes lists 26"),
        ({"shape_video": {"frames": 29, "channels": 3, "width": 88, "height": 64}}, "avbench's crops are square"),
        ({"shape_audio": {"channels": 2, "n_mels": 64, "samples": 306}}, "log-mel has 1 channel"),
        ({"optimizer": "rmsprop"}, "optimizer:"),
        ({"requires_grad": "all"}, "requires_grad:"),
    ],
)
def test_values_avbench_cannot_use_are_one_line_errors_naming_the_key(cli, workspace, change, message):
    config = {**yaml.safe_load(SHIPPED), **change}
    (workspace / "bad.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = cli("import", "openav", "bad.yaml", expect=1)
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (workspace / "experiments" / "openav-bad.yaml").exists()


def test_keys_openav_does_not_have_are_listed_not_dropped():
    imported = convert({**yaml.safe_load(SHIPPED), "frames_per_second": 25})
    assert ("frames_per_second", "not a key of OpenAV's train config") in imported.unmapped


def test_a_file_that_is_not_an_openav_config_is_refused():
    with pytest.raises(ConfigError, match="not an OpenAV train config"):
        convert({"task": "cremad", "model": "perceiver"})
