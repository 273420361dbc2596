"""W&B through Accelerate's tracker API: offline unless the user has logged in.

The training loop only calls `accelerator.log`; this module decides whether W&B is on, in
which mode, and where its files go.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from avbench.results.layout import wandb_parent

if TYPE_CHECKING:
    from wandb.plot import CustomChart


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def configure_wandb_env() -> str:
    """Offline by default (results stay files first); returns the mode in force."""
    if "WANDB_MODE" not in os.environ and not wandb_logged_in():
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    return os.environ.get("WANDB_MODE", "online")  # logged in and no mode set: W&B's own default


def wandb_dir(results: Path) -> Path:
    """W&B writes <dir>/wandb/offline-run-*: under results/ unless the user set WANDB_DIR."""
    folder = Path(os.environ.get("WANDB_DIR") or wandb_parent(results).resolve())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def start_tracking(
    accelerator,
    *,
    results: Path,
    project: str,
    entity: str | None,
    run_name: str,
    group: str | None,
    config: dict,
    tags: list[str],
) -> str | None:
    """Start one W&B run for this trial; returns its id (None on non-main ranks)."""
    configure_wandb_env()
    skip_unstaged_launch_inputs()
    tell_data_frames_by_type_name()
    list_installed_packages_once()
    init = {"name": run_name, "group": group, "tags": tags, "reinit": "finish_previous", "dir": str(wandb_dir(results))}
    if entity:
        init["entity"] = entity
    accelerator.init_trackers(project, config=config, init_kwargs={"wandb": init})
    if not accelerator.is_main_process:
        return None
    run = accelerator.get_tracker("wandb", unwrap=True)
    return getattr(run, "id", None)


def per_class_scores(confusion: list[list[int]], class_names: list[str]) -> list[list]:
    """[class, precision, recall, F1, support] per class of a confusion matrix (rows = true class)."""
    rows = []
    for index, name in enumerate(class_names):
        true_pos = confusion[index][index]
        support = sum(confusion[index])
        predicted = sum(row[index] for row in confusion)
        precision = true_pos / predicted if predicted else 0.0
        recall = true_pos / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append([name, precision, recall, f1, support])
    return rows


def confusion_chart(confusion: list[list[int]], class_names: list[str]) -> CustomChart:
    """`wandb.plot.confusion_matrix` of a confusion matrix (rows = true class): the chart W&B's UI
    draws as a heatmap. W&B builds it from per-clip labels, so each cell's count is unrolled into
    that many (true, predicted) pairs."""
    import wandb

    y_true = [t for t, row in enumerate(confusion) for p, count in enumerate(row) for _ in range(count)]
    preds = [p for row in confusion for p, count in enumerate(row) for _ in range(count)]
    return wandb.plot.confusion_matrix(
        y_true=y_true, preds=preds, class_names=class_names, title="test confusion matrix"
    )


def log_test_panels(
    tracker, *, confusion: list[list[int]] | None, class_names: list[str], checkpoint: Path | None, artifact: str
) -> None:
    """The end of a run on its W&B page, through Accelerate's tracker like every other log call:
    the test confusion matrix as a `wandb.plot.confusion_matrix` chart (its table is
    `test/confusion_matrix_table`: Actual, Predicted, nPredictions), a per-class precision /
    recall / F1 table and, when `checkpoint` is given (tracking.log_model), the best weights as a
    model artifact."""
    if confusion:
        names = class_names if len(class_names) == len(confusion) else [str(i) for i in range(len(confusion))]
        tracker.log({"test/confusion_matrix": confusion_chart(confusion, names)})
        columns = ["class", "precision", "recall", "f1", "support"]
        tracker.log_table("test/per_class", columns=columns, data=per_class_scores(confusion, names))
    if checkpoint is not None and checkpoint.is_file():
        tracker.tracker.log_artifact(str(checkpoint), name=artifact, type="model")


LAUNCH_INPUTS_MODULE = "wandb.sdk.launch.inputs.internal"


def skip_unstaged_launch_inputs() -> None:
    """Every wandb.init applies W&B Launch's staged job inputs, and to look for them imports
    wandb.sdk.launch and the public API (about a third of an offline init's CPU time). Inputs are
    staged only through that module's own functions, so while it is not imported there is
    nothing to apply: the import waits until it is."""
    from wandb.sdk.wandb_run import Run

    if hasattr(Run, "_detect_and_apply_job_inputs"):
        Run._detect_and_apply_job_inputs = apply_staged_launch_inputs


def apply_staged_launch_inputs(run) -> None:
    staged = sys.modules.get(LAUNCH_INPUTS_MODULE)
    if staged is not None:
        staged.StagedLaunchInputs().apply(run)


def tell_data_frames_by_type_name() -> None:
    """W&B asks whether each table it logs is a pandas DataFrame with isinstance, importing
    pandas to do so (about 0.5 s of CPU) when it is installed; its own fallback, the value's
    type name, tells a DataFrame just as well. Left alone once something else imported pandas."""
    import wandb.util

    if "pandas" not in sys.modules:
        wandb.util.pd_available = False


def list_installed_packages_once() -> None:
    """Every wandb.init reads the metadata of every installed package for the run's
    requirements.txt (about 0.2 s of CPU); within one process the list cannot change, so the
    first trial's is reused by the next ones."""
    import wandb.util

    read_every_time = wandb.util.working_set
    if getattr(read_every_time, "reused", False):
        return
    listed = functools.cache(lambda: tuple(read_every_time()))

    def working_set():
        return iter(listed())

    working_set.reused = True
    wandb.util.working_set = working_set
