"""Errors a user can cause. The CLI prints them as one line, never as a traceback."""

import difflib
import errno


def did_you_mean(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else the list of choices."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    listed = ", ".join(sorted(choices)) or "none"
    return f" (choose from: {listed})"


class AvbenchError(Exception):
    """Base class: a problem with the user's input (config, data, arguments)."""


class ConfigError(AvbenchError):
    """An experiment file or override is malformed, unknown or of the wrong type."""


class InfeasibleConfig(ConfigError):
    """Values a model cannot be built with (a ViT image not divisible by its patch, a width
    not divisible by its heads). Raised before any data is read or any weight trained, so a
    sweep can skip the combination instead of counting it as a failed trial."""


class DatasetError(AvbenchError):
    """A dataset is missing, or not in the layout its task expects."""


class DecodeError(DatasetError):
    """One file cannot be used (corrupt, empty, no audio track…): skipped, or fatal with data.strict."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class StorageError(AvbenchError):
    """A sweep storage URL is malformed, unsupported or cannot be opened."""


class OutOfSpace(AvbenchError):
    """The results folder has too little free space for the next checkpoint. Not the trial's
    fault: the sweep stops and re-queues the trial, as for an interrupt."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's "stop now", `kill`), handled exactly like Ctrl-C: the running
    trial is recorded as interrupted and re-queued; the command exits 143."""

    def __str__(self) -> str:
        return "terminated (SIGTERM)"


def interrupt_reason(exc: BaseException) -> str:
    """The run record's `error` for an interrupted run."""
    if isinstance(exc, OutOfSpace):
        return str(exc)
    return "interrupted by SIGTERM" if isinstance(exc, Terminated) else "interrupted by the user"


_OS_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (over the file-size limit)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "not a directory (a part of the path is a file)",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "no such file or directory",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "already exists",
}
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def describe_os_error(exc: OSError) -> str:
    """'no space left on device: /path': the reason in words and the file it concerns."""
    reason = _OS_REASONS.get(exc.errno, exc.strerror or type(exc).__name__)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{reason}: {' -> '.join(names)}" if names else f"{reason} ({exc})"
