"""The perceiver model's promises beyond the registry tests: the label never reaches the
encoder, only the label is decoded, the data must fit the model (one-line errors naming the
field to change), and weights load from a local directory."""

from __future__ import annotations

import pytest
import torch

from avbench.errors import ConfigError
from avbench.registry import MODELS
from avbench.spec import TaskSpec

TINY = MODELS.get("perceiver").tiny_args


def tiny_spec(frames: int = 2, size: int = 16, samples: int = 1600, num_classes: int = 4) -> TaskSpec:
    return TaskSpec(
        num_classes=num_classes,
        modalities=("audio", "video"),
        sample_rate=16000,
        shapes={"audio": (1, samples), "video": (frames, 3, size, size)},
    )


def build(spec: TaskSpec | None = None, **overrides):
    torch.manual_seed(0)
    return MODELS.get("perceiver")(spec or tiny_spec(), **{**TINY, **overrides})


def batch(spec: TaskSpec, size: int = 3, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    out = {name: torch.randn(size, *shape, generator=generator) for name, shape in spec.shapes.items()}
    out["label"] = torch.randint(0, spec.num_classes, (size,), generator=generator)
    return out


def test_logits_do_not_depend_on_the_labels():
    spec = tiny_spec()
    model = build(spec).eval()
    inputs = batch(spec)
    with torch.no_grad():
        before = model(inputs)
        after = model({**inputs, "label": (inputs["label"] + 1) % spec.num_classes})
    assert torch.equal(before, after)


def test_the_label_slot_is_masked_even_when_it_carries_a_one_hot():
    """Under the model's own zeros, HF's preprocessor swaps the label token for its mask token:
    a one-hot target put there would change nothing the encoder sees."""
    spec = tiny_spec()
    model = build(spec).eval()
    preprocessor = model.autoencoder.perceiver.input_preprocessor
    inputs = batch(spec)
    hf_inputs = {
        "image": inputs["video"],
        "audio": inputs["audio"].reshape(3, -1, 1),
        "label": torch.zeros(3, model.label_width),
    }
    with torch.no_grad():
        zeros, sizes, _ = preprocessor(hf_inputs)
        one_hot = torch.nn.functional.one_hot(inputs["label"], model.label_width).float()
        leaked, _, _ = preprocessor({**hf_inputs, "label": one_hot})
    assert torch.equal(zeros, leaked)
    label_token = zeros[:, -sizes["label"] :]  # modalities are concatenated in sorted order: label last
    assert torch.equal(label_token, preprocessor.mask["label"].expand_as(label_token))


def test_only_the_label_is_decoded():
    spec = tiny_spec()
    model = build(spec).eval()
    queries, outputs = [], []
    model.autoencoder.perceiver.decoder.decoder.register_forward_hook(lambda m, args, out: queries.append(args[0]))
    model.autoencoder.perceiver.output_postprocessor.register_forward_hook(lambda m, args, out: outputs.append(out))
    with torch.no_grad():
        logits = model(batch(spec))
    assert logits.shape == (3, spec.num_classes)
    assert queries[0].shape[:2] == (3, 1)  # one decoder query per clip: the label's
    assert outputs[0]["image"].numel() == 0 and outputs[0]["audio"].numel() == 0


def test_published_defaults_are_the_deepmind_configuration():
    spec = TaskSpec(
        num_classes=6,
        modalities=("audio", "video"),
        sample_rate=16000,
        shapes={"audio": (1, 30720), "video": (16, 3, 224, 224)},
    )
    model = MODELS.get("perceiver")(spec)
    config = model.autoencoder.config
    assert (config.num_latents, config.d_latents, config.d_model) == (784, 512, 704)
    assert (
        config.num_blocks,
        config.num_self_attends_per_block,
        config.num_self_attention_heads,
        config.num_cross_attention_heads,
    ) == (1, 8, 8, 1)
    assert (config.num_frames, config.audio_samples_per_frame, config.samples_per_patch) == (16, 1920, 16)
    assert config.image_size == 56  # HF counts the 4× space-to-depth patch grid: 224 / 4
    assert model.autoencoder.perceiver.input_preprocessor.num_channels == 704
    assert model.weights_source == "random init from the deepmind/multimodal-perceiver config"


@pytest.mark.parametrize(
    ("spec", "overrides", "names"),
    [
        (tiny_spec(frames=3), {}, "data.num_frames: 2"),
        (tiny_spec(size=24), {}, "data.image_size: 16"),
        (tiny_spec(samples=1200), {}, "data.clip_seconds: 0.1"),
        (tiny_spec(), {"image_size": 18}, "multiple of 4"),
        (tiny_spec(), {"d_model": 300}, "model_args.d_model"),
        (tiny_spec(), {"num_self_attention_heads": 3}, "model_args.num_self_attention_heads"),
        (TaskSpec(num_classes=4, modalities=("audio",), shapes={"audio": (1, 1600)}), {}, "data.modalities"),
    ],
)
def test_shapes_that_do_not_fit_name_the_field_to_change(spec, overrides, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        build(spec, **overrides)


def test_pretrained_loads_from_a_local_directory(tmp_path):
    spec = tiny_spec()
    saved = build(spec)
    with torch.no_grad():
        for parameter in saved.autoencoder.parameters():
            parameter.add_(0.5)  # weights no random init would give
    saved.autoencoder.save_pretrained(tmp_path / "tiny-perceiver")

    loaded = build(spec, pretrained=str(tmp_path / "tiny-perceiver"))
    assert loaded.weights_source == f"loaded from {tmp_path / 'tiny-perceiver'}"
    reference = saved.autoencoder.perceiver.encoder.cross_attention.attention.self.key.weight
    assert torch.equal(loaded.autoencoder.perceiver.encoder.cross_attention.attention.self.key.weight, reference)
    assert loaded(batch(spec)).shape == (3, spec.num_classes)


def test_pretrained_must_match_the_architecture_and_exist(tmp_path):
    build().autoencoder.save_pretrained(tmp_path / "tiny-perceiver")
    with pytest.raises(ConfigError, match="model_args.num_latents is 16 but the checkpoint has 8"):
        build(pretrained=str(tmp_path / "tiny-perceiver"), num_latents=16)
    with pytest.raises(ConfigError, match="nothing is downloaded"):
        build(pretrained=str(tmp_path / "missing"))
