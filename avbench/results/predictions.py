"""predictions.npz: every test clip's label, prediction and class probabilities, per run.

Written once a run has evaluated test (next to its record; the path is RunFiles.predictions),
read by `avbench compare` to pair two models on the same clips. Keys: `file_ids` (the clips'
paths relative to the data root, so two runs on one dataset name the same clip alike), then
`labels`, `predictions`, `probabilities` — under `<head>.` for each head of a multi-head task.
numpy only (no pickle: strings are fixed-width unicode arrays); written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avbench.errors import AvbenchError
from avbench.results.records import write_bytes_atomic

FIELDS = ("labels", "predictions", "probabilities")


def _key(head: str | None, name: str) -> str:
    return name if head is None else f"{head}.{name}"


def write_predictions(path: Path, file_ids: list[str], outputs: dict[str | None, dict]) -> None:
    """`outputs`: head (None for one) → {labels, predictions, probabilities} in file_ids' order."""
    arrays = {"file_ids": np.array(file_ids, dtype=str)}
    for head, values in outputs.items():
        if len(values["labels"]) != len(file_ids):
            raise ValueError(f"{len(values['labels'])} test outputs for {len(file_ids)} clips")
        arrays.update({_key(head, name): np.asarray(values[name]) for name in FIELDS})
    write_bytes_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))


@dataclass(frozen=True)
class Predictions:
    file_ids: np.ndarray  # [N] str
    labels: np.ndarray  # [N]
    predictions: np.ndarray  # [N]
    probabilities: np.ndarray  # [N, C]

    @property
    def num_classes(self) -> int:
        return self.probabilities.shape[-1]


def read_predictions(path: Path, head: str | None = None) -> Predictions:
    """One head's predictions (None: a single-head task's); one line when the file is unusable."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            return Predictions(saved["file_ids"], *(saved[_key(head, name)] for name in FIELDS))
    except FileNotFoundError:
        raise AvbenchError(f"{path}: no per-clip predictions (the run predates them or did not reach test)") from None
    except (OSError, ValueError, KeyError) as exc:
        raise AvbenchError(f"{path}: unreadable predictions ({exc})") from None
