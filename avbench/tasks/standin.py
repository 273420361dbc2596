"""What every synthetic stand-in shares: where it is written and when, sizes, the marker file,
never overwriting real data, and writing clips on a few threads with per-clip seeds (so files
never depend on threads)."""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.threads import usable_cores

MARKER = ".avbench-synthetic"  # a stand-in's root holds this JSON file; real data never does
MAX_WRITER_THREADS = 8
Job = TypeVar("Job")
Result = TypeVar("Result")


@dataclass(frozen=True)
class SpeakerTake:
    """One clip to write: a speaker's take of a class, seeded by (seed, speaker number, label, take)."""

    path: Path
    seed: int
    number: int
    speaker: Any  # avbench.tasks.synth.SpeakerProfile
    label: int
    take: int
    shifted: bool = False  # a test clip of a domain-shifted stand-in (avbench.tasks.synth_shift.through_other_channel)


def resolve_size(task: str, sizes: dict[str, Any], size: str) -> Any:
    """The task's settings for a named size, or one clear error."""
    if size not in sizes:
        raise DatasetError(f"{task}: unknown synthetic size '{size}' (choose from: {', '.join(sizes)})")
    return sizes[size]


def read_marker(root: Path) -> dict[str, Any] | None:
    """The stand-in's marker, or None when `root` is not a stand-in (or the marker is unreadable)."""
    try:
        marker = json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _written_files(out: Path) -> list[str]:
    """Every file under `out` but the marker and hidden lock files, relative and sorted."""
    return sorted(
        str(path.relative_to(out)) for path in out.rglob("*") if path.is_file() and not path.name.startswith(".")
    )


def guard_output(out: Path, parts: Iterable[str]) -> list[str]:
    """The one guard every stand-in writer uses: refuse, in one line, a folder that holds
    anything the stand-in did not write. Without a marker, any visible entry is somebody's data;
    with one, any file its manifest does not list is (a user's file dropped into a stand-in).
    A write that was interrupted (marker still says "writing") may have left new files in the
    writer's own `parts` folders: those are its own. Returns the files the old stand-in wrote."""
    out = Path(out)
    marker = read_marker(out)
    if marker is None:
        if out.is_dir() and any(not entry.name.startswith(".") for entry in out.iterdir()):
            raise DatasetError(f"{out} holds a dataset that is not a synthetic stand-in; refusing to overwrite")
        return []
    known = set(marker.get("files") or ())
    if "files" not in marker and not marker.get("writing"):
        return []  # a stand-in from before manifests: its parts are replaced as before
    writing = bool(marker.get("writing"))
    foreign = [f for f in _written_files(out) if f not in known and not (writing and _in_parts(f, parts))]
    if foreign:
        raise DatasetError(
            f"{out / foreign[0]} was not written by the synthetic stand-in ({len(foreign)} such file(s)); "
            "refusing to overwrite: move them or write the stand-in elsewhere (--out)"
        )
    return sorted(known)


def _in_parts(name: str, parts: Iterable[str]) -> bool:
    """Whether a relative file name lies in one of a writer's parts: a folder, a file, or a
    glob pattern of files (annotations' `*.wav` beside its annotations.json)."""
    return any(name == part or name.startswith(f"{part}/") or fnmatch.fnmatch(name, part) for part in parts)


def reset_output(out: Path, task: str, parts: Iterable[str]) -> None:
    """Make `out` ready for a fresh stand-in (see guard_output for what is refused).

    A previous stand-in loses the files and folders it wrote (`parts`), so the new one's counts
    are exact. Until the new one is complete its marker has no size, so an interrupted write is
    never taken for a finished stand-in, and re-running is still allowed.
    """
    out, parts = Path(out), list(parts)
    previous = guard_output(out, parts)
    out.mkdir(parents=True, exist_ok=True)
    marker = {"task": task, "writing": True, "files": previous}
    (out / MARKER).write_text(json.dumps(marker, ensure_ascii=False) + "\n", encoding="utf-8")
    for name in previous:
        (out / name).unlink(missing_ok=True)
    for part in parts:
        for match in out.glob(part) if any(c in part for c in "*?[") else ():
            match.unlink()
        target = out / part
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def write_marker(out: Path, task: str, size: str, seed: int, count: int, **extra: Any) -> None:
    """The marker of a finished stand-in, with the manifest of every file it wrote."""
    out = Path(out)
    marker = {"task": task, "size": size, "seed": seed, "count": count, **extra, "files": _written_files(out)}
    (out / MARKER).write_text(json.dumps(marker, ensure_ascii=False) + "\n", encoding="utf-8")


def run_jobs(write: Callable[[Job], Result], jobs: list[Job], workers: int | None = None) -> list[Result]:
    """`write` over `jobs` in order; threads overlap numpy, the PyAV encoders and file writes."""
    workers = workers if workers is not None else min(usable_cores(), MAX_WRITER_THREADS)
    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(write, jobs))
    return [write(job) for job in jobs]


def synthetic_root(task: str, size: str = "small", domain_shift: bool = False) -> Path:
    """$AVBENCH_DATA/<task> for the default size, <task>-<size> for others, so switching
    presets never rewrites a stand-in (and never invalidates its cached features); a
    domain-shifted one adds -shifted."""
    base = Path(os.environ.get("AVBENCH_DATA", "data/synthetic"))
    name = task if size == "small" else f"{task}-{size}"
    return base / (f"{name}-shifted" if domain_shift else name)


def check_domain_shift(task_name: str) -> None:
    """One line for a task whose stand-in cannot shift its test split."""
    if not getattr(TASKS.get(task_name), "shifts_domain", False):
        shifting = [name for name in TASKS.names() if getattr(TASKS.get(name), "shifts_domain", False)]
        raise DatasetError(
            f"{task_name}: its stand-in has no domain-shift option (tasks that have one: {', '.join(shifting)})"
        )


def ensure_synthetic(task_name: str, size: str, domain_shift: bool = False) -> Path:
    """Write the stand-in once; a lock keeps concurrent workers from writing it twice."""
    if domain_shift:
        check_domain_shift(task_name)
    root = synthetic_root(task_name, size, domain_shift)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = read_marker(root)
        if marker is None or marker.get("size") != size:
            shift = {"domain_shift": True} if domain_shift else {}
            TASKS.get(task_name)().synthesize(root, size=size, seed=0, **shift)
    return root
