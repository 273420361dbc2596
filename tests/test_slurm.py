"""`avbench sweep --launcher slurm` against a real one-node Slurm (tests/slurm.py): a 2-task
array shares one study and ends with exactly --trials trials; `--gpus-per-trial` gives each
task the GPU Slurm assigned it (stand-in devices), as its records say; a task warned of its time limit
(SIGUSR1, as `--signal=B:USR1@…` sends it) or cancelled with `scancel` loses nothing, its
trial resumed from its checkpoint; re-running the command joins the study. What the launcher
refuses is checked without Slurm."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from avbench.results.records import iter_records
from tests.conftest import TINY, run_avbench

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

STUDY = "spectrogram-cnn-cremad-tiny-synthetic"
RUNS = Path("results/runs/spectrogram-cnn-cremad")


def slurm_sweep(workspace: Path, cluster, journal: Path, *args: str, trials: int = 4) -> subprocess.CompletedProcess:
    return run_avbench(
        "sweep",
        "spectrogram-cnn-cremad",
        *TINY,
        "--no-wandb",
        "--launcher",
        "slurm",
        "--workers",
        "2",
        "--trials",
        str(trials),
        "--storage",
        str(journal),
        *args,
        cwd=workspace,
        env=cluster.env,
        timeout=400,
    )


def load_trials(journal: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=STUDY, storage=storage).trials


def finished_run_ids(trials) -> list[str]:
    return [t.user_attrs["run_id"] for t in trials if t.state.name in ("COMPLETE", "PRUNED")]


def wait_for_job(cluster, job_id: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while cluster.run("squeue", "-h", "-j", job_id).stdout.strip():
        assert time.time() < deadline, f"job {job_id} still queued"
        time.sleep(0.5)


def job_id_of(output: str) -> str:
    return output.split("submitted Slurm job ", 1)[1].split(":", 1)[0]


def test_a_two_task_array_ends_with_exactly_the_trials_asked_and_a_rerun_joins_the_study(workspace, slurm_cluster):
    journal = workspace / "shared" / "study.log"
    done = slurm_sweep(workspace, slurm_cluster, journal, "--set", "train.epochs=1", "--wait")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "submitted Slurm job" in done.stdout and "4 finished, 0 failed" in done.stdout
    assert "must be on a file system every node mounts" in done.stdout
    trials = load_trials(journal)
    assert len(trials) == 4 and len(set(finished_run_ids(trials))) == 4
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2  # both array tasks trained
    logs = sorted((workspace / "results" / "studies" / STUDY).glob("slurm-*_*.log"))
    assert [p.name.rsplit("_", 1)[1] for p in logs] == ["0.log", "1.log"]
    # The same command again joins the finished study: nothing more to train, nothing submitted.
    again = slurm_sweep(workspace, slurm_cluster, journal, "--set", "train.epochs=1")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert "already has 4 of 4 finished trials: nothing to submit" in again.stdout
    assert "submitted" not in again.stdout and len(load_trials(journal)) == 4


def test_gpus_per_trial_gives_each_task_its_own_gpu_and_each_record_says_which(workspace, slurm_cluster):
    """--gpus-per-trial 1 asks Slurm for a GPU per task (the fixture's node has two stand-in
    devices): each trial's record and its study entry carry the CUDA_VISIBLE_DEVICES Slurm gave."""
    journal = workspace / "shared" / "study.log"
    done = slurm_sweep(
        workspace, slurm_cluster, journal, "--gpus-per-trial", "1", "--set", "train.epochs=1", "--wait", trials=2
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "2 finished, 0 failed" in done.stdout
    trials = load_trials(journal)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # one trial in each array task
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    given = sorted(records[run_id].devices["visible"] for run_id in finished_run_ids(trials))
    assert given == [["0"], ["1"]]  # a GPU of its own for each task, as Slurm numbers them
    assert sorted([t.user_attrs["devices"]] for t in trials) == given


def running_trial_past_first_epoch(workspace: Path, journal: Path, skip: set[int]) -> optuna.trial.FrozenTrial | None:
    """A trial still training whose run has checkpointed an epoch, trained by a worker not in skip."""
    for trial in load_trials(journal):
        pid = int(str(trial.user_attrs.get("worker", ":0")).rpartition(":")[2])
        run_id = trial.user_attrs.get("run_id")
        if trial.state.name != "RUNNING" or not run_id or pid in skip:
            continue
        run = workspace / RUNS / run_id
        if (run / "last.pt").exists() and (run / "metrics.jsonl").exists():
            return trial
    return None


def array_task_of(pid: int) -> str:
    """The array task a worker process runs as (root reads any process's environment)."""
    env = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"


def interrupt_one_task(workspace: Path, cluster, journal: Path, scancel_args: list[str], skip: set[int]) -> int:
    """Wait for a trial past its first epoch, then signal its array task; the worker's pid."""
    deadline = time.time() + 300
    while (trial := running_trial_past_first_epoch(workspace, journal, skip)) is None:
        assert time.time() < deadline, "no trial reached its first checkpoint"
        time.sleep(0.05)
    pid = int(trial.user_attrs["worker"].rpartition(":")[2])
    done = cluster.run("scancel", *scancel_args, array_task_of(pid))
    assert done.returncode == 0, done.stderr
    return pid


def test_a_warned_and_a_cancelled_task_lose_nothing_and_a_rerun_finishes_the_study(workspace, slurm_cluster):
    journal = workspace / "shared" / "study.log"
    args = ("--set", "train.epochs=2", "--pruner", "none")
    submitted = slurm_sweep(workspace, slurm_cluster, journal, *args)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr
    job_id = job_id_of(submitted.stdout)
    # What Slurm sends before the time limit (--signal=B:USR1@…), then a plain scancel (SIGTERM).
    warned = interrupt_one_task(workspace, slurm_cluster, journal, ["--signal=USR1", "--batch"], set())
    interrupt_one_task(workspace, slurm_cluster, journal, [], {warned})
    wait_for_job(slurm_cluster, job_id)
    again = slurm_sweep(workspace, slurm_cluster, journal, *args, "--wait")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    trials = load_trials(journal)
    finished = finished_run_ids(trials)
    assert len(finished) == 4 and len(set(finished)) == 4
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == 2 and not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    for trial in failed:  # each interrupted trial was retried with its values and resumed from its checkpoint
        run_id = trial.user_attrs["run_id"]
        retry = next(t for t in trials if t.user_attrs.get("run_id") == run_id and t.state.name == "COMPLETE")
        assert retry.params == trial.params
        assert records[run_id].resumed_from_epoch >= 1 and records[run_id].status == "completed"
        epochs = [
            json.loads(line)["epoch"] for line in (workspace / RUNS / run_id / "metrics.jsonl").read_text().splitlines()
        ]
        assert epochs == [1, 2]
    logs = list((workspace / "results" / "studies" / STUDY).glob(f"slurm-{job_id}_*.log"))
    assert any("the Slurm time limit is near" in log.read_text() for log in logs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--launcher slurm: SQLite"),
        (("--storage", "study.log", "--slurm", "array=0-9"), "--slurm array: avbench sets it"),
        (("--storage", "study.log", "--slurm", "cpus-per-task=4"), "(use --threads)"),
        (("--storage", "study.log", "--slurm", "bad key"), "write an sbatch option as KEY=VALUE"),
        (("--storage", "study.log", "--time", "soon"), "--time soon: write HH:MM:SS"),
        (("--storage", "study.log", "--backend", "wandb"), "cannot share a study between workers"),
    ],
)
def test_what_the_slurm_launcher_refuses_in_one_line(cli, workspace, args, message):
    result = cli("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--launcher", "slurm", *args, expect=1)
    assert message in result.output and "Traceback" not in result.output
    assert not (workspace / "results" / "studies").exists()  # refused before any study was made


@pytest.mark.parametrize("option", [("--partition", "gpu"), ("--wait",), ("--slurm", "mem=1G"), ("--time", "1:00:00")])
def test_slurm_options_need_the_slurm_launcher(cli, option):
    result = cli("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", *option, expect=1)
    assert f"{option[0]} is an option of --launcher slurm" in result.output


@pytest.mark.parametrize(
    ("limit", "seconds", "lead"),
    [(None, None, 120), ("30", 1800, 120), ("4:00", 240, 60), ("1:30:00", 5400, 120), ("2-12", 216000, 120)],
)
def test_time_limits_read_as_sbatch_reads_them_and_the_warning_fits_inside(limit, seconds, lead):
    from avbench.sweep.launch.slurm import signal_lead, time_limit_seconds

    assert time_limit_seconds(limit) == seconds
    assert signal_lead(limit) == lead


def test_the_job_script_asks_for_gpus_per_task_exports_avbench_settings_and_execs_the_worker(tmp_path, monkeypatch):
    from avbench.sweep.core import SweepRequest
    from avbench.sweep.launch.slurm import SlurmOptions, job_directives, job_environment, job_script

    monkeypatch.setenv("AVBENCH_DATA", "/data with space")
    monkeypatch.setenv("HOME_SECRET", "not exported by the script")
    request = SweepRequest(experiment="x", workers=3, threads=8, gpus_per_trial=2, launcher="slurm")
    options = SlurmOptions(partition="gpu", time="1:00:00", extra=("mem=16G", "exclusive"))
    directives = job_directives(request, options, name="study", log_pattern=tmp_path / "slurm-%A_%a.log")
    assert "--array=0-2" in directives and "--cpus-per-task=8" in directives
    assert "--ntasks=1" in directives and "--gpus-per-task=2" in directives
    assert "--signal=B:USR1@120" in directives and "--partition=gpu" in directives and "--time=1:00:00" in directives
    assert directives[-2:] == ["--mem=16G", "--exclusive"]
    script = job_script(directives, job_environment(), ["python", "-m", "avbench", "sweep", "x"])
    assert "export AVBENCH_DATA='/data with space'" in script and "HOME_SECRET" not in script
    assert script.splitlines()[-1] == "exec python -m avbench sweep x"
