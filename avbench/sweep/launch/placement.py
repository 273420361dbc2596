"""Which GPUs each `--workers` process gets: `--gpus`, `--gpus-per-trial k`, `--trials-per-gpu m`.

The GPUs are cut into groups of k; each group is a slot m times over, and each worker takes
one slot for its whole life (a restarted worker gets the same one): its CUDA_VISIBLE_DEVICES
is that group, and with k > 1 the worker is a k-process data-parallel launch (torchrun) on it.
Slots are handed out one group after another before any group is used twice, so fewer workers
than slots still spread over the GPUs. GPU ids are those of an inherited CUDA_VISIBLE_DEVICES
(else 0..count-1), so a worker's ids name the same devices its parent saw.

`--allow-fake-gpus` assigns the ids exactly so on a machine without CUDA: the workers then
train on CPU (k gloo processes each), which is how placement is tested without GPUs.
Importing this module does not import torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from avbench.distributed import VISIBLE_ENV, parse_ids
from avbench.errors import ConfigError
from avbench.sweep.launch import started_by_parent

if TYPE_CHECKING:
    from avbench.sweep.core import SweepRequest


@dataclass(frozen=True)
class Placement:
    """One device group per worker, in worker order; `per_trial` processes train each trial."""

    slots: tuple[tuple[str, ...], ...]
    per_trial: int = 1
    fake: bool = False

    @property
    def workers(self) -> int:
        return len(self.slots)

    def env(self, worker: int) -> dict[str, str]:
        return {VISIBLE_ENV: ",".join(self.slots[worker])}


def visible_gpus(*, cuda: bool) -> list[str]:
    """The GPU ids this process may use: an inherited CUDA_VISIBLE_DEVICES, else every device."""
    inherited = os.environ.get(VISIBLE_ENV)
    if inherited is not None:
        return parse_ids(inherited)
    if not cuda:
        return []
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def plan_placement(
    *,
    workers: int | None,
    gpus: str | None,
    gpus_per_trial: int | None,
    trials_per_gpu: int | None,
    allow_fake_gpus: bool,
    cuda: bool | None = None,
) -> Placement | None:
    """The workers' devices, or None where no GPU is in play (the CPU sweep of old)."""
    cuda = cuda_available() if cuda is None else cuda
    asked = parse_ids(gpus) if gpus is not None else None
    if asked is not None and not asked:
        raise ConfigError("--gpus names no GPU: give ids such as --gpus 0,1")
    if asked is not None and not cuda and not allow_fake_gpus:
        raise ConfigError(
            "--gpus on a machine without CUDA: no GPU to place trials on "
            "(--allow-fake-gpus assigns the ids anyway and trains on CPU)"
        )
    fake = not cuda and allow_fake_gpus
    if asked is None and not cuda:
        if gpus_per_trial or trials_per_gpu:
            raise ConfigError("--gpus-per-trial / --trials-per-gpu without a GPU: give --gpus (and --allow-fake-gpus)")
        return None
    visible = visible_gpus(cuda=cuda) or (asked if fake else [])
    chosen = _check_chosen(asked if asked is not None else visible, visible)
    if not chosen:
        return None
    slots = _slots(chosen, gpus_per_trial or 1, trials_per_gpu or 1)
    if workers is not None:
        if workers > len(slots):
            raise ConfigError(
                f"--workers {workers} on {len(slots)} GPU slot(s) ({len(chosen)} GPU(s), "
                f"{gpus_per_trial or 1} per trial, {trials_per_gpu or 1} trial(s) per GPU): "
                "raise --trials-per-gpu or give fewer workers"
            )
        slots = slots[:workers]
    return Placement(tuple(slots), gpus_per_trial or 1, fake)


def _check_chosen(chosen: list[str], visible: list[str]) -> list[str]:
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"--gpus {','.join(chosen)} names a GPU twice")
    if len(chosen) > len(visible):
        raise ConfigError(f"--gpus {','.join(chosen)}: {len(chosen)} GPU(s) asked for, {len(visible)} visible")
    unknown = [gpu for gpu in chosen if gpu not in visible]
    if unknown:
        raise ConfigError(f"--gpus: GPU {', '.join(unknown)} not visible (visible: {','.join(visible) or 'none'})")
    return chosen


def _slots(gpus: list[str], per_trial: int, per_gpu: int) -> list[tuple[str, ...]]:
    if len(gpus) % per_trial:
        raise ConfigError(f"--gpus-per-trial {per_trial} does not divide the {len(gpus)} GPU(s) ({','.join(gpus)})")
    groups = [tuple(gpus[i : i + per_trial]) for i in range(0, len(gpus), per_trial)]
    return [group for _ in range(per_gpu) for group in groups]


def place_workers(request: SweepRequest) -> SweepRequest:
    """The request with its worker count settled and, where GPUs are in play, each worker's
    devices. A worker of a parent sweep, or one rank of a launch, trains where it was put."""
    from avbench.distributed import launched_processes

    if request.launcher == "slurm":
        # Slurm gives each array task its own GPUs (--gpus-per-task); the submitting host may have none.
        return replace(request, workers=request.workers or 1)
    placement = None
    if not started_by_parent() and launched_processes() == 1:
        placement = plan_placement(
            workers=request.workers,
            gpus=request.gpus,
            gpus_per_trial=request.gpus_per_trial,
            trials_per_gpu=request.trials_per_gpu,
            allow_fake_gpus=request.allow_fake_gpus,
        )
    if placement is not None and _is_whole_machine(placement):
        placement = None  # one worker on every GPU there is: this process is that worker
    workers = placement.workers if placement is not None else request.workers or 1
    return replace(request, workers=workers, placement=placement)


def _is_whole_machine(placement: Placement) -> bool:
    return (
        placement.workers == 1
        and placement.per_trial == 1
        and not placement.fake
        and list(placement.slots[0]) == visible_gpus(cuda=True)
    )
