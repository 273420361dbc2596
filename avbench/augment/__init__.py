"""The per-batch pipeline an experiment's `augment:` section asks for (avbench.config_augment).

It runs after the feature cache, on the batches of the training device, so the cache keeps
serving every trial: on the training split the waveform transforms, then the features (a
log-mel computed in the batch when the cache holds waveforms for it), normalisation,
SpecAugment, the video transforms and mixup/cutmix; on val and test the features and the
normalisation only. Every draw comes from one torch.Generator seeded by train.seed, whose state
fit() saves with its other random states, so a resumed trial replays the same augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from avbench.config import DataConfig, Experiment
from avbench.config_augment import AugmentConfig
from avbench.errors import ConfigError, InfeasibleConfig
from avbench.spec import TaskSpec

if TYPE_CHECKING:
    import torch

IMAGE_FEATURES = ("logmel", "spectrogram", "linear_spectrogram")
SEED_OFFSET = 7919  # the generator's seed is train.seed + this: its draws differ from the shuffle's
# Models that read only each band's mean and deviation over time, which per-clip CMVN sets to 0
# and 1 for every clip: `normalise: clip` leaves them nothing to learn from.
BAND_STATISTICS_MODELS = ("mel-stats-mlp",)


def caches_waveform(experiment: Experiment) -> bool:
    """A log-mel model with waveform transforms on: the cache keeps waveforms and the log-mel is
    computed in the batch."""
    return experiment.augment.waveform_on() and experiment.data.audio_feature == "logmel"


def cached_data(experiment: Experiment) -> DataConfig:
    """The data settings the feature cache is read with: waveforms instead of log-mels when the
    log-mel is computed in the batch."""
    if caches_waveform(experiment):
        return experiment.data.model_copy(update={"audio_feature": "waveform"})
    return experiment.data


def model_spec(experiment: Experiment, spec: TaskSpec) -> TaskSpec:
    """The spec the model is built from: the log-mel's shape when the cache holds waveforms for it."""
    if not caches_waveform(experiment):
        return spec
    from avbench.data.dataset import logmel_settings

    return replace(spec, shapes={**spec.shapes, "audio": tuple(logmel_settings(experiment.data).shape)})


def check_normalise(experiment: Experiment) -> None:
    """InfeasibleConfig for a normalisation that erases everything the model reads: `avbench run`
    stops in one line, a sweep skips the combination untrained."""
    if experiment.augment.normalise == "clip" and experiment.model in BAND_STATISTICS_MODELS:
        raise InfeasibleConfig(
            f"augment.normalise: clip gives {experiment.model} the same band means (0) and deviations (1) "
            "for every clip; use normalise: dataset or none"
        )


def check_augment(experiment: Experiment) -> None:
    """One line for transforms the experiment's inputs cannot take (audio_feature resolved)."""
    cfg, data = experiment.augment, experiment.data
    if not cfg.active():
        return
    feature = data.audio_feature
    audio = "audio" in data.modalities
    if cfg.waveform_on() and not (audio and feature in ("waveform", "logmel")):
        raise ConfigError(f"augment: waveform transforms need audio read as waveform or logmel, not {feature}")
    if cfg.spectrogram_on() and not (audio and feature in IMAGE_FEATURES):
        images = ", ".join(IMAGE_FEATURES)
        raise ConfigError(f"augment: SpecAugment needs a spectrogram input ({images}), not {feature}")
    if cfg.normalise != "none" and not (audio and feature in ("waveform", *IMAGE_FEATURES)):
        raise ConfigError(f"augment.normalise needs audio features it can normalise, not {feature}")
    if cfg.video_on() and "video" not in data.modalities:
        raise ConfigError("augment: video transforms need 'video' in data.modalities")


@dataclass
class Pipeline:
    """What the training loop applies to each batch (`train`) and to each evaluation batch (`eval`)."""

    cfg: AugmentConfig
    sample_rate: int
    image: bool  # audio arrives (or is computed) as a spectrogram image
    generator: torch.Generator
    logmel: Any = None  # avbench.data.features.BatchLogMel when the cache holds waveforms
    stats: dict | None = None
    ran: dict = field(default_factory=dict)

    @property
    def label_smoothing(self) -> float:
        return self.cfg.label_smoothing

    def features(self, batch: dict) -> dict:
        """The model's audio input from the cached one, normalised: every split goes through this."""
        if "audio" not in batch or (self.logmel is None and self.cfg.normalise == "none"):
            return batch
        from avbench.augment import normalise

        audio = batch["audio"]
        if self.logmel is not None:
            audio = self.logmel(audio)
        if self.cfg.normalise == "clip":
            audio = normalise.clip_cmvn(audio)
        elif self.cfg.normalise == "dataset":
            audio = normalise.apply_statistics(audio, self.stats, self.image)
        return {**batch, "audio": audio}

    def eval(self, batch: dict) -> dict:
        return self.features(batch)

    def train(self, batch: dict) -> dict:
        from avbench.augment.batch import mix_batch
        from avbench.augment.spectrogram import augment_spectrogram
        from avbench.augment.video import augment_video
        from avbench.augment.waveform import augment_waveform

        cfg, batch = self.cfg, dict(batch)
        if cfg.waveform_on():
            batch["audio"] = augment_waveform(batch["audio"], cfg, self.sample_rate, self.generator)
        batch = self.features(batch)
        if cfg.spectrogram_on():
            batch["audio"] = augment_spectrogram(batch["audio"], cfg, self.generator)
        if cfg.video_on():
            batch["video"] = augment_video(batch["video"], cfg, self.generator)
        if cfg.mixing_on():
            batch = mix_batch(batch, cfg, self.generator)
        return batch


def build_pipeline(experiment: Experiment) -> Pipeline | None:
    """The experiment's pipeline, or None when `augment:` leaves every batch as it is."""
    import torch

    cfg = experiment.augment
    if not cfg.active():
        return None
    check_augment(experiment)
    logmel = None
    if caches_waveform(experiment):
        from avbench.data.dataset import logmel_settings
        from avbench.data.features import BatchLogMel

        logmel = BatchLogMel(logmel_settings(experiment.data))
    ran = dict(cfg.active())
    if logmel is not None:
        ran["audio_input"] = "waveform cached; log-mel computed in the batch"
    return Pipeline(
        cfg,
        sample_rate=experiment.data.sample_rate,
        image=experiment.data.audio_feature in IMAGE_FEATURES,
        generator=torch.Generator().manual_seed(experiment.train.seed + SEED_OFFSET),
        logmel=logmel,
        ran=ran,
    )


def with_dataset_statistics(pipeline: Pipeline, experiment: Experiment, train_split, results) -> None:
    """Per-bin mean and std of the training split's features (centred windows, no augmentation),
    computed once per training split and feature settings, then read from the cache. Read in
    order, without the training loader, so no random state moves."""
    import hashlib
    import json

    import torch

    from avbench.augment.normalise import cached_statistics, dataset_statistics
    from avbench.data.dataset import ArrayDataset
    from avbench.results.layout import normalisation_stats

    settings = experiment.data.model_dump(exclude={"strict", "cache_workers"})
    digest = json.dumps({"task": experiment.task, "data": settings, "files": sorted(map(str, train_split.paths))})
    path = normalisation_stats(results, hashlib.sha256(digest.encode()).hexdigest()[:24])
    unnormalised = replace(pipeline, cfg=pipeline.cfg.model_copy(update={"normalise": "none"}))
    loader = torch.utils.data.DataLoader(ArrayDataset(replace(train_split, random_window=False)), batch_size=64)

    def features():
        for batch in loader:
            yield unnormalised.features(batch)["audio"]

    pipeline.stats = cached_statistics(path, lambda: dataset_statistics(features(), pipeline.image))
    pipeline.ran["normalise_statistics"] = str(path)
