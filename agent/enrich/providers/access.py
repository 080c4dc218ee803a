"""Small, defensive accessors that work on dicts, pydantic models and arbitrary objects alike.

Why: parsing runs on the export thread for every call and must never raise; ``getattr`` on a pydantic model
that lacks a field costs an exception, so the access strategy is chosen once per type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any

# --------------------------------------------------------------------------------------------------------------------
# Small, defensive accessors. They work on dicts, pydantic models and arbitrary objects alike.
# --------------------------------------------------------------------------------------------------------------------

_SCALARS = (str, bytes, bytearray, int, float, bool, list, tuple, set, frozenset)
_ATTR, _MAPPING, _SCALAR = 0, 1, 2
# Per-type access strategy (ABC isinstance checks are slow per call): one of the ints above, or, for pydantic v2
# models, a per-class ``{key: needs_plain_getattr}`` table (see ``_get``).
_ACCESS_BY_TYPE: dict[type, int | dict[str, bool]] = {}
_MISSING: Any = object()


def _is_pydantic_v2(cls: type) -> bool:
    """Whether ``cls`` is a pydantic v2 model class that keeps pydantic's own attribute lookup."""
    for klass in cls.__mro__:
        if klass.__name__ == "BaseModel" and klass.__module__ == "pydantic.main":
            if "__pydantic_extra__" not in getattr(klass, "__slots__", ()):
                return False  # pydantic v1 (or something else entirely)
            getattr_hook = klass.__dict__.get("__getattr__")
            return (
                getattr_hook is not None
                and getattr(cls, "__getattr__", None) is getattr_hook  # not customised by a subclass
                and cls.__getattribute__ is object.__getattribute__
            )
    return False


def _access(cls: type) -> int | dict[str, bool]:
    kind = _ACCESS_BY_TYPE.get(cls)
    if kind is None:
        kind = _SCALAR if issubclass(cls, _SCALARS) else _MAPPING if issubclass(cls, Mapping) else _ATTR
        if kind == _ATTR:
            try:
                if _is_pydantic_v2(cls):
                    kind = {}
            except Exception:
                kind = _ATTR
        if len(_ACCESS_BY_TYPE) < 4096:
            _ACCESS_BY_TYPE[cls] = kind
    return kind


def _pydantic_plain(cls: type, key: str) -> bool:
    """Whether ``getattr`` must resolve ``key`` (a class attribute, descriptor or private attribute of ``cls``)."""
    for klass in cls.__mro__:
        if key in klass.__dict__:
            return True
    private = getattr(cls, "__private_attributes__", None)
    return bool(private) and key in private  # type: ignore[operator]


def _get(obj: Any, key: str) -> Any:
    """Return ``obj[key]`` for mappings, else ``obj.key``; ``None`` when absent or unreadable."""
    cls = type(obj)
    if cls is dict:
        return obj.get(key)
    if obj is None:
        return None
    kind = _ACCESS_BY_TYPE.get(cls)
    if kind is None:
        kind = _access(cls)
    try:
        if type(kind) is dict:
            # A pydantic v2 model (every SDK object). ``getattr`` on a missing key costs an AttributeError raised
            # by pydantic's ``__getattr__`` (microseconds). A key that is neither on the class nor private resolves
            # exactly as ``object.__getattribute__`` then pydantic's ``__getattr__`` would: the instance
            # ``__dict__`` (declared fields), then ``__pydantic_extra__`` (undeclared ones, ``extra="allow"``),
            # else missing.
            plain = kind.get(key)
            if plain is False:
                value = obj.__dict__.get(key, _MISSING)
                if value is _MISSING:
                    extra = obj.__pydantic_extra__
                    return extra.get(key) if extra else None
                return value
            if plain is None and len(kind) < 256:
                kind[key] = _pydantic_plain(cls, key)
            return getattr(obj, key, None)
        if kind == _ATTR:
            return getattr(obj, key, None)
        if kind == _MAPPING:
            return obj.get(key)
    except Exception:
        return None
    return None


def _getter(obj: Any) -> Any:
    """``lambda key: _get(obj, key)``, cheaper for dicts (their bound ``get``)."""
    return obj.get if type(obj) is dict else partial(_get, obj)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _get_str(obj: Any, key: str) -> str | None:
    """``_str(_get(obj, key))`` in one call."""
    value = obj.get(key) if type(obj) is dict else _get(obj, key)
    return value if value is None or type(value) is str or isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    cls = type(value)
    if cls is float:
        return value
    if cls is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _list(value: Any) -> list | tuple | None:
    return value if isinstance(value, (list, tuple)) else None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _given(value: Any) -> bool:
    """False for ``None`` and the SDKs' ``NOT_GIVEN`` / ``omit`` sentinels."""
    if value is None:
        return False
    return type(value).__name__ not in ("NotGiven", "Omit")


def _json_or_raw(value: Any) -> Any:
    """Decode tool-call arguments sent as a JSON string; keep anything else (or undecodable text) as is."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value
