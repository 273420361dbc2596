"""What a run leaves besides its record: its W&B run (config, summary, end-of-run panels) and
the test split's per-clip predictions (predictions.npz, read by `avbench compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from avbench.results.layout import RunFiles

if TYPE_CHECKING:
    from avbench.recipes.stages import Run


def start_wandb(run: Run, accelerator) -> str | None:
    from avbench.tracking import start_tracking

    experiment, record = run.experiment, run.record
    return start_tracking(
        accelerator,
        results=run.ctx.results,
        project=experiment.tracking.project,
        entity=experiment.tracking.entity,
        run_name=f"{experiment.name}/{record.run_id}",
        group=run.trial.sweep or experiment.name,
        config={
            **run.config(),
            "searched": record.searched,
            "run_id": record.run_id,
            "data_kind": record.data_kind,
            # W&B groups a sweep's runs by these: its study, the trial, and which replicate of it.
            "study": run.trial.sweep,
            "trial": run.trial.number,
            "replicate": run.trial.replicate,
            "devices": record.devices,
            "processes": record.processes,
        },
        tags=[experiment.task, experiment.model, record.data_kind.split(",")[0]],
    )


def write_test_predictions(run: Run, outputs: dict) -> None:
    """predictions.npz beside the record, the clips named relative to the data root."""
    from avbench.results.predictions import write_predictions

    paths = run.data.splits["test"].paths
    root = run.data_root.resolve() if run.data_root is not None else None
    ids = [str(_relative(Path(p), root)) for p in paths]
    write_predictions(RunFiles(run.out_dir).predictions, ids, outputs)


def _relative(path: Path, root: Path | None) -> Path:
    if root is None:
        return path
    try:
        return path.resolve().relative_to(root)
    except ValueError:
        return path


def write_wandb_summary(run: Run, accelerator) -> None:
    """Best validation and test metrics in the summary; the test confusion matrix, per-class
    scores and (tracking.log_model) the best checkpoint as panels of the run."""
    from avbench.spec import split_metric
    from avbench.tracking import log_test_panels

    record = run.record
    summary = {f"best_val/{k}": v for k, v in record.val.items() if isinstance(v, int | float)}
    summary.update({f"test/{k}": v for k, v in record.test.items() if isinstance(v, int | float)})
    tracker = accelerator.get_tracker("wandb")
    tracker.tracker.summary.update(summary)
    head, _ = split_metric(record.metric)
    spec = run.data.spec
    log_test_panels(
        tracker,
        confusion=record.test.get(f"{head}/confusion" if head else "confusion"),
        class_names=list(spec.heads.get(head, ()) if head else spec.class_names),
        checkpoint=RunFiles(run.out_dir).best if run.experiment.tracking.log_model else None,
        artifact=f"{record.experiment}-{record.run_id}",
    )
