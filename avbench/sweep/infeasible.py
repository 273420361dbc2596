"""Suggestions a model cannot be built with, in every sweep backend.

A model may register a `check` (avbench.registry.register_model) that raises
InfeasibleConfig for a combination of values, e.g. a ViT image not divisible by its patch.
The sweep core (avbench.sweep.core) calls it on every suggestion before any data is read or
weight trained, and tells the backend to reject the ones it refuses. A rejected suggestion is
not a trial: it does not count toward `--trials`, does not break or extend the failure
streak, writes no run record (so the leaderboard never sees it) and is not retried; the sweep
goes on until it has its N real trials.

What each backend's sampler learns from it:
- Optuna: the trial is told PRUNED with the user attribute "infeasible" (the reason) and a
  violated constraint (`trial.set_constraint`). PRUNED rather than FAIL because TPE learns
  only from complete and pruned trials; the constraint puts it among TPE's worst trials
  (Optuna's own rule for constrained search), so TPE draws less from that region. Random and
  grid samplers do not learn; a grid simply never repeats the point.
- W&B: the run is kept in the sweep's state with the engine state "failed" (and our status
  "infeasible"); W&B's bayes search imputes the worst metric for failed runs, which is how it
  steers away from them. Grid search never repeats the point.
"""

from __future__ import annotations

from avbench.config import LoadedExperiment
from avbench.results.records import RunRecord

INFEASIBLE = "infeasible"  # the status shown and recorded (and Optuna's user attribute holding the reason)


def infeasible_record(loaded: LoadedExperiment, number: int | None, values: dict, reason: str) -> RunRecord:
    """What the display is told about a rejected suggestion; never written to results/."""
    config = loaded.config
    return RunRecord(
        run_id="",
        experiment=loaded.name,
        task=config.task,
        model=config.model,
        status=INFEASIBLE,
        error=reason,
        trial=number,
        searched=dict(values),
    )
