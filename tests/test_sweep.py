"""Sweeps end to end through the CLI: Optuna storage, resume, pruning, W&B offline, leaderboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import optuna
import pytest

from avbench.results.records import iter_records
from tests.conftest import AVBENCH, REPO, TINY, run_avbench
from tests.wandb_files import read_offline_run

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)


def finished_trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return optuna.load_study(study_name=study, storage=storage).get_trials(states=states)


def storage_url(workspace) -> str:
    return f"sqlite:///{(workspace / 'results' / 'studies' / 'spectrogram-cnn-cremad.db').resolve()}"


STUDY = "spectrogram-cnn-cremad-tiny-synthetic"


def test_sweep_resumes_logs_to_wandb_and_feeds_the_leaderboard(cli, workspace):
    cli("sweep", "spectrogram-cnn-cremad", *TINY, "--trials", "2")
    assert len(finished_trials(storage_url(workspace), STUDY)) == 2
    # Re-running the same command with a larger total adds exactly the missing trial.
    out = cli("sweep", "spectrogram-cnn-cremad", *TINY, "--trials", "3").output
    trials = finished_trials(storage_url(workspace), STUDY)
    assert len(trials) == 3 and "3 finished" in out
    # Every trial reported each epoch's validation metric to the pruner.
    for trial in trials:
        assert len(trial.intermediate_values) >= 1
    records = [r for r in iter_records(workspace / "results") if r.sweep == STUDY]
    assert sorted(r.trial for r in records) == [0, 1, 2]
    assert all(set(r.searched) == {"train.lr", "train.batch_size", "train.optimizer"} for r in records)
    # The feature cache is shared by the trials: only the first one decoded audio.
    first, *later = sorted(records, key=lambda r: r.trial)
    assert first.cache["decoded"] == sum(first.data_sizes.values())
    assert all(r.cache["decoded"] == 0 and r.cache["hit_rate"] == 1.0 for r in later)

    # W&B: one offline run per trial, grouped by the sweep, with config and per-epoch metrics.
    runs = sorted((workspace / "results" / "wandb").glob("offline-run-*"))
    assert len(runs) == 3
    logged = [read_offline_run(run) for run in runs]
    assert {entry["run"]["group"] for entry in logged} == {STUDY}
    assert {entry["run"]["id"] for entry in logged} == {r.wandb_run_id for r in records}
    for entry in logged:
        record = next(r for r in records if r.wandb_run_id == entry["run"]["id"])
        assert entry["config"]["train"]["lr"] == record.searched["train.lr"]
        epochs = [h["val/acc"] for h in entry["history"] if "val/acc" in h]  # the end-of-run tables log steps too
        assert epochs[: record.epochs_run] == [
            json.loads(line)["val/acc"]
            for line in (workspace / "results" / "runs" / record.experiment / record.run_id / "metrics.jsonl")
            .read_text()
            .splitlines()
        ]
        if record.status == "completed":
            assert entry["summary"]["test/acc"] == record.test["acc"]

    rows = json.loads(cli("leaderboard", "--format", "json").output)
    assert len(rows) == 1
    row = rows[0]
    for key in ("experiment", "task", "model", "n_trials", "val/acc", "test/acc", "test/uar", "test/macro_f1"):
        assert key in row
    assert row["n_trials"] == 3 and row["data"] == "synthetic"
    # Chosen on validation; a tie there goes to the lower validation loss (avbench.results.selection).
    best = max((r for r in records if r.status == "completed"), key=lambda r: (r.val["acc"], -r.val["loss"]))
    assert row["val/acc"] == best.val["acc"] and row["test/acc"] == best.test["acc"]
    md = cli("leaderboard", "--format", "md").output
    assert "| spectrogram-cnn-cremad | cremad |" in md
    csv_text = cli("leaderboard", "--format", "csv", "--task", "cremad").output
    assert csv_text.splitlines()[0].startswith("experiment,task,model")


# kill -9 is tested five times over in test_sweep_workers.py. Ctrl-C runs through the
# --workers parent, which passes it on to each worker process once (a lone worker is the same
# `avbench sweep --workers 1` command and handles it the same way). A sweep started with
# `nohup … &` ignores SIGINT (and so would its workers); it is stopped with kill (SIGTERM).
@pytest.mark.parametrize(
    ("sig", "sigint_at_start"),
    [(signal.SIGINT, signal.SIG_DFL), (signal.SIGTERM, signal.SIG_IGN)],
    ids=["ctrl-c", "kill-a-background-sweep"],
)
def test_a_sweep_killed_mid_trial_resumes_without_losing_or_double_counting(workspace, sig, sigint_at_start):
    args = (
        "sweep",
        "spectrogram-cnn-cremad",
        *TINY,
        "--trials",
        "3",
        "--no-wandb",
        "--set",
        "train.epochs=4",
        "--workers",
        "2",
    )
    proc = subprocess.Popen(
        [*AVBENCH, *args],
        cwd=workspace,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint_at_start),
    )
    runs = workspace / "results" / "runs" / "spectrogram-cnn-cremad"
    deadline = time.time() + 240
    # Stop it once the second trial has written an epoch checkpoint.
    while not (runs / f"t0001-{STUDY}" / "last.pt").exists():
        assert proc.poll() is None, "the sweep ended before it could be stopped"
        assert time.time() < deadline, "the second trial never wrote a checkpoint"
        time.sleep(0.2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    # SIGTERM is Ctrl-C with its own status (128 + 15), as schedulers expect.
    assert proc.returncode == (130 if sig == signal.SIGINT else 143) and "re-run the same command to resume" in stderr
    assert "Traceback" not in stderr
    study = optuna.load_study(study_name=STUDY, storage=storage_url(workspace))
    assert len(finished_trials(storage_url(workspace), STUDY)) < 3
    assert not [t for t in study.trials if t.state.name == "RUNNING"]  # each worker gave its trial back
    for worker in {t.user_attrs["worker"] for t in study.trials if "worker" in t.user_attrs}:
        with pytest.raises(ProcessLookupError):  # and no worker outlived the parent
            os.kill(int(worker.rsplit(":", 1)[1]), 0)

    done = run_avbench(*args, cwd=workspace, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = finished_trials(storage_url(workspace), STUDY)
    assert len(trials) == 3
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    assert sum(r.status in ("completed", "pruned") for r in records.values()) == 3
    killed = records[f"t0001-{STUDY}"]
    assert killed.status in ("completed", "pruned") and killed.resumed_from_epoch >= 1
    retried = next(t for t in trials if t.user_attrs.get("run_id") == killed.run_id)
    first_attempt = optuna.load_study(study_name=STUDY, storage=storage_url(workspace)).trials[1]
    assert retried.params == first_attempt.params and retried.number != first_attempt.number


def test_changing_the_config_under_a_study_is_refused(cli, workspace):
    cli("sweep", "spectrogram-cnn-cremad", *TINY, "--trials", "1", "--no-wandb")
    result = cli(
        "sweep", "spectrogram-cnn-cremad", *TINY, "--trials", "2", "--no-wandb", "--set", "data.n_mels=16", expect=1
    )
    assert "different config" in result.output and "--study" in result.output


def test_a_new_study_never_writes_into_an_old_run_directory(cli, workspace):
    cli("sweep", "spectrogram-cnn-cremad", *TINY, "--trials", "1", "--no-wandb")
    (workspace / "results" / "studies" / "spectrogram-cnn-cremad.db").unlink()
    cli("sweep", "spectrogram-cnn-cremad", *TINY, "--trials", "1", "--no-wandb")
    records = [r for r in iter_records(workspace / "results") if r.sweep == STUDY]
    assert len(records) == 2 and len({r.run_id for r in records}) == 2
    for record in records:
        lines = (workspace / "results" / "runs" / record.experiment / record.run_id / "metrics.jsonl").read_text()
        assert len(lines.splitlines()) == record.epochs_run
