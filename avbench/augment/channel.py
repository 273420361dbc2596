"""How another recording chain colours a clip, drawn per clip: noise of a random colour (white,
pink or brown: fans, traffic and rooms are rarely white) and a random channel response
(microphones, codecs and telephone lines band-limit and tilt the spectrum). Both work in the
frequency domain on a batch [B, C, samples]; every draw comes from the pipeline's generator."""

from __future__ import annotations

import math

import torch

from avbench.config_augment import NOISE_COLOURS

LOWEST_HZ = 20.0  # coloured noise is flat below this (a 1/f spectrum has no floor)
LOW_PASS_HZ = (1000.0, 0.45)  # a low-pass edge between 1 kHz and 0.45 × the sample rate (log-uniform)
HIGH_PASS_HZ = (50.0, 800.0)  # a high-pass edge (log-uniform)
PEAK_DB = 12.0  # a peaking filter boosts or cuts by up to this
PEAK_OCTAVES = (0.3, 1.5)  # its width (the deviation of a Gaussian bump on the log-frequency axis)
ORDERS = (1, 4)  # the steepness of an edge: a Butterworth-like magnitude of this order
KINDS = ("low-pass", "high-pass", "band-pass", "peaking")
TAIL_SAMPLES = 2048  # zero padding after a clip; these smooth responses ring for far less


def _draw(generator: torch.Generator, count: int, low: float, high: float, log: bool = False) -> torch.Tensor:
    """[count, 1, 1] uniform draws (log-uniform with `log`) on the CPU generator."""
    u = torch.rand((count, 1, 1), generator=generator)
    if log:
        return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u)
    return low + (high - low) * u


def _frequencies(samples: int, sample_rate: int) -> torch.Tensor:
    return torch.fft.rfftfreq(samples, 1.0 / sample_rate).view(1, 1, -1)


def coloured_noise(shape: torch.Size, colour: str, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of unit power per clip whose power falls as 1/f^k: k = 0 white, 1 pink,
    2 brown; `random` draws the colour of each clip."""
    count, samples = shape[0], shape[-1]
    white = torch.randn(shape, generator=generator)
    if colour == "random":
        exponent = torch.randint(len(NOISE_COLOURS), (count, 1, 1), generator=generator).float()
    else:
        exponent = torch.full((count, 1, 1), float(NOISE_COLOURS.index(colour)))
    amplitude = _frequencies(samples, sample_rate).clamp_min(LOWEST_HZ).pow(-exponent / 2.0)
    noise = torch.fft.irfft(torch.fft.rfft(white) * amplitude, n=samples)
    return noise / noise.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-20).sqrt()


def _edge(freqs: torch.Tensor, cutoff: torch.Tensor, order: torch.Tensor, low_pass: bool) -> torch.Tensor:
    ratio = freqs / cutoff if low_pass else cutoff / freqs.clamp_min(1.0)
    return 1.0 / torch.sqrt(1.0 + ratio.pow(2.0 * order))


def channel_responses(count: int, samples: int, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """[count, 1, samples // 2 + 1] magnitude responses, one random channel (KINDS) per clip."""
    freqs = _frequencies(samples, sample_rate)
    kind = torch.randint(len(KINDS), (count, 1, 1), generator=generator)
    order = torch.randint(ORDERS[0], ORDERS[1] + 1, (count, 1, 1), generator=generator).float()
    low_cut = _draw(generator, count, LOW_PASS_HZ[0], LOW_PASS_HZ[1] * sample_rate, log=True)
    high_cut = _draw(generator, count, *HIGH_PASS_HZ, log=True)
    centre = _draw(generator, count, HIGH_PASS_HZ[0] * 3, LOW_PASS_HZ[1] * sample_rate * 0.9, log=True)
    peak_db = _draw(generator, count, -PEAK_DB, PEAK_DB)
    width = _draw(generator, count, *PEAK_OCTAVES)
    low_pass = torch.where((kind == 0) | (kind == 2), _edge(freqs, low_cut, order, True), 1.0)
    high_pass = torch.where((kind == 1) | (kind == 2), _edge(freqs, high_cut, order, False), 1.0)
    octaves = torch.log2(freqs.clamp_min(1.0) / centre)
    peak = torch.where(kind == 3, 10.0 ** (peak_db * torch.exp(-0.5 * (octaves / width) ** 2) / 20.0), 1.0)
    return low_pass * high_pass * peak


def through_channel(wave: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    """Each clip filtered by its (zero-phase) response over the zero-padded length the responses
    are for, and scaled back to its own loudness."""
    samples = wave.shape[-1]
    size = responses.shape[-1] * 2 - 2
    filtered = torch.fft.irfft(torch.fft.rfft(wave, n=size) * responses, n=size)[..., :samples]
    power = wave.pow(2).mean(dim=-1, keepdim=True)
    return filtered * torch.sqrt(power / filtered.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-12))


def random_channel(wave: torch.Tensor, p: float, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """A share p of the clips through a random channel; the others untouched."""
    count, samples = wave.shape[0], wave.shape[-1]
    padded = 1 << (samples + TAIL_SAMPLES - 1).bit_length()  # room for the response's tail: nothing wraps around
    responses = channel_responses(count, padded, sample_rate, generator).to(wave.device, wave.dtype)
    touched = (torch.rand((count, 1, 1), generator=generator) < p).to(wave.device)
    return torch.where(touched, through_channel(wave, responses), wave)
