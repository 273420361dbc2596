"""The auDeep pipeline as one avbench run, and the stages the `avbench features` commands call.

One run (one sweep trial) of a reconstruction model such as `audeep`:
1. spectrograms of every clip, from the shared feature cache (decoded once per setting);
2. the autoencoder, trained by fit() on 90% of all clips, every fold, labels never used;
   the other 10% give the validation loss that picks its epoch (auDeep trains on every
   clip and picks none: the held-out tenth makes the choice honest at little cost);
3. the representation of every clip, fused across clip-below thresholds, written to the run
   folder as representations.nc (avbench.audeep.store);
4. auDeep's MLP, cross-validated over the task's folds (avbench.audeep.evaluate): the run's
   val and test metrics are its means (± std over folds), its confusion matrix is in the
   record and in confusion.png.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avbench.audeep.store import FeatureFile
from avbench.data.cache import CachedRows
from avbench.data.dataset import PreparedData, SplitArrays
from avbench.data.spectrogram import SpectrogramSettings
from avbench.results.layout import RunFiles
from avbench.spec import TaskSpec

MONITOR_FRACTION = 0.1


@dataclass
class Clips:
    """Every usable clip of a dataset, whatever split it is in: the unit auDeep works on."""

    rows: CachedRows  # one [thresholds, bands, frames] spectrogram per clip, memory-mapped
    labels: np.ndarray
    folds: np.ndarray  # the predefined fold, 0 when the task has none
    splits: list[str]  # the task's own split of each clip
    paths: list[Path]
    spec: TaskSpec
    root: Path

    @classmethod
    def from_prepared(cls, data: PreparedData, root: Path) -> Clips:
        """The splits of prepare_data joined again (their rows come from one cache fetch)."""
        parts = list(data.splits.items())
        audio = [split.features["audio"] for _, split in parts]
        rows = CachedRows(audio[0].directory, [loc for rows in audio for loc in rows.locations], audio[0].shape)
        return cls(
            rows=rows,
            labels=np.concatenate([split.labels for _, split in parts]),
            folds=np.array([fold or 0 for _, split in parts for fold in split.folds], dtype=np.int32),
            splits=[name for name, split in parts for _ in split.labels],
            paths=[path for _, split in parts for path in split.paths],
            spec=data.spec,
            root=Path(root),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def split_arrays(self, indices: np.ndarray) -> SplitArrays:
        return SplitArrays(
            {"audio": self.rows.take(indices)},
            self.labels[indices],
            [""] * len(indices),
            dict(self.spec.shapes),
            paths=[self.paths[i] for i in indices],
            folds=[int(self.folds[i]) or None for i in indices],
        )

    def spectrograms(self) -> np.ndarray:
        """All of them in memory, float32 [clips, thresholds, bands, frames]."""
        return np.stack([np.asarray(self.rows[i], np.float32) for i in range(len(self))])

    def filenames(self) -> list[str]:
        return [os.path.relpath(path, self.root) for path in self.paths]

    def feature_file(
        self,
        kind: str,
        features: np.ndarray,
        dims: tuple[str, ...],
        task: str,
        coordinates: dict | None = None,
        settings: dict | None = None,
    ) -> FeatureFile:
        return FeatureFile(
            kind=kind,
            task=task,
            features=features,
            feature_dims=dims,
            filenames=self.filenames(),
            labels=self.labels,
            class_names=tuple(self.spec.class_names),
            folds=self.folds,
            splits=self.splits,
            coordinates=coordinates or {},
            settings=settings or {},
        )


def spectrogram_file(clips: Clips, settings: SpectrogramSettings, task: str) -> FeatureFile:
    """The spectrograms as auDeep stores them: [clips, clip_below, time, freq]."""
    features = clips.spectrograms().transpose(0, 1, 3, 2)
    return clips.feature_file(
        "spectrogram",
        features,
        ("clip_below", "time", "freq"),
        task,
        {"clip_below": list(settings.clip_below)},
        settings.describe(),
    )


class AutoencoderData(PreparedData):
    """The clips regrouped for the autoencoder: train on most, monitor the loss on the rest."""

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.splits["train"].labels),
            "monitor": len(self.splits["val"].labels),
            "clips": len(self.splits["train"].labels) + len(self.splits["val"].labels),
        }


def autoencoder_data(clips: Clips, data: PreparedData, *, seed: int) -> AutoencoderData:
    """A random tenth of all clips (at least one, spread over folds and classes by chance) is
    held out to pick the epoch; it is also fit()'s test loader, so test reports its loss."""
    order = np.random.default_rng(seed).permutation(len(clips))
    held_out = max(1, round(len(clips) * MONITOR_FRACTION)) if len(clips) > 1 else 0
    monitor, train = np.sort(order[:held_out]), np.sort(order[held_out:])
    if not len(monitor):
        monitor = train
    splits = {
        "train": clips.split_arrays(train),
        "val": clips.split_arrays(monitor),
        "test": clips.split_arrays(monitor),
    }
    return AutoencoderData(data.spec, splits, data.skipped, data.cache)


def encode_clips(model, spectrograms: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """The fused representation of every clip: model.encode on [clips, thresholds, bands, frames]."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    parts = []
    for start in range(0, len(spectrograms), batch_size):
        batch = {"audio": torch.from_numpy(np.ascontiguousarray(spectrograms[start : start + batch_size])).to(device)}
        parts.append(model.encode(batch).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, model.representation_size), np.float32)


def representation_file(clips: Clips, representations: np.ndarray, task: str, settings: dict) -> FeatureFile:
    return clips.feature_file("representation", representations, ("generated",), task, settings=settings)


def score_representations(model, clips: Clips, experiment, out_dir: Path, *, run_id: str, write_files: bool = True):
    """Stages 3 and 4 of a run: encode every clip, write representations.nc, cross-validate
    the MLP and draw its confusion matrix. Returns the CrossValidationResult."""
    from avbench.audeep.evaluate import cross_validate
    from avbench.audeep.plots import write_confusion
    from avbench.audeep.store import write_feature_file

    representations = encode_clips(model, clips.spectrograms())
    device = next(model.parameters()).device
    result = cross_validate(
        representations,
        clips.labels,
        clips.folds,
        clips.splits,
        clips.spec.num_classes,
        experiment.evaluation,
        seed=experiment.train.seed,
        device=device,
    )
    if write_files:
        settings = {
            "spectrogram": SpectrogramSettings.from_data(experiment.data).describe(),
            "model": experiment.model,
            "model_args": experiment.model_args,
            "run": f"{experiment.name}/{run_id}",
        }
        write_feature_file(
            RunFiles(Path(out_dir)).representations,
            representation_file(clips, representations, experiment.task, settings),
        )
        folds = f"{len(result.per_fold)} folds" if result.per_fold[0]["fold"] else "the task's split"
        write_confusion(
            RunFiles(Path(out_dir)).confusion,
            result.test["confusion"],
            clips.spec.class_names,
            f"{experiment.name} {run_id}\ntest folds, {folds} x {result.repeats} repeat(s), "
            f"acc {result.test['acc']:.3f} ± {result.test['acc_std']:.3f}",
        )
    return result
