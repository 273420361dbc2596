"""auDeep's recurrent sequence-to-sequence autoencoder (Freitag et al., JMLR 2017).

It reads a spectrogram as a sequence of frames and learns, without labels, to reproduce it:
the encoder RNN's final state goes through a tanh layer, the *representation*, which becomes
the decoder RNN's initial state; the decoder is fed the previous target frame (teacher
forcing) and predicts the input reversed in time, through a tanh projection. The loss is the
root mean square reconstruction error. The representation of each clip is what auDeep
evaluates: `encode(batch)` gives it, and avbench.audeep scores it with an MLP.

One autoencoder per clip-below threshold (one input channel each), as auDeep trains one per
spectrogram set; they share nothing, so training them in one loop is training them apart,
and their representations are concatenated (auDeep's `fuse`). Dropout (1 - keep_prob) acts
between stacked layers and on the decoder's output, as auDeep's output-dropout wrappers do.
Representation size per threshold: num_layers x num_units x (2 if the decoder is
bidirectional) x (2 for LSTM, whose state is h and c): 2 x 256 x 2 = 1024 in auDeep's ESC-10
recipe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from avbench.models._options import flat_options
from avbench.registry import register_model
from avbench.spec import TaskSpec

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class ThresholdAutoencoder(nn.Module):
    """The autoencoder of one spectrogram set: frames [B, T, bands] in, [B, T, bands] out."""

    def __init__(
        self,
        bands: int,
        cell: str,
        num_layers: int,
        num_units: int,
        bidirectional_encoder: bool,
        bidirectional_decoder: bool,
        keep_prob: float,
    ):
        super().__init__()
        rnn, drop = CELLS[cell], 1.0 - keep_prob
        between_layers = drop if num_layers > 1 else 0.0  # torch warns about dropout on a single layer
        self.num_units = num_units
        self.is_lstm = cell == "lstm"
        self.encoder = rnn(
            bands, num_units, num_layers, batch_first=True, dropout=between_layers, bidirectional=bidirectional_encoder
        )
        self.decoder = rnn(
            bands, num_units, num_layers, batch_first=True, dropout=between_layers, bidirectional=bidirectional_decoder
        )
        states = 2 if self.is_lstm else 1
        encoder_state = num_layers * (2 if bidirectional_encoder else 1) * num_units * states
        self.representation_size = num_layers * (2 if bidirectional_decoder else 1) * num_units * states
        self.to_representation = nn.Linear(encoder_state, self.representation_size)
        self.output_dropout = nn.Dropout(drop)
        self.project = nn.Linear(num_units * (2 if bidirectional_decoder else 1), bands)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(frames)
        if self.is_lstm:
            state = torch.cat(state, dim=0)  # (h, c) → one [2·layers·directions, B, units]
        flat = state.transpose(0, 1).reshape(frames.shape[0], -1)
        return torch.tanh(self.to_representation(flat))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """The reconstruction of the frames reversed in time."""
        targets = frames.flip(1)
        state = self.encode(frames).reshape(frames.shape[0], -1, self.num_units).transpose(0, 1).contiguous()
        if self.is_lstm:
            hidden, cell = state.chunk(2, dim=0)
            state = (hidden.contiguous(), cell.contiguous())
        # Teacher forcing: at step t the decoder sees target t-1 (zeros before the first).
        previous = torch.cat([torch.zeros_like(targets[:, :1]), targets[:, :-1]], dim=1)
        decoded, _ = self.decoder(previous, state)
        return torch.tanh(self.project(self.output_dropout(decoded)))


class RecurrentAutoencoder(nn.Module):
    """batch["audio"]: [B, thresholds, bands, frames] (avbench.data.spectrogram)."""

    def __init__(self, thresholds: int, bands: int, **rnn_args):
        super().__init__()
        self.autoencoders = nn.ModuleList(ThresholdAutoencoder(bands, **rnn_args) for _ in range(thresholds))
        self.representation_size = sum(ae.representation_size for ae in self.autoencoders)

    @staticmethod
    def frames(batch: dict) -> torch.Tensor:
        """[B, thresholds, frames, bands]: time-major sequences, one per threshold."""
        return batch["audio"].transpose(-1, -2).contiguous()

    def forward(self, batch: dict) -> torch.Tensor:
        """Reconstructions [B, thresholds, frames, bands] of the time-reversed inputs."""
        frames = self.frames(batch)
        return torch.stack([ae(frames[:, i]) for i, ae in enumerate(self.autoencoders)], dim=1)

    def loss(self, output: torch.Tensor, batch: dict) -> torch.Tensor:
        """RMSE per threshold, averaged: each autoencoder's gradient is its own RMSE's (scaled
        by 1/thresholds, which Adam's normalisation absorbs)."""
        targets = self.frames(batch).flip(2)
        per_threshold = (output.float() - targets.float()).pow(2).mean(dim=(0, 2, 3)).sqrt()
        return per_threshold.mean()

    @torch.no_grad()
    def encode(self, batch: dict) -> torch.Tensor:
        """The fused representation [B, representation_size]: each threshold's, concatenated."""
        frames = self.frames(batch)
        return torch.cat([ae.encode(frames[:, i]) for i, ae in enumerate(self.autoencoders)], dim=1)


@dataclass(frozen=True)
class RnnOptions:
    """The model_args of every threshold's autoencoder (auDeep's names and defaults)."""

    cell: Literal["gru", "lstm"] = "gru"
    num_layers: Annotated[int, Field(ge=1)] = 2
    num_units: Annotated[int, Field(ge=1)] = 256
    bidirectional_encoder: bool = False
    bidirectional_decoder: bool = True
    keep_prob: Annotated[float, Field(gt=0, le=1)] = 0.8


# One intra-op thread on a CPU: an RNN steps through time in ops too small to share, and every
# step's thread barrier waits for a descheduled thread on a busy machine. A GRU (8 units, 49
# steps, batch 16) took 0.52 s per forward with 2 threads against 0.011 s with 1 on the shared
# 2-core machine (load 13).
@register_model(
    "audeep",
    tiny={"num_layers": 1, "num_units": 8},
    audio_input="spectrogram",
    objective="reconstruction",
    tiny_data={"win_ms": 80.0, "hop_ms": 40.0, "clip_below": [-45.0, -60.0]},
    cpu_threads=1,
    # auDeep's ESC recipe (samples/esc-10.sh); every epoch counts, nothing to prune before the MLP.
    defaults={
        "data": {"sample_rate": 44100, "win_ms": 80.0, "hop_ms": 40.0, "n_mels": 128, "clip_below": [-45.0, -60.0]},
        "train": {"epochs": 64, "batch_size": 64, "optimizer": "adam", "max_grad_norm": 2.0, "patience": 0},
        "sweep": {"pruner": "none"},
    },
    search={
        "model_args.keep_prob": {"min": 0.6, "max": 1.0},
        "evaluation.num_units": {"values": [64, 150, 256]},
        "evaluation.keep_prob": {"min": 0.4, "max": 0.9},
    },
    presets={
        "tiny": {"data": {"sample_rate": 8000, "n_mels": 16}, "evaluation": {"epochs": 20}},
        "cpu": {
            "data": {"sample_rate": 16000, "n_mels": 32, "clip_below": [-60.0]},
            "model_args": {"num_layers": 1, "num_units": 32},
            "train": {"epochs": 12, "batch_size": 32},
            "evaluation": {"epochs": 200},
        },
    },
)
@flat_options(rnn=RnnOptions)
def audeep(spec: TaskSpec, rnn: RnnOptions = RnnOptions()) -> nn.Module:
    thresholds, bands, _ = spec.shapes["audio"]
    return RecurrentAutoencoder(thresholds, bands, **asdict(rnn))
