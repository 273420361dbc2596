"""A loader's batch as the model takes it, made on the device the batch was copied to.

The feature cache keeps video frames as uint8 and ArrayDataset hands them out as such, so the
loader workers, the pinned buffers and the host-to-device copy move a quarter of float32's
bytes. `DeviceInputs` normalises them once they are on the device, to exactly the values the
CPU gave before ((x − 255·mean) / (255·std) in float32). Every consumer of ArrayDataset
batches passes through it: fit() on train, validation and test (and so every recipe and the
torchrun ranks), the latency measurement, the dry run's step timing and
benchmarks/input_pipeline.py. The augmentation pipeline (avbench.augment) runs after it and
so transforms normalised float32 frames, as it always has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from avbench.data.video import frame_scale_shift, normalize_frames

if TYPE_CHECKING:
    from avbench.data.dataset import PreparedData


@dataclass
class DeviceInputs:
    """batch → batch with its uint8 "video" normalised on the batch's device. Frames that are
    already floating point (a caller's own tensors) are model inputs as they are."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # device → (scale, shift) tensors, made once: a per-batch copy of them from pageable host
    # memory would synchronise the host with the device every step.
    _constants: dict[Any, tuple] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, data: PreparedData) -> DeviceInputs:
        """The normalisation the prepared splits' frames take (data.video_mean / video_std)."""
        mean, std = next(iter(data.splits.values())).video_norm
        return cls(tuple(mean), tuple(std))

    def __call__(self, batch: dict) -> dict:
        import torch

        frames = batch.get("video")
        if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8:
            return batch
        return {**batch, "video": normalize_frames(frames, *self._on(frames.device))}

    def _on(self, device) -> tuple:
        if device not in self._constants:
            import torch

            self._constants[device] = tuple(
                torch.from_numpy(array).to(device) for array in frame_scale_shift(self.mean, self.std)
            )
        return self._constants[device]
