"""Run by `torchrun --nproc_per_node 2` from tests/test_data_parallel.py (never collected by
pytest): what the ranks of one launch do when the loss becomes NaN on all of them, when rank 0
alone decides to stop a run, and when one rank alone fails.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ranks_probe.py EXPERIMENT RESULTS

Each rank appends one JSON line per scenario to RESULTS/probe-rank-<i>.jsonl. The last scenario
raises on rank 1 only, so the launch must end with an error (not hang).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from avbench.catalog import load_experiment
from avbench.context import RunContext, TrialInfo
from avbench.distributed import RankFailure, join_ranks
from avbench.recipes import run_recipe
from avbench.registry import register_model
from avbench.spec import TaskSpec


class RankProbe(nn.Module):
    def __init__(self, spec: TaskSpec, failure: str):
        super().__init__()
        channels, mels, _ = spec.shapes["audio"]
        self.head = nn.Linear(channels * mels, spec.num_classes)
        self.failure = failure

    def forward(self, batch: dict) -> torch.Tensor:
        if self.failure == "rank1" and os.environ.get("RANK") == "1":
            raise ValueError("probe failure on rank 1 only")
        logits = self.head(batch["audio"].mean(dim=-1).flatten(1))
        return logits * float("nan") if self.failure == "nan" else logits


@register_model("rank-probe", tiny={}, modalities=("audio",))
def rank_probe(spec: TaskSpec, failure: str = "none") -> nn.Module:
    """A linear model on time-averaged log-mels that fails on request."""
    return RankProbe(spec, failure)


def main(experiment: str, results: Path) -> None:
    ranks = join_ranks()
    loaded = load_experiment(experiment)
    log = results / f"probe-rank-{ranks.index}.jsonl"

    def run(scenario: str, failure: str, on_eval=None) -> None:
        values = {"model_args.failure": failure}
        try:
            record = run_recipe(
                loaded.resolve(values),
                RunContext(results, synthetic=True, use_wandb=False),
                trial=TrialInfo(searched=values),
                on_eval=on_eval,
            )
            outcome = {
                "status": record.status,
                "epochs_run": record.epochs_run,
                "error": record.error,
                "run_id": record.run_id,
            }
        except RankFailure as exc:
            outcome = {"raised": f"{type(exc).__name__}: {exc}"}
            raise
        finally:
            with log.open("a") as handle:
                handle.write(json.dumps({"scenario": scenario, **outcome}) + "\n")

    run("nan", "nan")
    # Only rank 0's answer counts: the others would go on for all the epochs on their own.
    run("rank0-stops", "none", on_eval=lambda epoch, metrics: ranks.is_main and epoch >= 1)
    run("rank1-fails", "rank1")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
