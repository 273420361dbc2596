"""Many processes per run (`torchrun`, `accelerate launch`): which rank this is, and how rank
0's decisions reach the others.

Every rank runs the same command. Rank 0 alone talks to the study storage, W&B and results/;
it takes every decision (which trial, with which parameters, the run id, whether to stop after
an epoch, when the sweep is over) and broadcasts it, so all ranks train the same trial and
leave every loop together. Without a launcher this process is rank 0 of 1 and nothing is
broadcast. Importing this module does not import torch.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from avbench.errors import AvbenchError

# Rank 0 may wait for a trial to take as long as other workers' trials run (they share the
# study); collectives inside a trial keep torch's default timeout.
ANNOUNCE_TIMEOUT = timedelta(days=7)
VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"  # set per worker by avbench.sweep.launch.placement


class RankFailure(AvbenchError):
    """A trial failed on this rank in a way the other ranks may not have seen (they may be
    waiting for this one inside a collective), so the launch must stop: the launcher then
    stops the other ranks."""


def launched_processes() -> int:
    """How many processes the launcher started: 1 without torchrun / accelerate launch."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def parse_ids(text: str) -> list[str]:
    """ "0,1,2" (or GPU UUIDs) as a list of ids, blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def describe_devices() -> dict:
    """What a run record says of its devices: the CUDA_VISIBLE_DEVICES ids it was given (None
    when it inherited none), and the GPU's model and memory when there is one."""
    import torch

    inherited = os.environ.get(VISIBLE_ENV)
    devices: dict[str, Any] = {"visible": parse_ids(inherited) if inherited is not None else None}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        devices.update(gpu=props.name, memory_gb=round(props.total_memory / 2**30, 1), count=torch.cuda.device_count())
    return devices


@dataclass(frozen=True)
class Ranks:
    index: int = 0
    count: int = 1
    announce_group: Any = None  # a gloo group with a long timeout, for announce()

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def share(self, value: Any) -> Any:
        """Rank 0's value, on every rank. Every rank calls it at the same point of the run."""
        return self._broadcast(value, None)

    def announce(self, value: Any) -> Any:
        """share(), for decisions a rank may wait on for long (the next trial of a sweep)."""
        return self._broadcast(value, self.announce_group)

    def _broadcast(self, value: Any, group: Any) -> Any:
        if self.count == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, group=group)
        return box[0]


_joined: Ranks | None = None


def join_ranks() -> Ranks:
    """Join the process group the launcher prepared; later calls return the same ranks."""
    global _joined
    if _joined is not None:
        return _joined
    if launched_processes() == 1:
        _joined = Ranks()
        return _joined
    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    # Without CUDA, Accelerate forms a CPU (gloo) group only when asked to; otherwise every
    # rank would silently train alone on the whole dataset.
    state = PartialState(cpu=not torch.cuda.is_available())
    group = dist.new_group(backend="gloo", timeout=ANNOUNCE_TIMEOUT)
    atexit.register(_leave)
    _joined = Ranks(state.process_index, state.num_processes, group)
    return _joined


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
