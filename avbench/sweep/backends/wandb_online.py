"""W&B Sweeps online: the sweep lives on W&B's server and agents on any machine run its trials.

`avbench sweep EXP --backend wandb`, when logged in to W&B, creates the sweep from the same
search space as the local engine, with a `command` that runs one trial on any machine that
has the project checked out (and avbench installed):

    /usr/bin/env python -m avbench agent-trial EXP --sweep NAME [--preset P] [--synthetic] [--set K=V]...
        --params '{"train.lr": 0.003}'

then prints the `wandb agent ENTITY/PROJECT/ID` line for other machines and runs an agent
here. The parameters travel as W&B's `${args_json}`: `${args}` and `${args_no_hyphens}` format
values with Python's str() (`1e-05`, `None`), which a YAML override would read back as strings.
Each trial logs to the sweep's W&B run and writes the same run record as the other backends.
W&B's early termination stops a run with SIGTERM; the trial then ends as pruned after its
current epoch. Re-running the same command joins the same sweep (kept in
results/wandb-sweeps/<sweep>.online.json). Each agent trial runs through avbench.sweep.core,
like every other backend's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from avbench.config import LoadedExperiment
from avbench.context import RunContext
from avbench.errors import AvbenchError, ConfigError
from avbench.results.layout import wandb_sweep_state
from avbench.results.records import FINISHED, RunRecord, iter_records, write_json_atomic
from avbench.sweep.backends.wandb_local import engine_config
from avbench.sweep.core import SweepOutcome, SweepPlan, Trial, config_fingerprint, refuse_other_config, run_trial
from avbench.sweep.space import SearchSpace

AGENT_TRIAL = "agent-trial"
OFFLINE_MODES = ("offline", "dryrun", "disabled")
STOP_POLL_S = 0.5
# Each trial is its agent's command, one process each: a launch of many ranks cannot share one.
SUPPORTS_LAUNCHER = False


def wandb_online(use_wandb: bool) -> bool:
    """Logged in to W&B (an API key from the environment, the netrc file or `wandb login`)
    and not told to stay offline: then `--backend wandb` creates the sweep on the server."""
    if not use_wandb or os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES:
        return False
    from avbench.tracking import wandb_logged_in

    # The same test tracking uses (WANDB_API_KEY or the netrc `wandb login` writes), not
    # wandb.login(): that answers from wandb's process-wide settings, which an earlier offline
    # run in the same process has already fixed.
    return wandb_logged_in()


def trial_command(
    experiment: str, *, sweep: str, preset: str | None, synthetic: bool, overrides: tuple[str, ...] | list[str]
) -> list[str]:
    """The sweep config's `command`: what `wandb agent` runs for each trial, on any machine."""
    argv = ["${env}", "${interpreter}", "-m", "avbench", AGENT_TRIAL, experiment, "--sweep", sweep]
    if preset:
        argv += ["--preset", preset]
    if synthetic:
        argv.append("--synthetic")
    for override in overrides:
        argv += ["--set", override]
    return argv + ["--params", "${args_json}"]


def online_sweep_config(space: SearchSpace, *, name: str, command: list[str], run_cap: int) -> dict[str, Any]:
    """The search space in W&B's vocabulary, plus what the server needs to hand out trials:
    the command, and `run_cap` so that all agents together run at most --trials runs."""
    # W&B's agent reads `program` from every run it is given; our command runs `-m avbench`.
    return {**engine_config(space), "name": name, "program": "avbench", "command": command, "run_cap": run_cap}


def expand_command(command: list[str], params: dict[str, Any], *, interpreter: str) -> list[str]:
    """The command with W&B's macros filled in as its agent fills them; the local agent runs
    trials with this process's interpreter instead of whatever `python` is on PATH."""
    macros = {"${env}": ["/usr/bin/env"], "${interpreter}": [interpreter], "${args_json}": [json.dumps(params)]}
    return [part for chunk in command for part in macros.get(chunk, [chunk])]


def sweep(plan: SweepPlan) -> SweepOutcome:
    """Create (or join) the sweep on W&B's server and run the plan's trials here."""
    import wandb

    name, ctx, trials = plan.name("-wandb"), plan.ctx, plan.target
    tracking = plan.loaded.config.tracking
    command = trial_command(
        plan.request.experiment,
        sweep=name,
        preset=ctx.preset,
        synthetic=ctx.synthetic,
        overrides=plan.request.overrides,
    )
    config = online_sweep_config(plan.space, name=name, command=command, run_cap=trials)
    state_file = wandb_sweep_state(ctx.results, name, online=True)
    fingerprint = config_fingerprint(plan.loaded, plan.space)
    if state_file.exists():
        known = json.loads(state_file.read_text())
        refuse_other_config(known["fingerprint"], fingerprint, f"W&B sweep {known['path']}")
        path = known["path"]
    else:
        sweep_id = wandb.sweep(config, project=tracking.project, entity=tracking.entity)
        entity = tracking.entity or _default_entity()
        path = "/".join(part for part in (entity, tracking.project, sweep_id) if part)
        write_json_atomic(state_file, {"path": path, "fingerprint": fingerprint, "config": config})
    entity, project, sweep_id = _split_path(path)
    plan.view.say(f"W&B sweep {path}: on other machines, from this project's folder, run")
    plan.view.say(f"    wandb agent {path}")
    wandb.agent(
        sweep_id, function=lambda: run_local_trial(command, ctx.results), entity=entity, project=project, count=trials
    )
    return _outcome(ctx.results, name, path, trials)


def run_local_trial(command: list[str], results: Path) -> None:
    """One trial for the local agent: the sweep's own command, as a child process (W&B's agent
    has set WANDB_SWEEP_ID, WANDB_RUN_ID and the parameters file in the environment)."""
    params = _agent_params(os.environ["WANDB_SWEEP_PARAM_PATH"])
    argv = expand_command(command, params, interpreter=sys.executable)
    child = subprocess.Popen(argv, env={**os.environ, "AVBENCH_RESULTS": str(Path(results).resolve())})
    stopping = False
    while child.poll() is None:
        try:
            time.sleep(STOP_POLL_S)
        except Exception:  # how W&B's in-process agent stops a run: it raises an exception in this thread
            if not stopping:
                child.send_signal(signal.SIGTERM)  # the trial ends as pruned after its epoch
                stopping = True
    if child.returncode != 0:
        raise AvbenchError(f"trial exited with status {child.returncode}")


def _agent_params(path: str) -> dict[str, Any]:
    """The parameters W&B's agent wrote for this run: {name: {"value": v}} plus its version."""
    import yaml

    written = yaml.safe_load(Path(path).read_text()) or {}
    return {key: spec["value"] for key, spec in written.items() if isinstance(spec, dict) and "value" in spec}


def _default_entity() -> str | None:
    import wandb

    try:
        return wandb.Api().default_entity
    except Exception:  # only the printed agent line needs it; W&B's agent resolves it itself
        return None


def _split_path(path: str) -> tuple[str | None, str | None, str]:
    parts = path.split("/")
    return (None,) * (3 - len(parts)) + tuple(parts)  # type: ignore[return-value]


def _outcome(results: Path, name: str, path: str, trials: int) -> SweepOutcome:
    """What this machine's agent ran (other machines' trials are on W&B and in their results/)."""
    records = [r for r in iter_records(results) if r.sweep == name]
    completed = [r for r in records if r.status == "completed" and r.metric in r.val]
    best = max(completed, key=lambda r: r.val[r.metric]) if completed else None
    return SweepOutcome(
        study=name,
        storage=f"W&B sweep {path}, runs of this machine",
        target=trials,
        finished=sum(r.status in FINISHED for r in records),
        failed=sum(r.status == "failed" for r in records),
        best_value=best.val[best.metric] if best else None,
        best_params=dict(best.searched) if best else {},
        best_run_id=best.run_id if best else None,
        shared=True,
    )


class AgentTrial(Trial):
    """The trial W&B's agent started this process for. W&B's server learns how it went from the
    run's logged metrics and this process's exit status, so the engine is told nothing here;
    its early termination (SIGTERM) stops the trial after the current epoch, as pruned."""

    def __init__(self, values: dict, run_id: str):
        super().__init__(None, values, run_id=run_id)
        self.stop_requested = False
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        self.stop_requested = True

    def report(self, epoch: int, value: float) -> bool:
        return self.stop_requested

    def reject(self, reason: str) -> None:
        """The agent-trial command exits non-zero: W&B marks the run failed."""

    def finish(self, record: RunRecord, values: tuple[float, ...] | None) -> None:
        """The run's W&B log already holds its metrics."""

    def fail(self, reason: str) -> None:
        """The error ends the command: W&B marks the run failed."""

    def interrupt(self) -> None:
        """W&B's agent decides what happens to an interrupted run."""


def run_agent_trial(loaded: LoadedExperiment, params_json: str, ctx: RunContext, *, sweep: str | None) -> RunRecord:
    """`avbench agent-trial`: one trial with the parameters W&B's agent passes, logged to the
    sweep's W&B run, recorded like every other run."""
    from avbench.results.records import new_run_id

    try:
        params = json.loads(params_json)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params must be a JSON object (W&B's ${{args_json}}): {exc}") from None
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object (W&B's ${args_json})")
    unknown = [key for key in params if key not in loaded.searched]
    if unknown:
        raise ConfigError(
            f"{loaded.name}: {', '.join(unknown)} is not a searched (null) field; searched: "
            f"{', '.join(loaded.searched) or 'none'} (was the sweep made from another config?)"
        )
    wandb_run, sweep_id = os.environ.get("WANDB_RUN_ID"), os.environ.get("WANDB_SWEEP_ID")
    run_id = f"{sweep_id}-{wandb_run}" if wandb_run and sweep_id else new_run_id()
    return run_trial(AgentTrial(params, run_id), loaded, ctx.but(use_wandb=True), sweep=sweep)
