"""Combinations a model cannot be built with (spectrogram-vit: image not divisible by the patch,
16 patches or fewer, dim not divisible by heads) are refused before any data is read:
`avbench run` in one line, sweeps (Optuna and W&B) by skipping them untrained, uncounted, and
still finishing with exactly N real trials."""

from __future__ import annotations

import json
import re

import optuna
import pytest

from avbench.errors import InfeasibleConfig
from avbench.registry import MODELS
from avbench.results.records import iter_records
from avbench.sweep.samplers import VAL_EXAMPLES
from tests.conftest import BUILTIN, REPO
from tests.test_models import fake_batch, tiny_spec

VIT = "spectrogram-vit-cremad"
TINY = ("--preset", "tiny", "--synthetic", "--no-wandb")
# The tiny preset's 32-mel log-mel resized to 32 x 64: patch 8 gives 32 patches; 16 gives 8 and
# 32 gives 2 (too few), 64 does not divide 32; with head_dim 0, dim 32 splits into 2 heads but not 3. One in four
# suggestions can be built.
SMALL = ("--set", "model_args.spectrogram_size=[32, 64]", "--set", "model_args.head_dim=0", "--set", "train.epochs=1")
SPACE = """
method: {method}
metric: {{name: val/acc, goal: maximize}}
parameters:
  model_args.patch_size: {{values: [8, 16, 32, 64]}}
  model_args.heads: {{values: [2, 3]}}
  model_args.depth: {{value: 1}}
  model_args.dim: {{value: 32}}
  model_args.mlp_dim: {{value: 64}}
  train.lr: {{value: 0.001}}
  train.batch_size: {{value: 32}}
"""
FEASIBLE = {"model_args.patch_size": 8, "model_args.heads": 2}


def vit_args(**changes) -> dict:
    return {
        "spectrogram_size": [32, 64],
        "patch_size": 8,
        "dim": 32,
        "heads": 2,
        "head_dim": 0,
        "depth": 1,
        "mlp_dim": 64,
        **changes,
    }


def test_the_vit_check_names_what_cannot_be_built():
    check, spec = MODELS.get("spectrogram-vit").check, tiny_spec("spectrogram-vit")
    check(spec, **vit_args())
    with pytest.raises(InfeasibleConfig, match="32x64 is not divisible by patch_size 12"):
        check(spec, **vit_args(patch_size=12))
    with pytest.raises(InfeasibleConfig, match="gives 8 patches; a ViT needs more than 16"):
        check(spec, **vit_args(patch_size=16))
    with pytest.raises(InfeasibleConfig, match="dim 32 is not divisible by heads 3"):
        check(spec, **vit_args(heads=3))
    check(spec, **vit_args(heads=3, head_dim=16))  # vit-pytorch's way: heads of a fixed width


def test_head_dim_and_mlp_dim_are_built_as_asked():
    spec = tiny_spec("spectrogram-vit")
    model = MODELS.get("spectrogram-vit")(spec, **vit_args(heads=3, head_dim=16, dim=48, mlp_dim=100))
    block = model.vit.blocks[0]
    assert block.attn.qkv.out_features == 3 * 3 * 16 and block.mlp.fc1.out_features == 100
    assert model(fake_batch(spec)).shape == (3, spec.num_classes)
    with pytest.raises(InfeasibleConfig):  # the factory checks too, for direct callers
        MODELS.get("spectrogram-vit")(spec, **vit_args(patch_size=16))


def test_run_with_an_infeasible_combination_is_one_line_and_reads_no_data(cli, workspace):
    sets = [
        f"--set=model_args.{k}={v}"
        for k, v in (("patch_size", 16), ("heads", 2), ("depth", 1), ("dim", 32), ("mlp_dim", 64))
    ]
    result = cli("run", VIT, *TINY, *SMALL, *sets, "--set=train.lr=0.001", "--set=train.batch_size=32", expect=1)
    assert "gives 8 patches; a ViT needs more than 16" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (workspace / "results").exists()  # no run record, no feature cache


def _sweep_file(workspace, method: str) -> str:
    path = workspace / "sweeps" / "infeasible.yaml"
    path.write_text(SPACE.format(method=method))
    return str(path)


def _records(workspace, sweep: str):
    return [r for r in iter_records(workspace / "results") if r.sweep == sweep]


def test_optuna_sweep_skips_infeasible_suggestions_and_finishes_exactly_n_trials(cli, workspace):
    sweep_file = _sweep_file(workspace, "random")
    out = cli("sweep", VIT, *TINY, *SMALL, "--sweep-config", sweep_file, "--trials", "2").output
    study = optuna.load_study(
        study_name=f"{VIT}-tiny-synthetic", storage=f"sqlite:///{workspace / 'results' / 'studies' / f'{VIT}.db'}"
    )
    trials = study.get_trials()
    infeasible = [t for t in trials if "infeasible" in t.user_attrs]
    real = [t for t in trials if "infeasible" not in t.user_attrs]
    assert len(real) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in real)
    assert all({k: t.params[k] for k in FEASIBLE} == FEASIBLE for t in real)
    assert infeasible, "the seeded sampler should have drawn some infeasible combinations"
    for trial in infeasible:
        # Pruned with a violated constraint: TPE ranks it below every feasible trial.
        assert trial.state == optuna.trial.TrialState.PRUNED and trial.constraints == {"infeasible": 1.0}
        assert re.search("patches; a ViT needs|not divisible by", trial.user_attrs["infeasible"])
        assert not trial.intermediate_values
    assert f"2 finished, 0 failed, {len(infeasible)} infeasible (skipped untrained)" in out
    assert "infeasible, skipped untrained" in out
    # Only real trials leave run records, so only they reach the leaderboard.
    records = _records(workspace, f"{VIT}-tiny-synthetic")
    assert sorted(r.trial for r in records) == sorted(t.number for t in real)
    # Each trial tells the pruner how many validation clips its metric stands on.
    by_number = {r.trial: r for r in records}
    assert all(t.user_attrs[VAL_EXAMPLES] == by_number[t.number].data_sizes["val"] > 0 for t in real)
    assert all(r.val["examples"] == r.data_sizes["val"] and r.test["examples"] == r.data_sizes["test"] for r in records)
    rows = json.loads(cli("leaderboard", "--format", "json").output)
    assert rows[0]["n_trials"] == 2
    shown = cli("show", VIT, "--no-plots").output
    assert f"{len(infeasible)} infeasible" in shown and "skipped untrained, infeasible" in shown
    # Resuming with a larger budget adds exactly one more real trial.
    cli("sweep", VIT, *TINY, *SMALL, "--sweep-config", sweep_file, "--trials", "3")
    assert len(_records(workspace, f"{VIT}-tiny-synthetic")) == 3


def test_infeasible_suggestions_neither_break_nor_extend_the_failure_streak():
    """Every backend counts with core.Streaks: 3 failed trials in a row stop a sweep even
    with infeasible suggestions between them; a finished trial ends the streak."""
    from avbench.errors import AvbenchError
    from avbench.sweep.core import Streaks

    streaks = Streaks()
    for status in ("failed", "infeasible", "failed", "completed", "failed", "infeasible", "failed", "infeasible"):
        streaks.after(status, "reason")
    assert (streaks.failures, streaks.infeasible) == (2, 1)
    with pytest.raises(AvbenchError, match="3 trials in a row failed; last: nan loss"):
        streaks.after("failed", "nan loss")


def test_a_space_with_nothing_feasible_stops_with_one_line(cli, workspace, monkeypatch):
    from avbench.sweep import core

    monkeypatch.setattr(core, "MAX_CONSECUTIVE_INFEASIBLE", 10)  # 100 by default
    path = workspace / "sweeps" / "nothing.yaml"
    path.write_text(SPACE.format(method="random").replace("[8, 16, 32, 64]", "[16, 32]"))
    out = cli("sweep", VIT, *TINY, *SMALL, "--sweep-config", str(path), "--trials", "1", expect=1).output
    assert "10 suggestions in a row could not be built" in out and "narrow the sweep's ranges" in out
    assert not list((workspace / "results").glob("runs/*/*"))


def test_wandb_sweep_skips_infeasible_suggestions_and_finishes_exactly_n_trials(cli, workspace):
    sweep = f"{VIT}-tiny-synthetic-wandb"
    out = cli(
        "sweep",
        VIT,
        *TINY,
        *SMALL,
        "--backend",
        "wandb",
        "--sweep-config",
        _sweep_file(workspace, "random"),
        "--trials",
        "2",
    ).output
    state = json.loads((workspace / "results" / "wandb-sweeps" / f"{sweep}.json").read_text())
    real = [run for run in state["runs"] if run["status"] != "infeasible"]
    infeasible = [run for run in state["runs"] if run["status"] == "infeasible"]
    assert [run["status"] for run in real] == ["completed", "completed"]
    assert infeasible and all(run["state"] == "failed" and run["error"] for run in infeasible)
    assert f"2 finished, 0 failed, {len(infeasible)} infeasible (skipped untrained)" in out
    records = _records(workspace, sweep)
    assert sorted(r.trial for r in records) == sorted(run["index"] for run in real)
    assert all({k: r.searched[k] for k in FEASIBLE} == FEASIBLE for r in records)


def _experiments_and_presets() -> list[tuple[str, str | None]]:
    import yaml

    return [
        (path.stem, preset)
        for path in sorted((BUILTIN / "experiments").glob("*.yaml"))
        for preset in (None, *(yaml.safe_load(path.read_text()).get("presets") or {}))
    ]


@pytest.mark.parametrize("name, preset", _experiments_and_presets())
def test_the_middle_of_every_sweep_space_can_be_built(name, preset, monkeypatch):
    """Dry-run estimates, the end-to-end test and the fit() benchmark build the middle of the
    space; a preset whose middle is infeasible would break them."""
    from avbench.catalog import load_experiment
    from avbench.preflight import check_feasible
    from avbench.sweep.conditional import representative_values
    from avbench.sweep.space import resolve_space

    monkeypatch.chdir(REPO)
    loaded = load_experiment(name, preset=preset)
    values = representative_values(resolve_space(loaded)) if loaded.searched else {}
    check_feasible(loaded.resolve(values))
