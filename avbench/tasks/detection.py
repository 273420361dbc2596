"""Which task a dataset folder holds (its stand-in marker or its layout), and `avbench data
inspect` on it: the task-level half of avbench.data.inspection."""

from __future__ import annotations

from pathlib import Path

from avbench.config import DataConfig
from avbench.data.inspection import Inspection, inspect_listing
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.standin import read_marker


def detect_task(root: Path) -> tuple[str, str]:
    """(task name, how it was found): the stand-in marker, else the one task whose layout
    signature matches (a fallback task such as audiofolder only when no other does)."""
    root = Path(root)
    marker = read_marker(root)
    if marker is not None and marker.get("task") in TASKS:
        return str(marker["task"]), "marker"
    matches: dict[bool, list[str]] = {False: [], True: []}
    for name in TASKS.names():
        task = TASKS.get(name)
        if task.looks_like(root):
            matches[bool(task.detect_as_fallback)].append(name)
    for candidates in (matches[False], matches[True]):
        if len(candidates) == 1:
            return candidates[0], "layout"
        if len(candidates) > 1:
            raise DatasetError(f"{root} matches the layouts of several tasks ({', '.join(candidates)}); pass --task")
    raise DatasetError(
        f"cannot tell which dataset {root} holds from its layout; pass --task (one of: {', '.join(TASKS.names())})"
    )


def inspect_dataset(root: Path, task_name: str | None = None, data: DataConfig | None = None) -> Inspection:
    """List `root` with its task's loader (given, or detected) and read every file's header."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory")
    detected_by = "--task"
    if task_name is None:
        task_name, detected_by = detect_task(root)
    task = TASKS.get(task_name)()
    synthetic = read_marker(root) is not None
    return inspect_listing(root, task, data or DataConfig(), detected_by=detected_by, synthetic=synthetic)
