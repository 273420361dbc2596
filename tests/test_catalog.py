"""Experiments from anywhere: the search order, shadowing, derived pairs, `avbench new` and
`avbench sweep --task/--model`."""

from __future__ import annotations

import os

import pytest
import yaml

from avbench.catalog import experiment_files, load_experiment
from avbench.errors import ConfigError
from avbench.registry import MODELS
from tests.conftest import BUILTIN, TINY

BUILTINS = sorted(path.stem for path in (BUILTIN / "experiments").glob("*.yaml"))


def _listed(output: str) -> dict[str, str]:
    """`list experiments` rows: name → where it comes from (header and footer dropped)."""
    lines = output.splitlines()[1:-1]
    return {line.split()[0]: line.split(None, 1)[1] for line in lines}


def test_builtins_are_found_from_a_folder_without_experiments(cli, workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "experiments")  # a folder with no experiments/ below it
    rows = _listed(cli("list", "experiments").output)
    assert sorted(rows) == BUILTINS and set(rows.values()) == {"built-in"}
    assert load_experiment("perceiver-cremad").source == "built-in experiments/perceiver-cremad.yaml"


def test_a_user_file_comes_first_and_says_what_it_shadows(cli, workspace):
    text = (BUILTIN / "experiments" / "spectrogram-cnn-cremad.yaml").read_text()
    (workspace / "experiments" / "spectrogram-cnn-cremad.yaml").write_text(text.replace("epochs: 20", "epochs: 7"))
    (workspace / "experiments" / "mine.yaml").write_text(text)
    rows = _listed(cli("list", "experiments").output)
    assert rows["spectrogram-cnn-cremad"] == "./experiments (shadows built-in)"
    assert rows["mine"] == "./experiments" and rows["perceiver-cremad"] == "built-in"
    assert load_experiment("spectrogram-cnn-cremad").config.train.epochs == 7


def test_project_folders_come_between_the_working_directory_and_the_builtins(cli, workspace, tmp_path, monkeypatch):
    text = (BUILTIN / "experiments" / "mel-stats-mlp-cremad.yaml").read_text()
    env_dir, option_dir = tmp_path / "from-env", tmp_path / "from-option"
    for folder, epochs in ((env_dir, 5), (option_dir, 6)):
        (folder / "experiments").mkdir(parents=True)
        (folder / "experiments" / "mel-stats-mlp-cremad.yaml").write_text(
            text.replace("epochs: 30", f"epochs: {epochs}")
        )
    monkeypatch.setenv("AVBENCH_EXPERIMENTS", str(env_dir))
    assert load_experiment("mel-stats-mlp-cremad").config.train.epochs == 5
    rows = _listed(cli("--experiments", str(option_dir), "list", "experiments").output)
    assert rows["mel-stats-mlp-cremad"] == f"{option_dir} (shadows {env_dir})"
    assert os.environ["AVBENCH_EXPERIMENTS"] == str(env_dir)  # the option is undone when the command ends
    (workspace / "experiments" / "mel-stats-mlp-cremad.yaml").write_text(text)
    assert load_experiment("mel-stats-mlp-cremad").config.train.epochs == 30


def test_a_project_folder_without_experiments_is_one_line(cli, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("AVBENCH_EXPERIMENTS", str(tmp_path / "empty"))
    result = cli("list", "experiments", expect=1)
    assert "has no experiments/ folder" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_pair_without_a_file_is_derived_and_a_file_overrides_it(workspace):
    assert "mel-stats-mlp-esc50" not in {entry.name for entry in experiment_files()}
    derived = load_experiment("mel-stats-mlp-esc50", preset="tiny")
    declared = MODELS.get("mel-stats-mlp").search
    assert derived.source == "derived" and set(declared) <= set(derived.searched)
    assert "train.lr" in derived.searched and derived.config.data.synth_size == "tiny"
    assert "cpu" in load_experiment("mel-stats-mlp-esc50").raw["presets"]
    (workspace / "experiments" / "mel-stats-mlp-esc50.yaml").write_text("task: esc50\nmodel: mel-stats-mlp\n")
    assert load_experiment("mel-stats-mlp-esc50").searched == []


def test_incompatible_and_unknown_names_are_one_line(cli):
    video_model = next(m for m in MODELS.names() if "video" in MODELS.get(m).modalities)
    assert f"model '{video_model}' needs video" in cli("run", f"{video_model}-esc50", expect=1).output
    with pytest.raises(ConfigError, match="did you mean 'mel-stats-mlp-esc10'"):
        load_experiment("mel-stats-mlp-esc1")


def test_matrix_lists_every_cell(cli):
    from avbench.derived import matrix

    out = cli("list", "experiments", "--matrix").output
    cells = matrix()
    counts = {kind: sum(cell.kind == kind for cell in cells) for kind in ("file", "derived", "incompatible")}
    assert f"{counts['file']} from files, {counts['derived']} derived, {counts['incompatible']} incompatible" in out
    # A cell is <model>-<task>; other files of the same pair (probe-whisper-cremad) are experiments beside it.
    files = {path.stem: yaml.safe_load(path.read_text()) for path in (BUILTIN / "experiments").glob("*.yaml")}
    named = [name for name, raw in files.items() if name == f"{raw['model']}-{raw['task']}"]
    assert counts["derived"] > 0 and counts["file"] == len(named)
    assert all(model in out for model in MODELS.names())


def test_new_writes_a_starter_that_sweep_accepts(cli, workspace):
    from avbench.sweep.space import resolve_space

    out = cli("new", "my-vit", "--model", "spectrogram-vit", "--task", "esc50").output
    experiment = workspace / "experiments" / "my-vit.yaml"
    sweep = workspace / "sweeps" / "my-vit.yaml"
    assert f"wrote {experiment.relative_to(workspace)}" in out
    text = experiment.read_text()
    assert "patch_size: null  # searched" in text and "# other model_args" in text
    loaded = load_experiment("my-vit")
    space = resolve_space(loaded)
    assert space.source == "sweeps/my-vit.yaml" and set(space.params) == set(loaded.searched)
    assert set(MODELS.get("spectrogram-vit").search) <= set(yaml.safe_load(sweep.read_text())["parameters"])
    refused = cli("new", "my-vit", "--model", "spectrogram-vit", "--task", "esc50", expect=1).output
    assert "exists; not overwriting" in refused
    assert (
        "did you mean 'spectrogram-vit'"
        in cli("new", "x", "--model", "spectrogram-vitt", "--task", "esc50", expect=1).output
    )
    assert "did you mean 'esc50'" in cli("new", "x", "--model", "spectrogram-vit", "--task", "esc5O", expect=1).output


def test_sweep_over_a_row_and_a_column_resumes_as_one_benchmark(cli, workspace):
    from avbench.results.records import iter_records

    args = ("sweep", "--model", "mel-stats-mlp", "--task", "esc50", *TINY, "--no-wandb", "--trials", "1")
    first = cli(*args, "--set", "train.epochs=1").output
    assert "benchmark: 1 experiment(s): mel-stats-mlp-esc50" in first
    again = cli(*args, "--set", "train.epochs=1").output
    assert "1 finished" in again
    records = [r for r in iter_records(workspace / "results") if r.experiment == "mel-stats-mlp-esc50"]
    assert len(records) == 1 and records[0].status == "completed"  # the re-run trained nothing new
    assert "not both" in cli("sweep", "mel-stats-mlp-esc50", "--task", "esc50", expect=2).output


def test_a_row_lists_the_files_and_the_derived_pairs(workspace):
    from avbench.derived import experiments_of, incompatibility
    from avbench.registry import TASKS

    row = experiments_of(model="mel-stats-mlp")
    assert row == [f"mel-stats-mlp-{t}" for t in TASKS.names() if incompatibility("mel-stats-mlp", t) is None]
    column = experiments_of(task="esc50")
    assert "mel-stats-mlp-esc50" in column and all(name.endswith("-esc50") for name in column)


def test_listing_experiments_imports_no_torch(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom avbench.cli import cli\n"
        "r = CliRunner().invoke(cli, ['list', 'experiments'])\nassert r.exit_code == 0, r.output\n"
        "print([m for m in ('torch', 'optuna', 'wandb', 'timm') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(BUILTIN.parents[1])}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_derived_experiment_dry_runs_and_says_where_its_nulls_come_from(cli):
    out = cli("sweep", "mel-stats-mlp-esc50", *TINY, "--dry-run", "--set", "train.weight_decay=null").output
    assert "model 'mel-stats-mlp' default" in out  # model_args.dropout's range
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "derived" in rows["model_args.dropout"] and "--preset / --set" in rows["train.weight_decay"]
