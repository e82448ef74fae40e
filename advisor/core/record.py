"""Immutable records: `@record` is `@dataclass(frozen=True)` with the same behaviour, built for less.

A record is equal to another of the same class with equal fields, hashes on its fields, shows as
`Name(field=value, ...)` and refuses assignment (dataclasses.FrozenInstanceError), as a frozen dataclass does;
dataclasses.fields, replace and pickling work on it as on any dataclass. dataclasses writes each method it
generates as Python source and compiles it, per class (six for a frozen one): `advisor check` defines ~35 records
on its way, and that compiling was a quarter of the command's instructions. Here only __init__ is compiled per
class; __eq__, __hash__, __repr__, __setattr__ and __delattr__ are written once below, reading the fields through
one operator.attrgetter per class (C code: a record with 60 fields hashes faster than the generated method did).
The __init__ sets the instance dict whole, in one call (advisor check: 603 M -> 564 M instructions, callgrind).
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from dataclasses import replace as replace_dataclass
from functools import cached_property
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


def _setattr(self, name, value):
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self, name):
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getter(names: tuple[str, ...]):
    """A callable returning the tuple of those attributes (attrgetter returns a bare value for one name)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


class _Factory:
    """The default of a field made by its default_factory, shown as dataclasses shows it in a signature."""

    def __repr__(self):
        return "<factory>"


_FACTORY = _Factory()


def _init(cls):
    """The __init__ dataclasses would write for a frozen class: the fields in order as parameters (a default, or a
    default_factory called when the argument is not given), then __post_init__ if the class has one. The fields
    are set as one instance dict, with one object.__setattr__ call rather than one per field: a 15-field record is
    made in ~55 % of the time, and the source is shorter to compile (defaults go in __defaults__, not the text)."""
    env = {"__set": object.__setattr__, "__factory": _FACTORY}
    params, values, defaults = [], [], []
    for f in fields(cls):
        params.append(f.name)
        if f.default is not MISSING:
            defaults.append(f.default)
            values.append(f"{f.name!r}: {f.name}")
        elif f.default_factory is not MISSING:
            env[f"__make_{f.name}"] = f.default_factory
            defaults.append(_FACTORY)
            values.append(f"{f.name!r}: __make_{f.name}() if {f.name} is __factory else {f.name}")
        else:
            values.append(f"{f.name!r}: {f.name}")
    lines = ["  __set(self, '__dict__', {" + ", ".join(values) + "})"] if values else ["  pass"]
    if hasattr(cls, "__post_init__"):
        lines.append("  self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines) + "\n"
    exec(source, env)  # noqa: S102 - the one method compiled per record, as dataclasses does
    init = env["__init__"]
    init.__defaults__ = tuple(defaults) or None  # the trailing parameters: dataclasses puts defaults after the rest
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def replace(obj, /, **changes):
    """dataclasses.replace(obj, **changes); for a record without __post_init__, the new instance's dict is its
    fields' values with the changes, made in C (no per-field Python loop, no __init__ call: an Estimate of 45
    fields is copied in a fifth of the time). A cached_property's value is not carried over, as with
    dataclasses.replace. Anything else goes to dataclasses.replace."""
    cls = obj.__class__
    plain = getattr(cls, "_record_plain", None)
    if plain is None or plain[1] is not cls.__dataclass_fields__:  # not a record, or a dataclass built on one
        return replace_dataclass(obj, **changes)
    decorated, known, names, values_of, nothing_cached = plain
    if not changes.keys() <= known.keys():
        unknown = min(changes.keys() - known.keys())
        raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword argument {unknown!r}")
    if nothing_cached and cls is decorated:  # the instance dict is its fields: copied whole
        values = obj.__dict__.copy()
    else:  # a plain subclass may cache more in its dict than its fields
        values = dict(zip(names, values_of(obj)))
    values.update(changes)
    new = object.__new__(cls)
    object.__setattr__(new, "__dict__", values)
    return new


def record(cls):
    """`@record`: a frozen dataclass with the methods above (a method the class defines itself is kept)."""
    if cls.__doc__ is None:  # dataclasses would write one from inspect.signature(cls), ~0.5 ms a class at import
        cls.__doc__ = f"{cls.__name__}({', '.join(cls.__dict__.get('__annotations__', {}))})"
    cls = dataclass(init=False, repr=False, eq=False)(cls)
    names = tuple(f.name for f in fields(cls))
    cls._field_values = staticmethod(_getter(names))
    # what `replace` copies; None when __post_init__ must see every new instance
    nothing_cached = not any(isinstance(v, cached_property) for k in cls.__mro__ for v in vars(k).values())
    cls._record_plain = None if hasattr(cls, "__post_init__") else (
        cls, cls.__dataclass_fields__, names, cls._field_values, nothing_cached)
    for name, method in (("__init__", _init(cls)), ("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr),
                         ("__setattr__", _setattr), ("__delattr__", _delattr)):
        if name not in cls.__dict__:
            setattr(cls, name, method)
    return cls
