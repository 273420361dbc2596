"""The frozen-embedding probe: the class signal passes through the embedding cache (a probe on
a tiny random-init encoder beats chance, its shuffled-label control does not), the encoder
runs once per file and setting, and `avbench embed` fills the cache ahead of a sweep."""

from __future__ import annotations

import json

import pytest
import torch

from avbench.catalog import load_experiment
from avbench.config import DataConfig
from avbench.context import RunContext
from avbench.errors import ConfigError
from avbench.hf_checkpoints import TINY
from avbench.recipes import run_recipe
from avbench.recipes.embedding import EmbeddingExtractor
from avbench.registry import MODELS
from avbench.spec import TaskSpec

EXPERIMENT = "probe-hubert-cremad"
# A random-init AST keeps the log-mel's spectral shape in its patch embeddings: enough signal
# for a linear head on the tiny stand-in.
AST_ENCODER = json.dumps({"checkpoint": "ast", "config": {**TINY["ast"], "max_length": 100}})
TRAIN = ["train.lr=0.01", "train.epochs=15", "train.batch_size=16", "train.optimizer=adam"]
CHANCE = 1 / 6


def sets(*overrides: str) -> list[str]:
    return [arg for value in (*TRAIN, *overrides) for arg in ("--set", value)]


def run_record(workspace, *overrides: str) -> dict:
    loaded = load_experiment(EXPERIMENT, preset="tiny", overrides=[*TRAIN, *overrides])
    record = run_recipe(loaded.resolve({}), RunContext(workspace / "results", synthetic=True, use_wandb=False))
    assert record.status == "completed", record.error
    return record


def test_probe_beats_chance_and_its_shuffled_control_does_not(cli, workspace):
    first = cli(
        "run",
        EXPERIMENT,
        "--preset",
        "tiny",
        "--synthetic",
        "--no-wandb",
        *sets(f"model_args.encoder_args={AST_ENCODER}"),
    )
    cli(
        "run",
        EXPERIMENT,
        "--preset",
        "tiny",
        "--synthetic",
        "--no-wandb",
        *sets(f"model_args.encoder_args={AST_ENCODER}", "data.shuffle_train_labels=true"),
    )
    assert "kNN test/acc=" in first.output  # the untrained yardstick beside the probe's scores
    records = [json.loads(p.read_text()) for p in (workspace / "results" / "runs" / EXPERIMENT).glob("*/record.json")]
    real, control = sorted(records, key=lambda r: "shuffled" in r["data_kind"])
    assert real["test"]["acc"] > 2 * CHANCE and real["data_scores"]["knn"]["test"]["acc"] > 2 * CHANCE
    assert control["test"]["acc"] < 1.8 * CHANCE and control["data_scores"]["knn"]["test"]["acc"] < 1.8 * CHANCE
    assert "frozen hf-audio encoder, random init from the published MIT/ast" in real["weights"]
    assert real["cache"]["decoded"] == 120 and control["cache"]["hits"] == 120  # the control reuses the rows


def test_the_encoder_runs_once_per_file_and_setting(workspace, monkeypatch):
    first = run_record(workspace, "train.epochs=1")
    assert first.cache["decoded"] == first.cache["misses"] > 0
    assert "knn" in first.data_scores and 0 <= first.data_scores["knn"]["test"]["acc"] <= 1

    def no_encoder(self):
        raise AssertionError("a trial on cached embeddings built the encoder")

    monkeypatch.setattr(EmbeddingExtractor, "_new_encoder", no_encoder)
    again = run_record(workspace, "train.epochs=1", "train.lr=0.001")
    assert again.cache["hit_rate"] == 1.0 and again.weights == first.weights
    monkeypatch.undo()
    other_layer = run_record(workspace, "train.epochs=1", "model_args.layer=0")
    assert other_layer.cache["hit_rate"] == 0.0  # another layer is another cache entry


def test_embed_fills_the_cache_once(cli):
    out = cli("embed", EXPERIMENT, "--preset", "tiny", "--synthetic").output
    assert "computed 120, already cached 0, failed 0" in out and "embedding-" in out
    out = cli("embed", EXPERIMENT, "--preset", "tiny", "--synthetic").output
    assert "computed 0, already cached 120" in out
    out = cli("embed", EXPERIMENT, "--preset", "tiny", "--synthetic", "--set", "data.n_mels=null", expect=1).output
    assert "data.n_mels change the features" in out


def test_any_registered_audio_model_is_an_encoder_at_its_last_layer():
    data = DataConfig(clip_seconds=1.0, n_mels=32)
    tiny = MODELS.get("spectrogram-cnn").tiny_args
    extractor = EmbeddingExtractor(data, "spectrogram-cnn", tiny, "last", "mean", None)
    assert len(extractor.shape) == 1 and extractor.shape[0] > 0
    with pytest.raises(ConfigError, match="no per-layer hidden states"):
        EmbeddingExtractor(data, "spectrogram-cnn", tiny, 2, "mean", None)
    with pytest.raises(ConfigError, match="not an audio encoder"):
        EmbeddingExtractor(data, "av-fusion", {}, "last", "mean", None)


@pytest.mark.parametrize(("layer", "pool", "shape"), [("weighted", "attention", (3, 7, 16)), (1, "mean", (16,))])
def test_probe_heads_read_every_embedding_layout(layer, pool, shape):
    spec = TaskSpec(num_classes=4, shapes={"audio": shape})
    probe = MODELS.get("probe")(spec, layer=layer, pool=pool, head="mlp", hidden_size=8)
    probe({"audio": torch.randn(2, *shape)}).sum().backward()
    assert all(p.grad is not None for p in probe.parameters() if p.requires_grad)
    with pytest.raises(ConfigError, match="do not match"):
        MODELS.get("probe")(spec, layer="last" if layer == "weighted" else "weighted", pool=pool)
