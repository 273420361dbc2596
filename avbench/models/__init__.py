"""Models: one module per family, each a `@register_model` factory. Modules are auto-discovered.

A factory receives a TaskSpec and its own keyword arguments (the `model_args` schema) and
returns an nn.Module whose `forward(batch: dict)` gives logits [B, num_classes]. Models never
import tasks.
"""
