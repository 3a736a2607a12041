"""One declaration per config key: its default, its bounds and one line of documentation.

A section is a frozen dataclass whose fields are made by `key(...)`. From that one declaration
follow the parser (`read_section`: typed values, bounds, unknown keys refused, errors that name
`section.key`) and the documented example file (`render_section`), so the two cannot drift.

    @dataclass(frozen=True)
    class CameraConfig:
        fps: float | None = key(None, "frame rate; default: the source's own", kind=float, gt=0, le=240, example=10.0)

Every number is bounded on both sides: a value `run` would fail on must fail `config check`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..table import Table

_UNSET = object()


@dataclass(frozen=True)
class Context:
    """What parsing needs beyond the table: the folder relative paths are relative to."""

    base: Path


@dataclass(frozen=True)
class Key:
    doc: str
    kind: type  # bool, int, float, str, tuple (of str), or the custom parser's result
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    example: Any = _UNSET  # shown commented out in the example file when the default is None
    parse: Callable[[Table, str, Context], Any] | None = None  # for values beyond one scalar
    notes: tuple[str, ...] = ()  # comment lines above the key in the example file
    after: tuple[str, ...] = ()  # comment lines below it (an example of a nested table)

    def bounds(self) -> str:
        parts = []
        for op, v in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
            if v is not None:
                parts.append(f"{op} {v:g}")
        return ", ".join(parts)


def key(default: Any, doc: str, *, kind: type | None = None, gt: float | None = None, ge: float | None = None,
        lt: float | None = None, le: float | None = None, choices: tuple[str, ...] | None = None,
        example: Any = _UNSET, parse: Callable[[Table, str, Context], Any] | None = None,
        notes: tuple[str, ...] = (), after: tuple[str, ...] = ()) -> Any:
    """A dataclass field that is a config key (see the module docstring)."""
    if kind is None:
        if default is None:
            raise TypeError("a key whose default is None needs kind=")
        kind = type(default)
    if kind in (int, float) and parse is None:
        if (gt is None and ge is None) or (lt is None and le is None):
            raise TypeError(f"a number key needs a lower and an upper bound ({doc!r})")
    spec = Key(doc, kind, gt, ge, lt, le, choices, example, parse, notes, after)
    return dataclasses.field(default=default, metadata={"key": spec})


def keys(section: type) -> list[tuple[str, Any, Key]]:
    """(name, default, Key) of a section's declared keys, in declaration order."""
    return [(f.name, f.default, f.metadata["key"]) for f in dataclasses.fields(section) if "key" in f.metadata]


def read_key(t: Table, name: str, default: Any, spec: Key, ctx: Context) -> Any:
    if spec.parse is not None:
        return spec.parse(t, name, ctx)
    if spec.kind is bool:
        return t.bool(name, default)
    if spec.kind in (int, float):
        value = t.number(name, default, integer=spec.kind is int, gt=spec.gt, ge=spec.ge, lt=spec.lt, le=spec.le)
        if isinstance(value, float) and not math.isfinite(value):
            raise t.error(name, f"must be a finite number, got {value!r}")
        return value
    if spec.kind is str:
        return t.str(name, default, spec.choices)
    if spec.kind is tuple:
        return tuple(t.list(name, list(default), str))
    raise TypeError(f"{t.path(name)}: no reader for {spec.kind!r}")


def read_section(section: type, t: Table, ctx: Context) -> Any:
    """The section's values from table `t`: each declared key read and bounded, unknown keys refused,
    then the section's own `check(t)` for rules between keys."""
    values = {name: read_key(t, name, default, spec, ctx) for name, default, spec in keys(section)}
    obj = section(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check(t)
    t.done()
    return obj


# -- the example file -----------------------------------------------------------------------------

COMMENT_COLUMN = 29


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def render_key(name: str, default: Any, spec: Key, commented: bool = False) -> list[str]:
    lines = [f"# {n}" if n else "#" for n in spec.notes]
    if default is None:
        shown = spec.example if spec.example is not _UNSET else None
        assignment = f"# {name} = {toml_value(shown)}" if shown is not None else f"# {name} ="
    else:
        assignment = f"{'# ' if commented else ''}{name} = {toml_value(default)}"
    doc = spec.doc + (f" ({spec.bounds()})" if spec.bounds() else "")
    lines.append(f"{assignment:<{COMMENT_COLUMN - 1}} # {doc}" if len(assignment) < COMMENT_COLUMN - 1
                 else f"{assignment}  # {doc}")
    lines += [f"# {a}" if a else "#" for a in spec.after]
    return lines


def render_section(name: str, section: type, doc: str, optional: bool = False) -> list[str]:
    """`[name]` with every key at its default and its documentation; an optional section (absent:
    the feature is off) is shown commented out."""
    lines = [f"# {d}" if d else "#" for d in doc.splitlines()]
    lines.append(f"# [{name}]" if optional else f"[{name}]")
    for key_name, default, spec in keys(section):
        lines += render_key(key_name, default, spec, commented=optional)
    return lines
