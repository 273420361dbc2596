"""The classifier every model ends in: one Linear for a single-head task, one Linear per head
(a ModuleDict whose output is a dict of logits) when the task declares several heads.

Every model file builds its last layer with `classifier(width, spec)`, so any family can be
given several targets (emotion and state) without code of its own.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avbench.spec import TaskSpec

Logits = torch.Tensor | dict[str, torch.Tensor]


class MultiHead(nn.Module):
    """One Linear per head on the same features; forward gives {head: logits [..., classes]}.
    With `concatenated`, the heads' logits side by side in one tensor instead, for code that
    indexes the classifier's output as a tensor (HF's Perceiver postprocessor): split it
    afterwards with `split_heads`."""

    def __init__(self, in_features: int, sizes: dict[str, int], concatenated: bool = False):
        super().__init__()
        self.heads = nn.ModuleDict({name: nn.Linear(in_features, size) for name, size in sizes.items()})
        self.concatenated = concatenated

    @property
    def in_features(self) -> int:
        return next(iter(self.heads.values())).in_features

    def forward(self, features: torch.Tensor) -> Logits:
        logits = {name: head(features) for name, head in self.heads.items()}
        return torch.cat(list(logits.values()), dim=-1) if self.concatenated else logits


def classifier(in_features: int, spec: TaskSpec, *, concatenated: bool = False) -> nn.Module:
    """The model's last layer for the task's classes: a Linear, or a MultiHead for several heads."""
    if not spec.heads:
        return nn.Linear(in_features, spec.num_classes)
    return MultiHead(in_features, spec.head_sizes(), concatenated)


def output_width(spec: TaskSpec) -> int:
    """How many logits a concatenated classifier gives: all heads' classes together."""
    return sum(spec.head_sizes().values()) if spec.heads else spec.num_classes


def split_heads(logits: torch.Tensor, spec: TaskSpec) -> Logits:
    """A concatenated classifier's logits back into a dict per head (unchanged for one head)."""
    if not spec.heads:
        return logits
    return dict(zip(spec.heads, logits.split(list(spec.head_sizes().values()), dim=-1), strict=True))


def mean_probability_logits(outputs: list[Logits]) -> Logits:
    """log of the mean softmax over several classifiers' outputs, per head: an ensemble's logits."""
    if isinstance(outputs[0], dict):
        return {name: mean_probability_logits([out[name] for out in outputs]) for name in outputs[0]}
    log_probs = torch.stack([out.log_softmax(dim=-1) for out in outputs])
    return torch.logsumexp(log_probs, dim=0) - math.log(len(outputs))
