"""Speaker-independent k-fold (`data.folds: K`, `data.fold: k`) on the speaker-split tasks:
every speaker is tested in exactly one fold, never in two splits of one fold, validation is
fold k mod K + 1 as ESC's; `avbench run --cv` runs every fold and the leaderboard folds them
back into one row."""

from __future__ import annotations

import json

import pytest

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.splits import speaker_folds
from tests.conftest import TINY, TINY_VALUES

FOLDS = 5


@pytest.mark.parametrize("name", ["cremad", "ravdess", "annotations"])
def test_every_speaker_is_tested_once_and_never_in_two_splits(name: str, standin) -> None:
    root = standin(name)
    task = TASKS.get(name)()
    tested: list[str] = []
    for fold in range(1, FOLDS + 1):
        items = task.items(root, DataConfig(folds=FOLDS, fold=fold))
        by_split = {split: {i.speaker for i in items if i.split == split} for split in ("train", "val", "test")}
        assert all(by_split.values()) and not (by_split["train"] & by_split["test"])
        assert not (by_split["train"] & by_split["val"]) and not (by_split["val"] & by_split["test"])
        assert {i.fold for i in items if i.split == "test"} == {fold}
        assert {i.fold for i in items if i.split == "val"} == {fold % FOLDS + 1}
        tested += sorted(by_split["test"])
    everyone = {i.speaker for i in task.items(root, DataConfig())}
    assert sorted(tested) == sorted(everyone)  # each speaker tested once over the K folds


def test_folds_are_balanced_and_follow_the_split_seed() -> None:
    speakers = [f"{n:04d}" for n in range(1001, 1092)]  # CREMA-D's 91 actors
    folds = speaker_folds(speakers, FOLDS, seed=0)
    sizes = sorted(list(folds.values()).count(k) for k in range(1, FOLDS + 1))
    assert sizes == [18, 18, 18, 18, 19]
    assert speaker_folds(list(reversed(speakers)), FOLDS, seed=0) == folds  # order of listing does not matter
    assert speaker_folds(speakers, FOLDS, seed=1) != folds


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("cremad", DataConfig(fold=2), "speaker split has no folds (set data.folds"),
        ("cremad", DataConfig(folds=2), "a test, a val and a train fold need 3"),
        ("cremad", DataConfig(folds=5, fold=6), "speaker split has folds 1–5"),
        ("audiofolder", DataConfig(folds=5), "set data.speaker_regex too"),
        ("commands", DataConfig(folds=5), "data.folds=5 does not apply"),
    ],
)
def test_bad_fold_options_are_one_line(name: str, data: DataConfig, expected: str, standin) -> None:
    with pytest.raises(DatasetError) as raised:
        TASKS.get(name)().items(standin(name), data)
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_inspect_shows_the_speaker_folds(standin, cli) -> None:
    report = json.loads(cli("data", "inspect", str(standin("cremad")), "--folds", "5", "--fold", "2", "--json").output)
    assert sorted(report["folds"]) == [str(k) for k in range(1, FOLDS + 1)]
    assert report["leaks"] == []


def test_run_cv_over_speaker_folds_and_the_leaderboard_row(cli, workspace) -> None:
    out = cli(
        "run", "mel-stats-mlp-cremad", *TINY, *TINY_VALUES, "--set", "model_args.dropout=0.1",
        "--set", "train.weight_decay=0", "--set", "data.folds=3", "--no-wandb", "--cv",
    ).output  # fmt: skip
    assert "3-fold cross-validation" in out and "fold 3:" in out
    rows = json.loads(cli("leaderboard", "--format", "json").output)
    assert [(row["experiment"], row["folds"]) for row in rows] == [("mel-stats-mlp-cremad", 3)]
    assert rows[0]["test/acc_std"] is not None


CV_SETS = ("--set", "sweep.objective=cv", "--set", "data.folds=3", "--set", "train.optimizer=adam")
MLP_VALUES = {"train.lr": 0.003, "train.batch_size": 16, "model_args.dropout": 0.1, "train.weight_decay": 0.0}


def test_a_cv_objective_reports_folds_and_a_losing_trial_stops_early(cli, workspace, monkeypatch) -> None:
    from avbench.results.records import iter_records
    from avbench.sweep.backends import BACKENDS
    from tests import fake_backend

    monkeypatch.setitem(BACKENDS, "fixed", "tests.fake_backend")
    monkeypatch.setattr(fake_backend, "TOLD", [])
    monkeypatch.setattr(fake_backend, "SUGGESTIONS", [MLP_VALUES, {**MLP_VALUES, "train.lr": 0.01}])
    monkeypatch.setattr(fake_backend, "PRUNE_AT", {1: 1})  # the engine stops trial 1 after its first fold
    cli("sweep", "mel-stats-mlp-cremad", *TINY, *CV_SETS, "--trials", "2", "--no-wandb", "--backend", "fixed")
    folds = {(r.trial, r.cv["fold"]): r for r in iter_records(workspace / "results")}
    assert sorted(folds) == [(0, 1), (0, 2), (0, 3), (1, 1)]  # trial 1 trained one fold only
    told = fake_backend.TOLD
    assert [t[2:] for t in told if t[:2] == ("report", 0)] == [(k, folds[(0, k)].val["acc"]) for k in (1, 2, 3)]
    mean = sum(folds[(0, k)].val["acc"] for k in (1, 2, 3)) / 3
    assert ("finish", 0, "completed", (pytest.approx(mean),)) in told and ("finish", 1, "pruned", None) in told


def test_optuna_prunes_a_cv_objective_with_the_wilcoxon_pruner(cli, workspace) -> None:
    import optuna

    from avbench.sweep.samplers import make_pruner
    from avbench.sweep.space import SearchSpace
    from avbench.sweep.storage import default_storage

    assert isinstance(make_pruner(None, "median", SearchSpace({}), 3, "cv"), optuna.pruners.WilcoxonPruner)
    cli("sweep", "mel-stats-mlp-cremad", *TINY, *CV_SETS, "--trials", "2", "--no-wandb")
    storage = default_storage(workspace / "results", "mel-stats-mlp-cremad")
    (study,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
    for trial in trials:
        assert sorted(trial.intermediate_values) == [1, 2, 3]  # one step per fold, not per epoch
        assert trial.value == pytest.approx(sum(trial.intermediate_values.values()) / 3)
