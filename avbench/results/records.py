"""RunRecord: the file every run leaves behind, and the only thing the leaderboard reads.

results/runs/<experiment>/<run_id>/
    config.yaml     the resolved config the run trained with
    metrics.jsonl   one line per epoch
    record.json     this record (written at start as "running", rewritten at the end)
    rank-<i>.json   with many processes, what each rank trained and how it ended
    best.pt         the best epoch's weights; last.pt the latest epoch, for resuming
No torch here: the leaderboard must stay light.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from avbench.results.layout import record_paths, run_files

FINISHED = ("completed", "pruned")


@dataclass
class RunRecord:
    run_id: str
    experiment: str
    task: str
    model: str
    status: str = "running"  # running | completed | pruned | failed | interrupted
    error: str | None = None
    data_kind: str = "real"  # real | synthetic | "<kind>, shuffled train labels"
    preset: str | None = None
    sweep: str | None = None
    trial: int | None = None
    searched: dict[str, Any] = field(default_factory=dict)
    metric: str = "acc"
    val: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    best_epoch: int = 0
    epochs_run: int = 0
    stopped: str | None = None
    resumed_from_epoch: int = 0
    # Set when the run ran out of memory and was retried with half the micro-batch and twice
    # the gradient accumulation: what it ran at, and what it ran at next.
    oom_retry: str | None = None
    params: int = 0
    weights: str = ""
    seed: int = 0
    data_sizes: dict[str, int] = field(default_factory=dict)
    skipped_files: list[list[str]] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)  # feature cache: hits, misses, decoded, hit_rate
    started_at: str = ""
    wall_time_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    git: str | None = None
    wandb_run_id: str | None = None
    cv: dict[str, Any] | None = None  # {"group", "fold", "folds"} for a cross-validation fold
    processes: int = 1  # data-parallel processes (torchrun / accelerate launch) that trained the run
    # Scores of the data alone, without training (the probe's kNN on its cached embeddings), to
    # read next to val/test: {"knn": {"k": 10, "val": {...}, "test": {...}}}.
    data_scores: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def new_run_id(trial: int | None = None) -> str:
    """A fresh run id: the trial number when there is one, the time, and a random suffix."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = f"t{trial:04d}-" if trial is not None else ""
    return f"{prefix}{stamp}-{secrets.token_hex(2)}"


def write_record(results: Path, record: RunRecord) -> Path:
    path = run_files(results, record.experiment, record.run_id).record
    write_json_atomic(path, asdict(record))
    return path


def iter_records(results: Path) -> Iterator[RunRecord]:
    """Every readable record under results/runs; unreadable ones are skipped, not fatal."""
    for path in record_paths(results):
        try:
            yield RunRecord.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue


def write_rank_report(out_dir: Path, rank: int, config: dict, record: RunRecord) -> None:
    """rank-<i>.json: what this rank trained (its config's hash, its searched values) and how
    it ended, so anyone can check that every rank of a run trained the same trial."""
    text = json.dumps(config, sort_keys=True, default=str)
    write_json_atomic(
        Path(out_dir) / f"rank-{rank}.json",
        {
            "rank": rank,
            "processes": record.processes,
            "searched": record.searched,
            "config_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "status": record.status,
            "epochs_run": record.epochs_run,
            "best_epoch": record.best_epoch,
            "val": record.val,
            "test": record.test,
        },
    )
