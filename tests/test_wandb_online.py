"""The W&B backend online: the sweep is created on W&B's server with a command that runs one
trial on any machine, a local agent runs trials here, and `wandb agent ENTITY/PROJECT/ID` is
printed for the others. W&B's server is the only thing replaced (wandb.sweep, wandb.agent and
wandb.Api); the trial command is expanded by W&B's own agent code and really runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
from wandb.sdk.launch.sweeps import utils as sweep_utils
from wandb.sdk.lib import config_util

from avbench.catalog import load_experiment
from avbench.results.records import iter_records
from avbench.sweep.backends.wandb_online import online_sweep_config, trial_command, wandb_online
from avbench.sweep.space import resolve_space
from tests.conftest import REPO, TINY

EXPERIMENT = "mel-stats-mlp-cremad"
SWEEP = "mel-stats-mlp-cremad-tiny-synthetic-wandb"
# W&B formats 1e-05 as "1e-05", which YAML would read back as a string: JSON keeps it a float.
PARAMS = {"train.lr": 1e-05, "train.weight_decay": 0.001, "model_args.dropout": 0.0}


@pytest.fixture
def logged_in(workspace, monkeypatch, tmp_path_factory):
    """W&B as for a user who ran `wandb login`: an API key, no WANDB_MODE."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))  # no ~/.netrc of this machine
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # for the trials the agent starts
    return workspace


class FakeServer:
    """wandb.sweep / wandb.agent / wandb.Api as W&B's server and in-process agent behave. The
    first agent runs one trial: it writes the run's parameter file and sets the environment like
    wandb.agents.pyagent, then calls the function; later agents find the sweep finished."""

    def __init__(self, monkeypatch, workspace):
        self.monkeypatch, self.workspace = monkeypatch, workspace
        self.sweeps: list[dict] = []
        self.agents: list[dict] = []

    def sweep(self, config, entity=None, project=None, prior_runs=None):
        self.sweeps.append({"config": config, "entity": entity, "project": project})
        return "sw1234"

    def agent(self, sweep_id, function=None, entity=None, project=None, count=None, **_):
        self.agents.append({"sweep_id": sweep_id, "entity": entity, "project": project, "count": count})
        if len(self.agents) > 1:
            return
        param_file = self.workspace / "wandb" / f"sweep-{sweep_id}" / "config-run0001.yaml"
        config_util.save_config_file_from_dict(str(param_file), {k: {"value": v} for k, v in PARAMS.items()})
        for key, value in {
            "WANDB_SWEEP_PARAM_PATH": str(param_file),
            "WANDB_SWEEP_ID": sweep_id,
            "WANDB_RUN_ID": "run0001",
            "WANDB_MODE": "offline",
        }.items():
            self.monkeypatch.setenv(key, value)  # offline: the trial's own W&B run stays on disk
        function()

    class Api:
        default_entity = "me"


@pytest.fixture
def server(logged_in, monkeypatch):
    import wandb

    fake = FakeServer(monkeypatch, logged_in)
    monkeypatch.setattr(wandb, "sweep", fake.sweep)
    monkeypatch.setattr(wandb, "agent", fake.agent)
    monkeypatch.setattr(wandb, "Api", FakeServer.Api)
    return fake


def test_online_sweep_is_created_on_the_server_and_run_by_a_local_agent(cli, server, workspace, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sweeps package's pydantic-v1 style config warns on import
        from sweeps.config import schema_violations_from_proposed_config

    out = cli("sweep", EXPERIMENT, *TINY, "--backend", "wandb", "--trials", "2").output
    (created,) = server.sweeps
    config = created["config"]
    assert (created["project"], created["entity"]) == ("avbench", None)  # the experiment's tracking settings
    assert config["command"] == [
        "${env}",
        "${interpreter}",
        "-m",
        "avbench",
        "agent-trial",
        EXPERIMENT,
        "--sweep",
        SWEEP,
        "--preset",
        "tiny",
        "--synthetic",
        "--params",
        "${args_json}",
    ]
    assert config["name"] == SWEEP and config["run_cap"] == 2 and config["method"] == "bayes"
    assert set(config["parameters"]) == set(PARAMS) and config["early_terminate"]["type"] == "hyperband"
    assert schema_violations_from_proposed_config(config) == []  # what W&B's server validates (sweeps >= 0.3)
    assert "wandb agent me/avbench/sw1234" in out
    assert server.agents == [{"sweep_id": "sw1234", "entity": "me", "project": "avbench", "count": 2}]
    (record,) = [r for r in iter_records(workspace / "results") if r.sweep == SWEEP]
    assert record.run_id == "sw1234-run0001" and record.searched == PARAMS and record.status == "completed"
    assert list((workspace / "results" / "wandb").glob("offline-run-*-run0001"))  # logged as the agent's run

    monkeypatch.setenv("WANDB_MODE", "online")  # the fake agent left it offline
    cli("sweep", EXPERIMENT, *TINY, "--backend", "wandb", "--trials", "2")
    assert len(server.sweeps) == 1 and server.agents[1]["sweep_id"] == "sw1234"  # re-running joins the sweep


def test_the_command_wandb_agent_runs_trains_with_its_parameters_and_stops_on_sigterm(workspace):
    """The sweep's command as W&B's agent expands it (its own macro code) runs one trial and
    writes its record; W&B's early termination (SIGTERM) ends it as pruned after the epoch."""
    loaded = load_experiment(EXPERIMENT, preset="tiny")
    command = trial_command(EXPERIMENT, sweep=SWEEP, preset="tiny", synthetic=True, overrides=["train.epochs=200"])
    config = online_sweep_config(resolve_space(loaded), name=SWEEP, command=command, run_cap=2)
    sweep_vars = sweep_utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in PARAMS.items()}})
    sweep_vars.update(env=["/usr/bin/env"], interpreter=[sys.executable])  # W&B's agent puts "python" here
    argv = []
    for chunk in sweep_utils.create_sweep_command(config["command"]):
        argv += sweep_vars.get(chunk[2:-1], []) if chunk.startswith("${") else [chunk]
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SWEEP_ID": "sw1234", "WANDB_RUN_ID": "run0002"}
    trial = subprocess.Popen(argv, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = workspace / "results" / "runs" / EXPERIMENT / "sw1234-run0002" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and metrics.read_text().strip()) and trial.poll() is None:
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.1)
    trial.send_signal(signal.SIGTERM)
    output, _ = trial.communicate(timeout=240)
    assert trial.returncode == 0, output
    record = json.loads(metrics.with_name("record.json").read_text())
    assert record["searched"] == PARAMS and isinstance(record["searched"]["train.lr"], float)
    assert record["sweep"] == SWEEP and record["status"] == "pruned" and 1 <= record["epochs_run"] < 200


@pytest.mark.parametrize("mode, use_wandb", [("offline", True), ("disabled", True), ("online", False)])
def test_offline_modes_and_no_wandb_keep_the_sweep_local(logged_in, monkeypatch, mode, use_wandb):
    monkeypatch.setenv("WANDB_MODE", mode)
    assert not wandb_online(use_wandb)


def test_agent_trial_refuses_parameters_the_experiment_does_not_search(cli, workspace):
    out = cli("agent-trial", EXPERIMENT, *TINY, "--params", '{"train.epochs": 3}', expect=1).output
    assert "train.epochs is not a searched (null) field" in out and len(out.strip().splitlines()) == 1
