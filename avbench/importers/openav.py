"""An OpenAV train config (`openav_train_audiovisual --config train_audiovisual.yaml`) as an
avbench experiment: task `commands` (OpenAV's train/val/test/<class> folders), model
`av-fusion` (OpenAV's AVModel), every key mapped or listed as having no equivalent.

OpenAV's audio front end is fixed (16 kHz, n_fft 2048, hop 64, 19495-sample chunks), so
`shape_audio.samples` (frames per segment) sets the segment length at that hop; its lip crops
came from MediaPipe FaceMesh landmarks, here the fixed `data.crop_box` (centre: the files are
lip crops already; give the mouth region of full-face videos).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avbench.config import read_mapping, validate
from avbench.dotted import set_dotted
from avbench.errors import ConfigError

SAMPLE_RATE = 16000
HOP_SAMPLES = 64  # OpenAV's log-mel hop; with n_fft 2048
WIN_MS = 128.0  # n_fft 2048 at 16 kHz

# OpenAV key → the avbench field that holds the same value.
RENAMED = {
    "path_to_dataset": "data.root",
    "subfolders": "data.subfolders",
    "classes": "data.classes",
    "max_segment": "data.max_segment",
    "batch_size": "train.batch_size",
    "epochs": "train.epochs",
    "seed": "train.seed",
    "leaning_rate": "train.lr",  # sic: OpenAV's key
    "learning_rate": "train.lr",
    "weight_decay": "train.weight_decay",
    "patience": "train.patience",
    "optimizer": "train.optimizer",
    "hidden_units": "model_args.hidden_units",
    "hidden_features": "model_args.hidden_features",
    "input_dim": "model_args.input_dim",
    "encoder_decoder": "model_args.encoder_decoder",
    "requires_grad": "model_args.requires_grad",
    "path_to_model_fa": "model_args.path_to_model_fa",
    "path_to_model_fv": "model_args.path_to_model_fv",
}
NO_EQUIVALENT = {
    "hide_metadata": "OpenAV's console display",
    "hide_libs_vers": "OpenAV's console display; every avbench run record holds the library versions",
}
LOWERCASED = ("optimizer", "requires_grad")  # OpenAV lower-cases them before use


@dataclass
class Imported:
    """The experiment and what became of each OpenAV key."""

    experiment: dict[str, Any]
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (OpenAV key, avbench field)
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # (OpenAV key, why)
    results: str | None = None  # path_to_save_models: `avbench --results`
    missing_files: list[tuple[str, str]] = field(default_factory=list)  # (field, path) absent here


def convert(config: dict[str, Any]) -> Imported:
    """OpenAV's config mapping → an avbench experiment mapping (not yet written)."""
    experiment: dict[str, Any] = {
        "task": "commands",
        "model": "av-fusion",
        "data": {"modalities": ["audio", "video"], "sample_rate": SAMPLE_RATE, "crop_box": "centre"},
        "model_args": {},
        "train": {"metric": "acc"},
    }
    imported = Imported(experiment)
    for key, value in config.items():
        if key in RENAMED:
            value = value.lower() if key in LOWERCASED and isinstance(value, str) else value
            set_dotted(experiment, RENAMED[key], value)
            imported.mapped.append((key, RENAMED[key]))
        elif key in NO_EQUIVALENT:
            imported.unmapped.append((key, NO_EQUIVALENT[key]))
        elif key == "path_to_save_models":
            imported.results = str(value)
            imported.mapped.append((key, "avbench --results"))
        elif key in SPECIAL:
            imported.mapped.append((key, SPECIAL[key](experiment["data"], value)))
        else:
            imported.unmapped.append((key, "not a key of OpenAV's train config"))
    if not imported.mapped:
        raise ConfigError("not an OpenAV train config: it has none of its keys (leaning_rate, classes, ...)")
    _check_class_count(config)
    _set_clip_length(experiment["data"])
    return imported


def _audio_shape(data: dict[str, Any], shape: Any) -> str:
    """{channels, n_mels, samples}: one channel of n_mels bands, `samples` frames per segment."""
    shape = _shape_mapping("shape_audio", shape, ("channels", "n_mels", "samples"))
    if shape["channels"] != 1:
        raise ConfigError(f"shape_audio.channels: avbench's log-mel has 1 channel (got {shape['channels']})")
    if shape["samples"] < 2:
        raise ConfigError(f"shape_audio.samples must be 2 or more frames (got {shape['samples']})")
    data.update(
        n_mels=shape["n_mels"],
        win_ms=WIN_MS,
        hop_ms=1000 * HOP_SAMPLES / SAMPLE_RATE,
        # frames = window // hop + 1, so this window gives `samples` frames (306: 1.22 s)
        segment_seconds=(shape["samples"] - 1) * HOP_SAMPLES / SAMPLE_RATE,
    )
    return "data.n_mels, data.segment_seconds (hop 64 at 16 kHz)"


def _video_shape(data: dict[str, Any], shape: Any) -> str:
    """{frames, channels, width, height}: RGB square crops of width pixels, frames per segment."""
    shape = _shape_mapping("shape_video", shape, ("frames", "channels", "width", "height"))
    if shape["channels"] != 3:
        raise ConfigError(f"shape_video.channels: the lip frames are RGB, 3 channels (got {shape['channels']})")
    if shape["width"] != shape["height"]:
        raise ConfigError(f"shape_video: avbench's crops are square (width {shape['width']}, height {shape['height']})")
    data.update(num_frames=shape["frames"], image_size=shape["width"])
    return "data.num_frames, data.image_size"


def _shape_mapping(key: str, shape: Any, names: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(shape, dict) or any(not isinstance(shape.get(name), int) for name in names):
        raise ConfigError(f"{key} must map {', '.join(names)} to whole numbers (got {shape!r})")
    extra = sorted(set(shape) - set(names))
    if extra:
        raise ConfigError(f"{key}: unknown key '{extra[0]}' (OpenAV's are {', '.join(names)})")
    return shape


def _class_count(data: dict[str, Any], count: Any) -> str:
    return "checked against classes (data.classes)"


SPECIAL = {"shape_audio": _audio_shape, "shape_video": _video_shape, "n_classes": _class_count}


def _check_class_count(config: dict[str, Any]) -> None:
    count, classes = config.get("n_classes"), config.get("classes")
    if count is not None and isinstance(classes, list) and count != len(classes):
        raise ConfigError(f"n_classes is {count} but classes lists {len(classes)}")
    if count is not None and classes is None:
        raise ConfigError("n_classes without classes: list the classes (their order is the label order)")


def _set_clip_length(data: dict[str, Any]) -> None:
    """OpenAV reads the first max_segment consecutive chunks: a clip as long as all of them."""
    if isinstance(data.get("max_segment"), int) and "segment_seconds" in data:
        data["clip_seconds"] = round(max(data["max_segment"], 1) * data["segment_seconds"], 6)


def experiment_name(source: Path) -> str:
    """train_audiovisual.yaml → openav-train-audiovisual."""
    return "openav-" + re.sub(r"[^0-9A-Za-z]+", "-", source.stem).strip("-").lower()


def header(source: Path, imported: Imported) -> str:
    lines = [
        f"# Imported from OpenAV's {source.name} by `avbench import openav`.",
        "# OpenAV cropped the lips with MediaPipe FaceMesh; here data.crop_box does: centre for",
        "# videos that are lip crops already, else the mouth region [x0, y0, x1, y1] (fractions).",
    ]
    if imported.results:
        lines.append(f"# path_to_save_models: avbench --results {imported.results} run <this file>")
    for key, why in imported.unmapped:
        lines.append(f"# not used: {key}: {why}")
    return "\n".join(lines) + "\n"


def import_openav(source: Path, out: Path | None = None, *, force: bool = False) -> tuple[Path, Imported]:
    """Read an OpenAV train config, write the avbench experiment, return where and what was mapped."""
    imported = convert(read_mapping(source))
    out = out or Path("experiments") / f"{experiment_name(source)}.yaml"
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; pass --force to replace it or --out to write elsewhere")
    _check_experiment(imported.experiment, str(source))
    for name in ("path_to_model_fa", "path_to_model_fv"):
        path = imported.experiment["model_args"].get(name)
        if path and not Path(path).expanduser().is_file():
            imported.missing_files.append((f"model_args.{name}", path))
    root = imported.experiment["data"].get("root")
    if root and not Path(root).expanduser().is_dir():
        imported.missing_files.append(("data.root", root))
    out.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(imported.experiment, allow_unicode=True, sort_keys=False)
    out.write_text(header(source, imported) + body, encoding="utf-8")
    return out, imported


def _check_experiment(experiment: dict[str, Any], source: str) -> None:
    """The experiment must pass avbench's own checks; a value OpenAV allowed and avbench does
    not is named with the OpenAV key it came from."""
    from avbench.preflight import check_model_args

    origin = {field: key for key, field in RENAMED.items()}
    try:
        check_model_args(validate(experiment, source))
    except ConfigError as exc:
        message = str(exc)
        for field, key in origin.items():
            if f"'{field}'" in message:
                raise ConfigError(f"{source}: {key}: {message.split(': ', 1)[-1]}") from None
        raise
