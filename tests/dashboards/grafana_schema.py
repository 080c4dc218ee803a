"""Check JSON against Grafana's own schema models: the grafana-foundation-sdk (generated from Grafana's CUE kinds).

``Model.from_json`` is lenient: it drops keys it does not know and keeps raw values for enums. So a JSON
document conforms when (1) it loads, (2) the loaded model, walked attribute by attribute, has values of
the declared types (enum members by value, nested models, lists, unions, literals), and (3) serialising
the model back keeps every key and value of the input (nothing was an unknown field).
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.runtime import UnknownDataquery

register_default_plugins()


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _conforms(value: Any, hint: Any, path: str, errors: list[str]) -> bool:
    """True when ``value`` fits ``hint``; appends the first reason to ``errors`` otherwise."""
    origin = typing.get_origin(hint)
    if hint is typing.Any or hint is object:
        # Panel options and custom field config are typed ``object`` but loaded into the panel plugin's model.
        if type(value).__module__.startswith("grafana_foundation_sdk.models"):
            return check_model(value, path, errors)
        return True
    if origin in (typing.Union, types.UnionType):
        trials: list[list[str]] = []
        for arm in typing.get_args(hint):
            trial: list[str] = []
            if _conforms(value, arm, path, trial):
                return True
            trials.append(trial)
        errors.extend(max(trials, key=len) or [f"{path}: {value!r} fits none of {hint}"])
        return False
    if hint is type(None):
        return _fail(value is None, path, value, hint, errors)
    if origin is typing.Literal:
        return _fail(value in typing.get_args(hint), path, value, hint, errors)
    if origin is list:
        if not isinstance(value, list):
            return _fail(False, path, value, hint, errors)
        (item,) = typing.get_args(hint)
        return all(_conforms(v, item, f"{path}[{i}]", errors) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            return _fail(False, path, value, hint, errors)
        _, item = typing.get_args(hint)
        return all(_conforms(v, item, f"{path}.{k}", errors) for k, v in value.items())
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            hint(value)
        except ValueError:
            return _fail(False, path, value, hint, errors)
        return True
    if hint is bool:
        return _fail(isinstance(value, bool), path, value, hint, errors)
    if hint is int:
        return _fail(isinstance(value, int) and not isinstance(value, bool), path, value, hint, errors)
    if hint is float:
        return _fail(isinstance(value, (int, float)) and not isinstance(value, bool), path, value, hint, errors)
    if hint is str:
        return _fail(isinstance(value, str), path, value, hint, errors)
    if isinstance(hint, type) and issubclass(hint, cogvariants.Dataquery):
        if not isinstance(value, cogvariants.Dataquery):
            return _fail(False, path, value, hint, errors)
        # A query of a known data source (here: server-side expressions) is checked against its model;
        # the ClickHouse plugin has none in the SDK and stays an UnknownDataquery (kept as is).
        return isinstance(value, UnknownDataquery) or check_model(value, path, errors)
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return _fail(False, path, value, hint, errors)
        return check_model(value, path, errors)
    return True


def _fail(ok: bool, path: str, value: Any, hint: Any, errors: list[str]) -> bool:
    if not ok:
        errors.append(f"{path}: {value!r} is not {getattr(hint, '__name__', hint)}")
    return ok


def check_model(model: Any, path: str, errors: list[str]) -> bool:
    """Every declared attribute of a loaded model has a value of its declared type."""
    ok = True
    for name, hint in _hints(type(model)).items():
        if hasattr(model, name):
            ok = _conforms(getattr(model, name), hint, f"{path}.{name}", errors) and ok
    return ok


def _lost(original: Any, roundtrip: Any, path: str) -> list[str]:
    """Keys or values of ``original`` missing or changed in ``roundtrip``."""
    if isinstance(original, dict):
        if not isinstance(roundtrip, dict):
            return [f"{path}: became {roundtrip!r}"]
        out = []
        for key, value in original.items():
            if key not in roundtrip:
                out.append(f"{path}.{key}: not in the schema (dropped)")
            else:
                out.extend(_lost(value, roundtrip[key], f"{path}.{key}"))
        return out
    if isinstance(original, list):
        if not isinstance(roundtrip, list) or len(roundtrip) != len(original):
            return [f"{path}: list changed"]
        return [
            e for i, (a, b) in enumerate(zip(original, roundtrip, strict=True)) for e in _lost(a, b, f"{path}[{i}]")
        ]
    return [] if original == roundtrip else [f"{path}: {original!r} became {roundtrip!r}"]


def schema_errors(model_class: type, document: dict[str, Any]) -> list[str]:
    """Why ``document`` does not conform to ``model_class`` (empty when it does)."""
    model = model_class.from_json(document)
    errors: list[str] = []
    check_model(model, model_class.__name__, errors)
    roundtrip = json.loads(json.dumps(model, cls=JSONEncoder))
    errors.extend(_lost(document, roundtrip, model_class.__name__))
    return errors
