"""The backend-neutral sweep trial: ONE copy of what every backend does with a suggestion.

A backend (avbench.sweep.backends) wraps each of its engine's suggestions in a `Trial` and
hands them out from `Backend.next_trial()`; `run_trials` runs each through `run_trial`:

    resolve the suggested values → feasibility (reject untrained, avbench.sweep.infeasible)
    → hooks.trial_start → run_recipe, reporting each epoch's metric to the backend (its answer
    is the pruning decision) → tell the backend how the trial ended

Failures are handled here too: Ctrl-C, SIGTERM and a results folder out of space (OutOfSpace)
fail the trial and re-enqueue it (the next run resumes it from its last checkpoint), a user
error raised by the run (config, data) fails it and propagates, and streaks of failed or
infeasible trials end the sweep. Out of memory is retried inside the recipe (so `avbench run`
has it too); the core passes on what the record reports.
The config fingerprint, the study's name and the sweep's outcome are defined here once.
No optuna, no wandb: importing this module imports neither.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avbench.config import RESULT_NEUTRAL_FIELDS, LoadedExperiment
from avbench.context import RunContext, TrialInfo
from avbench.errors import AvbenchError, ConfigError, InfeasibleConfig, OutOfSpace
from avbench.results.layout import run_dir
from avbench.results.records import RunRecord
from avbench.sweep.infeasible import INFEASIBLE, infeasible_record
from avbench.sweep.objectives import Objective, is_multi, objective_values, resolve_objectives
from avbench.sweep.space import SearchSpace

if TYPE_CHECKING:
    from avbench.display import ConsoleView
    from avbench.distributed import Ranks
    from avbench.sweep.launch.slurm import SlurmOptions

# A trial that fails may be bad luck (a NaN at a high learning rate); this many in a row means
# every trial will (a broken install, data the model cannot take): stop rather than burn the budget.
MAX_CONSECUTIVE_FAILURES = 3
# A rejection costs a config check, not a trial; this many in a row means the space has
# (almost) nothing feasible left to suggest.
MAX_CONSECUTIVE_INFEASIBLE = 100


def _ignore(*_args) -> None:
    return None


@dataclass(frozen=True)
class SweepHooks:
    """What a sweep tells whoever shows it (avbench.display.ConsoleView); each does nothing
    unless given."""

    trial_start: Callable[[int | None, dict], None] = _ignore  # (trial number, searched values)
    epoch: Callable[[int, dict], None] = _ignore  # (epoch, metrics) of the running trial
    trial_end: Callable[[RunRecord], None] = _ignore  # every trial, infeasible ones included
    features: Callable[[int, int], None] = _ignore  # (done, total) while the feature cache fills


@dataclass(frozen=True)
class SweepRequest:
    """What `avbench sweep` was asked, one experiment's worth; the same request with another
    `experiment` sweeps another one."""

    experiment: str
    overrides: tuple[str, ...] = ()
    trials: int | None = None  # finished trials in total [default: the experiment's sweep.trials]
    backend: str = "optuna"
    workers: int | None = 1  # None: one per GPU slot (avbench.sweep.launch.placement), else 1
    threads: int | None = None
    storage: str | None = None
    study: str | None = None
    sweep_config: Path | None = None
    sampler: str | None = None
    pruner: str | None = None
    dry_run: bool = False
    gpus: str | None = None  # "0,1,2,3": the GPUs the workers share [default: every visible one]
    gpus_per_trial: int | None = None
    trials_per_gpu: int | None = None
    allow_fake_gpus: bool = False
    placement: Any = None  # the workers' devices, set by avbench.sweep.launch.placement.place_workers
    launcher: str = "local"  # or "slurm": the workers as a Slurm job array (avbench.sweep.launch.slurm)
    slurm: SlurmOptions | None = None
    objectives: tuple[str, ...] = ()  # each METRIC:max|min [default: the experiment's sweep.objectives]
    warm_start: str | None = None  # a study or experiment whose best trials run first
    warm_top: int = 3  # how many of them
    enqueue: tuple[str, ...] = ()  # configurations to run first, each "key=value,key=value"


@dataclass(frozen=True)
class SweepPlan:
    """What a backend is given: the request, the experiment and search space it resolved to,
    the run context, where to show progress, and the ranks of a torchrun launch."""

    request: SweepRequest
    loaded: LoadedExperiment
    space: SearchSpace
    ctx: RunContext
    view: ConsoleView
    ranks: Ranks
    objectives: tuple[Objective, ...] = ()  # [default: the validation metric, maximised]

    @property
    def target(self) -> int:
        return self.request.trials or self.loaded.config.sweep.trials

    def name(self, suffix: str = "") -> str:
        """The sweep's name: --study, else the experiment, preset and data kind (+ suffix)."""
        return self.request.study or study_name(self.loaded, self.ctx.preset, self.ctx.synthetic) + suffix


@dataclass
class SweepOutcome:
    study: str
    storage: str
    target: int
    finished: int
    failed: int
    best_value: float | None
    best_params: dict
    best_run_id: str | None
    grid_exhausted: bool = False
    infeasible: int = 0  # suggestions rejected untrained: not trials
    # Agents elsewhere share the sweep (W&B's server): `finished` counts this machine's runs only,
    # so fewer than `target` is no sign of a sweep cut short.
    shared: bool = False
    # What was swept, for whoever reports the outcome (set by avbench.sweep.run).
    task: str = ""
    model: str = ""
    metric: str = ""
    # Several objectives: the Pareto front, each {"trial", "values", "params", "run_id"}.
    front: list[dict] = field(default_factory=list)
    objectives: tuple[str, ...] = ()


def study_name(loaded: LoadedExperiment, preset: str | None, synthetic: bool) -> str:
    parts = [loaded.name] + ([preset] if preset else []) + (["synthetic"] if synthetic else [])
    return "-".join(parts)


def config_fingerprint(loaded: LoadedExperiment, space: SearchSpace, objectives: tuple[Objective, ...] = ()) -> str:
    """What makes two sweeps comparable: the config (less presets and what cannot change
    results), the search space and (when several) the objectives."""
    payload = {k: v for k, v in loaded.raw.items() if k not in ("presets", "sweep")}
    for section, values in payload.items():  # how data is checked and cached, how often last.pt is written
        if isinstance(values, dict):
            payload[section] = {k: v for k, v in values.items() if f"{section}.{k}" not in RESULT_NEUTRAL_FIELDS}
    payload["space"] = {n: p.describe() for n, p in space.params.items()}
    if is_multi(objectives):
        payload["objectives"] = [str(o) for o in objectives]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def refuse_other_config(known: str | None, fingerprint: str, sweep: str) -> None:
    """Joining a sweep made from another config or space would mix incomparable trials."""
    if known is not None and known != fingerprint:
        raise ConfigError(
            f"{sweep} was made from a different config or search space; pass --study NEW_NAME to start another"
        )


class Trial(ABC):
    """One suggestion of a backend's engine, as the core runs it. A backend subclasses it to
    tell its engine what happened; `run_id` is set when a retry inherits a killed trial's run
    (and so resumes from its checkpoint)."""

    def __init__(self, number: int | None, values: dict[str, Any], run_id: str | None = None):
        self.number, self.values, self.run_id = number, values, run_id

    def keep_alive(self) -> AbstractContextManager:
        """Held while the trial trains (e.g. heartbeats, so other workers know it is alive)."""
        return nullcontext()

    def started(self, run_id: str) -> None:  # noqa: B027 - optional: only engines that resume need it
        """The trial trains under `run_id` now: keep it, so that a retry inherits it."""

    def scored_on(self, examples: int) -> None:  # noqa: B027 - optional: only a pruner that weighs noise needs it
        """The sweep metric is measured on this many validation examples."""

    @abstractmethod
    def report(self, epoch: int, value: float) -> bool:
        """The sweep metric after `epoch`; True stops (prunes) the trial."""

    @abstractmethod
    def reject(self, reason: str) -> None:
        """The model cannot be built with these values: not a trial, never retried."""

    @abstractmethod
    def finish(self, record: RunRecord, values: tuple[float, ...] | None) -> None:
        """The run ended as record.status says (completed, pruned or failed), with the value of
        each objective (the sweep metric's at the best epoch; costs off the record), None where
        one was not measured. May downgrade the record (e.g. another worker took the trial for
        dead meanwhile)."""

    @abstractmethod
    def fail(self, reason: str) -> None:
        """The run raised a user error (config, data): failed, not retried."""

    @abstractmethod
    def interrupt(self) -> None:
        """Ctrl-C: fail it and enqueue its values again, so the next run resumes it."""


class Backend(ABC):
    """A backend's engine, seen from the core: trials one after another, then the outcome."""

    name: str  # the sweep's name: the records' `sweep`, the W&B runs' group
    target: int  # finished trials the sweep wants

    @abstractmethod
    def next_trial(self) -> Trial | None:
        """The next trial to train here; None when the sweep needs no more."""

    @abstractmethod
    def outcome(self) -> SweepOutcome: ...

    def finished(self) -> int:
        """Trials finished before this process started (where the progress bar begins)."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional: only engines holding a resource need it
        """Release what the backend holds (a lock); called once the trials are over."""


class Streaks:
    """Counts the trials that end a sweep early. A failed trial extends the failure streak and
    a finished one ends it; an infeasible suggestion is neither (the failure streak stays as it
    was) but extends its own streak, which any trained trial ends."""

    def __init__(self) -> None:
        self.failures = 0
        self.infeasible = 0

    def after(self, status: str, reason: str | None) -> None:
        """Raises when the trial that just ended with `status` completes a streak."""
        if status == INFEASIBLE:
            self.infeasible += 1
            if self.infeasible >= MAX_CONSECUTIVE_INFEASIBLE:
                raise ConfigError(
                    f"{self.infeasible} suggestions in a row could not be built (last: {reason}); "
                    "narrow the sweep's ranges to feasible combinations"
                )
            return
        self.infeasible = 0
        if status != "failed":
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            raise AvbenchError(f"{self.failures} trials in a row failed; last: {reason}")


def run_trial(
    trial: Trial,
    loaded: LoadedExperiment,
    ctx: RunContext,
    *,
    sweep: str | None,
    hooks: SweepHooks = SweepHooks(),
    objectives: tuple[Objective, ...] = (),
) -> RunRecord:
    """Train one suggestion through the recipe and tell the backend how it ended."""
    from avbench.preflight import check_feasible
    from avbench.recipes import run_recipe

    metric = loaded.config.train.metric
    try:
        experiment = loaded.resolve(trial.values)
        try:
            check_feasible(experiment)
        except InfeasibleConfig as exc:
            trial.reject(str(exc))
            return infeasible_record(loaded, trial.number, trial.values, str(exc))
        hooks.trial_start(trial.number, trial.values)
        run_id = trial.run_id or _new_run_id(ctx, loaded.name, trial.number, sweep)
        trial.started(run_id)

        def on_eval(epoch: int, metrics: dict) -> bool:
            hooks.epoch(epoch, metrics)
            if f"val/{metric}" not in metrics:  # an autoencoder's epoch: its score comes after training
                return False
            if "val/examples" in metrics:
                trial.scored_on(int(metrics["val/examples"]))
            return trial.report(epoch, metrics[f"val/{metric}"])

        info = TrialInfo(sweep=sweep, number=trial.number, searched=dict(trial.values), run_id=run_id)
        if experiment.sweep.objective == "cv":
            from avbench.sweep.cv_objective import run_cv_trial

            record, value = run_cv_trial(trial, experiment, ctx, info, metric)
            values = (value,) if value is not None else None
        else:
            record = run_recipe(experiment, ctx, trial=info, on_eval=on_eval, progress=hooks.features)
            values = objective_values(record, objectives or resolve_objectives(loaded))
    except (KeyboardInterrupt, OutOfSpace):  # Ctrl-C, SIGTERM, a full disk: the trial is not to blame
        trial.interrupt()
        raise
    except Exception as exc:  # a user error (config, data): every trial would hit it
        trial.fail(str(exc) or type(exc).__name__)
        raise
    trial.finish(record, values)
    return record


def _new_run_id(ctx: RunContext, experiment: str, number: int | None, sweep: str | None) -> str:
    """t<number>-<sweep>; a new trial never reuses a directory (e.g. one left by a deleted
    study of the same name)."""
    from avbench.results.records import new_run_id

    if number is None or sweep is None:
        return new_run_id(number)
    run_id = f"t{number:04d}-{sweep}"
    return new_run_id(number) if run_dir(ctx.results, experiment, run_id).exists() else run_id


def run_trials(backend: Backend, plan: SweepPlan) -> SweepOutcome:
    """Train the backend's trials in this process, with progress shown, until it has no more.
    Under torchrun, rank 0 announces each trial to the other ranks as it starts."""
    from avbench.sweep.launch.torchrun import announcing, end_of_sweep

    streaks = Streaks()
    epochs = plan.loaded.config.train.epochs
    with plan.view.trials(backend.target, backend.finished(), epochs) as shown:
        hooks = announcing(plan.ranks, shown)
        try:
            while (trial := backend.next_trial()) is not None:
                with trial.keep_alive():
                    record = run_trial(
                        trial, plan.loaded, plan.ctx, sweep=backend.name, hooks=hooks, objectives=plan.objectives
                    )
                hooks.trial_end(record)
                streaks.after(record.status, record.error)
        finally:
            backend.close()
    end_of_sweep(plan.ranks)
    return backend.outcome()
