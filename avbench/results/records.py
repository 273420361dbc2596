"""RunRecord: the file every run leaves behind, and the only thing the leaderboard reads.

results/runs/<experiment>/<run_id>/
    config.yaml     the resolved config the run trained with
    metrics.jsonl   one line per epoch
    record.json     this record (written at start as "running", rewritten at the end)
    rank-<i>.json   with many processes, what each rank trained and how it ended
    best.pt         the best epoch's weights; last.pt the latest epoch, for resuming
    predictions.npz every test clip's label, prediction and probabilities (avbench.results.predictions)
No torch here: the leaderboard must stay light.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from avbench.errors import AvbenchError
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
    # Set when the run's last.pt / best.pt could not be read on resume: it started over.
    resume_warning: str | None = None
    # Set when the run ran out of memory and was retried with half the micro-batch and twice
    # the gradient accumulation: what it ran at, and what it ran at next.
    oom_retry: str | None = None
    params: int = 0
    # What the trained model costs (avbench.train.cost), measured on the trial's device after
    # training: median ms per clip at batch 1, seconds of training, peak memory (and what that
    # peak is of: CUDA's max allocated or the process's peak RSS on CPU). None where not measured.
    latency_ms: float | None = None
    train_time_s: float | None = None
    peak_memory_mb: float | None = None
    peak_memory_kind: str | None = None
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
    # {"visible": the CUDA_VISIBLE_DEVICES ids the run was given (None: inherited none), and
    # with a GPU its "gpu" model, "memory_gb" and "count"}: which devices trained it.
    devices: dict[str, Any] = field(default_factory=dict)
    precision: str = ""  # what train.mixed_precision resolved to: no (fp32), fp16 or bf16
    # Scores of the data alone, without training (the probe's kNN on its cached embeddings), to
    # read next to val/test: {"knn": {"k": 10, "val": {...}, "test": {...}}}.
    data_scores: dict[str, Any] = field(default_factory=dict)
    # A replicate re-trains a finished trial's config with another seed (avbench.sweep.replicates):
    # the run id of the run it replicates, and its index (1, 2, …; the original is 0).
    replicate_of: str | None = None
    replicate: int | None = None
    # The test split's examples per class (of the selection head), for chance and majority-class accuracy.
    test_class_counts: list[int] = field(default_factory=list)
    # avbench.data.leaks: the checks that ran on the run's splits and what they found.
    leak_checks: list[str] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    # The augmentation that ran on the training split (the `augment:` fields off their defaults).
    augment: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_bytes_atomic(path: Path, write: Callable[[BinaryIO], None], *, durable: bool = True) -> None:
    """Write through `write(handle)` to a temporary file in the same folder, then rename it into
    place: a crash or a full disk never leaves a half-written file where a good one was, and a
    failed write removes its temporary file. `durable` also syncs the file and the folder, so a
    power cut after the rename cannot lose the new content (records, study files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # written through a handle: say which file it was for
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a directory, so a rename inside it survives a crash (a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, default=str).encode()
    write_bytes_atomic(path, lambda handle: handle.write(text))


def new_run_id(trial: int | None = None) -> str:
    """A fresh run id: the trial number when there is one, the time, and a random suffix."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = f"t{trial:04d}-" if trial is not None else ""
    return f"{prefix}{stamp}-{secrets.token_hex(2)}"


def write_record(results: Path, record: RunRecord) -> Path:
    path = run_files(results, record.experiment, record.run_id).record
    write_json_atomic(path, asdict(record))
    return path


class DamagedRecord(AvbenchError):
    """A record.json that exists but cannot be read as a run record."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def read_record(path: Path) -> RunRecord:
    """One record file; OSError when it is missing or unreadable, DamagedRecord when it is not
    a record (truncated, not JSON, not UTF-8, not a mapping of record fields)."""
    raw = Path(path).read_bytes()
    try:
        return RunRecord.from_dict(json.loads(raw.decode("utf-8")))
    except UnicodeDecodeError:
        raise DamagedRecord(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DamagedRecord(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (TypeError, ValueError, AttributeError):
        raise DamagedRecord(path, "not a run record") from None


def read_records(results: Path) -> tuple[list[RunRecord], list[tuple[Path, str]]]:
    """Every readable record under results/runs, and (path, reason) for each one that is not:
    the commands that read records say what they skipped instead of silently dropping it."""
    records, skipped = [], []
    for path in record_paths(results):
        try:
            records.append(read_record(path))
        except OSError as exc:
            skipped.append((path, exc.strerror or type(exc).__name__))
        except DamagedRecord as exc:
            skipped.append((path, exc.reason))
    return records, skipped


def iter_records(results: Path) -> Iterator[RunRecord]:
    """Every readable record under results/runs (see read_records for the damaged ones)."""
    yield from read_records(results)[0]


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
