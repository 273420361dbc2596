"""av-fusion's feature extractors, laid out parameter for parameter as OpenAV's
(DmitryRyumin/OpenAV, openav/modules/nn/models.py: `ResNet18(channels)` and `CNNLSTMPyTorch()`),
so the state dicts OpenAV publishes (`resnet18_torch_audio.pt`, `resnet18_lstm_torch_video.pt`)
load with strict key matching and give the same 512-d features.

What that fixes: TensorFlow-style "same" padding (a stride-2 convolution pads more on the
right and bottom), a 7×7/2 stem without bias named `conv_layer_s2_same` + `batch_norm1`, a 2×2
max-pool, basic residual blocks whose 3×3 convolutions have biases, named
`conv1`/`batch_norm1`/`conv2`/`batch_norm2`/`i_downsample`, a ReLU after the second BatchNorm
*and* after the sum, BatchNorm eps 1e-3; the video net's ResNet under `resnet.` and two
single-layer LSTMs `lstm1`/`lstm2` with dropout after each.

One change: OpenAV passes Keras's BatchNorm momentum (0.99: keep 99 % of the running
statistics) to PyTorch, where momentum is the weight of the *new* batch, so its running
statistics were those of the last batch alone; here momentum is 0.01, what Keras meant.
`width` (64 = OpenAV) scales every stage so CPU presets and tests can shrink the nets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class SamePadConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's "same": output = ceil(input / stride), the odd pixel
    of padding on the right/bottom (PyTorch's padding="same" refuses strides above 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        geometry = zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation, strict=True)
        for size, kernel, stride, dilation in geometry:
            total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ResidualBlock(nn.Module):
    """OpenAV's `Bottleneck` (a basic block): conv → BN → ReLU → conv → BN → ReLU, + shortcut, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.i_downsample = None
        if stride != 1 or in_channels != out_channels:
            self.i_downsample = nn.Sequential(
                SamePadConv2d(in_channels, out_channels, 1, stride=stride, bias=True), _batch_norm(out_channels)
            )
            self.conv1: nn.Conv2d = SamePadConv2d(in_channels, out_channels, 3, stride=stride, bias=True)
        else:
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding="same", bias=True)
        self.batch_norm1 = _batch_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding="same", bias=True)
        self.batch_norm2 = _batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.i_downsample is None else self.i_downsample(x)
        out = F.relu(self.batch_norm1(self.conv1(x)))
        out = F.relu(self.batch_norm2(self.conv2(out)))
        return F.relu(out + shortcut)


class ResNet18(nn.Module):
    """OpenAV's ResNet18 up to its global pooling: [N, C, H, W] → [N, 8·width]."""

    def __init__(self, in_channels: int, width: int = 64):
        super().__init__()
        self.conv_layer_s2_same = SamePadConv2d(in_channels, width, 7, stride=2, bias=False)
        self.batch_norm1 = _batch_norm(width)
        channels = width
        for index, stride in enumerate((1, 2, 2, 2), 1):
            planes = width * 2 ** (index - 1)
            setattr(
                self,
                f"layer{index}",
                nn.Sequential(ResidualBlock(channels, planes, stride), ResidualBlock(planes, planes)),
            )
            channels = planes
        self.out_features = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.batch_norm1(self.conv_layer_s2_same(x))), kernel_size=2, stride=2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class LipReader(nn.Module):
    """OpenAV's `CNNLSTMPyTorch`: ResNet18 on every frame → LSTM → dropout → LSTM → the last
    time step → dropout: [N, T, 3, H, W] → [N, lstm_size]."""

    def __init__(self, width: int = 64, lstm_size: int = 512, dropout: float = 0.2):
        super().__init__()
        self.resnet = ResNet18(3, width)
        self.lstm1 = nn.LSTM(self.resnet.out_features, lstm_size, batch_first=True)
        self.drop1 = nn.Dropout(dropout)
        self.lstm2 = nn.LSTM(lstm_size, lstm_size, batch_first=True)
        self.drop2 = nn.Dropout(dropout)
        self.out_features = lstm_size

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        count, steps = frames.shape[:2]
        per_frame = self.resnet(frames.flatten(0, 1)).view(count, steps, -1)
        sequence, _ = self.lstm1(per_frame)
        sequence, _ = self.lstm2(self.drop1(sequence))
        return self.drop2(sequence[:, -1])
