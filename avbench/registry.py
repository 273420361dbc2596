"""Name → factory registries for models and tasks, with did-you-mean errors.

One file + one decorator adds an entry. The registries are lazy: the names come from a scan
of the package's source for `@register_model("name", …)` / `@register_task("name")`, and a
lookup imports only the module that registers the name asked for, so finding one model never
imports every model family (and its libraries).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from avbench.errors import ConfigError, did_you_mean


def scan_registrations(package: str, decorator: str) -> dict[str, str]:
    """name → module for every `@decorator("name", …)` in the package's public modules,
    read from the source without importing it."""
    spec = importlib.util.find_spec(package)
    found: dict[str, str] = {}
    for folder in spec.submodule_search_locations or ():
        for path in sorted(Path(folder).glob("*.py")):
            if path.name.startswith("_"):
                continue
            source = path.read_text(encoding="utf-8")
            if decorator not in source:
                continue
            for name in _decorated_names(ast.parse(source, str(path)), decorator):
                found[name] = f"{package}.{path.stem}"
    return found


def _decorated_names(tree: ast.Module, decorator: str) -> Iterator[str]:
    """The literal first arguments of `@decorator(...)` on the module's top-level definitions."""
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        for call in node.decorator_list:
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == decorator
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
            ):
                yield call.args[0].value


class Registry:
    """Entries registered by decorator; names known from the source, modules imported on lookup."""

    def __init__(self, kind: str, package: str, decorator: str):
        self.kind = kind
        self.package = package
        self.decorator = decorator
        self._entries: dict[str, Any] = {}
        self._modules: dict[str, str] | None = None

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            obj.registry_name = name
            for key, value in meta.items():
                setattr(obj, key, value)
            self._entries[name] = obj
            return obj

        return decorator

    def modules(self) -> dict[str, str]:
        """name → the module that registers it (scanned once per process)."""
        if self._modules is None:
            self._modules = scan_registrations(self.package, self.decorator)
        return self._modules

    def get(self, name: str) -> Any:
        if name not in self._entries:
            module = self.modules().get(name)
            if module is None:
                raise ConfigError(f"unknown {self.kind} '{name}'{did_you_mean(name, self.names())}")
            importlib.import_module(module)
            if name not in self._entries:
                raise RuntimeError(f"{module} does not register {self.kind} '{name}' as its source says")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted({*self.modules(), *self._entries})

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self.modules()


MODELS = Registry("model", "avbench.models", "register_model")
AUDIO_INPUTS = ("logmel", "waveform", "spectrogram", "hf", "embedding")
TASKS = Registry("task", "avbench.tasks", "register_task")


def register_model(
    name: str,
    *,
    tiny: dict[str, Any] | None = None,
    modalities=("audio",),
    audio_input="logmel",
    tiny_data: dict[str, Any] | None = None,
    check: Callable[..., None] | None = None,
    objective: str = "classification",
    cpu_threads: int | None = None,
    skips_parameters: bool = False,
    weights: dict[str, str] | None = None,
    input_extractor: Callable[..., Any] | str | None = None,
    data_scores: Callable[..., dict] | None = None,
    defaults: dict[str, Any] | None = None,
    search: dict[str, dict[str, Any]] | None = None,
    presets: dict[str, dict[str, Any]] | None = None,
):
    """Register a model factory `f(spec: TaskSpec, **model_args) -> nn.Module`.

    `tiny` holds kwargs that make the model small enough for tests; `modalities` lists the
    batch keys the model reads; `audio_input` is the audio feature it expects ("logmel"
    [1, mels, frames], "waveform" [1, samples] or auDeep's "spectrogram" [thresholds, mels,
    frames]); `tiny_data` the data fields (e.g. num_frames, image_size, max_segment) its tiny
    variant needs. `check(spec, **model_args)`, when given, raises
    avbench.errors.InfeasibleConfig for values the model cannot be built with; it runs before
    any data is read (the spec's shapes come from the data settings), so `avbench run` fails in
    one line and a sweep skips the combination untrained. The factory should call it too, so a
    direct call fails the same way. `objective` is "classification" (forward gives logits,
    trained with cross-entropy) or "reconstruction" (the model has `loss(output, batch)` and
    learns representations without labels, which an MLP then scores: see avbench.audeep).
    `cpu_threads` caps torch's intra-op threads while it trains on a CPU (None: no cap), for
    models whose ops are too small to share, such as RNNs stepping through time.
    `skips_parameters` says a training step may leave some trainable parameters without a
    gradient (wav2vec2's layerdrop skips whole layers): data-parallel training then asks DDP
    to look for unused parameters, which it otherwise refuses in the next step.
    `weights` maps model arguments that name a weights file to the sub-module each loads
    (av-fusion: {"path_to_model_fa": "feature_audio", ...}): when one is set, preflight builds
    the model on the meta device before any data is read, so a file that does not fit stops
    the run in one line (see avbench.models._weights.load_module_weights).
    `input_extractor(data, model_args, cache_root)` (a function, or "module:function" imported
    on its first call), for inputs that depend on the model's own
    arguments (audio_input "hf": a checkpoint's feature extractor; "embedding": a frozen
    encoder's embeddings), returns the extractor the feature cache fills the audio from.
    `data_scores(prepared_data, model_args)` scores the prepared data without training (the probe's kNN);
    its dict goes into the run record next to the model's metrics.

    What makes every compatible `<model>-<task>` an experiment without a file (avbench.derived):
    `defaults` is a partial experiment (data, model_args, train, evaluation, sweep sections) the
    model's derived experiments start from; `search` maps the dotted fields the model searches
    (e.g. "model_args.dropout") to their ranges in the sweep-file vocabulary, which also serve
    any experiment that leaves such a field null without a range of its own; `presets` adds to
    the derived `tiny` preset (built from `tiny` and `tiny_data`) and names a `cpu` one.
    """
    if audio_input not in AUDIO_INPUTS:
        raise ValueError(f"audio_input must be one of {AUDIO_INPUTS}, not {audio_input!r}")
    if audio_input in ("hf", "embedding") and input_extractor is None:
        raise ValueError(f"audio_input {audio_input!r} needs an input_extractor")
    if objective not in ("classification", "reconstruction"):
        raise ValueError(f"objective must be 'classification' or 'reconstruction', not {objective!r}")
    return MODELS.register(
        name,
        tiny_args=dict(tiny or {}),
        modalities=tuple(modalities),
        audio_input=audio_input,
        tiny_data=dict(tiny_data or {}),
        check=check,
        objective=objective,
        cpu_threads=cpu_threads,
        skips_parameters=skips_parameters,
        weights=dict(weights or {}),
        input_extractor=named_function(input_extractor) if isinstance(input_extractor, str) else input_extractor,
        data_scores=data_scores,
        defaults=dict(defaults or {}),
        search=dict(search or {}),
        presets=dict(presets or {}),
    )


def named_function(target: str) -> Callable[..., Any]:
    """'package.module:function', imported on the first call: a model names the data-layer
    function that makes its input without importing the data path (a layer rule)."""
    module_name, _, function_name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module_name), function_name)(*args, **kwargs)

    call.target = target
    return call


def register_task(name: str):
    """Register a Task subclass under `name`."""
    return TASKS.register(name)
