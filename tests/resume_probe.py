"""Run by tests/test_train.py as a subprocess (never collected by pytest): one run of a tiny
experiment that kills its own process with SIGKILL right after an epoch, as a crash or the
OOM killer would, leaving its last.pt behind for the resume.

    python tests/resume_probe.py RUN_ID KILL_AFTER_EPOCH THREADS OVERRIDES_JSON
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

from avbench.catalog import load_experiment
from avbench.context import RunContext, TrialInfo
from avbench.recipes import run_recipe


def main(run_id: str, kill_after: int, threads: int, overrides: list[str]) -> None:
    torch.set_num_threads(threads)  # the parent's count: float sums depend on the split of the work
    config = load_experiment("mel-stats-mlp-cremad", preset="tiny", overrides=overrides).resolve({})

    def die_after(epoch: int, metrics: dict) -> bool:
        if epoch == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return False

    ctx = RunContext(Path(os.environ["AVBENCH_RESULTS"]), synthetic=True, use_wandb=False)
    run_recipe(config, ctx, trial=TrialInfo(run_id=run_id), on_eval=die_after)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))
