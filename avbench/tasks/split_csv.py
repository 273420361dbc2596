"""Splits and labels read from CSV files, as the CREMA-D Perceiver seed kept them.

The seed had CSV/train.csv, CSV/val.csv and CSV/test.csv with the columns `file_path` (a
clip's file name, e.g. `1001_DFA_ANG_XX.flv`) and `emotion`. Accepted here: that folder, one
CSV with a `split` column, or a mapping split → CSV file. A row names a clip by its file
stem, so the same CSV serves the audio and the video of a clip, wherever they lie.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from avbench.errors import DatasetError
from avbench.spec import SPLITS

PATH_COLUMNS = ("file_path", "path", "file", "filename", "FileName")
LABEL_COLUMNS = ("emotion", "label", "class")
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}


@dataclass(frozen=True)
class SplitRow:
    """One clip a split CSV lists: its file stem, its label as written, its split, where it was listed."""

    stem: str
    label: str
    split: str
    source: str


def read_split_csv(spec: str | dict[str, str]) -> list[SplitRow]:
    """Every row of the split CSV(s) that `spec` names (a folder, a file, or split → file)."""
    if isinstance(spec, dict):
        missing = [split for split in SPLITS if split not in spec]
        if missing:
            raise DatasetError(f"data.split_csv names no file for split '{missing[0]}' (needs train, val, test)")
        return [row for split in SPLITS for row in _read(Path(spec[split]), split)]
    path = Path(spec)
    if path.is_dir():
        files = {split: path / f"{split}.csv" for split in SPLITS}
        absent = [str(file) for file in files.values() if not file.is_file()]
        if absent:
            raise DatasetError(f"data.split_csv: no {absent[0]} (a folder needs train.csv, val.csv and test.csv)")
        return [row for split, file in files.items() for row in _read(file, split)]
    return _read(path, None)


def _read(path: Path, split: str | None) -> list[SplitRow]:
    """The rows of one CSV; `split` None means the file has a split column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            path_column = _column(columns, PATH_COLUMNS, path, "file")
            label_column = _column(columns, LABEL_COLUMNS, path, "label")
            split_column = None if split is not None else _column(columns, ("split", "partition"), path, "split")
            rows = [
                _row(record, path_column, label_column, split_column, split, path, line)
                for line, record in enumerate(reader, start=2)
            ]
    except FileNotFoundError:
        raise DatasetError(f"data.split_csv: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"data.split_csv: cannot read {path}: {exc}") from None
    if not rows:
        raise DatasetError(f"data.split_csv: {path} lists no clips")
    return rows


def _column(columns: list[str], names: tuple[str, ...], path: Path, what: str) -> str:
    for name in names:
        if name in columns:
            return name
    raise DatasetError(f"data.split_csv: {path} has no {what} column (one of: {', '.join(names)})")


def _row(
    record: dict,
    path_column: str,
    label_column: str,
    split_column: str | None,
    split: str | None,
    path: Path,
    line: int,
) -> SplitRow:
    name = (record.get(path_column) or "").strip()
    if not name:
        raise DatasetError(f"data.split_csv: {path} line {line} has an empty {path_column}")
    if split_column is not None:
        written = (record.get(split_column) or "").strip()
        split = SPLIT_NAMES.get(written.lower())
        if split is None:
            raise DatasetError(
                f"data.split_csv: {path} line {line}: unknown split '{written}' (use train, val or test)"
            )
    return SplitRow(Path(name).stem, (record.get(label_column) or "").strip(), split, f"{path.name}:{line}")
