"""`avbench features …`: the auDeep stages one at a time (spectrogram, generate, evaluate,
export). `avbench run audeep-esc10` runs them all as one trial; these expose each stage.

Only click is imported at module level: torch, netCDF4 and matplotlib load inside commands.
"""

from __future__ import annotations

from pathlib import Path

import click

from avbench.cli.support import SchemaDefault, make_console, results_dir
from avbench.spec import STANDIN_SIZES


@click.group()
def features() -> None:
    """auDeep stages: spectrograms, representations, MLP evaluation, CSV/ARFF export."""


@features.command()
@click.argument("dataset")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The netCDF-4 file to write (with --pretend: previews go to OUT's name + '-previews/').",
)
@click.option("--task", default=None, help="The dataset's task [default: from the stand-in marker or the layout].")
@click.option(
    "--size",
    type=click.Choice(STANDIN_SIZES),
    cls=SchemaDefault,
    field="data.synth_size",
    help="Stand-in size when DATASET is a task name.",
)
@click.option(
    "--sample-rate",
    type=click.IntRange(min=1),
    default=16000,
    show_default=True,
    help="Resample to this rate first (auDeep keeps the file's: 44100 for ESC).",
)
@click.option("--window-width", type=float, default=0.08, show_default=True, help="FFT window, seconds.")
@click.option("--window-overlap", type=float, default=0.04, show_default=True, help="Window overlap, seconds.")
@click.option("--mel-bands", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--fixed-length",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds: longer clips are centre-cropped, shorter ones zero-padded on both sides.",
)
@click.option(
    "--clip-below",
    type=float,
    multiple=True,
    cls=SchemaDefault,
    field="data.clip_below",
    help="dB threshold (the loudest bin is 0 dB); repeat for several, one channel each.",
)
@click.option(
    "--pretend",
    type=click.IntRange(min=1),
    default=None,
    help="Write PNG previews of the first N clips (spectrograms and amplitude histograms) instead.",
)
@click.option("--strict", is_flag=True, help="Stop at the first bad file instead of skipping it.")
@click.pass_context
def spectrogram(
    ctx,
    dataset,
    out,
    task,
    size,
    sample_rate,
    window_width,
    window_overlap,
    mel_bands,
    fixed_length,
    clip_below,
    pretend,
    strict,
) -> None:
    """Spectrograms of every clip of DATASET (a folder, or a task name = its synthetic stand-in)."""
    from avbench.audeep.stages import extract_spectrograms, resolve_dataset, spectrogram_data, write_previews
    from avbench.audeep.store import write_feature_file
    from avbench.display import feature_progress

    task_name, root = resolve_dataset(dataset, task, size)
    data = spectrogram_data(
        sample_rate, fixed_length, window_width, window_overlap, mel_bands, list(clip_below), strict
    )
    if pretend:
        folder = out.with_name(f"{out.stem}-previews")
        for path in write_previews(task_name, root, data, pretend, folder):
            click.echo(f"preview: {path}")
        return
    console = make_console()
    with feature_progress(console) as on_features:
        result = extract_spectrograms(task_name, root, data, results=results_dir(ctx), progress=on_features)
    write_feature_file(out, result)
    clips, thresholds, frames, bands = result.features.shape
    skipped = len(result.settings.get("skipped_files", []))
    click.echo(
        f"wrote {out}: {clips} clips of {task_name} ({root}), {thresholds} threshold(s) "
        f"{', '.join(f'{t:g}' for t in clip_below)} dB, {frames} frames x {bands} mel bands"
        + (f"; skipped {skipped} bad file(s), listed in the file's avbench_settings" if skipped else "")
    )


@features.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--spectrograms",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="A file from `avbench features spectrogram` with the run's spectrogram settings.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def generate(run: Path, spectrograms: Path, out: Path) -> None:
    """Representations of every clip from RUN's trained autoencoder (a results/runs/<exp>/<id> folder),
    fused across its clip-below thresholds."""
    from avbench.audeep.stages import generate_representations
    from avbench.audeep.store import read_feature_file, write_feature_file

    result = generate_representations(run, read_feature_file(spectrograms))
    write_feature_file(out, result)
    click.echo(f"wrote {out}: {len(result)} clips x {result.features.shape[1]} features")


@features.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--num-layers", type=click.IntRange(min=0), cls=SchemaDefault, field="evaluation.num_layers")
@click.option("--num-units", type=click.IntRange(min=1), cls=SchemaDefault, field="evaluation.num_units")
@click.option(
    "--keep-prob", type=click.FloatRange(0, 1, min_open=True), cls=SchemaDefault, field="evaluation.keep_prob"
)
@click.option("--epochs", type=click.IntRange(min=1), cls=SchemaDefault, field="evaluation.epochs")
@click.option("--lr", type=click.FloatRange(0, min_open=True), cls=SchemaDefault, field="evaluation.lr")
@click.option("--repeats", type=click.IntRange(min=1), cls=SchemaDefault, field="evaluation.repeats")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the test folds' confusion matrix to this PNG.",
)
def evaluate(file: Path, num_layers, num_units, keep_prob, epochs, lr, repeats, seed, plot) -> None:
    """Cross-validate auDeep's MLP on FILE's features: accuracy and UAR per fold, mean ± std."""
    from rich.table import Table

    from avbench.audeep.stages import evaluate_file
    from avbench.config import EvaluationConfig

    cfg = EvaluationConfig(
        num_layers=num_layers, num_units=num_units, keep_prob=keep_prob, epochs=epochs, lr=lr, repeats=repeats
    )
    data, result = evaluate_file(file, cfg, seed=seed)
    table = Table(
        "test fold",
        "val fold",
        "val acc",
        "val UAR",
        "test acc",
        "test UAR",
        title=f"{file}: {len(data)} clips, {data.features[0].size} features, {repeats} repeat(s)",
    )
    for entry in result.per_fold:
        table.add_row(
            str(entry["fold"] or "split"),
            str(entry["val_fold"] or "split"),
            *(f"{entry[s][m]:.4f}" for s in ("val", "test") for m in ("acc", "uar")),
        )
    console = make_console()
    console.print(table)
    for split in ("val", "test"):
        scores = getattr(result, split)
        console.print(
            f"{split}: acc {scores['acc']:.4f} ± {scores['acc_std']:.4f}, "
            f"UAR {scores['uar']:.4f} ± {scores['uar_std']:.4f}"
        )
    if plot is not None:
        from avbench.audeep.plots import write_confusion

        write_confusion(plot, result.test["confusion"], data.class_names, f"{file.name}: test folds")
        click.echo(f"confusion matrix: {plot}")


@features.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "arff"]), required=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="[default: FILE with the format's suffix]",
)
def export(file: Path, fmt: str, out: Path | None) -> None:
    """Write FILE's features as CSV or ARFF: filename, fold, features, label per clip."""
    from avbench.audeep.export import export_features
    from avbench.audeep.store import read_feature_file

    data = read_feature_file(file)
    target = export_features(data, out or file.with_suffix(f".{fmt}"), fmt)
    click.echo(f"wrote {target}: {len(data)} rows, {data.features[0].size} features")
