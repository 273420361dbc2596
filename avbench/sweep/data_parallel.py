"""A sweep under `torchrun` / `accelerate launch`: every trial trains on all launched processes.

Rank 0 runs the sweep exactly as one process would (claims trials from the storage, reports
epochs, tells the study how each trial ended); just before each trial trains, it announces
the trial (number and parameters) to the other ranks, and when the sweep is over it announces
that there are no more. The other ranks only follow: they never open the storage, and each
announced trial is one run_recipe() call, in which rank 0 also decides the run id and
every epoch whether to stop (see avbench.recipes.stages).

If rank 0 stops with an error, it announces nothing more: the other ranks may be inside a
collective, so the launcher (torchrun) stops them when rank 0's process exits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from avbench.config import LoadedExperiment
from avbench.distributed import Ranks

_NO_MORE_TRIALS = None


def announcing(ranks: Ranks, on_trial_start: Callable[[int, dict], None] | None):
    """Rank 0's on_trial_start: the backends call it with the trial's parameters right before
    the trial trains, so the other ranks start the same trial at the same moment."""

    def start(number: int, values: dict) -> None:
        ranks.announce({"trial": number, "values": values})
        if on_trial_start:
            on_trial_start(number, values)

    return start


def end_of_sweep(ranks: Ranks) -> None:
    """Rank 0, after the backend returned: let the other ranks leave their loop."""
    ranks.announce(_NO_MORE_TRIALS)


def follow_trials(
    ranks: Ranks, loaded: LoadedExperiment, *, results: Path, synthetic: bool, use_wandb: bool, preset: str | None
) -> int:
    """A rank other than 0: train each trial rank 0 announces until it says there are no
    more; returns how many it trained. Its runs write nothing but their rank-<i>.json (rank 0
    writes the record), so they need no sweep name."""
    from avbench.context import RunContext, TrialInfo
    from avbench.recipes import run_recipe

    trained = 0
    while (trial := ranks.announce(None)) is not _NO_MORE_TRIALS:
        values = trial["values"]
        run_recipe(
            loaded.resolve(values),
            RunContext(results, synthetic=synthetic, use_wandb=use_wandb, preset=preset),
            trial=TrialInfo(number=trial["trial"], searched=values),
        )
        trained += 1
    return trained
