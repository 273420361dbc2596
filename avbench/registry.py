"""Name → factory registries for models and tasks, with did-you-mean errors.

One file + one decorator adds an entry: the packages `avbench.models` and `avbench.tasks`
import every module they contain on first lookup, so nothing else needs editing.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

from avbench.errors import ConfigError


def did_you_mean(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else the list of choices."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    listed = ", ".join(sorted(choices)) or "none"
    return f" (choose from: {listed})"


class Registry:
    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package
        self._entries: dict[str, Any] = {}
        self._discovered = False

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

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")

    def get(self, name: str) -> Any:
        self._discover()
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries


MODELS = Registry("model", "avbench.models")
TASKS = Registry("task", "avbench.tasks")


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

    What makes every compatible `<model>-<task>` an experiment without a file (avbench.derived):
    `defaults` is a partial experiment (data, model_args, train, evaluation, sweep sections) the
    model's derived experiments start from; `search` maps the dotted fields the model searches
    (e.g. "model_args.dropout") to their ranges in the sweep-file vocabulary, which also serve
    any experiment that leaves such a field null without a range of its own; `presets` adds to
    the derived `tiny` preset (built from `tiny` and `tiny_data`) and names a `cpu` one.
    """
    if audio_input not in ("logmel", "waveform", "spectrogram"):
        raise ValueError(f"audio_input must be 'logmel', 'waveform' or 'spectrogram', not {audio_input!r}")
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
        defaults=dict(defaults or {}),
        search=dict(search or {}),
        presets=dict(presets or {}),
    )


def register_task(name: str):
    """Register a Task subclass under `name`."""
    return TASKS.register(name)
