"""Where experiments and their sweep files are found, from any working directory.

Search order, first match wins: `./experiments` and `./sweeps` of the working directory, then
each project folder of AVBENCH_EXPERIMENTS (an os.pathsep-separated list, which `avbench
--experiments DIR` prepends to), then the files built into the package. A project folder holds
`experiments/` and `sweeps/`, the same layout as the working directory and the built-ins. A
sweep file is looked up by the experiment's name in the same order. A `<model>-<task>` name
that no file claims is derived from the registries (avbench.derived).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from avbench.config import LoadedExperiment, loaded_experiment, read_mapping
from avbench.errors import ConfigError
from avbench.registry import did_you_mean

SUFFIXES = (".yaml", ".yml", ".json")
PATH_ENV = "AVBENCH_EXPERIMENTS"
BUILTIN = "built-in"
WORKING_DIR = "./experiments"


@dataclass(frozen=True)
class Folder:
    """One place experiments come from: `origin` is how listings name it."""

    origin: str
    experiments: Path
    sweeps: Path


@dataclass(frozen=True)
class ExperimentFile:
    name: str
    path: Path
    origin: str
    shadows: str | None = None  # the origin of a file of the same name that this one hides


def builtin_folder() -> Folder:
    root = Path(str(resources.files("avbench.builtin")))
    return Folder(BUILTIN, root / "experiments", root / "sweeps")


def search_folders() -> list[Folder]:
    """Every folder in search order; a listed project folder without experiments/ is an error."""
    folders = [Folder(WORKING_DIR, Path("experiments"), Path("sweeps"))]
    for entry in os.environ.get(PATH_ENV, "").split(os.pathsep):
        if not entry:
            continue
        root = Path(entry).expanduser()
        if not (root / "experiments").is_dir():
            raise ConfigError(
                f"{PATH_ENV}: {root} has no experiments/ folder (a project folder holds experiments/ and sweeps/)"
            )
        folders.append(Folder(str(root), root / "experiments", root / "sweeps"))
    folders.append(builtin_folder())
    return folders


def _files_in(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in SUFFIXES and path.is_file():
            found.setdefault(path.stem, path)
    return found


def experiment_files() -> list[ExperimentFile]:
    """Every experiment file that a name resolves to, by name, saying what each one shadows."""
    chosen: dict[str, ExperimentFile] = {}
    for folder in search_folders():
        for name, path in _files_in(folder.experiments).items():
            if name not in chosen:
                chosen[name] = ExperimentFile(name, path, folder.origin)
            elif chosen[name].shadows is None:
                first = chosen[name]
                chosen[name] = ExperimentFile(name, first.path, first.origin, shadows=folder.origin)
    return [chosen[name] for name in sorted(chosen)]


def list_experiments() -> list[str]:
    """Names of every experiment file (user and built-in); derived pairs are not files."""
    return [entry.name for entry in experiment_files()]


def find_file(name: str, kind: str = "experiments") -> Path | None:
    """The first `<name>.yaml|.yml|.json` in the search order, among experiments or sweeps."""
    for folder in search_folders():
        for suffix in SUFFIXES:
            candidate = getattr(folder, kind) / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def describe(path: Path) -> str:
    """How messages name a file: a built-in one by its place in the package (its absolute path
    says little and fills a table column), any other by its path."""
    builtin = builtin_folder()
    for kind, folder in (("experiments", builtin.experiments), ("sweeps", builtin.sweeps)):
        if path.parent == folder:
            return f"{BUILTIN} {kind}/{path.name}"
    return str(path)


def sweep_file_for(experiment: str) -> Path | None:
    return find_file(experiment, "sweeps")


def experiment_path(name_or_path: str) -> Path | None:
    """A path to a YAML/JSON file, or the file an experiment name resolves to (None: no file)."""
    path = Path(name_or_path)
    if path.suffix in SUFFIXES or path.exists():
        if not path.is_file():
            raise ConfigError(f"experiment file not found: {path}")
        return path
    return find_file(name_or_path)


def load_experiment(
    name_or_path: str, *, preset: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> LoadedExperiment:
    """An experiment by file path, by name (searched as above), or a derived `<model>-<task>`."""
    path = experiment_path(name_or_path)
    if path is not None:
        return loaded_experiment(path.stem, read_mapping(path), describe(path), preset=preset, overrides=overrides)
    from avbench.derived import derive_experiment, derived_names

    raw = derive_experiment(name_or_path)
    if raw is None:
        known = [*list_experiments(), *derived_names()]
        raise ConfigError(f"unknown experiment '{name_or_path}'{did_you_mean(name_or_path, known)}")
    return loaded_experiment(name_or_path, raw, "derived", preset=preset, overrides=overrides)
