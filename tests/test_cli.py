"""The CLI as users meet it: listing, validation, one-line errors, and a light start-up."""

from __future__ import annotations

import click
import pytest

from avbench.config import DataConfig, EvaluationConfig
from tests.conftest import run_avbench


def test_list_commands(cli):
    assert "spectrogram-cnn-cremad" in cli("list", "experiments").output
    assert "cremad" in cli("list", "tasks").output.split()
    assert "spectrogram-cnn" in cli("list", "models").output.split()


def test_list_models_shows_modalities_and_the_real_parameter_count(cli):
    import torch

    from avbench.catalog import load_experiment
    from avbench.model_info import describe_models, format_count
    from avbench.registry import MODELS

    rows = {line.split()[0]: line for line in cli("list", "models").output.splitlines()[1:] if line.strip()}
    infos = {info.name: info for info in describe_models()}
    assert set(rows) == set(MODELS.names()) == set(infos)
    # Only the project's models: other tests register probes of their own in this process.
    infos = {name: info for name, info in infos.items() if MODELS.get(name).__module__.startswith("avbench.models")}
    for name, info in infos.items():
        assert info.params, f"{name}: no parameter count (no experiment uses it, or it failed to build)"
        assert format_count(info.params) in rows[name] and "audio (" in rows[name]
        if "video" in MODELS.get(name).modalities:
            assert "+ video" in rows[name]
    # The meta-device count is the count of the model a run builds.
    from avbench.data.dataset import example_shapes
    from avbench.preflight import check_model_args, with_model_inputs
    from avbench.spec import TaskSpec

    experiment = with_model_inputs(load_experiment("spectrogram-cnn-cremad").config)
    spec = TaskSpec(num_classes=6, shapes=example_shapes(experiment.data))
    built = MODELS.get("spectrogram-cnn")(spec, **check_model_args(experiment))
    assert infos["spectrogram-cnn"].params == sum(p.numel() for p in built.parameters())
    assert torch.get_default_device().type == "cpu"  # listing left no meta default behind


def test_validate_passes_on_the_repo_experiments(cli):
    out = cli("validate").output
    assert "✓ spectrogram-cnn-cremad" in out and "train.lr" in out


def test_validate_exits_1_and_names_the_problem(cli, workspace):
    (workspace / "experiments" / "broken.yaml").write_text("task: cremad\nmodel: spectrogram-cnn\ntrain: {lr: x}\n")
    result = cli("validate", expect=1)
    assert "✗ broken" in result.output and "train.lr" in result.output
    assert "✓ spectrogram-cnn-cremad" in result.output


BAD_INPUTS = {
    "unknown experiment": (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"),
    "unknown key": (["run", "spectrogram-cnn-cremad", "--set", "train.lrr=0.1"], "train.lrr"),
    "wrong type": (["run", "spectrogram-cnn-cremad", "--set", "train.epochs=lots"], "train.epochs"),
    "nulls left": (["run", "spectrogram-cnn-cremad"], "train.batch_size, train.lr, train.optimizer"),
    "missing dataset": (
        [
            "run",
            "spectrogram-cnn-cremad",
            "--set",
            "train.lr=0.1",
            "--set",
            "train.batch_size=4",
            "--set",
            "train.optimizer=adam",
            "--set",
            "data.root=nowhere",
        ],
        "--synthetic",
    ),
    "malformed yaml": (["run", "experiments/malformed.yaml"], "malformed"),
    "unknown model": (["run", "experiments/typo-model.yaml"], "did you mean 'spectrogram-cnn'"),
    "unknown model arg": (
        [
            "run",
            "spectrogram-cnn-cremad",
            "--set",
            "model_args.widht=2",
            "--set",
            "train.lr=0.1",
            "--set",
            "train.batch_size=4",
            "--set",
            "train.optimizer=adam",
            "--synthetic",
        ],
        "did you mean 'width'",
    ),
    "bad preset": (["sweep", "spectrogram-cnn-cremad", "--preset", "huge"], "no preset 'huge'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line(case, workspace):
    (workspace / "experiments" / "malformed.yaml").write_text("task: cremad\nmodel: [spectrogram-cnn\n")
    (workspace / "experiments" / "typo-model.yaml").write_text("task: cremad\nmodel: spectrogram-cn\n")
    args, expected = BAD_INPUTS[case]
    proc = run_avbench(*args, cwd=workspace)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]


def test_data_synth_writes_the_cremad_layout(cli, workspace):
    out = workspace / "synth"
    result = cli("data", "synth", "cremad", "--out", str(out), "--size", "tiny")
    assert "AudioWAV" in result.output
    wavs = sorted((out / "AudioWAV").glob("*.wav"))
    assert len(wavs) >= 60 and wavs[0].name[:4].isdigit()


def test_list_tasks_shows_every_registered_task(cli):
    listed = cli("list", "tasks").output.split()
    assert listed == sorted(listed)
    assert {"audiofolder", "commands", "cremad", "esc10", "esc50", "ravdess"} <= set(listed)


def test_options_that_default_to_the_schema_read_existing_fields():
    """Every SchemaDefault option names a schema field (a renamed field fails here, not in use)."""
    from avbench.cli import cli as group
    from avbench.cli.support import SchemaDefault

    def commands(command):
        yield command
        for sub in getattr(command, "commands", {}).values():
            yield from commands(sub)

    options = [p for c in commands(group) for p in c.params if isinstance(p, SchemaDefault)]
    assert {option.schema_field for option in options} >= {"data.synth_size", "data.fold", "evaluation.lr"}
    with click.Context(group) as ctx:
        defaults = {option.schema_field: option.get_default(ctx) for option in options}
    assert defaults["evaluation.lr"] == EvaluationConfig().lr
    assert defaults["data.clip_below"] == tuple(DataConfig().clip_below)
