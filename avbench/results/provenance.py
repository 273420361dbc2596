"""What a record says about the code that made it: package versions and the git hash.

Versions come from the installed distributions' metadata, not from importing the packages:
importing timm alone costs seconds, and a run must not pay that to write a record.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata

RECORDED_PACKAGES = ("avbench", "torch", "timm", "accelerate", "transformers", "optuna")


@functools.cache  # installed versions do not change within a process; a sweep asks once per trial
def _installed() -> tuple[tuple[str, str], ...]:
    found = {"python": platform.python_version()}
    for package in RECORDED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return tuple(found.items())


def versions() -> dict[str, str]:
    return dict(_installed())


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
