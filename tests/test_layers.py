"""The layers of DESIGN.md §2, checked on the source: imports point down, never up.

Every `import` in avbench/ counts, at module level or inside a function (a lazy import is
still a dependency), except those under `if TYPE_CHECKING:`. A contract forbids a layer to
reach a module or a library through any chain of avbench modules, as import-linter's
"forbidden" contracts do. The commands people type most are run in a subprocess that then
looks at sys.modules: they must not import torch.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "avbench"

# (what, source prefixes, forbidden prefixes): no module under a source may reach a forbidden one.
CONTRACTS = [
    (
        "models never import tasks or data loaders",
        ["avbench.models"],
        ["avbench.tasks", "avbench.data", "avbench.preflight", "avbench.runner", "avbench.recipes", "avbench.sweep"],
    ),
    ("data never imports tasks or the registry", ["avbench.data"], ["avbench.tasks", "avbench.registry"]),
    ("config never imports the registry", ["avbench.config"], ["avbench.registry", "avbench.tasks", "avbench.models"]),
    (
        "train never imports optuna, wandb or recipes",
        ["avbench.train"],
        ["optuna", "wandb", "avbench.recipes", "avbench.runner", "avbench.sweep", "avbench.cli"],
    ),
    # W&B tracking is every backend's mirror: the core reaches wandb only through avbench.tracking
    # (see TRACKING below), never through a backend.
    ("the sweep core never imports optuna or wandb", ["avbench.sweep.core"], ["optuna", "wandb"]),
    (
        "the shared contracts import no torch",
        ["avbench.spec", "avbench.errors", "avbench.registry", "avbench.config", "avbench.context"],
        ["torch", "numpy"],
    ),
]
# What importing a module (not calling it) may not load: finding one model, or reading its
# registry entry, must not pay for the libraries of another.
IMPORT_TIME_CONTRACTS = [
    (
        "model modules import timm, transformers and torchvision only where they build a model",
        ["avbench.models"],
        ["timm", "transformers", "torchvision"],
    ),
    (
        "the registry, the contracts and the tasks import no torch",
        ["avbench.registry", "avbench.spec", "avbench.config", "avbench.tasks"],
        ["torch"],
    ),
]


def module_name(path: Path, base: Path) -> str:
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _skipped(node: ast.AST, parents: dict[ast.AST, ast.AST], at_import_only: bool) -> bool:
    """Under `if TYPE_CHECKING:` (never runs), or inside a function when only what runs at
    import time counts."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
        if at_import_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def imported_names(path: Path, base: Path, at_import_only: bool = False) -> list[str]:
    """Every module the file imports, resolved against `base` (the folder above the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    package = module_name(path, base).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _skipped(node, parents, at_import_only):
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
            continue
        module = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]) if node.level else node.module
        module = module.strip(".")
        found.append(module)
        # `from avbench.tasks import synth` imports the module avbench.tasks.synth.
        found += [f"{module}.{alias.name}" for alias in node.names]
    return found


def import_graph(root: Path = PACKAGE, at_import_only: bool = False) -> dict[str, set[str]]:
    """module → every module it imports (avbench modules resolved to files, libraries by name);
    with `at_import_only`, only the imports that run when the module is imported."""
    files = {module_name(path, root.parent): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for target in imported_names(path, root.parent, at_import_only):
            if target.split(".")[0] != "avbench":
                targets.add(target)
            elif target in files:
                targets.add(target)
        graph[name] = targets
    return graph


def _under(module: str, prefixes: list[str]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def violations(graph: dict[str, set[str]], sources: list[str], forbidden: list[str]) -> list[str]:
    """'a -> b -> c': for each source module that reaches a forbidden one, its shortest chain."""
    return [
        chain for start in sorted(m for m in graph if _under(m, sources)) if (chain := _chain(graph, start, forbidden))
    ]


def _chain(graph: dict[str, set[str]], start: str, forbidden: list[str]) -> str | None:
    seen, queue = {start: [start]}, [start]
    while queue:
        current = queue.pop(0)
        for target in sorted(graph.get(current, ())):
            if target in seen:
                continue
            seen[target] = [*seen[current], target]
            if _under(target, forbidden):
                return " -> ".join(seen[target])
            if target in graph:
                queue.append(target)
    return None


# The one module that starts W&B runs for every backend (through Accelerate's tracker); its own
# wandb imports are allowed to the sweep core, which runs trials with tracking on.
TRACKING = ("avbench.tracking", "wandb")


def without_tracking(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    module, library = TRACKING
    return {**graph, module: {t for t in graph.get(module, ()) if not _under(t, [library])}}


GRAPHS = {False: import_graph(), True: import_graph(at_import_only=True)}
ALL_CONTRACTS = [(*contract, False) for contract in CONTRACTS] + [(*c, True) for c in IMPORT_TIME_CONTRACTS]
IDS = [contract[0] for contract in ALL_CONTRACTS]


@pytest.mark.parametrize(("what", "sources", "forbidden", "at_import_only"), ALL_CONTRACTS, ids=IDS)
def test_layer_contract(what, sources, forbidden, at_import_only):
    graph = GRAPHS[at_import_only]
    if sources == ["avbench.sweep.core"]:
        graph = without_tracking(graph)
    assert violations(graph, sources, forbidden) == [], what


@pytest.mark.parametrize(("what", "sources", "forbidden", "at_import_only"), ALL_CONTRACTS, ids=IDS)
def test_each_contract_fails_when_broken(what, sources, forbidden, at_import_only):
    """One forbidden edge, added anywhere below a source (here through a helper module), is caught."""
    graph = GRAPHS[at_import_only]
    source = next((m for m in sorted(graph) if _under(m, sources)), sources[0])
    broken = {**graph, source: graph.get(source, set()) | {"avbench.helper_in_between"}}
    broken["avbench.helper_in_between"] = {forbidden[-1]}
    assert f"{source} -> avbench.helper_in_between -> {forbidden[-1]}" in violations(broken, sources, forbidden)


def test_the_graph_sees_lazy_and_relative_imports(tmp_path):
    package = tmp_path / "avbench"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "a.py").write_text("import numpy\n\n\ndef f():\n    from ..tasks import b\n")
    (package / "tasks").mkdir()
    (package / "tasks" / "__init__.py").write_text("")
    (package / "tasks" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n")
    graph = import_graph(package)
    assert violations(graph, ["avbench.data"], ["avbench.tasks"]) == ["avbench.data.a -> avbench.tasks"]
    assert violations(graph, ["avbench.tasks"], ["torch"]) == []
    at_import = import_graph(package, at_import_only=True)
    assert violations(at_import, ["avbench.data"], ["avbench.tasks"]) == []
    assert violations(at_import, ["avbench.data"], ["numpy"]) == ["avbench.data.a -> numpy"]


# What the commands below may not import; every one is run in one interpreter, in order, and
# the first that loads a forbidden library is named.
LIGHT_COMMANDS = [
    ("import avbench", None, ("torch", "optuna", "wandb", "timm", "accelerate")),
    ("avbench --help", ["--help"], ("torch", "optuna", "wandb", "timm", "accelerate")),
    ("avbench list experiments", ["list", "experiments"], ("torch",)),
    ("avbench list tasks", ["list", "tasks"], ("torch",)),
    ("avbench leaderboard", ["leaderboard", "--format", "json"], ("torch",)),
    ("avbench show --no-plots", ["show", "mel-stats-mlp-cremad", "--no-plots"], ("torch",)),
]

PROBE = """
import json, sys
from click.testing import CliRunner
commands, results = json.loads(sys.argv[1]), sys.argv[2]
import avbench
from avbench.cli import cli
for name, args, heavy in commands:
    if args is not None:
        result = CliRunner().invoke(cli, ["--results", results, *args])
        if result.exit_code != 0:
            print(f"{name}: exit {result.exit_code}: {result.output}")
            break
    loaded = [module for module in heavy if module in sys.modules]
    if loaded:
        print(f"{name} imports {', '.join(loaded)}")
        break
"""


def _one_finished_study(results: Path) -> None:
    """A study as a sweep leaves it, written with optuna alone (no training)."""
    import optuna

    from avbench.sweep.storage import resolve_storage_url

    url = resolve_storage_url(None, results, "mel-stats-mlp-cremad")
    Path(results, "studies").mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=url, study_name="mel-stats-mlp-cremad", direction="maximize")
    study.set_user_attr("experiment", "mel-stats-mlp-cremad")
    study.set_user_attr("metric", "val/acc")
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 1e-3},
            distributions={"lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)},
            value=0.5,
        )
    )


def test_light_commands_import_no_torch(tmp_path):
    import json

    _one_finished_study(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(LIGHT_COMMANDS), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert out.stdout.strip() == ""


# The names of results/'s layout; joined onto a path (`x / "runs"`) only in avbench/results/layout.py.
LAYOUT_NAMES = {
    "runs",
    "studies",
    "cache",
    "features",
    "wandb",
    "wandb-sweeps",
    "record.json",
    "metrics.jsonl",
    "config.yaml",
    "best.pt",
    "last.pt",
    "representations.nc",
    "confusion.png",
}


def layout_paths_outside(root: Path, owner: str) -> list[str]:
    """'module:line' for each `path / "<layout name>"` (or f"…" starting with one) outside `owner`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root.parent)
        if name == owner:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                right = node.right
                if isinstance(right, ast.JoinedStr) and right.values and isinstance(right.values[0], ast.Constant):
                    right = right.values[0]
                if isinstance(right, ast.Constant) and str(right.value).split("-{")[0] in LAYOUT_NAMES:
                    found.append(f"{name}:{node.lineno}")
    return found


def test_only_the_layout_module_builds_paths_under_results(tmp_path):
    assert layout_paths_outside(PACKAGE, "avbench.results.layout") == []
    package = tmp_path / "avbench"
    package.mkdir()
    (package / "stray.py").write_text('from pathlib import Path\n\nLOG = Path("results") / "studies"\n')
    assert layout_paths_outside(package, "avbench.results.layout") == ["avbench.stray:3"]


# Starting a W&B run must not import W&B Launch (wandb.sdk.launch and the public API) when no
# Launch input was staged, nor logging a table pandas; the run itself still starts and logs.
W_AND_B_START = """
import json, sys
from pathlib import Path
from accelerate import Accelerator
from avbench.tracking import LAUNCH_INPUTS_MODULE, start_tracking
accelerator = Accelerator(log_with="wandb")
run_id = start_tracking(accelerator, results=Path(sys.argv[1]), project="layers", entity=None, run_name="r",
                        group=None, config={"lr": 0.1}, tags=[])
accelerator.log({"val/acc": 0.5}, step=1)
accelerator.get_tracker("wandb").log_table("test/per_class", columns=["class", "f1"], data=[["a", 0.5]])
for tracker in accelerator.trackers:
    tracker.finish()
print(json.dumps({"run_id": run_id, "launch_imported": LAUNCH_INPUTS_MODULE in sys.modules,
                  "pandas_imported": "pandas" in sys.modules}))
"""


def test_starting_a_wandb_run_imports_no_wandb_launch(tmp_path):
    import json

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", W_AND_B_START, str(tmp_path)], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert out.returncode == 0, out.stderr
    started = json.loads(out.stdout.strip().splitlines()[-1])
    assert started["run_id"] and not started["launch_imported"] and not started["pandas_imported"]
    assert list(tmp_path.glob(f"wandb/offline-run-*-{started['run_id']}"))


def test_staged_launch_inputs_are_still_applied(monkeypatch):
    from types import SimpleNamespace

    from avbench.tracking import LAUNCH_INPUTS_MODULE, apply_staged_launch_inputs

    applied = []
    staged = SimpleNamespace(StagedLaunchInputs=lambda: SimpleNamespace(apply=applied.append))
    run = object()
    monkeypatch.delitem(sys.modules, LAUNCH_INPUTS_MODULE, raising=False)
    apply_staged_launch_inputs(run)
    assert applied == []
    monkeypatch.setitem(sys.modules, LAUNCH_INPUTS_MODULE, staged)
    apply_staged_launch_inputs(run)
    assert applied == [run]


def test_installed_packages_are_read_once_per_process(monkeypatch):
    import wandb.util

    from avbench.tracking import list_installed_packages_once

    reads = []

    def working_set():
        reads.append(1)
        yield from ("numpy", "torch")

    monkeypatch.setattr(wandb.util, "working_set", working_set)
    list_installed_packages_once()
    list_installed_packages_once()
    assert [list(wandb.util.working_set()) for _ in range(3)] == [["numpy", "torch"]] * 3
    assert len(reads) == 1
