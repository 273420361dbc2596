"""Export a feature file as CSV or ARFF: one row per clip, its file name, fold and class with
its features, for tools outside avbench (pandas, Weka, liac-arff, R).

Columns, in order: filename, fold (1..F, 0 when the task has none), partition (only for
tasks without folds: train / val / test), feature_0 … feature_{D-1} (the file's features
flattened in C order), label (the class name; last, as Weka expects the class). Floats are
written with 9 significant digits, enough to give back every float32 exactly.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from avbench.audeep.store import FeatureFile

FORMATS = ("csv", "arff")


def _columns(data: FeatureFile) -> tuple[list[str], np.ndarray, bool]:
    flat = data.features.reshape(len(data), -1)
    with_partition = data.fold_count == 0
    names = ["filename", "fold"] + (["partition"] if with_partition else [])
    names += [f"feature_{i}" for i in range(flat.shape[1])] + ["label"]
    return names, flat, with_partition


def _number(value: float) -> str:
    return format(float(value), ".9g")


def export_csv(data: FeatureFile, path: Path) -> Path:
    names, flat, with_partition = _columns(data)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        for i, filename in enumerate(data.filenames):
            head = [filename, int(data.folds[i])] + ([data.splits[i]] if with_partition else [])
            writer.writerow(head + [_number(v) for v in flat[i]] + [data.class_names[data.labels[i]]])
    return Path(path)


def _quote(text: str) -> str:
    """An ARFF string or nominal value: single-quoted, with backslash escapes."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    escaped = escaped.replace("\t", "\\t")
    return f"'{escaped}'"


def export_arff(data: FeatureFile, path: Path) -> Path:
    names, flat, with_partition = _columns(data)
    classes = ",".join(_quote(name) for name in data.class_names)
    lines = [
        f"% avbench {data.kind} features of task {data.task}: {len(data)} clips, {flat.shape[1]} features",
        f"@RELATION {_quote(f'avbench-{data.kind}-{data.task}')}",
        "",
        "@ATTRIBUTE filename STRING",
        "@ATTRIBUTE fold INTEGER",
    ]
    if with_partition:
        lines.append("@ATTRIBUTE partition {train,val,test}")
    lines += [f"@ATTRIBUTE {name} NUMERIC" for name in names if name.startswith("feature_")]
    lines += [f"@ATTRIBUTE label {{{classes}}}", "", "@DATA"]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        for i, filename in enumerate(data.filenames):
            head = [_quote(filename), str(int(data.folds[i]))] + ([data.splits[i]] if with_partition else [])
            row = head + [_number(v) for v in flat[i]] + [_quote(data.class_names[data.labels[i]])]
            handle.write(",".join(row) + "\n")
    return Path(path)


def export_features(data: FeatureFile, path: Path, fmt: str) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {"csv": export_csv, "arff": export_arff}[fmt](data, path)


# auDeep's partition folders: it calls the validation split "devel".
PARTITION_FOLDERS = {"train": "train", "val": "devel", "test": "test"}


def subset(data: FeatureFile, keep: np.ndarray) -> FeatureFile:
    """The clips where `keep` is True, with the file's metadata."""
    rows = np.flatnonzero(keep)
    return replace(
        data,
        features=data.features[rows],
        filenames=[data.filenames[i] for i in rows],
        labels=data.labels[rows],
        folds=data.folds[rows],
        splits=[data.splits[i] for i in rows],
    )


def export_tree(data: FeatureFile, folder: Path, name: str, fmt: str) -> list[Path]:
    """auDeep's `export --output DIR` layout: FOLDER/fold_<k>/NAME.<fmt> with the clips of
    fold k (the ones it validates on) when the task has folds, else
    FOLDER/{train,devel,test}/NAME.<fmt>. Returns the files written."""
    folder = Path(folder)
    if data.fold_count:
        parts = {f"fold_{k}": data.folds == k for k in range(1, data.fold_count + 1)}
    else:
        splits = np.array(data.splits)
        parts = {PARTITION_FOLDERS[s]: splits == s for s in PARTITION_FOLDERS if (splits == s).any()}
    return [
        export_features(subset(data, keep), folder / part / f"{name}.{fmt}", fmt)
        for part, keep in parts.items()
        if keep.any()
    ]
