"""TaskSpec: everything a model may know about a task. Models receive this, never a task."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskSpec:
    num_classes: int
    modalities: tuple[str, ...] = ("audio",)
    sample_rate: int = 16000
    # Shape of each modality's tensor for one example, without the batch axis,
    # e.g. {"audio": (1, 64, 201)} for a one-channel log-mel image.
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
