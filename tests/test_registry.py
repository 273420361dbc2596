"""The lazy registries: names read from the source agree with what the modules register, and
looking one entry up imports its module alone (and none of another family's libraries)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from avbench.errors import ConfigError
from avbench.registry import MODELS, TASKS, Registry, scan_registrations

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("registry", [MODELS, TASKS], ids=["models", "tasks"])
def test_scanned_names_are_what_the_modules_register(registry: Registry) -> None:
    package = importlib.import_module(registry.package)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{registry.package}.{module.name}")
    in_package = {
        name: registry.get(name).__module__
        for name in registry.names()
        if registry.get(name).__module__.startswith(registry.package + ".")
    }
    assert registry.modules() == in_package


def test_a_decorator_without_a_literal_name_is_not_guessed(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "lazy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text('@register_model("one", tiny={})\ndef one(spec):\n    return spec\n')
    (package / "_private.py").write_text('@register_model("hidden")\ndef hidden(spec):\n    return spec\n')
    (package / "named.py").write_text('NAME = "x"\n\n\n@register_model(NAME)\ndef named(spec):\n    return spec\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert scan_registrations("lazy_pkg", "register_model") == {"one": "lazy_pkg.one"}


def test_a_module_that_does_not_register_its_scanned_name_says_so(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "liar_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    fake = 'def register_model(name):\n    return lambda f: f\n\n\n@register_model("liar")\ndef liar():\n    pass\n'
    (package / "liar.py").write_text(fake)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("model", "liar_pkg", "register_model")
    assert registry.names() == ["liar"] and "liar" in registry
    with pytest.raises(RuntimeError, match="does not register model 'liar'"):
        registry.get("liar")
    with pytest.raises(ConfigError, match="unknown model 'lair' \\(did you mean 'liar'\\?\\)"):
        registry.get("lair")


LOOKUPS = """
import json, sys
from avbench.registry import MODELS, TASKS
before = set(sys.modules)
names = MODELS.names(), TASKS.names()
listed = sorted(m for m in set(sys.modules) - before if m.startswith("avbench."))
MODELS.get("mel-stats-mlp")
TASKS.get("esc10")
loaded = sorted(m for m in sys.modules if m.startswith(("avbench.models.", "avbench.tasks.")))
heavy = sorted(m for m in ("timm", "transformers", "torchvision") if m in sys.modules)
print(json.dumps({"listed": listed, "loaded": loaded, "heavy": heavy}))
"""


def test_one_lookup_imports_one_module_and_listing_imports_none() -> None:
    out = subprocess.run([sys.executable, "-c", LOOKUPS], capture_output=True, text=True, cwd=REPO, check=True)
    seen = json.loads(out.stdout)
    assert seen["listed"] == []
    # Only its own module among the registered ones (shared private helpers such as _heads may come along).
    registered = [m for m in seen["loaded"] if m.startswith("avbench.models.") and not m.split(".")[-1].startswith("_")]
    assert registered == ["avbench.models.mel_stats_mlp"]
    # esc10 reads esc50's metadata, so esc50's module comes along; no other task's does.
    task_modules = set(TASKS.modules().values())
    assert [m for m in seen["loaded"] if m in task_modules] == ["avbench.tasks.esc10", "avbench.tasks.esc50"]
    assert seen["heavy"] == []
