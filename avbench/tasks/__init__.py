"""Tasks: one module per dataset, each a `@register_task` class. Modules are auto-discovered."""
