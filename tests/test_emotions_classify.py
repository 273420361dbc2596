"""emotions-classify at home: several heads, its annotations.json layout, its JSON pipeline
(import + run), warm starts, its square linear spectrogram and wav2vec2 feature sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avbench.catalog import load_experiment
from avbench.config import DataConfig, TrainConfig
from avbench.errors import ConfigError, DatasetError
from avbench.spec import TaskSpec
from avbench.tasks.annotations import Annotations
from avbench.train.heads import EvalCollector, classification_loss, per_example_loss, resolve_for_heads
from avbench.train.warm_start import warm_start

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

TWO_HEADS = {"emotion": ("a", "b", "c"), "state": ("x", "y")}
TWO_HEAD_EXPERIMENT = """\
task: annotations
model: mel-stats-mlp
data: {clip_seconds: 1.0, synth_size: tiny, n_mels: 32}
model_args: {hidden: 16, layers: 1}
train: {epochs: 2, batch_size: 16, lr: 0.003, patience: 0, head_weights: {state: 0.5}}
"""


def test_the_loss_is_the_weighted_sum_of_the_heads_cross_entropies():
    logits = {"emotion": torch.randn(4, 3), "state": torch.randn(4, 2)}
    labels = torch.tensor([[0, 1], [2, 0], [1, 1], [0, 0]])
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits["emotion"], labels[:, 0]) + 0.5 * ce(logits["state"], labels[:, 1])
    assert torch.isclose(classification_loss(logits, labels, {"state": 0.5}), expected)
    single = torch.randn(4, 3)
    assert torch.isclose(classification_loss(single, labels[:, 0]), ce(single, labels[:, 0]))


def test_metrics_are_reported_per_head():
    collector = EvalCollector(num_classes=3)
    logits = {"emotion": torch.eye(3)[[0, 1, 2, 0]], "state": torch.eye(2)[[1, 1, 1, 1]]}
    labels = torch.tensor([[0, 1], [1, 0], [2, 1], [1, 0]])
    collector.add(logits, labels, per_example_loss(logits, labels))
    metrics = collector.metrics()
    assert metrics["emotion/acc"] == 0.75 and metrics["state/acc"] == 0.5
    assert len(metrics["state/confusion"]) == 2 and "loss" in metrics and "acc" not in metrics


def test_the_selection_metric_names_its_head():
    spec = TaskSpec(num_classes=3, heads=TWO_HEADS)
    assert resolve_for_heads(TrainConfig(), spec).metric == "emotion/acc"
    assert resolve_for_heads(TrainConfig(metric="state/uar"), spec).metric == "state/uar"
    with pytest.raises(ConfigError, match="no head 'mood'"):
        resolve_for_heads(TrainConfig(metric="mood/acc"), spec)
    with pytest.raises(ConfigError, match="head_weights names no head.*emotoin"):
        resolve_for_heads(TrainConfig(head_weights={"emotoin": 2.0}), spec)
    with pytest.raises(ConfigError, match="the task has one head"):
        resolve_for_heads(TrainConfig(metric="emotion/acc"), TaskSpec(num_classes=3))


def _write_layout(root: Path, entries: dict, files: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in files:
        sf.write(root / name, np.random.default_rng(0).uniform(-0.1, 0.1, 8000), 16000, subtype="PCM_16")
    (root / "annotations.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")


def test_annotations_layout_gives_heads_from_its_keys_and_splits_by_recording(tmp_path):
    entries = {
        f"rec{r}_{i}.wav": {"emotion": ["гнев", "печаль"][i % 2], "state": "нейтральное"}
        for r in range(5)
        for i in range(1, 4)
    }
    entries["gone_1.wav"] = {"emotion": "гнев", "state": "нейтральное"}
    entries["rec0_9.wav"] = {"emotion": "гнев"}
    _write_layout(tmp_path, entries, [n for n in entries if n != "gone_1.wav"])
    task = Annotations()
    items = task.items(tmp_path, DataConfig())
    assert task.heads == {"emotion": ("гнев", "печаль"), "state": ("нейтральное",)}
    assert len(items) == 15 and {reason for _, reason in task.skipped} == {
        "annotated file is missing",
        "annotation needs exactly the keys emotion, state",
    }
    split_of = {}
    for item in items:
        assert split_of.setdefault(item.speaker, item.split) == item.split  # one recording, one split
        assert item.targets[0] == item.label
    assert set(split_of.values()) == {"train", "val", "test"}


def test_annotations_layout_errors_are_one_line(tmp_path):
    with pytest.raises(DatasetError, match="no annotations.json"):
        Annotations().items(tmp_path, DataConfig())
    (tmp_path / "annotations.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="non-empty mapping"):
        Annotations().items(tmp_path, DataConfig())


def test_both_heads_are_learnable_on_unseen_recordings(standin):
    from tests.learnability import clip_features, grouped_cv_accuracy, shuffled

    items = Annotations().items(standin("annotations"), DataConfig())
    x = np.stack([clip_features(item.audio) for item in items])
    recordings = np.array([item.speaker for item in items])
    for head, (classes, floor, shuffled_ceiling) in enumerate(((6, 0.5, 0.35), (3, 0.6, 0.5))):
        y = np.array([item.targets[head] for item in items])
        assert grouped_cv_accuracy(x, y, recordings, classes) > floor
        assert grouped_cv_accuracy(x, shuffled(y), recordings, classes) < shuffled_ceiling


def test_inspect_counts_every_heads_classes(standin):
    from avbench.tasks.detection import inspect_dataset

    report = inspect_dataset(standin("annotations"))
    states = {name: counts for name, counts in report.counts.items() if name.startswith("state/")}
    assert set(states) == {f"state/{name}" for name in ("нейтральное", "отрицательное", "положительное")}
    assert sum(sum(c.values()) for c in states.values()) == report.files


def _records(workspace: Path, name: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in (workspace / "results" / "runs" / name).glob("*/record.json")]


def _only_run(workspace: Path, name: str) -> dict:
    (record,) = (workspace / "results" / "runs" / name).glob("*/record.json")
    return json.loads(record.read_text())


def test_two_heads_train_end_to_end_and_the_leaderboard_shows_the_selection_head(cli, workspace):
    (workspace / "experiments" / "two-heads.yaml").write_text(TWO_HEAD_EXPERIMENT)
    cli("run", "two-heads", "--synthetic", "--no-wandb")
    record = _only_run(workspace, "two-heads")
    assert record["status"] == "completed" and record["metric"] == "emotion/acc"
    for split in ("val", "test"):
        assert {"emotion/acc", "emotion/uar", "state/acc", "state/macro_f1"} <= set(record[split])
    (record_dir,) = (workspace / "results" / "runs" / "two-heads").iterdir()
    epochs = [json.loads(line) for line in (record_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"val/emotion/acc", "val/state/acc"} <= set(epochs[-1])
    (row,) = json.loads(cli("leaderboard", "--format", "json").output)
    assert row["head"] == "emotion" and row["val/acc"] == record["val"]["emotion/acc"]
    assert row["test/uar"] == record["test"]["emotion/uar"]
    assert "| head |" in cli("leaderboard", "--format", "md").output

    # A warm start from that run: its weights load strictly; a checkpoint of another model does not.
    best = record_dir / "best.pt"
    cli("run", "two-heads", "--synthetic", "--no-wandb", "--init-from", str(best), "--set", "train.epochs=1")
    assert any(r["weights"].startswith(f"warm start from {best.resolve()}") for r in _records(workspace, "two-heads"))
    # The sweep takes the same flag; every trial starts from the checkpoint.
    search = ("--set", "train.lr=null", "--set", "train.metric=emotion/acc", "--set", "train.epochs=1")
    cli("sweep", "two-heads", "--synthetic", "--no-wandb", *search, "--trials", "1", "--init-from", str(best))
    (trial,) = [r for r in _records(workspace, "two-heads") if r.get("sweep")]
    assert trial["status"] == "completed" and trial["weights"].startswith("warm start from")
    other = workspace / "other.pt"
    torch.save({"model": {"head.0.weight": torch.zeros(2)}}, other)
    out = cli("run", "two-heads", "--synthetic", "--no-wandb", "--init-from", str(other), expect=1).output
    assert "does not match the model: missing:" in out and "Traceback" not in out
    out = cli("run", "two-heads", "--synthetic", "--no-wandb", "--init-from", "nowhere.pt", expect=1).output
    assert "nowhere.pt not found" in out


def test_warm_start_skips_the_keys_it_is_told_to(tmp_path):
    from avbench.registry import MODELS

    factory = MODELS.get("mel-stats-mlp")
    spec = TaskSpec(num_classes=3, shapes={"audio": (1, 8, 10)})
    source = factory(spec, hidden=4, layers=1)
    target = factory(TaskSpec(num_classes=5, shapes={"audio": (1, 8, 10)}), hidden=4, layers=1)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    with pytest.raises(ConfigError, match=r"wrong shape: head\.4\.weight"):
        warm_start(target, TrainConfig(init_from=str(path)))
    assert warm_start(target, TrainConfig(init_from=str(path), init_skip_keys=["head.4."])) == 4
    assert torch.equal(target.head[1].weight, source.head[1].weight)


def test_linear_spectrogram_is_the_seeds_square_power_spectrogram(tmp_path):
    from avbench.data.linear_spectrogram import LinearSpectrogramExtractor, LinearSpectrogramSettings

    wave = np.random.default_rng(1).uniform(-0.5, 0.5, 3000).astype(np.float32)
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    size = 33  # n_fft 64, hop 32: 3000 samples give 94 frames, cut to 33
    image = LinearSpectrogramExtractor(LinearSpectrogramSettings(16000, size))(tmp_path / "a.wav")
    padded = np.pad(wave, (32, 32), mode="reflect")
    frames = np.stack([padded[i * 32 : i * 32 + 64] for i in range(size)])
    expected = np.abs(np.fft.rfft(frames * np.hanning(65)[:-1], axis=1)) ** 2
    assert image.shape == (size, size) and np.allclose(image, expected.T, rtol=1e-3, atol=1e-4)
    short = LinearSpectrogramExtractor(LinearSpectrogramSettings(16000, 201))(tmp_path / "a.wav")
    assert short.shape == (201, 201) and short[:, 15].all() and not short[:, 16:].any()  # 3000 // 200 + 1 = 16 frames


@pytest.mark.parametrize("source,width", [("extract_features", 16), ("projection", 32), ("hidden", 32)])
def test_wav2vec2_feature_source_feeds_the_seeds_tensor(source, width):
    from avbench.models._wav2vec2_encoder import TINY_ENCODER, encoder_features
    from avbench.registry import MODELS

    spec = TaskSpec(num_classes=3, shapes={"audio": (1, 16000)}, heads=TWO_HEADS)
    model = MODELS.get("wav2vec2-fn")(spec, **{**TINY_ENCODER, "feature_source": source}).eval()
    wave = torch.randn(2, 1, 16000)
    features = encoder_features(model.encoder, wave[:, 0], source)
    assert features.shape[-1] == width
    with torch.no_grad():
        outputs = model.encoder(wave[:, 0])
        reference = {"extract_features": outputs.extract_features, "hidden": outputs.last_hidden_state}
        if source in reference:
            assert torch.allclose(encoder_features(model.encoder, wave[:, 0], source), reference[source], atol=1e-6)
        logits = model({"audio": wave})
    assert logits["emotion"].shape == (2, 3) and logits["state"].shape == (2, 2)


SEED_PIPELINE = {
    "pipeline": [
        {
            "type": "train",
            "model": "SpectrogramCnnClassifier",
            "model_architecture": {},
            "learn_params": {"lr": {"base_lr": 0.001}, "batch_size": 8, "spectrogram_size": 401, "max_epoch": 200},
            "saving_data_params": {
                "saved_checkpoints_path": ["$$ROOT_DIR$$", "weights", "$$MODEL_NAME$$", "$$DATETIME$$"],
                "start_from_saved_checkpoint_path": None,
            },
        },
        {
            "type": "tune",
            "model": "SpectrogramCnnClassifier",
            "model_architecture": {},
            "learn_params": {"lr": {"base_lr": None}, "batch_size": None, "spectrogram_size": 401, "max_epoch": 200},
            "saving_data_params": {"tune_results_path": ["$$ROOT_DIR$$", "tmp", "tune", "$$MODEL_NAME$$"]},
            "tune": {"max_tune_epochs": 20, "num_samples": 100, "target_metric_name": "val/em_acc"},
        },
        {"type": "print_tune_res", "res_path": ["$$ROOT_DIR$$", "tmp", "tune", "tune_20240425-101338"]},
    ],
    "load_dataset_workers_num": 1,
}


def test_macros_expand_and_path_lists_join():
    from avbench.importers.emotions_classify import Macros

    macros = Macros("/seed", datetime="20240101-000000")
    path = macros.expand(["$$ROOT_DIR$$", "weights", "$$MODEL_NAME$$", "c_$$DATETIME$$.ckpt"], "Fn")
    assert path == "/seed/weights/Fn/c_20240101-000000.ckpt"


def test_import_and_pipeline_run_the_three_step_types(cli, workspace):
    seed = workspace / "seed.config.json"
    seed.write_text(json.dumps(SEED_PIPELINE))
    out = cli("import", "emotions-classify", str(seed), "--out", "imported", "--root-dir", "seed-repo").output
    assert "no equivalent: saving_data_params.saved_checkpoints_path" in out
    names = sorted(p.stem for p in (workspace / "imported" / "experiments").glob("*.yaml"))
    assert names == ["seed-config-01-train-spectrogram-cnn", "seed-config-02-tune-spectrogram-cnn"]
    train = load_experiment(str(workspace / "imported" / "experiments" / f"{names[0]}.yaml"))
    assert train.config.data.root == str((workspace / "seed-repo" / "data" / "dataset").resolve())
    assert (train.config.data.audio_feature, train.config.data.spectrogram_size) == ("linear_spectrogram", 401)
    assert (train.config.train.lr, train.config.train.batch_size, train.config.train.epochs) == (0.001, 8, 200)
    tune = load_experiment(str(workspace / "imported" / "experiments" / f"{names[1]}.yaml"))
    assert set(tune.searched) == {"train.lr", "train.batch_size"} and tune.config.sweep.trials == 100
    plan = (workspace / "imported" / "pipeline.yaml").read_text()
    assert plan.index("command: run") < plan.index("command: sweep") < plan.index("command: show")

    result = cli("pipeline", str(seed), "--preset", "tiny", "--synthetic", "--no-wandb", "--out", "ran")
    assert "3 of 3 step(s) succeeded" in result.output
    assert _only_run(workspace, names[0])["status"] == "completed"
    trials = list((workspace / "results" / "runs" / names[1]).glob("*/record.json"))
    assert len(trials) == 2


def test_pipeline_errors_are_one_line(cli, workspace):
    bad = workspace / "bad.json"
    bad.write_text(json.dumps({"pipeline": [{"type": "fit"}]}))
    assert "step 1: type must be train, tune or print_tune_res" in cli("pipeline", str(bad), expect=1).output
    bad.write_text(json.dumps({"pipeline": [{"type": "train", "model": "ResNet"}]}))
    assert "unknown model 'ResNet'" in cli("import", "emotions-classify", str(bad), expect=1).output


def test_each_seed_model_step_maps_to_its_avbench_fields(tmp_path):
    from avbench.config import validate
    from avbench.importers.emotions_classify import convert

    fn = {
        "type": "train",
        "model": "Wav2Vec2FnClassifier",
        "model_architecture": {"conv_h_count": 1, "conv_w_count": 2, "layer_1_size": 64, "layer_2_size": 32},
        "learn_params": {"lr": {"base_lr": 0.01, "conv_lr": 0.02}, "batch_size": 8, "padding_sec": 5, "max_epoch": 3},
        "saving_data_params": {"start_from_saved_checkpoint_path": ["$$ROOT_DIR$$", "tmp", "$$MODEL_NAME$$.ckpt"]},
    }
    vit = {
        "type": "tune",
        "model": "TransformerClassifier",
        "model_architecture": {
            "layer_1_size": None,
            "patch_transformer_size": 16,
            "transformer_attantion_head_count": 4,
        },
        "learn_params": {"lr": {"base_lr": 0.001, "conv_lr": 0.1}, "batch_size": 8, "spectrogram_size": 512},
        "tune": {"num_samples": 7, "target_metric_name": "val/st_acc"},
    }
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"pipeline": [fn, vit]}))
    first, second = convert(path, Path("/seed"), pretrained=tmp_path)
    config = first.config
    assert config["model_args"] == {
        "num_layers": 0,
        "feature_source": "projection",
        "pretrained": str(tmp_path),
        "freeze_base_model": True,
        "conv_h_count": 1,
        "conv_w_count": 2,
        "layer_1_size": 64,
        "layer_2_size": 32,
        "conv_lr": 0.02,
    }
    assert config["data"]["clip_seconds"] == 5 and config["data"]["root"] == "/seed/data/dataset"
    assert config["train"]["init_from"] == "/seed/tmp/Wav2Vec2FnClassifier.ckpt"
    assert config["presets"]["tiny"]["model_args"]["pretrained"] == ""  # the tiny encoder is random
    validate(config)
    assert second.command == "sweep" and second.config["train"]["metric"] == "state/acc"
    assert second.config["model_args"] == {"dim": None, "patch_size": 16, "heads": 4, "spectrogram_size": 512}
    assert second.sweep["parameters"] == {"model_args.dim": {"values": [32, 64, 128, 256, 512]}}
    assert "learn_params.lr.conv_lr (one learning rate)" in second.unmapped and second.config["sweep"]["trials"] == 7
