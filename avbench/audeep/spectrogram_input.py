"""Training auDeep's autoencoder from an existing spectrogram file (`data.spectrograms`), as
auDeep's `t-rae train --input FILE.nc` does: the clips, labels, folds and spectrogram settings
come from the file, and no dataset is read or decoded. The file is one written by `avbench
features spectrogram` (auDeep's own netCDF layout plus avbench's attributes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avbench.audeep.pipeline import Clips
from avbench.audeep.store import FeatureFile, read_feature_file
from avbench.config import Experiment
from avbench.data.dataset import PreparedData
from avbench.errors import ConfigError, DatasetError
from avbench.spec import TaskSpec


class ArrayRows:
    """Spectrogram rows held in memory, with the interface of the feature cache's CachedRows."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape = tuple(array.shape[1:])

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.array[index]

    def take(self, indices) -> ArrayRows:
        return ArrayRows(self.array[np.asarray(indices, dtype=np.int64)])


def _read(experiment: Experiment) -> FeatureFile:
    path = Path(experiment.data.spectrograms)
    data = read_feature_file(path)
    if data.kind != "spectrogram":
        raise DatasetError(f"data.spectrograms: {path} holds {data.kind} features, not spectrograms")
    if data.task and data.task != experiment.task:
        raise ConfigError(
            f"data.spectrograms: {path} holds task '{data.task}', the experiment's task is '{experiment.task}'"
        )
    return data


def with_spectrogram_file(experiment: Experiment) -> Experiment:
    """The experiment with its data section's spectrogram settings taken from data.spectrograms
    (unchanged without one), so its checks, record and later `features generate` agree with the file."""
    from avbench.registry import MODELS

    if experiment.data.spectrograms is None:
        return experiment
    if MODELS.get(experiment.model).objective != "reconstruction":
        raise ConfigError(f"data.spectrograms feeds auDeep's autoencoder; model '{experiment.model}' is a classifier")
    settings = _read(experiment).settings
    width, overlap = settings["window_width"], settings["window_overlap"]
    update = {
        "audio_feature": "spectrogram",
        "sample_rate": settings["sample_rate"],
        "clip_seconds": settings["fixed_length"],
        "win_ms": round(width * 1000, 6),
        "hop_ms": round((width - overlap) * 1000, 6),
        "n_mels": settings["mel_bands"],
        "clip_below": list(settings["clip_below"]),
    }
    return experiment.model_copy(update={"data": experiment.data.model_copy(update=update)})


def clips_from_file(experiment: Experiment) -> tuple[PreparedData, Clips, str]:
    """The (empty) prepared data the auDeep recipe expects, the file's clips, and the data kind
    to record (what the file was made from)."""
    data = _read(experiment)
    rows = ArrayRows(np.ascontiguousarray(data.features.transpose(0, 1, 3, 2)))  # → [clips, thresholds, bands, time]
    spec = TaskSpec(
        num_classes=len(data.class_names),
        modalities=("audio",),
        sample_rate=int(data.settings["sample_rate"]),
        shapes={"audio": rows.shape},
        class_names=data.class_names,
    )
    clips = Clips(
        rows=rows,
        labels=data.labels,
        folds=data.folds,
        splits=data.splits,
        paths=[Path(name) for name in data.filenames],
        spec=spec,
        root=Path("."),
    )
    skipped = [tuple(entry) for entry in data.settings.get("skipped_files", [])]
    prepared = PreparedData(spec, {}, skipped, {"spectrogram_file": str(experiment.data.spectrograms)})
    return prepared, clips, data.settings.get("data_kind", "real")
