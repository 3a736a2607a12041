"""Reading untrusted JSON/TOML tables into typed values, with errors that name the field.

Used by the bundle manifest and the daemon's config alike, so both say `camera.fps: must be > 0`
the same way and both refuse keys they do not know (a typo must not silently become a default).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable


class SchemaError(ValueError):
    """A bad value in a manifest or config; str() is one line: `FILE: FIELD: reason`."""

    def __init__(self, where: str, field: str, reason: str):
        self.where, self.field, self.reason = where, field, reason
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")


_MISSING = object()


class Table:
    """A view on one table that reads fields by name and remembers which it read."""

    def __init__(self, data: Any, where: str, prefix: str = ""):
        self.where = where
        self.prefix = prefix
        if not isinstance(data, dict):
            raise SchemaError(where, prefix or "(top level)", f"must be a table/object, got {type(data).__name__}")
        self.data = data
        self._seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, reason: str) -> SchemaError:
        return SchemaError(self.where, self.path(key), reason)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise self.error(key, "is required")
            return default
        return self.data[key]

    def table(self, key: str, default: Any = _MISSING) -> Table:
        value = self.raw(key, {} if default is _MISSING else default)
        if value is None:
            value = {}
        if default is _MISSING and key not in self.data:
            raise self.error(key, "is required")
        return Table(value, self.where, self.path(key))

    def str(self, key: str, default: Any = _MISSING, choices: Iterable[str] | None = None) -> str:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        integer: bool = False,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
        lt: float | None = None,
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number, got {value!r}")
        if integer and (not float(value).is_integer()):
            raise self.error(key, f"must be an integer, got {value!r}")
        for bound, ok, text in (
            (gt, lambda v, b: v > b, "must be > {}"),
            (ge, lambda v, b: v >= b, "must be >= {}"),
            (lt, lambda v, b: v < b, "must be < {}"),
            (le, lambda v, b: v <= b, "must be <= {}"),
        ):
            if bound is not None and not ok(value, bound):
                raise self.error(key, text.format(bound) + f", got {value!r}")
        return int(value) if integer else float(value)

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def list(self, key: str, default: Any = _MISSING, item: Callable[[Any], Any] | None = None, length: int | None = None) -> list:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, got {value!r}")
        if length is not None and len(value) != length:
            raise self.error(key, f"must have {length} items, got {len(value)}")
        if item is None:
            return value
        try:
            return [item(v) for v in value]
        except (TypeError, ValueError) as exc:
            raise self.error(key, f"bad item: {exc}") from None

    def numbers(self, key: str, default: Any = _MISSING, length: int | None = None) -> list[float]:
        def num(v):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{v!r} is not a number")
            return float(v)

        return self.list(key, default, num, length)

    def done(self) -> None:
        """Refuse keys nobody read: unknown keys are typos until proven otherwise."""
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            raise self.error(unknown[0], "unknown key" + (f" (also: {', '.join(unknown[1:])})" if unknown[1:] else ""))
