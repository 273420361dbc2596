"""emotions-classify's JSON pipeline → avbench experiments, sweep files and a step list.

The seed runs `{"pipeline": [step, …]}` in order; each step is `train` (fixed values), `tune`
(Ray Tune over its null fields) or `print_tune_res` (the best trials of a tune). Here a train
step becomes an experiment run by `avbench run`, a tune step an experiment whose nulls stay
null plus its sweep file (the seed's search space for those fields) run by `avbench sweep`,
and print_tune_res an `avbench show` of the tune steps before it. Path values are lists of
segments joined as os.path.join did, after the macros $$ROOT_DIR$$, $$DATETIME$$ and
$$MODEL_NAME$$ are expanded. Every key with no avbench equivalent is listed, never dropped
silently.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from avbench.errors import ConfigError
from avbench.registry import MODELS

# The seed's class names → avbench models, and how each reads audio.
MODELS_BY_SEED = {
    "Wav2Vec2FnClassifier": "wav2vec2-fn",
    "Wav2Vec2CnnClassifier": "wav2vec2-cnn",
    "SpectrogramCnnClassifier": "spectrogram-cnn",
    "TransformerClassifier": "spectrogram-vit",
}
SEED_WAV2VEC2 = "Eyvaz/wav2vec2-base-russian-demo-kaggle"  # the seed's pretrained Russian wav2vec2
# model_architecture keys → model_args keys, per model.
ARCHITECTURE = {
    "wav2vec2-fn": {
        "conv_h_count": "conv_h_count",
        "conv_w_count": "conv_w_count",
        "layer_1_size": "layer_1_size",
        "layer_2_size": "layer_2_size",
        "h_mean_enable": "time_mean",
        "w_mean_enable": "feature_mean",
    },
    "spectrogram-vit": {
        "layer_1_size": "dim",
        "layer_2_size": "mlp_dim",
        "patch_transformer_size": "patch_size",
        "transformer_depth": "depth",
        "transformer_attantion_head_count": "heads",
    },
}
# learn_params.lr.conv_lr: the head's own rate, where the model has one.
CONV_LR = {"wav2vec2-fn": "model_args.conv_lr", "wav2vec2-cnn": "model_args.cnn_lr"}
# The seed's Ray Tune space (tune_controller.py), in the sweep file's vocabulary.
LOG_LR = {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 1.0e-1}
SEARCH_SPACE = {
    "conv_h_count": {"values": [0, 1, 2, 4]},
    "conv_w_count": {"values": [0, 1, 2, 4]},
    "layer_1_size": {"values": [32, 64, 128, 256, 512]},
    "layer_2_size": {"values": [32, 64, 128, 256, 512]},
    "patch_transformer_size": {"values": [16, 32, 64]},
    "transformer_depth": {"values": [2, 3, 4]},
    "transformer_attantion_head_count": {"values": list(range(1, 10))},
    "base_lr": LOG_LR,
    "conv_lr": LOG_LR,
    "batch_size": {"values": [8, 16, 32]},
}
# The seed's metric names → avbench's (heads emotion and state of the annotations task).
METRICS = {"em_acc": "emotion/acc", "st_acc": "state/acc"}
DATASET = ("data", "dataset")  # where the seed reads annotations.json, under its root


@dataclass
class Step:
    """One pipeline step, converted: the avbench command that runs it and what it needs."""

    command: str  # run | sweep | show
    experiment: str
    config: dict[str, Any] | None = None  # None for show (it reads an earlier step's study)
    sweep: dict[str, Any] | None = None
    unmapped: list[str] = field(default_factory=list)


@dataclass
class Macros:
    """The seed's path macros, plus where its pretrained wav2vec2 lies here (None: not available)."""

    root_dir: str
    pretrained: str | None = None
    datetime: str = field(default_factory=lambda: datetime.now().strftime("%Y%m%d-%H%M%S"))

    def expand(self, value: Any, model_name: str = "") -> Any:
        """Macros replaced in every string; a list of strings is a path, joined as os.path.join."""
        if isinstance(value, str):
            for macro, text in (("ROOT_DIR", self.root_dir), ("DATETIME", self.datetime), ("MODEL_NAME", model_name)):
                value = value.replace(f"$${macro}$$", text)
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return os.path.join(*(self.expand(v, model_name) for v in value))
        if isinstance(value, dict):
            return {k: self.expand(v, model_name) for k, v in value.items()}
        return value


def read_pipeline(path: Path) -> list[dict[str, Any]]:
    """The steps of a seed config file, checked for the shape the seed expects."""
    import json

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"malformed {path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    steps = raw.get("pipeline") if isinstance(raw, dict) else None
    if not isinstance(steps, list) or not steps:
        raise ConfigError(f'{path}: expected {{"pipeline": [step, …]}} as emotions-classify writes it')
    for number, step in enumerate(steps, start=1):
        kind = step.get("type") if isinstance(step, dict) else None
        if kind not in ("train", "tune", "print_tune_res"):
            raise ConfigError(f"{path}: step {number}: type must be train, tune or print_tune_res, got {kind!r}")
    return steps


def step_name(prefix: str, number: int, kind: str, model: str) -> str:
    return f"{prefix}-{number:02d}-{kind}-{model}"


def convert(path: Path, root_dir: Path, pretrained: Path | None = None) -> list[Step]:
    """Every step of the seed pipeline at `path` as an avbench step; `root_dir` is the seed's
    $$ROOT_DIR$$ (its checkout, with data/dataset/annotations.json), `pretrained` a local copy
    of the seed's wav2vec2 (SEED_WAV2VEC2), if any."""
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", path.name.removesuffix(".json")).strip("-").lower() or "pipeline"
    macros = Macros(str(root_dir), str(pretrained) if pretrained else None)
    steps: list[Step] = []
    for number, raw in enumerate(read_pipeline(path), start=1):
        if raw["type"] == "print_tune_res":
            tuned = [s.experiment for s in steps if s.command == "sweep"]
            if not tuned:
                raise ConfigError(f"{path}: step {number}: print_tune_res with no tune step before it")
            for name in tuned:
                steps.append(Step("show", name, unmapped=["res_path (the study is the tune step's)"]))
            continue
        steps.append(_model_step(raw, number, prefix, macros, f"{path}: step {number}"))
    return steps


def _model_step(raw: dict[str, Any], number: int, prefix: str, macros: Macros, where: str) -> Step:
    seed_model = raw.get("model")
    if seed_model not in MODELS_BY_SEED:
        raise ConfigError(f"{where}: unknown model {seed_model!r} (emotions-classify has {', '.join(MODELS_BY_SEED)})")
    model = MODELS_BY_SEED[seed_model]
    tune = raw["type"] == "tune"
    name = step_name(prefix, number, raw["type"], model)
    config, searched, unmapped = _experiment(raw, model, macros, tune)
    config["presets"] = {"tiny": tiny_preset(model, config)}
    sweep = _sweep_file(searched, config) if tune else None
    if tune and not searched:
        raise ConfigError(f"{where}: a tune step needs at least one null (tuned) field")
    if not tune and searched:
        raise ConfigError(f"{where}: a train step needs every value; null: {', '.join(searched)}")
    return Step("sweep" if tune else "run", name, config, sweep, unmapped)


def _experiment(raw: dict, model: str, macros: Macros, tune: bool) -> tuple[dict, dict[str, str], list[str]]:
    """(experiment mapping, avbench key → seed key of each null, seed keys with no equivalent)."""
    config: dict[str, Any] = {
        "task": "annotations",
        "model": model,
        "data": {"root": os.path.join(macros.root_dir, *DATASET), "sample_rate": 16000},
        "model_args": _seed_backbone(model, macros.pretrained),
        "train": {"optimizer": "adam", "patience": 0, "metric": "emotion/acc"},
    }
    searched: dict[str, str] = {}
    unmapped: list[str] = []
    _map_architecture(raw.get("model_architecture") or {}, model, config, searched, unmapped)
    _map_learn_params(raw.get("learn_params") or {}, model, config, searched, unmapped)
    saving = macros.expand(raw.get("saving_data_params") or {}, raw["model"])
    _map_saving(saving, config, unmapped)
    if tune:
        _map_tune(raw.get("tune") or {}, config, unmapped)
    return config, searched, unmapped


def _seed_backbone(model: str, pretrained: str | None) -> dict[str, Any]:
    """The seed's wav2vec2 setup: no transformer layers, each head reading the tensor the
    seed's did (feature_source); with the seed's pretrained weights (a local copy of
    SEED_WAV2VEC2) also frozen, as the seed trained only its heads."""
    if not model.startswith("wav2vec2"):
        return {}
    source = "projection" if model == "wav2vec2-fn" else "extract_features"
    args: dict[str, Any] = {"num_layers": 0, "feature_source": source}
    if pretrained:
        args.update({"pretrained": pretrained, "freeze_base_model": True})
    return args


def _put(config: dict, dotted: str, value: Any, searched: dict[str, str], seed_key: str) -> None:
    section, key = dotted.split(".", 1)
    config.setdefault(section, {})[key] = value
    if value is None:
        searched[dotted] = seed_key


def _map_architecture(arch: dict, model: str, config: dict, searched: dict[str, str], unmapped: list[str]) -> None:
    names = ARCHITECTURE.get(model, {})
    for key, value in arch.items():
        if key in names:
            _put(config, f"model_args.{names[key]}", value, searched, key)
        else:
            unmapped.append(f"model_architecture.{key}")


def _map_learn_params(params: dict, model: str, config: dict, searched: dict[str, str], unmapped: list[str]) -> None:
    rates = params.get("lr") or {}
    if "base_lr" in rates:
        _put(config, "train.lr", rates["base_lr"], searched, "base_lr")
    if "conv_lr" in rates:
        if model in CONV_LR:
            _put(config, CONV_LR[model], rates["conv_lr"], searched, "conv_lr")
        else:
            unmapped.append("learn_params.lr.conv_lr (one learning rate)")
    unmapped += [f"learn_params.lr.{key}" for key in rates if key not in ("base_lr", "conv_lr")]
    simple = {"batch_size": "train.batch_size", "max_epoch": "train.epochs", "padding_sec": "data.clip_seconds"}
    for key, value in params.items():
        if key in simple:
            _put(config, simple[key], value, searched, key)
        elif key == "spectrogram_size":
            config["data"].update({"audio_feature": "linear_spectrogram", "spectrogram_size": value})
            if model == "spectrogram-vit":
                config["model_args"]["spectrogram_size"] = value
        elif key != "lr":
            unmapped.append(f"learn_params.{key}")


def _map_saving(saving: dict, config: dict, unmapped: list[str]) -> None:
    """Only the warm start has an equivalent: checkpoints, logs and tune results live under results/."""
    for key, value in saving.items():
        if key == "start_from_saved_checkpoint_path":
            if value:
                config["train"]["init_from"] = value
        elif value is not None:
            unmapped.append(f"saving_data_params.{key}")


def _map_tune(tune: dict, config: dict, unmapped: list[str]) -> None:
    for key, value in tune.items():
        if key == "num_samples":
            config["sweep"] = {"trials": value, "pruner": "hyperband"}  # the seed's ASHA
        elif key == "max_tune_epochs":
            config["train"]["epochs"] = value  # ASHA's max_t: a trial's epochs
        elif key == "target_metric_name":
            config["train"]["metric"] = _metric(value)
        else:
            unmapped.append(f"tune.{key}")


def _metric(seed_name: str) -> str:
    base = str(seed_name).removeprefix("val/")
    if base not in METRICS:
        raise ConfigError(f"tune.target_metric_name {seed_name!r}: choose val/{' or val/'.join(METRICS)}")
    return METRICS[base]


def _sweep_file(searched: dict[str, str], config: dict) -> dict[str, Any]:
    """The seed's search space for the step's nulls, with its ASHA as hyperband pruning."""
    return {
        "method": "bayes",
        "metric": {"name": f"val/{config['train']['metric']}", "goal": "maximize"},
        "parameters": {key: dict(SEARCH_SPACE[seed_key]) for key, seed_key in searched.items()},
        "early_terminate": {"type": "hyperband", "min_iter": 1},
    }


def tiny_preset(model: str, config: dict) -> dict[str, Any]:
    """Overrides that shrink a step to seconds on a CPU (its model's tiny size, the tiny
    stand-in, one epoch, two trials), so a whole pipeline can be tried before a real run."""
    factory = MODELS.get(model)
    data: dict[str, Any] = {"clip_seconds": 1.0, "synth_size": "tiny"}
    # Searched fields stay searched: the tiny size only shrinks what the step fixes.
    model_args = {k: v for k, v in factory.tiny_args.items() if config["model_args"].get(k, 0) is not None}
    if config["model_args"].get("pretrained"):
        model_args.update({"pretrained": "", "freeze_base_model": False})  # the tiny encoder is random
    if config["data"].get("audio_feature") == "linear_spectrogram":
        data["spectrogram_size"] = 48
        if model == "spectrogram-vit":
            model_args["spectrogram_size"] = 48
    preset: dict[str, Any] = {"data": data, "model_args": model_args, "train": {"epochs": 1, "patience": 0}}
    if "sweep" in config:
        preset["sweep"] = {"trials": 2}
    return preset
