"""`FrozenRecord`: the base of the small immutable records the request path builds, at a compiled class's speed.

A frozen dataclass compiled by mypyc keeps the `__init__` that `dataclasses` generates: an interpreted
function that sets every field through `object.__setattr__`. Building one took 1.5 µs for three fields
and 4 µs for `RequestView`'s eleven, against 0.06-0.07 µs for a compiled class with its own `__init__`
built by compiled code (`timeit`, 2-core development machine). Five of them per request were 53,000 of
the gateway's 727,000 instructions (`python -m benchmarks.instructions`, callgrind's per-function
counts). So the records built per request are plain classes: their own `__init__`, each attribute
declared `Final` (a compiled class refuses to set it again, with `AttributeError`; interpreted, mypy
refuses it), and this base for what a dataclass also gave them: a repr, equality and a hash over
`_fields`, and `replace()`. Each subclass sets `__slots__ = _fields`, so that interpreted
(`SWITCHYARD_NATIVE=0`) a record has no `__dict__` either.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="FrozenRecord")


class FrozenRecord:
    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    """The attributes, in `__init__`'s order; each `__init__` takes them all by keyword."""

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __repr__(self) -> str:
        inner = ", ".join([f"{name}={getattr(self, name)!r}" for name in self._fields])
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, FrozenRecord)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def replace(self: R, **changes: Any) -> R:
        """A copy with `changes` applied (as `dataclasses.replace`); unknown names raise `TypeError`."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values = {name: changes[name] if name in changes else getattr(self, name) for name in self._fields}
        return type(self)(**values)
