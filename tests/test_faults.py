"""Faults a user or the machine causes end in one line, lose nothing and heal: stand-ins never
write over other files, damaged records are reported, a full disk fails the run cleanly (no
temporary files left), damaged cache shards are rebuilt, and `avbench cache` verifies and prunes."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from avbench.registry import TASKS
from tests.conftest import AVBENCH, REPO, run_avbench

MLP_VALUES = (
    *("--set", "train.lr=0.01", "--set", "train.batch_size=16", "--set", "train.optimizer=adam"),
    *("--set", "model_args.dropout=0.1", "--set", "train.weight_decay=0"),
)
MLP_RUN = ("run", "mel-stats-mlp-cremad", "--preset", "tiny", "--synthetic", "--no-wandb", *MLP_VALUES)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("task", TASKS.names())
def test_a_standin_never_writes_into_a_folder_holding_other_files(tmp_path, task):
    """Every task's writer refuses a folder without the marker that holds anything, wherever it is."""
    out = tmp_path / "data"
    precious = out / "VideoFlash" / "mine.flv"  # not where every task writes: the guard looks at all
    precious.parent.mkdir(parents=True)
    precious.write_bytes(b"user data")
    from avbench.cli import cli

    result = CliRunner().invoke(cli, ["data", "synth", task, "--out", str(out), "--size", "tiny"])
    assert result.exit_code == 1 and "refusing" in result.output, result.output
    assert precious.read_bytes() == b"user data"
    assert sorted(p.name for p in out.rglob("*")) == ["VideoFlash", "mine.flv"]


def test_a_second_standin_keeps_a_file_the_user_dropped_into_it(tmp_path, standin):
    out = tmp_path / "cremad"
    shutil.copytree(standin("cremad"), out)
    dropped = out / "VideoFlash" / "1001_DFA_ANG_XX.flv"  # a name the stand-in itself writes
    dropped.write_bytes(b"the user's own video")
    extra = out / "processedResults" / "notes.csv"
    extra.write_text("mine\n")
    from avbench.cli import cli

    result = CliRunner().invoke(cli, ["data", "synth", "cremad", "--out", str(out), "--size", "tiny"])
    assert result.exit_code == 1 and "was not written by the synthetic stand-in" in result.output, result.output
    assert extra.read_text() == "mine\n"
    # the manifest knew the .flv name, but not this content: it is the stand-in's own file, rewritten only
    # when nothing foreign is there; remove the foreign file and the rewrite goes through.
    extra.unlink()
    result = CliRunner().invoke(cli, ["data", "synth", "cremad", "--out", str(out), "--size", "tiny"])
    assert result.exit_code == 0, result.output
    marker = json.loads((out / ".avbench-synthetic").read_text())
    assert "VideoFlash/1001_DFA_ANG_XX.flv" in marker["files"] and not marker.get("writing")


def test_the_leaderboard_and_its_export_say_which_records_they_skipped(workspace):
    good = workspace / "results" / "runs" / "exp" / "good" / "record.json"
    good.parent.mkdir(parents=True)
    record = {
        "run_id": "good",
        "experiment": "exp",
        "task": "cremad",
        "model": "mel-stats-mlp",
        "status": "completed",
        "val": {"acc": 0.5},
        "test": {"acc": 0.4, "uar": 0.4, "macro_f1": 0.3},
    }
    good.write_text(json.dumps(record))
    damaged = good.parents[1] / "cut" / "record.json"
    damaged.parent.mkdir()
    damaged.write_text(json.dumps(record)[:40])
    for args in (["leaderboard"], ["leaderboard", "--format", "json"]):
        result = run_avbench(*args, cwd=workspace)
        assert result.returncode == 0, result.stderr
        assert f"skipped a damaged run record: {damaged}" in result.stderr
        assert "not valid JSON" in result.stderr
        assert "mel-stats-mlp" in result.stdout
    assert json.loads(run_avbench("leaderboard", "--format", "json", cwd=workspace).stdout)[0]["run_id"] == "good"


def test_bad_input_and_machine_faults_are_one_line(workspace):
    not_utf8 = workspace / "latin1.yaml"
    not_utf8.write_bytes("task: cremad\nmodel: mel-stats-mlp\n# Grüße\n".encode("latin-1"))
    assert_one_line_error(run_avbench("run", str(not_utf8), cwd=workspace), "latin1.yaml", "not UTF-8")
    blocker = workspace / "a-file"
    blocker.write_text("")
    out = run_avbench("data", "synth", "esc10", "--out", str(blocker / "x"), "--size", "tiny", cwd=workspace)
    assert_one_line_error(out, "not a directory", str(blocker / "x"))
    garbage = workspace / "study.log"
    garbage.write_text("this is not a journal\n")
    sweep = run_avbench(
        "sweep",
        "mel-stats-mlp-cremad",
        "--storage",
        str(garbage),
        "--trials",
        "1",
        "--no-wandb",
        "--synthetic",
        "--preset",
        "tiny",
        cwd=workspace,
    )
    assert_one_line_error(sweep, str(garbage), "not an Optuna journal")
    debug = run_avbench("--debug", "run", str(not_utf8), cwd=workspace)
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # --debug lets every traceback through
    assert "Traceback" in run_avbench("run", str(not_utf8), cwd=workspace, env={"AVBENCH_DEBUG": "1"}).stderr


def _file_size_limit(limit_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


# The runs that only set a test up (the stand-in, the feature cache) and the cache commands run
# in-process: they are not what the test is about, and each subprocess pays torch's start-up.
def test_a_full_disk_fails_the_run_in_one_line_and_leaves_no_temporary_files(cli, workspace):
    cli(*MLP_RUN)  # the stand-in and the feature cache exist now
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [*AVBENCH, *MLP_RUN],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        preexec_fn=_file_size_limit(8 << 10),
    )  # a record fits, a checkpoint does not
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    runs = sorted((workspace / "results" / "runs" / "mel-stats-mlp-cremad").iterdir())
    failed = json.loads((runs[-1] / "record.json").read_text())
    assert failed["status"] == "failed"
    assert failed["error"].startswith("file too large") and failed["error"].endswith(".pt"), failed["error"]
    assert not list((workspace / "results").rglob("*.tmp"))


def test_a_damaged_cache_shard_is_reported_once_and_rebuilt(cli, workspace):
    cli(*MLP_RUN)
    shards = sorted((workspace / "results" / "cache" / "features").glob("*/*.npy"))
    with open(shards[0], "r+b") as handle:
        handle.truncate(100)
    rerun = run_avbench(*MLP_RUN, cwd=workspace)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr.count("rebuilding") == 1 and f"{shards[0]} damaged" in rerun.stderr, rerun.stderr
    again = run_avbench(*MLP_RUN, cwd=workspace)
    assert again.returncode == 0 and "rebuilding" not in again.stderr
    cli("cache", "verify")


def test_cache_verify_finds_a_flipped_byte_and_prune_keeps_what_experiments_use(cli, workspace):
    cli(*MLP_RUN)
    root = workspace / "results" / "cache" / "features"
    shard = sorted(root.glob("*/*.npy"))[0]
    content = bytearray(shard.read_bytes())
    content[-1] ^= 0xFF  # same length: only the checksum can tell
    shard.write_bytes(bytes(content))
    assert "checksum mismatch" in cli("cache", "verify", expect=1).output
    cli("cache", "verify", "--repair")
    assert not shard.exists()
    cli("cache", "verify")
    stale = root / "logmel-0123456789abcdef"
    stale.mkdir()
    (stale / "settings.json").write_text("{}")
    listing = cli("cache", "ls").output
    assert stale.name in listing and shard.parent.name in listing
    assert cli("cache", "prune").output.startswith("0 unused")  # used within --keep-days
    pruned = cli("cache", "prune", "--keep-days", "0").output
    assert not stale.exists() and shard.parent.exists(), pruned


def test_a_bad_sweep_range_is_blamed_on_its_own_parameter(cli, workspace):
    """The first searched field (model_args.dropout) has a good range; only weight_decay's is bad."""
    space = workspace / "space.yaml"
    space.write_text(
        "method: random\nmetric: {name: val/acc, goal: maximize}\nparameters:\n"
        "  model_args.dropout: {min: 0.0, max: 0.5}\n  train.weight_decay: {min: -1.0, max: 0.1}\n"
    )
    result = cli("sweep", "mel-stats-mlp-cremad", "--sweep-config", str(space), "--dry-run", expect=1)
    assert "sweep range for 'train.weight_decay' allows -1.0" in result.output, result.output
