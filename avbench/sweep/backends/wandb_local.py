"""W&B Sweeps as a backend: the same sweep file, W&B's own search and early termination.

Offline (the default here), W&B's sweep engine (the `sweeps` package that wandb[sweeps]
installs, the code the W&B server runs) suggests every trial locally: grid, random and
bayes search, hyperband early termination. The sweep's state lives in
results/wandb-sweeps/<sweep>.json, so re-running the command resumes it; a trial that was
running when its process died is run again first, from its last epoch checkpoint. Runs
are logged to W&B offline, ready for `wandb sync`, and write the same run records as the
Optuna backend, so the leaderboard does not care which backend ran. A suggestion the model
cannot be built with is rejected untrained (avbench.sweep.infeasible). The trial itself runs
in avbench.sweep.core; this module only turns the engine's suggestions into trials and their
ends back into the engine's state.
"""

from __future__ import annotations

import fcntl
import json
import warnings
from pathlib import Path
from typing import Any

from avbench.errors import AvbenchError
from avbench.results.layout import wandb_sweep_state
from avbench.results.records import FINISHED, RunRecord, write_json_atomic
from avbench.sweep import core
from avbench.sweep.core import Backend, SweepOutcome, SweepPlan, Trial
from avbench.sweep.infeasible import INFEASIBLE
from avbench.sweep.space import SearchSpace


def engine_config(space: SearchSpace) -> dict[str, Any]:
    """Our parsed space back in W&B's vocabulary, one flat dotted name per parameter."""
    parameters: dict[str, dict] = {}
    for param in space.params.values():
        if param.kind == "categorical":
            parameters[param.name] = {"values": list(param.choices)}
        elif param.kind == "int":
            parameters[param.name] = {"distribution": "int_uniform", "min": int(param.low), "max": int(param.high)}
        else:
            dist = "log_uniform_values" if param.log else "uniform"
            spec: dict[str, Any] = {"distribution": dist, "min": param.low, "max": param.high}
            if param.step:
                spec = {**spec, "distribution": f"q_{dist}", "q": param.step}
            parameters[param.name] = spec
    config: dict[str, Any] = {
        "method": space.method,
        "metric": {"name": space.metric, "goal": space.goal},
        "parameters": parameters,
    }
    if space.early_terminate:
        config["early_terminate"] = dict(space.early_terminate)
    return config


def _native(value: Any) -> Any:
    """The engine suggests numpy scalars; configs, YAML and JSON want Python values."""
    return value.item() if hasattr(value, "item") else value


def _engine():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the engine's pydantic-v1 style config warns on import
        import sweeps
    return sweeps


def _as_sweep_runs(entries: list[dict]) -> list:
    sweeps = _engine()
    return [
        sweeps.SweepRun(
            name=e["name"],
            config=e["config"],
            state=e["state"],
            history=e["history"],
            summary_metrics=e.get("summary_metrics") or {},
        )
        for e in entries
    ]


class SweepState:
    """The sweep's runs on disk, rewritten atomically after every change; an exclusive lock
    keeps a second process from driving the same sweep."""

    def __init__(self, path: Path, config: dict, fingerprint: str):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 - held for the sweep's lifetime
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AvbenchError(f"another process is running the W&B sweep in {path}") from None
        data = json.loads(path.read_text()) if path.exists() else {"fingerprint": fingerprint, "runs": []}
        core.refuse_other_config(data["fingerprint"], fingerprint, f"W&B sweep {path.stem}")
        self.config = config
        self.fingerprint = fingerprint
        self.runs: list[dict] = data["runs"]

    def save(self) -> None:
        write_json_atomic(self.path, {"fingerprint": self.fingerprint, "config": self.config, "runs": self.runs})

    def finished(self) -> int:
        return sum(run.get("status") in FINISHED for run in self.runs)

    def close(self) -> None:
        self._lock.close()


class EngineTrial(Trial):
    """One run of the sweep's state, told to the engine through that state."""

    def __init__(self, backend: LocalWandbBackend, entry: dict):
        values = {key: spec["value"] for key, spec in entry["config"].items()}
        super().__init__(entry["index"], values, run_id=entry["run_id"])
        self.backend, self.entry = backend, entry

    def report(self, epoch: int, value: float) -> bool:
        metric, entry = self.backend.metric, self.entry
        entry["history"] = [h for h in entry["history"] if h["_step"] < epoch]
        entry["history"].append({metric: value, "_step": epoch})
        self.backend.state.save()
        return self.backend.should_stop(entry["name"])

    def reject(self, reason: str) -> None:
        # "failed" for the engine (bayes imputes the worst metric there), not a result for us.
        self._update(state="failed", status=INFEASIBLE, error=reason)

    def finish(self, record: RunRecord, values: tuple[float, ...] | None) -> None:
        value = values[0] if values else None  # W&B sweeps optimise one metric
        self._update(
            status=record.status,
            state="finished" if record.status in FINISHED else "failed",
            summary_metrics={self.backend.metric: value} if record.val else {},
        )

    def fail(self, reason: str) -> None:
        self._update(state="failed", status="failed", error=reason)

    def interrupt(self) -> None:
        """Left "running" in the state: the next run of the sweep runs it again first."""

    def _update(self, **fields) -> None:
        self.entry.update(fields)
        self.backend.state.save()


class LocalWandbBackend(Backend):
    """W&B's sweep engine, run here on the sweep's state file."""

    def __init__(self, plan: SweepPlan):
        self.name, self.target = plan.name("-wandb"), plan.target
        self.config = engine_config(plan.space)
        self.metric = plan.space.metric
        path = wandb_sweep_state(plan.ctx.results, self.name)
        self.state = SweepState(path, self.config, core.config_fingerprint(plan.loaded, plan.space))
        self.grid_exhausted = False

    def next_trial(self) -> EngineTrial | None:
        if self.state.finished() >= self.target:
            return None
        # A run left "running" belonged to a process that died: run it again first.
        entry = next((run for run in self.state.runs if run["state"] == "running"), None)
        if entry is None:
            suggestion = _engine().next_run(self.config, _as_sweep_runs(self.state.runs))
            if suggestion is None:
                self.grid_exhausted = True  # every grid point was tried
                return None
            index = len(self.state.runs)
            entry = {
                "name": f"run-{index:04d}",
                "index": index,
                "config": {key: {"value": _native(spec["value"])} for key, spec in suggestion.config.items()},
                "state": "running",
                "history": [],
                "run_id": f"w{index:04d}-{self.name}",
            }
            self.state.runs.append(entry)
            self.state.save()
        return EngineTrial(self, entry)

    def should_stop(self, run_name: str) -> bool:
        """The engine's early termination (hyperband), asked after every epoch."""
        if "early_terminate" not in self.config:
            return False
        stop = _engine().stop_runs(self.config, _as_sweep_runs(self.state.runs))
        return any(run.name == run_name for run in stop)

    def finished(self) -> int:
        return self.state.finished()

    def close(self) -> None:
        self.state.close()

    def outcome(self) -> SweepOutcome:
        runs, metric = self.state.runs, self.metric
        completed = [run for run in runs if run.get("status") == "completed"]
        best = max(completed, key=lambda run: run["summary_metrics"][metric]) if completed else None
        return SweepOutcome(
            study=self.name,
            storage=str(self.state.path),
            target=self.target,
            finished=self.state.finished(),
            grid_exhausted=self.grid_exhausted,
            failed=sum(run.get("status") == "failed" for run in runs),
            infeasible=sum(run.get("status") == INFEASIBLE for run in runs),
            best_value=best["summary_metrics"][metric] if best else None,
            best_params={k: v["value"] for k, v in best["config"].items()} if best else {},
            best_run_id=best["run_id"] if best else None,
        )


def sweep(plan: SweepPlan) -> SweepOutcome:
    """Run the sweep here with W&B's engine until it has its finished trials."""
    plan.view.say(
        f"sweep {plan.loaded.name}: {plan.target} trials over {', '.join(plan.space.params)} "
        f"({plan.space.source}), W&B sweep engine (local)"
    )
    return core.run_trials(LocalWandbBackend(plan), plan)
