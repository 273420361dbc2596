"""The error boundary of every `avbench` command: what a user or the machine can cause (bad
input, a full disk, a missing permission, a damaged file, a storage that went away, a signal)
ends as one line on stderr naming the thing, and exit status 1 (130 for Ctrl-C, 143 for
SIGTERM). `--debug` or AVBENCH_DEBUG=1 lets the traceback through instead.

SIGTERM is Ctrl-C here: while a command runs it raises `Terminated` (a KeyboardInterrupt),
so every process of a sweep (the --workers parent, each worker, each torchrun rank) records
its running trial as interrupted and re-queues it before it exits, as schedulers (Slurm,
Kubernetes) that send SIGTERM before killing expect.

No heavy imports: storage errors are recognised by their class's module, so the boundary
never imports sqlalchemy or optuna to catch them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

import click

from avbench.errors import AvbenchError, Terminated, describe_os_error

_STORAGE_MODULES = ("sqlalchemy", "psycopg2", "optuna.storages", "optuna.exceptions")


def debugging(ctx: click.Context | None = None) -> bool:
    flag = bool(ctx and ctx.params.get("debug"))
    return flag or os.environ.get("AVBENCH_DEBUG", "") not in ("", "0", "false", "no")


def is_storage_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in {m.split(".")[0] for m in _STORAGE_MODULES} and not isinstance(
        exc, AvbenchError
    )


def one_line(exc: BaseException) -> str | None:
    """The line to print for a fault the boundary owns; None for anything else (a bug)."""
    if isinstance(exc, AvbenchError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset {exc.start})"
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if is_storage_error(exc):
        lines = str(exc).strip().splitlines()
        return f"sweep storage error: {lines[0] if lines else type(exc).__name__}"
    return None


def raise_terminated(signum, frame):
    raise Terminated


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises Terminated while the block runs (the handler is put back after it, as
    the CLI may run inside another program, e.g. a test)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class BoundaryGroup(click.Group):
    """A click group whose commands end in one line for the faults above."""

    def invoke(self, ctx: click.Context):
        try:
            with sigterm_as_interrupt():
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            if debugging(ctx):
                raise
            what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            click.echo(f"\n{what}: finished trials are kept; re-run the same command to resume", err=True)
            sys.exit(143 if isinstance(exc, Terminated) else 130)
        except Exception as exc:
            line = one_line(exc)
            if line is None or debugging(ctx):
                raise
            if not isinstance(exc, AvbenchError):
                line += " (--debug shows the traceback)"
            raise click.ClickException(line) from None
