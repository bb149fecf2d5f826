"""The Component's YAML schema derived from :class:`~smsp_connector.settings.Settings`: each
attribute's type, default, form and description are its field's own (``settings.setting``),
written nowhere else, and an instance's attributes map back to the fields they came from.

A duration is written in its unit (``plan_max_age`` as ``plan_max_age_hours``), a tuple as a
YAML list, a tuple of dataclasses (``push_sources``) as a list of their own derived models, and
a field named like a pydantic method (``schema``) through an alias.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import dagster as dg
from pydantic import AfterValidator, BaseModel, Field, create_model

from smsp_connector.settings import MAX_DURATION, UNITS


@dataclass(frozen=True)
class DerivedModel:
    """A dataclass's fields marked ``yaml`` as a pydantic model, and the way back."""

    source: type
    model: type[dg.Model]
    fields: Mapping[str, dataclasses.Field]
    """Each model attribute's field of the dataclass."""
    nested: Mapping[str, DerivedModel]
    """The derived model of each attribute holding a list of dataclasses."""

    def values(self, instance: BaseModel) -> dict[str, Any]:
        """``instance``'s attributes as the dataclass's keyword arguments."""
        values = {}
        for attribute, item in self.fields.items():
            value = getattr(instance, attribute)
            if attribute in self.nested:
                inner = self.nested[attribute]
                value = tuple(inner.source(**inner.values(each)) for each in value)
            elif "unit" in item.metadata:
                value = value * UNITS[item.metadata["unit"]]
            elif isinstance(value, list):
                value = tuple(value)
            values[item.name] = value
        return values


def between(low: float, high: float) -> AfterValidator:
    """A number's range, checked after pydantic's own validation. Not ``Field(ge=, le=)``:
    Dagster accepts a template string for every attribute (``float | str``), and pydantic
    applies such constraints to the whole union, failing on a string with a ``TypeError`` that
    names no attribute; this check lets a template through, to be checked once resolved."""

    def check(value: Any) -> Any:
        if isinstance(value, int | float) and not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, not {value!r}")
        return value

    return AfterValidator(check)


def matching(pattern: str) -> AfterValidator:
    """A text's form, checked once resolved: a template (``{{ env.NAME }}``) goes through, to
    be checked as the value it names (a ``pattern`` would refuse the template itself)."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and "{{" not in value and not re.fullmatch(pattern, value):
            raise ValueError(f"must match {pattern}, not {value!r}")
        return value

    return AfterValidator(check)


def _as_resolved(context: dg.ResolutionContext, value: Any) -> Any:
    """The value as Dagster resolved its templates, typed by the derived model itself."""
    return value


def derive_model(source: type, name: str) -> DerivedModel:
    """The pydantic model of ``source``'s fields whose :func:`~settings.setting` says ``yaml``,
    resolvable (templates in nested models too), each field's ``repr`` kept (a conninfo's
    password stays out of a repr). Its description goes through a Resolver, the way Dagster's
    own schema (``dg``, the UI) carries it."""
    hints = get_type_hints(source)
    attributes: dict[str, Any] = {}
    chosen: dict[str, dataclasses.Field] = {}
    inner_models: dict[str, DerivedModel] = {}
    for item in dataclasses.fields(source):
        if not item.metadata.get("yaml"):
            continue
        kind, attribute, default = hints[item.name], item.name, item.default
        extra: dict[str, Any] = {}
        if "unit" in item.metadata:
            attribute = f"{item.name}_{item.metadata['unit']}"
            unit = UNITS[item.metadata["unit"]]
            kind, default = Annotated[float, between(0, MAX_DURATION / unit)], default / unit
        elif get_origin(kind) is tuple:  # tuple[X, ...]: a YAML list
            inner = get_args(kind)[0]
            if dataclasses.is_dataclass(inner):
                inner_models[attribute] = derive_model(inner, f"{inner.__name__}Model")
                inner = inner_models[attribute].model
            kind, default = list[inner], list(default)
        if "pattern" in item.metadata:
            kind = Annotated[kind, matching(item.metadata["pattern"])]
        if default is None:
            kind = kind | None
        if hasattr(BaseModel, attribute):  # schema: pydantic's own method
            extra["alias"], attribute = attribute, f"{attribute}_name"
        if item.default_factory is not MISSING:
            extra["default_factory"] = item.default_factory
        elif default is not MISSING:
            extra["default"] = default
        # A value kept out of reprs (a URL or conninfo that may hold a password) is typed
        # here, by this model, whose errors hide their input, not in Dagster's model of the
        # YAML, whose errors echo it.
        doc = item.metadata["doc"]
        resolver = (
            dg.Resolver.default(description=doc)
            if item.repr
            else dg.Resolver(_as_resolved, model_field_type=Any, description=doc)
        )
        kind = Annotated[kind, resolver]
        attributes[attribute] = (kind, Field(repr=item.repr, **extra))
        chosen[attribute] = item
    model = create_model(name, __base__=(dg.Resolvable, dg.Model), **attributes)
    return DerivedModel(source, model, chosen, inner_models)
