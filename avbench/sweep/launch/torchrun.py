"""A sweep under `torchrun` / `accelerate launch`: every trial trains on all launched processes.

Rank 0 runs the sweep exactly as one process would (claims trials from the backend, reports
epochs, tells it how each trial ended); just before each trial trains, it announces the trial
(number and parameters) to the other ranks, and when the sweep is over it announces that there
are no more. The other ranks only follow: they never open the backend's storage, and each
announced trial is one run_recipe() call, in which rank 0 also decides the run id and every
epoch whether to stop (see avbench.recipes.stages).

If rank 0 stops with an error, it announces nothing more: the other ranks may be inside a
collective, so the launcher (torchrun) stops them when rank 0's process exits.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from avbench.config import LoadedExperiment
from avbench.context import RunContext, TrialInfo
from avbench.distributed import Ranks, launched_processes
from avbench.errors import AvbenchError
from avbench.sweep.core import SweepHooks, SweepRequest

_NO_MORE_TRIALS = None


def refuse_under_launcher(request: SweepRequest, backend: ModuleType) -> None:
    """What a launch of many processes cannot do, refused in one line before any rank waits."""
    launched = launched_processes()
    if launched == 1:
        return
    if request.workers > 1:
        raise AvbenchError(
            f"--workers {request.workers} under torchrun / accelerate launch: the {launched} launched processes "
            "already train each trial together; drop --workers (for trials at once, start several "
            "launches with the same --storage)"
        )
    if request.dry_run:
        raise AvbenchError("--dry-run runs in one process: run it without torchrun / accelerate launch")
    if not getattr(backend, "SUPPORTS_LAUNCHER", True):
        raise AvbenchError(
            "an online W&B sweep runs each trial as its agent's command, one process each: run it "
            "without torchrun / accelerate launch (or locally with --no-wandb or WANDB_MODE=offline)"
        )


def announcing(ranks: Ranks, hooks: SweepHooks) -> SweepHooks:
    """Rank 0's hooks: the core calls trial_start with the trial's parameters right before the
    trial trains, so the other ranks start the same trial at the same moment."""
    if ranks.count == 1:
        return hooks

    def start(number: int | None, values: dict) -> None:
        ranks.announce({"trial": number, "values": values})
        hooks.trial_start(number, values)

    return replace(hooks, trial_start=start)


def end_of_sweep(ranks: Ranks) -> None:
    """Rank 0, after the backend returned: let the other ranks leave their loop."""
    if ranks.count > 1:
        ranks.announce(_NO_MORE_TRIALS)


def follow_trials(ranks: Ranks, loaded: LoadedExperiment, ctx: RunContext) -> int:
    """A rank other than 0: train each trial rank 0 announces until it says there are no
    more; returns how many it trained. Its runs write nothing but their rank-<i>.json (rank 0
    writes the record), so they need no sweep name."""
    from avbench.recipes import run_recipe

    trained = 0
    while (trial := ranks.announce(None)) is not _NO_MORE_TRIALS:
        values = trial["values"]
        run_recipe(loaded.resolve(values), ctx, trial=TrialInfo(number=trial["trial"], searched=values))
        trained += 1
    return trained
