"""TaskSpec: everything a model may know about a task. Models receive this, never a task."""

from __future__ import annotations

from dataclasses import dataclass, field

# The metrics a classification run reports (per head when a task has several).
CLASSIFICATION_METRICS = ("acc", "uar", "macro_f1")


@dataclass(frozen=True)
class TaskSpec:
    num_classes: int
    modalities: tuple[str, ...] = ("audio",)
    sample_rate: int = 16000
    # Shape of each modality's tensor for one example, without the batch axis,
    # e.g. {"audio": (1, 64, 201)} for a one-channel log-mel image.
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    # Several targets per example (emotion and state): head name → its class names, in the
    # order of the label columns. Empty: one head of `num_classes` (its logits a tensor);
    # otherwise the model returns a dict of logits per head and num_classes is the first's.
    heads: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def head_sizes(self) -> dict[str, int]:
        """head name → number of classes; empty for a single-head task."""
        return {name: len(classes) for name, classes in self.heads.items()}


def split_metric(name: str) -> tuple[str | None, str]:
    """'emotion/acc' → ('emotion', 'acc'); 'acc' → (None, 'acc'): which head a metric is of."""
    head, sep, base = name.rpartition("/")
    return (head, base) if sep else (None, name)
