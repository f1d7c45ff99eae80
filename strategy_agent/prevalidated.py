"""Pydantic models built from fields that are already valid, without validating them again.

A replay builds tens of thousands of small frozen models a year (``Candle``,
``FeatureVector``) from values that were checked as a whole beforehand (a
candle table in numpy, a feature table of finite floats). pydantic 2's
``model_construct`` skips validation but walks each field's aliases and
defaults in Python, so for these models it costs about as much as validating
(pydantic 2.14, per object: ``FeatureVector`` 1.6 us constructed, 1.7 us
validated; ``Candle`` 2.2 us constructed, 1.8 us validated). ``builder(cls)``
sets the same instance state that ``model_construct`` sets when every field is
given (``__dict__`` in field order, ``__pydantic_fields_set__`` of every field,
no extra, no private attributes): about 0.5 us.

Only for models without aliases, private attributes, ``model_post_init`` or
extra fields (checked when the builder is made), and only with values that
validation would keep as they are (the caller's duty, tested by comparing
with validated construction: ``tests/test_prevalidated.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__


def builder(cls: type[M]) -> Callable[[dict[str, Any]], M]:
    """A function ``fields -> cls`` instance, without validation.

    ``fields``: every field of ``cls`` in declaration order, each value already
    what validation makes of it; the dict becomes the instance's ``__dict__``
    (the caller hands it over). ``TypeError`` when ``cls`` is a model this
    shortcut cannot build the way ``model_construct`` does.
    """
    problem = _unsupported(cls)
    if problem is not None:
        raise TypeError(f"{cls.__name__} cannot be built without validation: {problem}")
    names = frozenset(cls.model_fields)

    def build(fields: dict[str, Any]) -> M:
        model = _new(cls)
        _set(model, "__dict__", fields)
        _set(model, "__pydantic_fields_set__", set(names))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model

    return build


def _unsupported(cls: type[BaseModel]) -> str | None:
    if cls.__pydantic_root_model__:
        return "a root model"
    if cls.__private_attributes__:
        return "it has private attributes"
    if cls.__pydantic_post_init__ is not None:
        return "it has model_post_init"
    if cls.model_config.get("extra") == "allow":
        return "it allows extra fields"
    aliased = [
        name for name, field in cls.model_fields.items() if field.alias or field.validation_alias
    ]
    if aliased:
        return f"aliased fields {aliased}"
    return None


__all__ = ["builder"]
