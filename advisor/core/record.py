"""Immutable records: `@record` is `@dataclass(frozen=True)` with the same behaviour, built for less.

A record is equal to another of the same class with equal fields, hashes on its fields and shows as
`Name(field=value, ...)`, as a frozen dataclass does. dataclasses writes each method it generates as Python source
and compiles it, per class: `advisor check` defines ~35 records on its way, and that compiling was a quarter of the
command's instructions. Here only __init__ (and frozen's __setattr__ / __delattr__) are generated per class;
__eq__, __hash__ and __repr__ are written once below and read the fields through one operator.attrgetter per class
(C code: a record with 60 fields hashes faster than the generated method did).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter


def _eq(self, other):
    if other.__class__ is self.__class__:
        return self._field_values(self) == self._field_values(other)
    return NotImplemented


def _hash(self):
    return hash(self._field_values(self))


def _repr(self):
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
    return f"{self.__class__.__qualname__}({shown})"


def _getter(names: tuple[str, ...]):
    """A callable returning the tuple of those attributes (attrgetter returns a bare value for one name)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def record(cls=None, /, **options):
    """`@record` or `@record(kw_only=True, ...)`: a frozen dataclass whose comparison, hash and repr are the ones
    above (a method the class defines itself is kept)."""

    def wrap(cls):
        cls = dataclass(frozen=True, repr=False, eq=False, **options)(cls)
        cls._field_values = staticmethod(_getter(tuple(f.name for f in fields(cls))))
        for name, method in (("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr)):
            if name not in cls.__dict__:
                setattr(cls, name, method)
        return cls

    return wrap if cls is None else wrap(cls)
