"""`avbench features …`: the auDeep stages one at a time (spectrogram, generate, evaluate,
export). `avbench run audeep-esc10` runs them all as one trial; these expose each stage.

Only click is imported at module level: torch, netCDF4 and matplotlib load inside commands.
"""

from __future__ import annotations

from pathlib import Path

import click

from avbench.cli.support import FILE, FOLDER, SchemaDefault, count_option, make_console, results_dir, schema_option
from avbench.spec import STANDIN_SIZES


@click.group()
def features() -> None:
    """auDeep stages: spectrograms, representations, MLP evaluation, CSV/ARFF export."""


@features.command()
@click.argument("dataset", required=False)
@click.option("--basedir", default=None, help="auDeep's name for DATASET: the dataset folder.")
@click.option(
    "--out",
    "--output",
    type=FILE,
    required=True,
    help="The netCDF-4 file to write (with --pretend: previews go to OUT's name + '-previews/').",
)
@click.option("--task", default=None, help="The dataset's task [default: from the stand-in marker or the layout].")
@schema_option(
    "--size",
    type=click.Choice(STANDIN_SIZES),
    field="data.synth_size",
    help="Stand-in size when DATASET is a task name.",
)
@count_option(
    "--sample-rate",
    help="Resample to this rate first [default: the rate of the dataset's first file, as auDeep reads it].",
)
@click.option("--window-width", type=float, default=0.08, show_default=True, help="FFT window, seconds.")
@click.option("--window-overlap", type=float, default=0.04, show_default=True, help="Window overlap, seconds.")
@click.option("--mel-bands", "--mel-spectrum", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--fixed-length",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds: longer clips are centre-cropped, shorter ones zero-padded on both sides.",
)
@schema_option(
    "--clip-below",
    type=float,
    multiple=True,
    field="data.clip_below",
    help="dB threshold (the loudest bin is 0 dB); repeat for several, one channel each.",
)
@count_option(
    "--pretend",
    help="Write PNG previews of the first N clips (spectrograms and amplitude histograms) instead.",
)
@click.option(
    "--center-fixed", is_flag=True, help="auDeep's flag, accepted: --fixed-length always cuts or pads at both ends."
)
@click.option("--strict", is_flag=True, help="Stop at the first bad file instead of skipping it.")
@click.pass_context
def spectrogram(
    ctx,
    dataset,
    basedir,
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
    center_fixed,
    strict,
) -> None:
    """Spectrograms of every clip of DATASET (a folder, or a task name = its synthetic stand-in)."""
    from avbench.audeep.stages import (
        extract_spectrograms,
        native_sample_rate,
        resolve_dataset,
        spectrogram_data,
        write_previews,
    )
    from avbench.audeep.store import write_feature_file
    from avbench.display import feature_progress

    task_name, root = resolve_dataset(one_of(dataset, basedir, "DATASET", "--basedir"), task, size)
    if sample_rate is None:
        sample_rate = native_sample_rate(task_name, root)
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
        f"wrote {out}: {clips} clips of {task_name} ({root}) at {sample_rate} Hz, {thresholds} threshold(s) "
        f"{', '.join(f'{t:g}' for t in clip_below)} dB, {frames} frames x {bands} mel bands"
        + (f"; skipped {skipped} bad file(s), listed in the file's avbench_settings" if skipped else "")
    )


@features.command()
@click.argument("run", type=FOLDER, required=False)
@click.option("--model-dir", type=FOLDER, default=None, help="auDeep's name for RUN.")
@click.option(
    "--spectrograms",
    "--input",
    type=FILE,
    required=True,
    help="A file from `avbench features spectrogram` with the run's spectrogram settings.",
)
@click.option("--out", "--output", type=FILE, required=True)
def generate(run: Path | None, model_dir: Path | None, spectrograms: Path, out: Path) -> None:
    """Representations of every clip from RUN's trained autoencoder (a results/runs/<exp>/<id> folder),
    fused across its clip-below thresholds."""
    from avbench.audeep.stages import generate_representations
    from avbench.audeep.store import read_feature_file, write_feature_file

    run = one_of(run, model_dir, "RUN", "--model-dir")
    result = generate_representations(run, read_feature_file(spectrograms))
    write_feature_file(out, result)
    click.echo(f"wrote {out}: {len(result)} clips x {result.features.shape[1]} features")


@features.command()
@click.argument("file", type=FILE, required=False)
@click.option("--input", "input_file", type=FILE, help="auDeep's name for FILE.")
@click.option("--num-layers", type=click.IntRange(min=0), cls=SchemaDefault, field="evaluation.num_layers")
@click.option("--num-units", type=click.IntRange(min=1), cls=SchemaDefault, field="evaluation.num_units")
@click.option(
    "--keep-prob", type=click.FloatRange(0, 1, min_open=True), cls=SchemaDefault, field="evaluation.keep_prob"
)
@click.option("--epochs", "--num-epochs", type=click.IntRange(min=1), cls=SchemaDefault, field="evaluation.epochs")
@click.option(
    "--lr", "--learning-rate", type=click.FloatRange(0, min_open=True), cls=SchemaDefault, field="evaluation.lr"
)
@click.option("--repeats", "--repeat", type=click.IntRange(min=1), cls=SchemaDefault, field="evaluation.repeats")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--cross-validate",
    is_flag=True,
    help="auDeep's flag: require the file's folds (FILE's folds are always used when it has them).",
)
@click.option("--shuffle", is_flag=True, help="auDeep's flag, accepted: full-batch training sees every clip each step.")
@click.option(
    "--plot",
    type=FILE,
    default=None,
    help="Write the test folds' confusion matrix to this PNG.",
)
def evaluate(
    file, input_file, num_layers, num_units, keep_prob, epochs, lr, repeats, seed, cross_validate, shuffle, plot
) -> None:
    """Cross-validate auDeep's MLP on FILE's features: accuracy and UAR per fold, mean ± std,
    and the confusion matrix of the test folds."""
    from rich.table import Table

    from avbench.audeep.stages import evaluate_file
    from avbench.config import EvaluationConfig

    file = one_of(file, input_file, "FILE", "--input")
    cfg = EvaluationConfig(
        num_layers=num_layers, num_units=num_units, keep_prob=keep_prob, epochs=epochs, lr=lr, repeats=repeats
    )
    data, result = evaluate_file(file, cfg, seed=seed, require_folds=cross_validate)
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
    console.print(confusion_table(result.test["confusion"], data.class_names))
    if plot is not None:
        from avbench.audeep.plots import write_confusion

        write_confusion(plot, result.test["confusion"], data.class_names, f"{file.name}: test folds")
        click.echo(f"confusion matrix: {plot}")


@features.command()
@click.argument("file", type=FILE, required=False)
@click.option("--input", "input_file", type=FILE, help="auDeep's name for FILE.")
@click.option("--format", "fmt", type=click.Choice(["csv", "arff"], case_sensitive=False), required=True)
@click.option(
    "--out",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="A file ending in .csv/.arff, or a folder: auDeep's tree (fold_<k>/NAME per fold, or "
    "train|devel|test/NAME for a task without folds) [default: FILE with the format's suffix]",
)
@click.option("--name", default=None, help="The files' name inside a folder --out [default: FILE's name].")
def export(file: Path | None, input_file: Path | None, fmt: str, out: Path | None, name: str | None) -> None:
    """Write FILE's features as CSV or ARFF: filename, fold, features, label per clip."""
    from avbench.audeep.export import export_features, export_tree
    from avbench.audeep.store import read_feature_file

    file = one_of(file, input_file, "FILE", "--input")
    fmt = fmt.lower()
    data = read_feature_file(file)
    if out is not None and (out.is_dir() or out.suffix.lower() != f".{fmt}"):
        written = export_tree(data, out, name or file.stem, fmt)
        click.echo(f"wrote {len(written)} file(s) under {out}: {', '.join(str(p.relative_to(out)) for p in written)}")
        return
    target = export_features(data, out or file.with_suffix(f".{fmt}"), fmt)
    click.echo(f"wrote {target}: {len(data)} rows, {data.features[0].size} features")


def one_of(value, alias, name: str, alias_name: str):
    """The value given either way (avbench's argument or auDeep's option), never both or neither."""
    if value is not None and alias is not None:
        raise click.UsageError(f"give {name} or {alias_name}, not both")
    if value is None and alias is None:
        raise click.UsageError(f"missing {name} (or auDeep's {alias_name})")
    return value if value is not None else alias


def confusion_table(confusion: list[list[int]], class_names: tuple[str, ...]):
    """Counts summed over the test folds and repeats: rows are the true classes, columns the predicted."""
    from rich.table import Table

    table = Table("true class", *class_names, title="confusion matrix, test folds (columns: predicted class)")
    for name, row in zip(class_names, confusion, strict=True):
        table.add_row(name, *(str(count) for count in row))
    return table
