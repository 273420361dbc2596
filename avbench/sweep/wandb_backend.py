"""W&B Sweeps as a backend: the same sweep file, W&B's own search and early termination.

Offline (the default here), W&B's sweep engine (the `sweeps` package that wandb[sweeps]
installs, the code the W&B server runs) suggests every trial locally: grid, random and
bayes search, hyperband early termination. The sweep's state lives in
results/wandb-sweeps/<sweep>.json, so re-running the command resumes it; a trial that was
running when its process died is run again first, from its last epoch checkpoint. Runs
are logged to W&B offline, ready for `wandb sync`, and write the same run records as the
Optuna backend, so the leaderboard does not care which backend ran. A suggestion the model
cannot be built with is rejected untrained (avbench.sweep.infeasible).
"""

from __future__ import annotations

import fcntl
import json
import warnings
from pathlib import Path
from typing import Any

from avbench.config import LoadedExperiment
from avbench.errors import AvbenchError, ConfigError, InfeasibleConfig
from avbench.preflight import check_feasible
from avbench.results.layout import wandb_sweep_state
from avbench.results.records import FINISHED, write_json_atomic
from avbench.runner import run_experiment
from avbench.sweep.infeasible import INFEASIBLE, infeasible_record
from avbench.sweep.optuna_backend import SweepOutcome, config_fingerprint, study_name
from avbench.sweep.space import SearchSpace
from avbench.sweep.trial_loop import Streaks, SweepHooks


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
        if data["fingerprint"] != fingerprint:
            raise ConfigError(
                f"W&B sweep {path.stem} was made from a different config or search space; "
                "pass --study NEW_NAME to start another sweep"
            )
        self.config = config
        self.fingerprint = fingerprint
        self.runs: list[dict] = data["runs"]

    def save(self) -> None:
        write_json_atomic(self.path, {"fingerprint": self.fingerprint, "config": self.config, "runs": self.runs})

    def finished(self) -> int:
        return sum(run.get("status") in FINISHED for run in self.runs)

    def close(self) -> None:
        self._lock.close()


def run_wandb_sweep(
    loaded: LoadedExperiment,
    space: SearchSpace,
    *,
    trials: int,
    results: Path,
    synthetic: bool,
    use_wandb: bool,
    preset: str | None = None,
    study: str | None = None,
    hooks: SweepHooks = SweepHooks(),
) -> SweepOutcome:
    sweeps = _engine()
    name = study or study_name(loaded, preset, synthetic) + "-wandb"
    config = engine_config(space)
    state = SweepState(wandb_sweep_state(results, name), config, config_fingerprint(loaded, space))
    metric = space.metric
    streaks = Streaks()
    grid_exhausted = False
    try:
        while state.finished() < trials:
            # A run left "running" belonged to a process that died: run it again first.
            entry = next((run for run in state.runs if run["state"] == "running"), None)
            if entry is None:
                suggestion = sweeps.next_run(config, _as_sweep_runs(state.runs))
                if suggestion is None:
                    grid_exhausted = True  # every grid point was tried
                    break
                index = len(state.runs)
                suggested = {key: {"value": _native(spec["value"])} for key, spec in suggestion.config.items()}
                entry = {
                    "name": f"run-{index:04d}",
                    "index": index,
                    "config": suggested,
                    "state": "running",
                    "history": [],
                    "run_id": f"w{index:04d}-{name}",
                }
                state.runs.append(entry)
                state.save()
            values = {key: spec["value"] for key, spec in entry["config"].items()}
            experiment = loaded.resolve(values)
            try:
                check_feasible(experiment)
            except InfeasibleConfig as exc:
                # "failed" for the engine (bayes imputes the worst metric there), not a result for us.
                entry.update(state="failed", status=INFEASIBLE, error=str(exc))
                state.save()
                hooks.trial_end(infeasible_record(loaded, entry["index"], values, str(exc)))
                streaks.after(INFEASIBLE, str(exc))
                continue
            hooks.trial_start(entry["index"], values)

            def on_eval(epoch: int, metrics: dict, entry: dict = entry) -> bool:
                hooks.epoch(epoch, metrics)
                if metric not in metrics:  # an autoencoder's epoch: its score comes after training
                    return False
                entry["history"] = [h for h in entry["history"] if h["_step"] < epoch]
                entry["history"].append({metric: metrics[metric], "_step": epoch})
                state.save()
                if "early_terminate" not in config:
                    return False
                stop = sweeps.stop_runs(config, _as_sweep_runs(state.runs))
                return any(run.name == entry["name"] for run in stop)

            record = run_experiment(
                experiment,
                results=results,
                synthetic=synthetic,
                use_wandb=use_wandb,
                preset=preset,
                sweep=name,
                trial=entry["index"],
                searched=values,
                on_eval=on_eval,
                run_id=entry["run_id"],
                progress=hooks.features,
            )
            entry["status"] = record.status
            entry["state"] = "finished" if record.status in FINISHED else "failed"
            entry["summary_metrics"] = {metric: record.val.get(metric.split("/", 1)[1])} if record.val else {}
            state.save()
            hooks.trial_end(record)
            streaks.after(record.status, record.error)
    finally:
        state.close()
    completed = [run for run in state.runs if run.get("status") == "completed"]
    best = max(completed, key=lambda run: run["summary_metrics"][metric]) if completed else None
    return SweepOutcome(
        study=name,
        storage=str(state.path),
        target=trials,
        finished=state.finished(),
        grid_exhausted=grid_exhausted,
        failed=sum(run.get("status") == "failed" for run in state.runs),
        infeasible=sum(run.get("status") == INFEASIBLE for run in state.runs),
        best_value=best["summary_metrics"][metric] if best else None,
        best_params={k: v["value"] for k, v in best["config"].items()} if best else {},
        best_run_id=best["run_id"] if best else None,
    )
