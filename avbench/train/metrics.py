"""Classification metrics from predictions (numpy only, so records can be re-scored anywhere)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, preds), 1)
    return matrix


def classification_metrics(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict:
    """accuracy, UAR (mean recall over the classes present) and macro-F1, plus the confusion
    matrix (rows = true class)."""
    matrix = confusion_matrix(labels, preds, num_classes)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    true_pos = np.diag(matrix).astype(np.float64)
    present = support > 0
    recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(true_pos), where=denom > 0)
    return {
        "acc": float(true_pos.sum() / max(len(labels), 1)),
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "confusion": matrix.tolist(),
    }
