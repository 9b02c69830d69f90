"""The arguments of a run as a dataclass that saves itself as JSON.

:class:`RunArguments` is the base of :class:`jetfm.PretrainArguments` and
:class:`jetfm.FinetuneArguments`: ``to_dict()`` (paths as strings, a
:class:`~jetfm.data.BranchMapping` as its ``to_dict()``), ``to_json_file(path)`` (written
atomically) and ``from_json_file(path)``, which gives back an equal object. Every run saves
its arguments in its output folder (``FILE_NAME``), so it can be read back and repeated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="RunArguments")


def option(default: Any, help: str) -> Any:
    """A dataclass field with its ``--help`` text (``metadata["help"]``)."""
    return dataclasses.field(default=default, metadata={"help": help})


def jsonable(value: Any) -> Any:
    """``value`` with paths as strings, objects with ``to_dict()`` as dicts, sequences as lists."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def path_option(value: Any) -> Any:
    """A path, glob or list of them as strings (a list stays a list); ``None`` stays ``None``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Sequence):
        return [path_option(v) for v in value]
    return value


def tuple_option(value: Any, kind: type | None = None) -> tuple | None:
    """A sequence as a tuple (of ``kind``), so that a JSON list reads back equal."""
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"expected a sequence, got the string {value!r}")
    return tuple(kind(v) if kind else v for v in value)


def mapping_option(value: Any) -> Any:
    """A :class:`~jetfm.data.BranchMapping` from a mapping, its dict, a layout name or a YAML
    file path (:func:`jetfm.data.layouts.mapping_from_option`)."""
    if value is None:
        return None
    from jetfm.data.layouts import mapping_from_option

    return mapping_from_option(value)


@dataclasses.dataclass
class RunArguments:
    """Base of the run argument dataclasses: JSON saving and loading."""

    #: the file a run writes its arguments to, in its output folder
    FILE_NAME: ClassVar[str] = "run_args.json"

    def to_dict(self) -> dict[str, Any]:
        """The arguments as plain JSON values (paths as strings, the mapping as a dict)."""
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json_string(self) -> str:
        """:meth:`to_dict` as JSON (a value JSON cannot hold is written as its ``str``)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` atomically; returns the path."""
        from jetfm.atomic import write_text

        return write_text(path, self.to_json_string())

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """The arguments of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")
        return cls(**dict(data))

    @classmethod
    def from_json_file(cls: type[T], path: str | os.PathLike) -> T:
        """The arguments saved by :meth:`to_json_file`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_namespace(cls: type[T], namespace: argparse.Namespace, **values: Any) -> T:
        """The fields found as attributes of a parsed command line, then ``values``."""
        fields = {f.name for f in dataclasses.fields(cls)}
        found = {k: v for k, v in vars(namespace).items() if k in fields}
        return cls(**{**found, **values})

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


__all__ = ["RunArguments", "jsonable", "mapping_option", "path_option", "tuple_option"]
