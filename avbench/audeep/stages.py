"""The stages behind `avbench features …`, each one library call: spectrograms of a dataset
(or previews of a few), representations from a trained autoencoder run, MLP evaluation of a
feature file. The commands in avbench.cli.audeep only parse and print."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avbench.audeep.store import FeatureFile, read_feature_file
from avbench.config import DataConfig, Experiment, read_mapping, validate
from avbench.errors import ConfigError, DatasetError, DecodeError
from avbench.results.layout import RunFiles, feature_cache_dir

AUDEEP_SPECTROGRAM_FIELDS = ("sample_rate", "fixed_length", "window_width", "window_overlap", "mel_bands", "clip_below")


def resolve_dataset(dataset: str, task: str | None, size: str) -> tuple[str, Path]:
    """(task name, root): a dataset folder (its task from --task, the stand-in marker or the
    layout), or a task name, meaning its synthetic stand-in (written on first use)."""
    from avbench.registry import TASKS
    from avbench.tasks.detection import detect_task
    from avbench.tasks.standin import ensure_synthetic

    path = Path(dataset)
    if path.is_dir():
        name = task or detect_task(path)[0]
        TASKS.get(name)
        return name, path
    if dataset in TASKS:
        if task and task != dataset:
            raise ConfigError(f"DATASET names task '{dataset}' but --task says '{task}'")
        return dataset, ensure_synthetic(dataset, size)
    raise DatasetError(f"{dataset} is neither a dataset folder nor a task (tasks: {', '.join(TASKS.names())})")


def native_sample_rate(task_name: str, root: Path) -> int:
    """The sample rate of the dataset's first usable file (auDeep reads every file at its own)."""
    from avbench.data.audio import read_mono
    from avbench.registry import TASKS

    reasons = []
    for item in TASKS.get(task_name)().items(root, DataConfig())[:5]:
        try:
            return read_mono(item.audio)[1]
        except DecodeError as exc:  # a bad first file: try the next
            reasons.append(str(exc))
    raise DatasetError(
        f"cannot read a sample rate from {root}: {reasons[0] if reasons else 'no files'}; pass --sample-rate"
    )


def spectrogram_data(
    sample_rate: int,
    fixed_length: float,
    window_width: float,
    window_overlap: float,
    mel_bands: int,
    clip_below: list[float],
    strict: bool = False,
) -> DataConfig:
    """auDeep's options (seconds) as an experiment's data section (win_ms, hop_ms)."""
    from pydantic import ValidationError

    try:
        return DataConfig(
            audio_feature="spectrogram",
            sample_rate=sample_rate,
            clip_seconds=fixed_length,
            win_ms=round(window_width * 1000, 6),
            hop_ms=round((window_width - window_overlap) * 1000, 6),
            n_mels=mel_bands,
            clip_below=list(clip_below),
            strict=strict,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def extract_spectrograms(
    task_name: str, root: Path, data: DataConfig, *, results: Path, progress: Callable[[int, int], None] | None = None
) -> FeatureFile:
    """Every usable clip's spectrograms, through the shared feature cache (so a later run
    with the same settings decodes nothing), with labels, folds and file names."""
    from avbench.audeep.pipeline import Clips, spectrogram_file
    from avbench.data.cache import FeatureCache
    from avbench.data.dataset import cache_workers, prepare_data
    from avbench.data.spectrogram import SpectrogramSettings
    from avbench.registry import TASKS
    from avbench.tasks.standin import MARKER as SYNTHETIC_MARKER

    cache = FeatureCache(feature_cache_dir(results), workers=cache_workers(data))
    prepared = prepare_data(TASKS.get(task_name)(), root, data, cache, progress)
    clips = Clips.from_prepared(prepared, root)
    result = spectrogram_file(clips, SpectrogramSettings.from_data(data), task_name)
    result.settings["skipped_files"] = [list(s) for s in prepared.skipped]
    result.settings["data_kind"] = "synthetic" if (Path(root) / SYNTHETIC_MARKER).exists() else "real"
    return result


def write_previews(task_name: str, root: Path, data: DataConfig, count: int, out_dir: Path) -> list[Path]:
    """PNG previews of the first `count` clips (in the task's order): the dB spectrogram and
    each threshold's scaled one, with amplitude histograms. Nothing else is computed."""
    from avbench.audeep.plots import write_preview
    from avbench.data.dataset import feature_extractors
    from avbench.registry import TASKS

    task = TASKS.get(task_name)()
    extractor = feature_extractors(data)["audio"]
    written = []
    for index, item in enumerate(task.items(root, data)[:count]):
        decibels = extractor.decibels(item.audio)
        scaled = np.stack([row.astype(np.float32) for row in extractor(item.audio)])
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", item.audio.stem)
        title = f"{item.audio.name}: {task.classes[item.label]}" + (f", fold {item.fold}" if item.fold else "")
        written.append(
            write_preview(
                Path(out_dir) / f"{index:03d}-{name}.png", scaled, list(extractor.settings.clip_below), title, decibels
            )
        )
    return written


def load_run(run: Path) -> tuple[Experiment, Path]:
    """The resolved config and the best weights of a finished autoencoder run folder."""
    from avbench.registry import MODELS

    run = Path(run)
    config, weights = RunFiles(run).config, RunFiles(run).best
    if not config.is_file() or not weights.is_file():
        raise ConfigError(
            f"{run} is not a finished run folder (needs config.yaml and best.pt, e.g. "
            "results/runs/audeep-esc10/<run_id>)"
        )
    experiment = validate(read_mapping(config), str(config))
    if MODELS.get(experiment.model).objective != "reconstruction":
        raise ConfigError(f"{run} trained '{experiment.model}', a classifier; generate needs an autoencoder (audeep)")
    return experiment, weights


def generate_representations(run: Path, spectrograms: FeatureFile) -> FeatureFile:
    """Encode every clip of a spectrogram file with the run's autoencoder; refuses a file made
    with other spectrogram settings than the autoencoder was trained on."""
    import torch

    from avbench.data.spectrogram import SpectrogramSettings
    from avbench.models import create_model
    from avbench.spec import TaskSpec
    from avbench.train.checkpoint import load_checkpoint

    experiment, weights = load_run(run)
    if spectrograms.kind != "spectrogram":
        raise DatasetError(f"generate reads a spectrogram file; this one holds {spectrograms.kind} features")
    trained = SpectrogramSettings.from_data(experiment.data).describe()
    differing = [k for k in AUDEEP_SPECTROGRAM_FIELDS if spectrograms.settings.get(k) != trained[k]]
    if differing:
        shown = ", ".join(f"{k} {spectrograms.settings.get(k)} (trained on {trained[k]})" for k in differing)
        raise ConfigError(f"the spectrograms differ from the run's: {shown}")
    images = np.ascontiguousarray(spectrograms.features.transpose(0, 1, 3, 2))  # → [clips, thresholds, bands, time]
    spec = TaskSpec(
        num_classes=len(spectrograms.class_names),
        shapes={"audio": images.shape[1:]},
        class_names=spectrograms.class_names,
    )
    model = create_model(experiment, spec)
    model.load_state_dict(load_checkpoint(weights)["model"])
    from avbench.audeep.pipeline import encode_clips

    with torch.no_grad():
        representations = encode_clips(model, images)
    return FeatureFile(
        kind="representation",
        task=spectrograms.task,
        features=representations,
        feature_dims=("generated",),
        filenames=spectrograms.filenames,
        labels=spectrograms.labels,
        class_names=spectrograms.class_names,
        folds=spectrograms.folds,
        splits=spectrograms.splits,
        settings={
            "spectrogram": {k: trained[k] for k in AUDEEP_SPECTROGRAM_FIELDS},
            "model": experiment.model,
            "model_args": experiment.model_args,
            "run": str(run),
        },
    )


def evaluate_file(path: Path, cfg, *, seed: int = 0, require_folds: bool = False):
    """Repeated cross-validation of auDeep's MLP on a feature file (any kind); `require_folds`
    (auDeep's --cross-validate) refuses a file without predefined folds."""
    from avbench.audeep.evaluate import cross_validate

    data = read_feature_file(path)
    if require_folds and not data.fold_count:
        raise DatasetError(f"{path} has no cross-validation folds (its task '{data.task}' has a train/val/test split)")
    return data, cross_validate(
        data.features, data.labels, data.folds, data.splits, len(data.class_names), cfg, seed=seed
    )
