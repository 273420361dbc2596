"""Experiment schema, loading (YAML/JSON), presets, `--set` overrides and `null` = searched
(the dotted-key helpers they use are in avbench.dotted).

A key that is absent takes the schema default; a key present with the value `null` is a
hyperparameter the sweep searches. `find_nulls` reads the raw mapping, so a default of None
is never mistaken for "search me".
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from avbench.config_augment import AugmentConfig
from avbench.dotted import deep_merge, find_nulls, parse_override, set_dotted
from avbench.errors import ConfigError, did_you_mean
from avbench.spec import METRICS, STANDIN_SIZES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    root: str | None = None  # dataset directory; absent → the synthetic stand-in with --synthetic
    modalities: list[Literal["audio", "video"]] = ["audio"]
    sample_rate: int = Field(16000, gt=0)
    clip_seconds: float = Field(2.0, gt=0)  # every clip is centre-cropped / padded to this
    # How audio reaches the model: log-mel images, raw samples, or auDeep's clipped dB mel
    # spectrograms (one channel per clip_below threshold); auto = what the model reads.
    # linear_spectrogram: emotions-classify's square power spectrogram (n_fft 2·size−2, so
    # `spectrogram_size` bins; frames cut or zero-padded to the same number). hf (a Hugging Face
    # checkpoint's own input) and embedding (a frozen encoder's output) are set by the models
    # that read them, from their model_args.
    audio_feature: Literal["auto", "logmel", "waveform", "spectrogram", "linear_spectrogram", "hf", "embedding"] = (
        "auto"
    )
    spectrogram_size: int = Field(401, ge=2)
    n_mels: int = Field(64, gt=0)
    win_ms: float = Field(25.0, gt=0)
    hop_ms: float = Field(10.0, gt=0)
    # auDeep spectrograms only: dB thresholds (the loudest bin is 0 dB); each gives one channel,
    # clipped below it and scaled to [-1, 1].
    clip_below: list[float] = Field([-60.0], min_length=1)
    split_seed: int = 0
    # A control for honest benchmarks: permute the training labels; a model that still
    # beats chance on test has found a leak.
    shuffle_train_labels: bool = False
    synth_size: Literal[STANDIN_SIZES] = "small"
    # --synthetic: the stand-in whose test split is shifted from train/val (other pitch range,
    # channel and noise colour; `avbench data synth TASK --domain-shift`), to measure robustness.
    synthetic_shift: bool = False
    # Tasks with predefined folds (ESC-50): fold k is test, fold k mod n + 1 is validation.
    fold: int = Field(1, ge=1)
    # Tasks split by speaker (CREMA-D, RAVDESS, …): deal the speakers into this many folds
    # and hold out `fold` as ESC does; 0 = the 70/10/20 speaker split.
    folds: int = Field(0, ge=0)
    # A regex with one group that pulls the speaker out of a file name (audiofolder, commands):
    # the split then keeps every speaker in one split.
    speaker_regex: str | None = None
    # CREMA-D: label by the intended emotion in the file name, or by the raters' vote.
    label_source: Literal["filename", "voice", "face", "multimodal"] = "filename"
    # CREMA-D: the split and labels from CSV files (columns file_path, emotion), as the Perceiver
    # seed kept them: a folder with train.csv / val.csv / test.csv, one CSV with a split column,
    # or {train: FILE, val: FILE, test: FILE}.
    split_csv: str | dict[Literal["train", "val", "test"], str] | None = None
    # CREMA-D: a folder of the WAVs when they are not in ROOT/AudioWAV (the seed's AudioWAV-CREMA).
    audio_root: str | None = None
    # Where the model's clip_seconds window lies in each clip: centred, or (train split only)
    # random, cut at load time from a centred clip of crop_from_seconds (default 2 × clip_seconds)
    # that is what the cache keeps; val and test stay centred.
    train_crop: Literal["centre", "center", "random"] = "centre"
    crop_from_seconds: float | None = Field(None, gt=0)
    # Video (when "video" is in modalities): frames picked by timestamp over the clip (or over
    # each segment), cropped to a square (centre) or to crop_box [x0, y0, x1, y1] (fractions of
    # width/height, e.g. a mouth region), resized, then (x/255 - mean) / std per RGB channel.
    num_frames: int = Field(16, gt=0)
    image_size: int = Field(112, gt=0)
    crop_box: list[float] | Literal["centre", "center"] = "centre"
    video_mean: list[float] = Field([0.485, 0.456, 0.406], min_length=3, max_length=3)
    video_std: list[float] = Field([0.229, 0.224, 0.225], min_length=3, max_length=3)
    # OpenAV segments: cut each clip into max_segment overlapping windows of segment_seconds
    # (first at the start, last at the end); batches gain a segment axis. 0 = off.
    max_segment: int = Field(0, ge=0)
    segment_seconds: float = Field(1.0, gt=0)
    # Folder tasks (commands): split folders with other names, e.g. {val: dev} (OpenAV's
    # `subfolders`); a split not named keeps its own name.
    subfolders: dict[Literal["train", "val", "test"], str] = {}
    # Folder tasks (commands): the classes in label order (OpenAV's `classes`), matched to the
    # class folders ignoring case; folders of other classes are skipped. Empty: every class
    # folder, in natural order.
    classes: list[str] = []
    # Bad files (corrupt, empty, no audio track, unknown class) are skipped and listed in the
    # run record; strict stops at the first one instead, naming it.
    strict: bool = False
    # auDeep models only: train on the spectrograms of this netCDF file (from `avbench features
    # spectrogram`, auDeep's `t-rae train --input FILE.nc`) instead of decoding the dataset; the
    # file's settings (rate, length, window, mel bands, clip_below) replace this section's.
    spectrograms: str | None = None
    # Processes that fill the feature cache; "auto" = one per CPU core this process may use.
    cache_workers: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"

    @field_validator("crop_box")
    @classmethod
    def _check_crop_box(cls, box):
        if isinstance(box, list):
            if len(box) != 4:
                raise ValueError("crop_box is [x0, y0, x1, y1]: four fractions of the frame's width and height")
            x0, y0, x1, y1 = box
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise ValueError("crop_box needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        return box

    @field_validator("subfolders")
    @classmethod
    def _check_subfolders(cls, names):
        for split, folder in names.items():
            if not folder or folder in (".", "..") or "/" in folder or "\\" in folder:
                raise ValueError(f"subfolders.{split} must be a folder name directly under data.root")
        if len(set({"train": "train", "val": "val", "test": "test", **names}.values())) < 3:
            raise ValueError("subfolders must give the three splits three different folders")
        return names

    @field_validator("classes")
    @classmethod
    def _check_classes(cls, names):
        folded = [name.casefold() for name in names]
        if len(set(folded)) < len(folded) or not all(name.strip() for name in names):
            raise ValueError("classes must be distinct non-empty names (compared ignoring case)")
        return names

    @field_validator("clip_below")
    @classmethod
    def _check_clip_below(cls, thresholds):
        if max(thresholds) >= 0 or len(set(thresholds)) < len(thresholds):
            raise ValueError("clip_below thresholds are distinct dB values below 0 (the loudest bin is 0 dB)")
        return thresholds

    @field_validator("video_std")
    @classmethod
    def _check_std(cls, std):
        if min(std) <= 0:
            raise ValueError("video_std must be positive")
        return std


class TrainConfig(_Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "adamw", "sgd", "lion"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    # none = constant lr (the seeds' setting); cosine = one epoch of linear warm-up, then
    # cosine decay to zero over the remaining optimizer steps.
    scheduler: Literal["none", "cosine"] = "none"
    momentum: float = Field(0.9, ge=0)  # sgd only
    grad_accum: int = Field(1, ge=1)
    max_grad_norm: float = Field(0.0, ge=0)  # 0 = no clipping
    patience: int = Field(3, ge=0)  # 0 = no early stopping
    # Selects the best epoch and run: acc, uar or macro_f1; with several heads `<head>/<metric>`
    # (a bare name means the first head's).
    metric: str = "acc"
    # Several heads: each head's cross-entropy weight in the summed loss (absent heads: 1).
    head_weights: dict[str, Annotated[float, Field(ge=0)]] = {}
    # Warm start: a checkpoint (a run's best.pt / last.pt, or a plain state dict) whose weights
    # the model starts from; nothing else of it is restored. Keys starting with an entry of
    # init_skip_keys are left as initialised (e.g. a classifier for other classes); every
    # other key must match in name and shape.
    init_from: str | None = None
    init_skip_keys: list[str] = []
    # auto: bf16 autocast on a GPU that has it, fp16 with a gradient scaler on one that does
    # not, fp32 ("no") on CPU (avbench.train.fast); the record says which one ran.
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    seed: int = 42
    # Loader worker processes; auto: a share of the cores on a GPU, 0 on CPU (avbench.train.fast).
    num_workers: int | Literal["auto"] = 0
    compile: bool = False  # torch.compile the model (inductor): slower first epoch, faster after
    checkpoint_every: int = Field(1, ge=1)  # epochs between last.pt writes (resume points)

    @field_validator("num_workers")
    @classmethod
    def _check_num_workers(cls, workers):
        if workers != "auto" and workers < 0:
            raise ValueError("num_workers is a count of at least 0, or auto")
        return workers

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, metric):
        head, _, base = metric.rpartition("/")
        if base not in METRICS or (metric.count("/") and not head):
            raise ValueError(f"metric is one of {', '.join(METRICS)}, or <head>/<one of them>")
        return metric


class EvaluationConfig(_Strict):
    """How a model that learns representations without labels (audeep) is scored: auDeep's MLP,
    trained on the representations and cross-validated over the task's folds. Classifiers
    ignore this section, so an experiment of theirs may not set it."""

    num_layers: int = Field(2, ge=0)  # hidden layers
    num_units: int = Field(150, ge=1)
    keep_prob: float = Field(0.6, gt=0, le=1)  # dropout = 1 - keep_prob, as auDeep writes it
    epochs: int = Field(400, ge=1)  # full-batch Adam steps
    lr: float = Field(1e-3, gt=0)
    repeats: int = Field(1, ge=1)  # the whole cross-validation again with other MLP seeds


class SweepConfig(_Strict):
    trials: int = Field(10, ge=1)  # finished trials in total, across restarts
    pruner: Literal["median", "hyperband", "none"] = "median"
    # What a trial scores: its validation metric, or (cv) the mean of it over the task's folds
    # (data.folds speaker folds, or ESC's), each trial one cross-validation that Optuna's
    # WilcoxonPruner stops once it loses to the best trial fold by fold.
    objective: Literal["val", "cv"] = "val"
    seed: int = 0  # seeds the sampler
    # What the sweep optimises, each "METRIC:max|min" (avbench.sweep.objectives); empty: val/<train.metric>.
    objectives: list[str] = []


class TrackingConfig(_Strict):
    wandb: bool = True
    project: str = "avbench"
    entity: str | None = None
    # Upload the run's best checkpoint (best.pt) to W&B as a model artifact.
    log_model: bool = False


class Experiment(_Strict):
    name: str = ""
    task: str
    model: str
    data: DataConfig = DataConfig()
    model_args: dict[str, Any] = {}
    train: TrainConfig = TrainConfig()
    augment: AugmentConfig = AugmentConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    sweep: SweepConfig = SweepConfig()
    tracking: TrackingConfig = TrackingConfig()
    presets: dict[str, dict[str, Any]] = {}


# Fields that change how a run checks and caches its data, never its numbers: a study may be
# resumed with other values (e.g. `--strict`).
RESULT_NEUTRAL_FIELDS = frozenset({"data.strict", "data.cache_workers", "train.checkpoint_every"})

SECTIONS = {
    "data": DataConfig,
    "train": TrainConfig,
    "augment": AugmentConfig,
    "evaluation": EvaluationConfig,
    "sweep": SweepConfig,
    "tracking": TrackingConfig,
}


# ---------------------------------------------------------------------------- raw files


def read_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON file into a dict, with one-line errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" line {mark.line + 1}, column {mark.column + 1}:"
        elif isinstance(exc, json.JSONDecodeError):
            where = f" line {exc.lineno}, column {exc.colno}:"
        reason = getattr(exc, "problem", None) or getattr(exc, "msg", None) or str(exc)
        raise ConfigError(f"malformed {path}:{where} {reason}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a mapping at the top level")
    return data


# ---------------------------------------------------------------------------- validation


def _check_keys(raw: dict[str, Any]) -> None:
    """Unknown keys fail with the key's full path and a did-you-mean."""
    for key, value in raw.items():
        if key not in Experiment.model_fields:
            raise ConfigError(f"unknown config key '{key}'{did_you_mean(key, Experiment.model_fields)}")
        section = SECTIONS.get(key)
        if section is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"'{key}' must be a mapping, got {type(value).__name__}")
            for sub in value:
                if sub not in section.model_fields:
                    hint = did_you_mean(sub, section.model_fields)
                    raise ConfigError(f"unknown config key '{key}.{sub}'{hint}")


def _without_nulls(mapping: dict[str, Any]) -> dict[str, Any]:
    """Drop searched (null) leaves so the rest can be type-checked before values exist."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if value is None:
            continue
        out[key] = _without_nulls(value) if isinstance(value, dict) and key != "presets" else value
    return out


def validate(raw: dict[str, Any], source: str = "config") -> Experiment:
    """Schema-check a raw mapping; null leaves are checked later, once values are chosen."""
    _check_keys(raw)
    try:
        return Experiment.model_validate(_without_nulls(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        raise ConfigError(f"{source}: '{where}': {err['msg']} (got {got!r})") from None


class LoadedExperiment:
    """An experiment as the user wrote it, plus which fields are still to be searched."""

    def __init__(self, name: str, raw: dict[str, Any], source: str, declared: list[str] | None = None):
        self.name = name
        self.raw = raw
        self.source = source  # where the mapping came from, as messages name it
        # The nulls of the file (or derived mapping) itself, before any preset or --set.
        self.declared = find_nulls(raw) if declared is None else declared
        self.config = validate(raw, source)
        self.config.name = name
        self.searched = find_nulls(raw)

    def resolve(self, values: dict[str, Any]) -> Experiment:
        """The concrete config for one trial: every searched null replaced by a value."""
        raw = copy.deepcopy(self.raw)
        for key, value in values.items():
            set_dotted(raw, key, value)
        missing = [k for k in find_nulls(raw)]
        if missing:
            raise ConfigError(f"{self.name}: no value for searched field(s): {', '.join(missing)}")
        experiment = validate(raw, self.source)
        experiment.name = self.name
        return experiment


def loaded_experiment(
    name: str,
    raw: dict[str, Any],
    source: str,
    *,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> LoadedExperiment:
    """An experiment's raw mapping with a preset and `--set` overrides applied; where the
    mapping comes from (a file, a derived pair) is avbench.catalog's business."""
    declared = find_nulls(raw)
    if preset is not None:
        presets = raw.get("presets") or {}
        if preset not in presets:
            raise ConfigError(f"{name} has no preset '{preset}'{did_you_mean(preset, presets)}")
        raw = deep_merge(raw, presets[preset])
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(raw, key, value)
    return LoadedExperiment(name, raw, source, declared)
