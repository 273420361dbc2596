"""Groups of model_args that several models share, written once as a dataclass of options.

A factory takes such a group as one parameter (`encoder: EncoderOptions`); `flat_options`
registers it with the group's fields listed in that parameter's place, so an experiment's
model_args stay flat and are checked against the factory's signature as any other.

Not a model itself: the leading underscore keeps the registry from importing it as one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any


def flat_options(**groups: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`@flat_options(encoder=EncoderOptions)`: the factory's `encoder` parameter becomes the
    fields of EncoderOptions in its signature; a call gathers them back into one EncoderOptions."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(factory)
        params: list[inspect.Parameter] = []
        hints = {name: hint for name, hint in factory.__annotations__.items() if name not in groups}
        for param in signature.parameters.values():
            if param.name not in groups:
                params.append(param)
                continue
            for field in fields(groups[param.name]):
                kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
                params.append(inspect.Parameter(field.name, kind, default=field.default, annotation=field.type))
                hints[field.name] = field.type

        @functools.wraps(factory)
        def flat(spec, **args):
            options = {
                group: options_class(**{f.name: args.pop(f.name) for f in fields(options_class) if f.name in args})
                for group, options_class in groups.items()
            }
            return factory(spec, **options, **args)

        flat.__signature__ = signature.replace(parameters=params)
        flat.__annotations__ = hints
        return flat

    return decorate
