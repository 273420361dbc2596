"""Tasks: one module per dataset, each a `@register_task` class. Found by a scan of their
source (avbench.registry); a lookup imports only the module it needs."""
