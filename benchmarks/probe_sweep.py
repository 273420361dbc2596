"""A probe sweep on cached embeddings against the same sweep with the encoder run every trial.

Side "cached" is what a user does: `avbench embed` (one encoder pass over the data), then a
sweep whose trials train only the head. Its cost is compared with its ideal, the encoder pass
plus the trials' own training time (the records' wall_time_s), and must stay within 1.2x: the
sweep machinery may not eat what caching saves. Side "every trial" runs the same sweep (same
sampler seed, so the same configurations) with the embedding cache keyed anew for each trial,
so every trial runs the encoder over every file, as a pipeline without the cache would.

    python benchmarks/probe_sweep.py [--trials 20] [--epochs 30] [--size tiny] [--hidden 128]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPACE = """\
method: random
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 3.0e-2}
  train.batch_size: {values: [16, 32]}
  train.optimizer: {values: [adam, adamw]}
"""


def encoder_args(hidden: int, layers: int) -> str:
    """A random-init HuBERT of `layers` x `hidden` (a CPU-sized stand-in for hubert-base)."""
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "intermediate_size": 2 * hidden,
        "conv_dim": [64] * 7,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "layerdrop": 0.0,
    }
    return json.dumps({"checkpoint": "hubert", "config": config})


def keyed_per_trial():
    """Make every EmbeddingExtractor (one per trial) a new cache entry: the encoder runs each trial."""
    from avbench.recipes.embedding import EmbeddingExtractor

    counter = itertools.count()
    original = EmbeddingExtractor.__init__

    def init(self, *args, **kwargs):
        self.trial_nonce = next(counter)
        original(self, *args, **kwargs)

    def key_fields(self) -> dict:
        return {**self.settings.key_fields(), "trial_nonce": self.trial_nonce}

    EmbeddingExtractor.__init__ = init
    EmbeddingExtractor.key_fields = key_fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30, help="the probe experiments' own")
    parser.add_argument("--size", default="tiny", help="synthetic data size (data.synth_size)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()

    import optuna

    from avbench.catalog import load_experiment
    from avbench.context import RunContext
    from avbench.recipes.embed import precompute_features
    from avbench.registry import MODELS
    from avbench.results.records import iter_records
    from avbench.sweep import run
    from avbench.sweep.core import SweepRequest
    from avbench.tasks.standin import ensure_synthetic

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ.setdefault("AVBENCH_DATA", str(scratch / "data"))
        (scratch / "space.yaml").write_text(SPACE)
        overrides = (
            f"model_args.encoder_args={encoder_args(args.hidden, args.layers)}",
            "data.clip_seconds=2.0",
            f"data.synth_size={args.size}",
            "data.cache_workers=1",
            f"train.epochs={args.epochs}",
            "train.patience=0",
            "train.weight_decay=0.0",
        )
        loaded = load_experiment("probe-hubert-cremad", overrides=overrides)

        def sweep(results: Path, name: str) -> float:
            started = time.perf_counter()
            request = SweepRequest(
                "probe-hubert-cremad",
                overrides,
                trials=args.trials,
                sweep_config=scratch / "space.yaml",
                study=name,
                pruner="none",
            )
            run(request, RunContext(results, synthetic=True, use_wandb=False))
            return time.perf_counter() - started

        # Not timed: writing the stand-in, and the imports both sides need.
        ensure_synthetic(loaded.config.task, args.size)
        MODELS.get("probe")
        from transformers import HubertForSequenceClassification  # noqa: F401

        cached = scratch / "cached"
        started = time.perf_counter()
        embedded = precompute_features(loaded.config, RunContext(cached, synthetic=True, use_wandb=False))
        encode_s = time.perf_counter() - started
        sweep_s = sweep(cached, "cached")
        records = [r for r in iter_records(cached) if r.sweep == "cached"]
        assert all(r.cache["hit_rate"] == 1.0 for r in records), "a cached trial ran the encoder"

        keyed_per_trial()
        every_s = sweep(scratch / "every", "every")
        every = [r for r in iter_records(scratch / "every") if r.sweep == "every"]
        assert all(r.cache["hit_rate"] == 0.0 for r in every), "an every-trial side trial found its embeddings"

    report(args, sum(embedded.sizes.values()), encode_s, sweep_s, every_s, records)


def report(args, clips: int, encode_s: float, sweep_s: float, every_s: float, records: list) -> None:
    """Both sides' wall times, as ratios, with the machine's load."""
    heads_s = sum(r.wall_time_s for r in records)
    ideal = encode_s + heads_s
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print(f"{args.trials} trials x {args.epochs} epochs, {clips} clips, encoder hubert {args.layers}x{args.hidden}")
    print(f"encoder pass (avbench embed): {encode_s:.1f} s; trials' training: {heads_s:.1f} s")
    total = encode_s + sweep_s
    print(f"cached:      embed + sweep {total:.1f} s = {total / ideal:.2f}x the ideal {ideal:.1f} s")
    print(f"every trial: sweep {every_s:.1f} s = {every_s / total:.2f}x the cached side")
    best = max(records, key=lambda r: r.val.get("acc", 0.0))
    print(
        f"best cached trial: val/acc {best.val['acc']:.3f}, kNN test/acc {best.data_scores['knn']['test']['acc']:.3f}"
    )


if __name__ == "__main__":
    main()
