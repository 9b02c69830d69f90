"""Type checks of a config's fields when it is loaded, naming the file and the field.

A ``config.json`` holding ``"hidden_size": "big"`` would otherwise fail deep inside the
config's constructor (``TypeError: not all arguments converted during string formatting``).
:class:`CheckedConfigMixin`, first in the bases of a ``PretrainedConfig`` subclass, checks
every field of the file against the constructor's signature before the constructor runs,
and raises :class:`jetfm.errors.ConfigError`::

    /path/config.json: field 'hidden_size' must be an int, got 'big' (str)

The expected types come from the annotations of ``__init__`` (so a new field is covered as
soon as it is added): ``int`` (not ``bool``), ``float`` (an ``int`` is accepted), ``bool``,
``str``, ``dict`` (and ``dict[K, V]``), ``list``/``tuple`` of one of those, and unions of
them; ``None`` where the annotation or the default allows it. Fields annotated with anything
else (``Any``, a class) are not checked. A value error the constructor raises for a config
loaded from a file (``mpm_target`` not a known target, ...) is raised again as a
:class:`~jetfm.errors.ConfigError` that names the file.

Every loading route goes through the check: ``Config.from_pretrained``, ``from_dict``,
``from_json_file``, a model's ``from_pretrained`` (which loads its config with the config
class's ``from_pretrained``) and ``transformers.AutoConfig.from_pretrained`` (which reads
the file itself and calls ``from_dict``; the file is then named from the folder it was
given).
"""

from __future__ import annotations

import inspect
import os
import sys
import types
import typing
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from jetfm.errors import ConfigError

__all__ = ["CheckedConfigMixin", "check_config_fields", "config_field_checks"]

#: ``{"file": path}`` while a ``from_pretrained`` of a checked config runs (the config file
#: it read, once read); None outside.
_LOADING: ContextVar[dict[str, str | None] | None] = ContextVar("_jetfm_config_file", default=None)

_CONFIG_FILE = "config.json"


class _Check(typing.NamedTuple):
    accepts: Callable[[Any], bool]
    expected: str  # "an int", "a list of strings", "a float or null", ...
    to_float: bool = False  # a float field: an int value is stored as a float


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_SIMPLE: dict[Any, _Check] = {
    int: _Check(_is_int, "an int"),
    float: _Check(_is_float, "a float", to_float=True),
    bool: _Check(lambda v: isinstance(v, bool), "a bool"),
    str: _Check(lambda v: isinstance(v, str), "a string"),
}
_PLURAL = {"an int": "ints", "a float": "floats", "a bool": "bools", "a string": "strings"}


def _plural(expected: str) -> str:
    return _PLURAL.get(expected, expected)


def _check_for(annotation: Any) -> _Check | None:
    """The check of one annotation; None when it is not a simple type (not checked)."""
    if annotation in _SIMPLE:
        return _SIMPLE[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        checks = [_check_for(a) for a in options]
        if not checks or any(c is None for c in checks):
            return None
        nullable = len(options) < len(args)
        names = [c.expected for c in checks] + (["null"] if nullable else [])
        return _Check(
            lambda v: (nullable and v is None) or any(c.accepts(v) for c in checks),
            " or ".join(names),
            to_float=options == [float],
        )
    if annotation is dict or origin is dict:
        value = _check_for(args[1]) if len(args) == 2 else None
        if value is None:
            return _Check(lambda v: isinstance(v, dict), "a dict")
        return _Check(
            lambda v: isinstance(v, dict) and all(value.accepts(x) for x in v.values()),
            f"a dict of {_plural(value.expected)}",
        )
    if annotation in (list, tuple) or origin in (list, tuple):
        items = [a for a in args if a is not Ellipsis]
        item = _check_for(items[0]) if len(set(items)) == 1 else None
        if item is None:
            return _Check(lambda v: isinstance(v, (list, tuple)), "a list")
        return _Check(
            lambda v: isinstance(v, (list, tuple)) and all(item.accepts(x) for x in v),
            f"a list of {_plural(item.expected)}",
        )
    return None


def _annotations(init: Callable) -> dict[str, Any]:
    """The evaluated annotations of ``init`` (one by one, so that one unresolvable name
    leaves only its own field unchecked)."""
    try:
        return typing.get_type_hints(init)
    except Exception:  # noqa: BLE001 - fall back to field by field
        pass
    module = sys.modules.get(init.__module__)
    namespace = dict(vars(module)) if module else {}
    hints = {}
    for name, annotation in getattr(init, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307
        except Exception:  # noqa: BLE001 - an unresolvable annotation is not checked
            continue
    return hints


_CACHE: dict[type, dict[str, _Check]] = {}


def config_field_checks(config_class: type) -> dict[str, _Check]:
    """``{field: check}`` for every constructor parameter of ``config_class`` with a simple
    type (from the signature of its ``__init__``)."""
    if config_class in _CACHE:
        return _CACHE[config_class]
    init = config_class.__init__
    hints = _annotations(init)
    checks: dict[str, _Check] = {}
    for name, param in inspect.signature(init).parameters.items():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) or name == "self":
            continue
        check = _check_for(hints.get(name))
        if check is None:
            continue
        if param.default is None and not check.accepts(None):
            inner = check
            check = _Check(
                lambda v, c=inner: v is None or c.accepts(v),
                f"{inner.expected} or null",
                inner.to_float,
            )
        checks[name] = check
    _CACHE[config_class] = checks
    return checks


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_config_fields(config_class: type, fields: dict[str, Any], source: str) -> dict[str, Any]:
    """Raise :class:`~jetfm.errors.ConfigError` for the first field of ``fields`` whose value
    has the wrong type for ``config_class``'s constructor; ``source`` (the file) leads the
    message. Returns ``fields`` with the ints of float fields made floats (a new dict when
    one is changed)."""
    checks = config_field_checks(config_class)
    converted = fields
    for name, value in fields.items():
        check = checks.get(name)
        if check is None:
            continue
        if not check.accepts(value):
            raise ConfigError(
                f"{source}: field {name!r} must be {check.expected}, "
                f"got {_shown(value)} ({type(value).__name__})"
            )
        if check.to_float and _is_int(value):
            converted = {**converted, name: float(value)}
    return converted


def _auto_config_file() -> str | None:
    """The config file that ``transformers.AutoConfig.from_pretrained`` is loading, when it
    is the caller (it reads the file itself and hands over only the dict)."""
    frame = sys._getframe(1)
    for _ in range(12):
        frame = frame.f_back
        if frame is None:
            return None
        code = frame.f_code
        if code.co_name == "from_pretrained" and code.co_filename.endswith("configuration_auto.py"):
            name = frame.f_locals.get("pretrained_model_name_or_path")
            if name is None:
                return None
            subfolder = (frame.f_locals.get("kwargs") or {}).get("subfolder") or ""
            return os.path.join(os.fspath(name), subfolder, _CONFIG_FILE)
    return None


class CheckedConfigMixin:
    """Put first in the bases of a ``PretrainedConfig`` subclass: every route that loads it
    from a file or a dict checks the field types first and names the file in its errors
    (see the module's docstring)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        token = _LOADING.set({"file": None})
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        finally:
            _LOADING.reset(token)

    @classmethod
    def _dict_from_json_file(cls, json_file: str | os.PathLike) -> dict[str, Any]:
        loading = _LOADING.get()
        if loading is not None:
            loading["file"] = os.fspath(json_file)
        return super()._dict_from_json_file(json_file)

    @classmethod
    def from_json_file(cls, json_file: str | os.PathLike):
        config_dict = super()._dict_from_json_file(json_file)
        source = os.fspath(json_file)
        return cls._checked(source, config_dict, lambda fields: cls(**fields))

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        loading = _LOADING.get()
        source = (loading or {}).get("file") or _auto_config_file()
        base = super()
        return cls._checked(source, config_dict, lambda fields: base.from_dict(fields, **kwargs))

    @classmethod
    def _checked(
        cls, source: str | None, fields: dict[str, Any], build: Callable[[dict[str, Any]], Any]
    ):
        """``build(fields)`` after checking ``fields`` (ints of float fields made floats); its
        value errors name ``source`` (a file)."""
        if isinstance(fields, dict):
            fields = check_config_fields(cls, fields, source or cls.__name__)
        if source is None:
            return build(fields)
        try:
            return build(fields)
        except ConfigError:
            raise
        except (ValueError, TypeError, ArithmeticError) as err:
            raise ConfigError(f"{source}: {err}") from err
