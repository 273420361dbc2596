"""`avbench cache ls | verify | prune`: the feature cache under results/cache/features."""

from __future__ import annotations

import time
from pathlib import Path

import click

from avbench.cli.support import make_console, results_dir


def _cache_root(ctx: click.Context) -> Path:
    from avbench.results.layout import feature_cache_dir

    return feature_cache_dir(results_dir(ctx))


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


@click.group()
def cache() -> None:
    """The feature cache: list settings, verify every shard, prune unused settings."""


@cache.command("ls")
@click.pass_context
def list_cache(ctx) -> None:
    """Every feature setting in the cache: files, failures, shards, size, last use."""
    from rich.table import Table

    from avbench.data.cache_admin import settings_folders

    folders = settings_folders(_cache_root(ctx))
    if not folders:
        click.echo(f"the feature cache under {_cache_root(ctx)} is empty")
        return
    table = Table("settings", "files", "failed", "shards", "size", "last used")
    for folder in folders:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(folder.last_used))
        table.add_row(
            folder.path.name,
            str(folder.files),
            str(folder.failures),
            str(folder.shards),
            _size(folder.size_bytes),
            used,
        )
    make_console().print(table)
    click.echo(f"{len(folders)} setting(s), {_size(sum(f.size_bytes for f in folders))} in {_cache_root(ctx)}")


@cache.command()
@click.option("--repair", is_flag=True, help="Remove the damaged shards (their files are decoded again on next use).")
@click.pass_context
def verify(ctx, repair: bool) -> None:
    """Check every shard against its index (length, rows, checksum); exit 1 if any is damaged."""
    from avbench.data.cache_admin import damaged_shards, remove_shard

    problems = damaged_shards(_cache_root(ctx))
    for shard, problem in problems:
        click.echo(f"damaged: {shard}.npy: {problem}" + ("; removed" if repair else ""))
        if repair:
            remove_shard(shard)
    if not problems:
        click.echo(f"every shard under {_cache_root(ctx)} matches its index")
    elif not repair:
        raise click.ClickException(f"{len(problems)} damaged shard(s); `avbench cache verify --repair` removes them")


@cache.command()
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0),
    default=7.0,
    show_default=True,
    help="Keep settings any run read within this many days, used by an experiment or not.",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.pass_context
def prune(ctx, keep_days: float, dry_run: bool) -> None:
    """Remove feature settings that no experiment (built-in or yours, any preset) uses."""
    from avbench.data.cache_admin import remove_folder, unused_folders
    from avbench.results.cache_usage import settings_in_use

    in_use, protected = settings_in_use(_cache_root(ctx))
    unused = unused_folders(_cache_root(ctx), in_use, protected, keep_days)
    for folder in unused:
        if not dry_run:
            remove_folder(folder)
        click.echo(f"{'would remove' if dry_run else 'removed'} {folder.path} ({_size(folder.size_bytes)})")
    total = _size(sum(f.size_bytes for f in unused))
    click.echo(f"{len(unused)} unused setting(s), {total}" + (" (dry run)" if dry_run else " freed"))
