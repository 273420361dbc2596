"""Helpers for datasets whose labels are folder names (commands, audiofolder).

Folder names are compared in Unicode NFC (macOS writes NFD, so `1_Левая` copied from a Mac
and from Linux must still be one class) and ordered naturally (`2_x` before `10_x`), so the
label numbers do not depend on the file system.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from avbench.data.audio import EMPTY_WAV_BYTES
from avbench.errors import DatasetError

if TYPE_CHECKING:
    from avbench.config import DataConfig
    from avbench.spec import Task

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"})


def class_name(folder: str) -> str:
    return unicodedata.normalize("NFC", folder)


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders embedded numbers by value: 1_a, 2_b, 10_c."""
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name)]


def visible_dirs(folder: Path, problems: list[tuple[Path, str]]) -> list[Path]:
    """Sub-folders not hidden, naturally sorted; an unreadable folder becomes a problem."""
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        problems.append((folder, f"unreadable folder: {exc.strerror}"))
        return []
    dirs = [entry for entry in entries if entry.is_dir() and not entry.name.startswith(".")]
    return sorted(dirs, key=lambda path: natural_key(class_name(path.name)))


def media_files(folder: Path, problems: list[tuple[Path, str]], *, recursive: bool) -> list[Path]:
    """Audio and video files in `folder` (and below when `recursive`), sorted. Other visible
    files, empty files and unreadable folders become problems."""
    found: list[Path] = []

    def unreadable(error: OSError) -> None:
        problems.append((Path(error.filename or folder), f"unreadable folder: {error.strerror}"))

    for current, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(current) / name
            suffix = path.suffix.lower()
            if suffix not in AUDIO_SUFFIXES and suffix not in VIDEO_SUFFIXES:
                problems.append((path, "not an audio or video file"))
                continue
            try:
                size = path.stat().st_size
            except OSError as exc:  # e.g. a link to a file that is gone
                problems.append((path, f"unreadable file: {exc.strerror}"))
                continue
            if size <= EMPTY_WAV_BYTES:
                problems.append((path, "empty file"))
            else:
                found.append(path)
    return sorted(found)


def compile_speaker_regex(pattern: str | None) -> re.Pattern[str] | None:
    """`data.speaker_regex` compiled; it must have exactly one group (the speaker)."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise DatasetError(f"data.speaker_regex '{pattern}' is not a valid regex: {exc}") from None
    if compiled.groups != 1:
        raise DatasetError(
            f"data.speaker_regex '{pattern}' must have exactly one (group) for the speaker, it has {compiled.groups}"
        )
    return compiled


def start_listing(task: Task, root: Path, data: DataConfig) -> tuple[Path, re.Pattern[str] | None]:
    """What a class-folder task checks before it lists `root`: the data options that apply, the
    speaker regex (compiled) and the root itself; empties `task.skipped` for this listing."""
    task.check_data_options(data)
    regex = compile_speaker_regex(data.speaker_regex)
    root = Path(root)
    task.skipped = []
    if not root.is_dir():
        raise task.missing(f"{root} does not exist")
    return root, regex


def speaker_of(path: Path, regex: re.Pattern[str]) -> str | None:
    """The regex's group searched in the file name, or None when it does not match."""
    match = regex.search(path.name)
    return match.group(1) if match else None
