"""The feature file: netCDF-4 (an HDF5 file), laid out as auDeep lays out its data sets, so
xarray, netCDF4, h5py or auDeep's own reader open it.

    dimensions   instance (one per clip), fold (the task's folds; 1 without), and the
                 feature axes named in the attribute feature_dims
    variables    filename(instance)          str    the clip's path, relative to the dataset root
                 chunk_nr(instance)          int32  always 0: avbench keeps whole clips
                 label_nominal(instance)     str    class name
                 label_numeric(instance)     int64  class index (the order of label_map)
                 cv_folds(instance, fold)    int8   auDeep's: 1 where fold k validates on the clip
                                                    (it lies in fold k), 0 where it trains on it
                 instance_fold(instance)     int32  the clip's predefined fold, 1..folds (0: none)
                 partition(instance)         int8   auDeep's 0 train / 1 devel / 2 test, for tasks
                                                    without folds; -1 for tasks with folds
                 features(instance, ...)     float32
                 clip_below(clip_below)      float64 the dB thresholds (spectrogram files)
    attributes   feature_dims (JSON list), label_map (JSON {name: index}), avbench_kind
                 ("spectrogram" or "representation"), avbench_task, avbench_settings (JSON: the
                 spectrogram settings, and for representations the autoencoder run they came from)

Spectrogram files hold features(instance, clip_below, time, freq); representation files
features(instance, generated), the thresholds' representations concatenated in the order of
the spectrogram file's clip_below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avbench.errors import DatasetError

FORMAT = "avbench-features-1"
PARTITIONS = {"train": 0, "val": 1, "test": 2}  # auDeep calls val "devel"


@dataclass
class FeatureFile:
    """A feature file in memory: one row of `features` per clip, with its metadata."""

    kind: str  # "spectrogram" | "representation"
    task: str
    features: np.ndarray  # [instances, *feature_dims]
    feature_dims: tuple[str, ...]
    filenames: list[str]
    labels: np.ndarray  # int64 class indices
    class_names: tuple[str, ...]
    folds: np.ndarray  # int32, 1..fold_count, or 0 for every clip when the task has none
    splits: list[str]  # "train" | "val" | "test": the task's own split (used when there are no folds)
    coordinates: dict[str, list[float]] = field(default_factory=dict)  # e.g. {"clip_below": [-60.0]}
    settings: dict = field(default_factory=dict)

    @property
    def fold_count(self) -> int:
        return int(self.folds.max()) if len(self.folds) else 0

    def __len__(self) -> int:
        return len(self.filenames)


def write_feature_file(path: Path, data: FeatureFile) -> Path:
    """Write atomically (a temporary name, then a rename): a reader never sees half a file."""
    import netCDF4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = len(data)
    folds = max(data.fold_count, 1)
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as out:
        out.createDimension("instance", count)
        out.createDimension("fold", folds)
        for name, size in zip(data.feature_dims, data.features.shape[1:], strict=True):
            out.createDimension(name, size)
        _strings(out, "filename", data.filenames)
        out.createVariable("chunk_nr", "i4", ("instance",))[:] = np.zeros(count, np.int32)
        _strings(out, "label_nominal", [data.class_names[i] for i in data.labels])
        out.createVariable("label_numeric", "i8", ("instance",))[:] = data.labels.astype(np.int64)
        cv = np.zeros((count, folds), np.int8)
        if data.fold_count:
            cv[np.arange(count), data.folds - 1] = 1
        out.createVariable("cv_folds", "i1", ("instance", "fold"))[:] = cv
        out.createVariable("instance_fold", "i4", ("instance",))[:] = data.folds.astype(np.int32)
        partition = [-1 if data.fold_count else PARTITIONS[s] for s in data.splits]
        out.createVariable("partition", "i1", ("instance",))[:] = np.array(partition, np.int8)
        for name, values in data.coordinates.items():
            out.createVariable(name, "f8", (name,))[:] = np.asarray(values, np.float64)
        out.createVariable("features", "f4", ("instance", *data.feature_dims))[:] = data.features.astype(np.float32)
        out.setncatts(
            {
                "feature_dims": json.dumps(list(data.feature_dims)),
                "label_map": json.dumps({name: i for i, name in enumerate(data.class_names)}),
                "avbench_format": FORMAT,
                "avbench_kind": data.kind,
                "avbench_task": data.task,
                "avbench_settings": json.dumps(data.settings),
            }
        )
    tmp.replace(path)
    return path


def _strings(out, name: str, values: list[str]) -> None:
    variable = out.createVariable(name, str, ("instance",))
    for i, value in enumerate(values):
        variable[i] = value


def read_feature_file(path: Path) -> FeatureFile:
    """Read a file written by write_feature_file; anything else is one clear DatasetError."""
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"feature file not found: {path}")
    try:
        with netCDF4.Dataset(path) as source:
            attrs = {name: source.getncattr(name) for name in source.ncattrs()}
            if attrs.get("avbench_format") != FORMAT:
                raise DatasetError(f"{path} is not an avbench feature file (no avbench_format = {FORMAT})")
            dims = tuple(json.loads(attrs["feature_dims"]))
            label_map = json.loads(attrs["label_map"])
            class_names = tuple(sorted(label_map, key=label_map.get))
            partitions = {code: name for name, code in PARTITIONS.items()}
            return FeatureFile(
                kind=attrs["avbench_kind"],
                task=attrs.get("avbench_task", ""),
                features=np.asarray(source["features"][:], dtype=np.float32),
                feature_dims=dims,
                filenames=[str(name) for name in source["filename"][:]],
                labels=np.asarray(source["label_numeric"][:], dtype=np.int64),
                class_names=class_names,
                folds=np.asarray(source["instance_fold"][:], dtype=np.int32),
                splits=[partitions.get(int(code), "") for code in source["partition"][:]],
                coordinates={d: [float(v) for v in source[d][:]] for d in dims if d in source.variables},
                settings=json.loads(attrs.get("avbench_settings", "{}")),
            )
    except OSError as exc:
        raise DatasetError(f"cannot read {path} as netCDF-4: {exc.strerror or exc}") from None
    except (KeyError, IndexError, ValueError) as exc:
        raise DatasetError(f"{path}: malformed avbench feature file ({exc})") from None
