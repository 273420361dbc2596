"""OpenAV's published extractors (DmitryRyumin/OpenAV, openav/modules/nn/models.py:
`ResNet18(channels)` and `CNNLSTMPyTorch()`), restated with the same module names, layer
order and padding, to build the state dicts OpenAV ships and the features it computes.
Only the tests use it: avbench's own extractors must load these state dicts strictly and
reproduce these outputs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv2dSame(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        pad_h = max((math.ceil(ih / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - ih, 0)
        pad_w = max((math.ceil(iw / self.stride[1]) - 1) * self.stride[1] + self.kernel_size[1] - iw, 0)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Bottleneck(nn.Module):
    def __init__(self, in_channels, out_channels, i_downsample=None, stride=1):
        super().__init__()
        self.i_downsample = i_downsample
        if i_downsample is not None:
            self.conv1 = Conv2dSame(in_channels, out_channels, 3, stride=stride, bias=True)
        else:
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding="same", bias=True)
        self.batch_norm1 = nn.BatchNorm2d(out_channels, eps=0.001, momentum=0.99)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding="same", bias=True)
        self.batch_norm2 = nn.BatchNorm2d(out_channels, eps=0.001, momentum=0.99)
        self.relu = nn.ReLU()

    def forward(self, x):
        identity = x.clone()
        x = self.relu(self.batch_norm1(self.conv1(x)))
        x = self.relu(self.batch_norm2(self.conv2(x)))
        if self.i_downsample is not None:
            identity = self.i_downsample(identity)
        return self.relu(x + identity)


class ResNet(nn.Module):
    def __init__(self, num_channels=3):
        super().__init__()
        self.in_channels = 64
        self.conv_layer_s2_same = Conv2dSame(num_channels, 64, 7, stride=2, bias=False)
        self.batch_norm1 = nn.BatchNorm2d(64, eps=0.001, momentum=0.99)
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.layer1 = self._make_layer(2, planes=64, stride=1)
        self.layer2 = self._make_layer(2, planes=128, stride=2)
        self.layer3 = self._make_layer(2, planes=256, stride=2)
        self.layer4 = self._make_layer(2, planes=512, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        x = self.max_pool(self.relu(self.batch_norm1(self.conv_layer_s2_same(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).reshape(x.shape[0], -1)

    def _make_layer(self, blocks, planes, stride=1):
        downsample = None
        if stride != 1 or self.in_channels != planes:
            downsample = nn.Sequential(
                Conv2dSame(self.in_channels, planes, 1, stride=stride, bias=True),
                nn.BatchNorm2d(planes, eps=0.001, momentum=0.99),
            )
        layers = [Bottleneck(self.in_channels, planes, i_downsample=downsample, stride=stride)]
        self.in_channels = planes
        layers += [Bottleneck(planes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)


def ResNet18(channels=3):  # noqa: N802 - OpenAV's name
    return ResNet(channels)


class CNNLSTMPyTorch(nn.Module):
    def __init__(self, h_u=512, channels=3, p_drop=0.2):
        super().__init__()
        self.resnet = ResNet18(channels=channels)
        self.lstm1 = nn.LSTM(input_size=h_u, hidden_size=h_u, batch_first=True)
        self.drop1 = nn.Dropout(p=p_drop)
        self.lstm2 = nn.LSTM(input_size=h_u, hidden_size=h_u, batch_first=True)
        self.drop2 = nn.Dropout(p=p_drop)

    def forward(self, x):
        frames = self.resnet(x.flatten(0, 1)).view(x.shape[0], x.shape[1], -1)
        frames, _ = self.lstm1(frames)
        frames, _ = self.lstm2(self.drop1(frames))
        return self.drop2(frames[:, -1, :])


def randomise_batch_norms(module: nn.Module, seed: int) -> nn.Module:
    """Give every BatchNorm trained-looking statistics and affine weights, so a mix-up of eps,
    running statistics or order shows in the outputs."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            size = layer.num_features
            layer.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            layer.running_var.copy_(torch.rand(size, generator=generator) * 0.5 + 0.01)
            layer.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            layer.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
    return module


def write_published_weights(folder) -> tuple:
    """OpenAV's two published extractor files, as `torch.save(model.state_dict())` writes them,
    with trained-looking BatchNorms: (resnet18_torch_audio.pt, resnet18_lstm_torch_video.pt)."""
    torch.manual_seed(3)
    audio_file, video_file = folder / "resnet18_torch_audio.pt", folder / "resnet18_lstm_torch_video.pt"
    audio_net = randomise_batch_norms(ResNet18(channels=1), seed=1).eval()
    video_net = randomise_batch_norms(CNNLSTMPyTorch(), seed=2).eval()
    torch.save(audio_net.state_dict(), audio_file)
    torch.save(video_net.state_dict(), video_file)
    return audio_file, video_file, audio_net, video_net
