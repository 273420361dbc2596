"""PNG figures: spectrogram previews with their amplitude histograms (`--pretend`), and the
cross-validated confusion matrix. matplotlib's Agg backend: no display needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_preview(
    path: Path, spectrograms: np.ndarray, thresholds: list[float], title: str, decibels: np.ndarray | None = None
) -> Path:
    """One row per clip-below threshold: the scaled spectrogram [bands, frames] and the
    histogram of its values, which shows how much of the clip the threshold flattens to -1.
    `decibels` (the unclipped dB spectrogram) adds a first row with its own histogram."""
    plt = _pyplot()
    rows = [(f"{t:g} dB clip, scaled", image) for t, image in zip(thresholds, spectrograms, strict=True)]
    if decibels is not None:
        rows.insert(0, ("dB below the loudest bin", decibels))
    figure, axes = plt.subplots(
        len(rows), 2, figsize=(10, 2.6 * len(rows)), squeeze=False, gridspec_kw={"width_ratios": [3, 1]}
    )
    for (label, image), (left, right) in zip(rows, axes, strict=True):
        shown = left.imshow(image, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
        left.set_title(label, fontsize=9)
        left.set_xlabel("frame")
        left.set_ylabel("mel band")
        figure.colorbar(shown, ax=left)
        right.hist(np.asarray(image, np.float32).ravel(), bins=50, color="tab:blue")
        right.set_title("amplitude histogram", fontsize=9)
        right.set_yscale("log")
    figure.suptitle(title, fontsize=10)
    return _save(plt, figure, path, dpi=80)


def write_confusion(path: Path, confusion: list[list[int]], class_names: tuple[str, ...], title: str) -> Path:
    """Counts with row-normalised colour (recall per true class), so rare classes stay visible."""
    plt = _pyplot()
    matrix = np.asarray(confusion, dtype=np.int64)
    recall = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    shown = axis.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    axis.set_yticks(ticks, class_names, fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(class_names) <= 20:
        for (row, col), count in np.ndenumerate(matrix):
            if count:
                axis.text(
                    col,
                    row,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if recall[row, col] > 0.5 else "black",
                )
    figure.colorbar(shown, ax=axis, label="fraction of the true class")
    axis.set_title(title, fontsize=9)
    return _save(plt, figure, path, dpi=90)


def _save(plt, figure, path: Path, *, dpi: int) -> Path:
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
