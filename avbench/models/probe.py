"""The frozen-embedding probe (HEAR, SUPERB, X-ARES): encode once, cache, train a small head.

`model: probe` reads the cached embeddings of `encoder` (any registered audio model, usually
an hf-audio checkpoint given in `encoder_args`) instead of audio: the encoder runs once per
file and setting when the feature cache fills (avbench.recipes.embedding), and every trial of
a sweep trains only what is here, the layer weights, the attention pooling and the head, in
seconds. A kNN on the same embeddings, which trains nothing, goes into the record's
`data_scores` next to the probe's metrics.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from avbench.errors import ConfigError
from avbench.hf_checkpoints import TINY
from avbench.models._heads import Logits, output_width, split_heads
from avbench.registry import register_model
from avbench.spec import TaskSpec

Layer = int | Literal["last", "weighted"]
KNN_NEIGHBOURS = 10


class Probe(nn.Module):
    """Embeddings [B, (L,) (T,) D] → (softmax layer weights) → (attention pooling) → head."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, weighted: bool, attention: bool, head: nn.Module):
        super().__init__()
        self.weighted, self.attention = weighted, attention
        width = shape[-1]
        self.layer_logits = nn.Parameter(torch.zeros(shape[0])) if weighted else None
        self.attention_score = nn.Linear(width, 1) if attention else None
        self.norm = nn.LayerNorm(width, elementwise_affine=False)  # encoders' scales differ by orders
        self.head = head
        self.spec: TaskSpec | None = None  # set by the factory: several heads come side by side

    def forward(self, batch: dict[str, torch.Tensor]) -> Logits:
        x = batch["audio"].float()
        if self.weighted:
            weights = torch.softmax(self.layer_logits, dim=0)
            x = torch.einsum("l,bl...->b...", weights, x)
        if self.attention:
            scores = torch.softmax(self.attention_score(x).squeeze(-1), dim=-1)  # over frames
            x = torch.einsum("bt,btd->bd", scores, x)
        logits = self.head(self.norm(x))
        return split_heads(logits, self.spec) if self.spec is not None else logits


def _head(kind: str, width: int, num_classes: int, hidden_size: int, dropout: float) -> nn.Module:
    if kind == "linear":
        return nn.Linear(width, num_classes)
    return nn.Sequential(
        nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_size, num_classes)
    )


def knn_scores(data, model_args: dict) -> dict:
    """kNN on the cached embeddings (mean over frames, the last layer for "weighted"), cosine
    similarity, majority vote of the nearest training clips: it trains nothing, so it tells how
    much of the probe's score the embedding space gives by itself."""
    from avbench.train.metrics import classification_metrics

    def vector(row) -> np.ndarray:
        row = np.asarray(row, dtype=np.float32)
        if model_args.get("pool") == "attention":
            row = row.mean(axis=-2)
        return row[-1] if model_args.get("layer") == "weighted" else row

    def vectors(split) -> np.ndarray:
        # Row by row: with attention pooling a row holds every frame, too many to stack at once.
        rows = np.stack([vector(split.audio[i]) for i in range(len(split.labels))])
        return rows / (np.linalg.norm(rows, axis=1, keepdims=True) + 1e-8)

    if data.spec.heads:
        return {}  # kNN votes one label per clip; a multi-head task has several
    train = data.splits["train"]
    reference, labels = vectors(train), train.labels
    k = min(KNN_NEIGHBOURS, len(labels))
    num_classes = data.spec.num_classes
    scores: dict[str, Any] = {"k": k}
    for name in ("val", "test"):
        split = data.splits[name]
        nearest = np.argsort(-(vectors(split) @ reference.T), axis=1)[:, :k]
        votes = np.zeros((len(nearest), num_classes))
        np.add.at(votes, (np.arange(len(nearest))[:, None], labels[nearest]), 1)
        metrics = classification_metrics(split.labels, votes.argmax(axis=1), num_classes)
        scores[name] = {key: value for key, value in metrics.items() if key != "confusion"}
    return {"knn": scores}


@register_model(
    "probe",
    tiny={"encoder": "hf-audio", "encoder_args": {"checkpoint": "wav2vec2", "config": TINY["wav2vec2"]}},
    audio_input="embedding",
    # A recipe-level function, named rather than imported: models never import the data path.
    input_extractor="avbench.recipes.embedding:probe_embeddings",
    data_scores=knn_scores,
    cpu_threads=1,  # a head's ops are far too small to share between threads
)
def probe(
    spec: TaskSpec,
    encoder: str = "hf-audio",
    encoder_args: dict[str, Any] | None = None,
    layer: Layer = "last",
    pool: Literal["mean", "attention"] = "mean",
    head: Literal["linear", "mlp"] = "linear",
    hidden_size: int = 256,
    dropout: float = 0.1,
) -> nn.Module:
    """`encoder` + `encoder_args`: the frozen encoder (e.g. hf-audio with a checkpoint). `layer`:
    its last hidden state, hidden state k (0 = the input embedding), or a learned softmax-weighted
    sum of all (SUPERB). `pool`: mean over frames (in the cache) or learned attention pooling.
    `head`: linear, or an MLP with one hidden layer of `hidden_size`."""
    shape = tuple(spec.shapes["audio"])
    expected = 1 + (layer == "weighted") + (pool == "attention")
    if len(shape) != expected:
        raise ConfigError(f"probe: embeddings of shape {shape} do not match layer {layer!r} with pool {pool!r}")
    if not 0 <= dropout < 1:
        raise ConfigError(f"model_args.dropout must be in [0, 1), got {dropout}")
    classifier = _head(head, shape[-1], output_width(spec), hidden_size, dropout)
    probe = Probe(shape, spec.num_classes, layer == "weighted", pool == "attention", classifier)
    probe.spec = spec
    return probe
