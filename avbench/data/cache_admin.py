"""Looking after the feature cache: what it holds, whether every shard is sound, and removing
settings nothing uses any more (`avbench cache ls | verify | prune`).

Layout (avbench.data.cache): <root>/<feature>-<settings hash>/{settings.json, <shard>.npy,
<shard>.json}. A settings folder's `.last-used` file is touched whenever a run reads from it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from avbench.data.cache_check import LAST_USED, shard_problem


@dataclass
class SettingsFolder:
    path: Path
    feature: str
    settings: dict = field(default_factory=dict)
    shards: int = 0
    files: int = 0
    failures: int = 0
    size_bytes: int = 0
    last_used: float = 0.0  # seconds since the epoch


def _entries(folder: Path):
    for meta in sorted(folder.glob("*.json")):
        if meta.stem == "settings":
            continue
        try:
            entry = json.loads(meta.read_text())
        except (OSError, ValueError):
            entry = None
        yield meta.stem, entry


def settings_folders(root: Path) -> list[SettingsFolder]:
    """Every settings folder under the cache root, with its counts and size."""
    found = []
    for folder in sorted(p for p in Path(root).glob("*-*") if p.is_dir()):
        try:
            settings = json.loads((folder / "settings.json").read_text())
        except (OSError, ValueError):
            settings = {}
        summary = SettingsFolder(folder, folder.name.rsplit("-", 1)[0], settings)
        for _, entry in _entries(folder):
            summary.shards += 1
            if isinstance(entry, dict):
                summary.files += len(entry.get("rows") or [])
                summary.failures += len(entry.get("failures") or [])
        files = [p for p in folder.iterdir() if p.is_file()]
        summary.size_bytes = sum(p.stat().st_size for p in files)
        stamp = folder / LAST_USED
        newest = max((p.stat().st_mtime for p in files), default=folder.stat().st_mtime)
        summary.last_used = stamp.stat().st_mtime if stamp.exists() else newest
        found.append(summary)
    return found


def damaged_shards(root: Path) -> list[tuple[Path, str]]:
    """(shard, what is wrong) for every shard whose array does not match its index, checksum
    included: it reads every byte of the cache."""
    problems = []
    for folder in settings_folders(root):
        for shard, entry in _entries(folder.path):
            problem = "its index is not valid JSON" if not isinstance(entry, dict) else None
            problem = problem or shard_problem(folder.path / f"{shard}.npy", entry, checksum=True)
            if problem:
                problems.append((folder.path / shard, problem))
    return problems


def remove_shard(shard: Path) -> None:
    """Index first, so no reader takes the array up again; its files are decoded again on use."""
    shard.with_suffix(".json").unlink(missing_ok=True)
    shard.with_suffix(".npy").unlink(missing_ok=True)


def unused_folders(
    root: Path, in_use: set[str], protected_features: set[str], keep_days: float
) -> list[SettingsFolder]:
    """Settings folders that no experiment maps to (`in_use`: folder names), whose feature no
    experiment searches a data setting of, and that no run read within `keep_days`."""
    cutoff = time.time() - keep_days * 86400
    return [
        folder
        for folder in settings_folders(root)
        if folder.path.name not in in_use and folder.feature not in protected_features and folder.last_used < cutoff
    ]


def remove_folder(folder: SettingsFolder) -> None:
    shutil.rmtree(folder.path)
