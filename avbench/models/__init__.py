"""Models: one module per family, each a `@register_model` factory. Found by a scan of their
source (avbench.registry); a lookup imports only the module it needs.

A factory receives a TaskSpec and its own keyword arguments (the `model_args` schema) and
returns an nn.Module whose `forward(batch: dict)` gives logits [B, num_classes]. Models never
import tasks.
"""
