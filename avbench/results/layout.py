"""Where every file under results/ goes: the one module that knows the layout.

    results/
      runs/<experiment>/<run_id>/   one run (RunFiles): record.json, metrics.jsonl, config.yaml,
                                    best.pt, last.pt, rank-<i>.json, predictions.npz,
                                    representations.nc, confusion.png
      studies/<study>.db            a sweep's default Optuna storage (SQLite)
      studies/<study>/              its plots and its workers' logs (worker-<i>.log)
      cache/features/               the feature cache, shared by every run and experiment
      wandb/                        W&B's offline runs (unless WANDB_DIR says otherwise)
      wandb-sweeps/<sweep>.json     a W&B sweep's local state (<sweep>.online.json for a server sweep)

Everything else asks here, so moving a file is one edit. No torch, no I/O beyond globbing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RECORD = "record.json"


@dataclass(frozen=True)
class RunFiles:
    """The files of one run folder."""

    root: Path

    @property
    def record(self) -> Path:
        """The run record: written as "running" at the start, rewritten at the end."""
        return self.root / RECORD

    @property
    def metrics(self) -> Path:
        """One JSON line per epoch."""
        return self.root / "metrics.jsonl"

    @property
    def config(self) -> Path:
        """The resolved config the run trained with."""
        return self.root / "config.yaml"

    @property
    def best(self) -> Path:
        """The best epoch's weights."""
        return self.root / "best.pt"

    @property
    def last(self) -> Path:
        """The latest epoch's full state, to resume from; removed when the run finishes."""
        return self.root / "last.pt"

    @property
    def representations(self) -> Path:
        """auDeep runs: every clip's learned representation (netCDF-4)."""
        return self.root / "representations.nc"

    @property
    def predictions(self) -> Path:
        """Every test clip's label, prediction and class probabilities (avbench.results.predictions)."""
        return self.root / "predictions.npz"

    @property
    def confusion(self) -> Path:
        return self.root / "confusion.png"

    def rank(self, index: int) -> Path:
        """What rank `index` of a data-parallel run trained and how it ended."""
        return self.root / f"rank-{index}.json"


def runs_root(results: Path) -> Path:
    return Path(results) / "runs"


def run_dir(results: Path, experiment: str, run_id: str) -> Path:
    return runs_root(results) / experiment / run_id


def run_files(results: Path, experiment: str, run_id: str) -> RunFiles:
    return RunFiles(run_dir(results, experiment, run_id))


def record_paths(results: Path) -> list[Path]:
    """Every run record under results/, in a stable order."""
    return sorted(runs_root(results).glob(f"*/*/{RECORD}"))


def study_storage(results: Path, study: str) -> Path:
    """The default SQLite storage of a study."""
    return Path(results) / "studies" / f"{study}.db"


def study_dir(results: Path, study: str) -> Path:
    """A study's plots and worker logs."""
    return Path(results) / "studies" / study


def worker_log(results: Path, study: str, index: int) -> Path:
    return study_dir(results, study) / f"worker-{index}.log"


def slurm_script(results: Path, study: str) -> Path:
    """The sbatch script of the study's latest submission (Slurm keeps its own copy of each)."""
    return study_dir(results, study) / "slurm-job.sh"


def slurm_log_pattern(results: Path, study: str) -> Path:
    """Where each array task writes its output, in sbatch's pattern (%A job, %a task)."""
    return study_dir(results, study) / "slurm-%A_%a.log"


def feature_cache_dir(results: Path) -> Path:
    return Path(results) / "cache" / "features"


def wandb_parent(results: Path) -> Path:
    """The folder W&B is given as `dir` (it writes wandb/offline-run-* below it)."""
    return Path(results)


def wandb_sweep_state(results: Path, sweep: str, *, online: bool = False) -> Path:
    return Path(results) / "wandb-sweeps" / (f"{sweep}.online.json" if online else f"{sweep}.json")


def report_dir(results: Path) -> Path:
    """Where `avbench report` writes its page by default."""
    return Path(results) / "report"


def wandb_runs_dir(results: Path) -> Path:
    """Where W&B keeps its offline-run-* folders (under wandb_parent)."""
    return wandb_parent(results) / "wandb"


def normalisation_stats(results: Path, key: str) -> Path:
    """Per-dataset feature statistics (augment.normalise: dataset), one file per training split and feature."""
    return Path(results) / "cache" / "normalisation" / f"{key}.pt"
