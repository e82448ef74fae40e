"""advisor.core.record: `@record` behaves as `@dataclass(frozen=True)` does (equality, hash, repr, frozenness,
replace, pickling), with the comparison methods written once instead of generated per class."""

import dataclasses
import inspect
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advisor.core.record import record


@record
class Point:
    x: int
    y: int = 0
    label: str = ""


@dataclasses.dataclass(frozen=True)
class RefPoint:
    x: int
    y: int = 0
    label: str = ""


@record
class One:
    only: int


@record
class Empty:
    pass


class Named(Point):  # a subclass adding no fields, as core/cache.py's cache kinds are
    pass


values = st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.sampled_from(["", "a", "b"]))


@given(values, values)
def test_equality_and_hash_are_a_frozen_dataclass_s(a, b):
    assert (Point(*a) == Point(*b)) == (RefPoint(*a) == RefPoint(*b)) == (a == b)
    assert hash(Point(*a)) == hash(RefPoint(*a))  # the fields' tuple, as dataclasses hashes it
    assert repr(Point(*a)).replace("Point", "RefPoint", 1) == repr(RefPoint(*a))


def test_other_classes_are_never_equal_and_the_edge_sizes_work():
    assert Point(1) != RefPoint(1) and Point(1) != (1, 0, "") and Point(1) != Named(1)
    assert Named(1) == Named(1) and hash(Named(1)) == hash(Point(1)) and repr(Named(2)) == "Named(x=2, y=0, label='')"
    assert One(3) == One(3) != One(4) and hash(One(3)) == hash((3,)) and repr(One(3)) == "One(only=3)"
    assert Empty() == Empty() and hash(Empty()) == hash(()) and repr(Empty()) == "Empty()"
    assert {Point(1, 2): "a"}[Point(1, 2)] == "a"


def test_frozen_replace_and_pickle():
    p = Point(1, 2, "a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 5
    assert dataclasses.replace(p, y=7) == Point(1, 7, "a")
    assert pickle.loads(pickle.dumps(p)) == p
    assert dataclasses.is_dataclass(p) and [f.name for f in dataclasses.fields(p)] == ["x", "y", "label"]


def test_a_method_the_class_defines_is_kept():
    @record
    class Loud:
        x: int

        def __repr__(self):
            return "loud"

    assert repr(Loud(1)) == "loud" and Loud(1) == Loud(1)


def test_defaults_factories_and_post_init_are_as_a_dataclass_s():
    @record
    class Box:
        size: int
        tags: tuple = ()
        items: list = dataclasses.field(default_factory=list)

        def __post_init__(self):
            object.__setattr__(self, "checked", True)

    a, b = Box(1), Box(1)
    assert str(inspect.signature(Box)) == "(size, tags=(), items=<factory>)"  # as dataclasses shows a factory
    assert a.items == [] and a.items is not b.items and a.tags == () and a.checked  # a fresh list each time
    assert Box(2, ("x",), [3]) == Box(size=2, tags=("x",), items=[3])
    with pytest.raises(TypeError):
        Box()  # size has no default
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.size
    child = type("Child", (Point,), {})  # the methods resolve through a plain subclass too
    assert child(1) == child(1) and child(1) != Point(1)


def test_a_record_without_a_docstring_is_documented_by_its_fields():
    # dataclasses would write `Point(x: int, y: int = 0, label: str = '')` from inspect.signature, which costs about
    # half a millisecond a class at start-up; a record names its fields instead. One with a docstring keeps it.
    assert Point.__doc__ == "Point(x, y, label)"
    assert Empty.__doc__ == "Empty()"

    @record
    class Documented:
        """Its own words."""

        a: int

    assert Documented.__doc__ == "Its own words."


@given(values, st.integers(0, 3))
def test_arguments_bind_as_a_dataclass_s_init_binds_them(value, n_positional):
    # the first n given by position, the rest by keyword; defaults where the tuple is cut short
    names = ("x", "y", "label")
    kwargs = dict(zip(names[n_positional:], value[n_positional:]))
    assert Point(*value[:n_positional], **kwargs) == Point(*value) and vars(Point(*value)) == vars(RefPoint(*value))
    def params(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert params(Point) == params(RefPoint)
    with pytest.raises(TypeError):
        Point(*value, **{names[0]: 1})  # given twice
    with pytest.raises(TypeError):
        Point(1, nope=2)


@given(values, values)
def test_record_replace_is_dataclasses_replace(a, b):
    from advisor.core.record import replace

    changes = dict(zip(("x", "y", "label"), b))
    for n in range(4):
        some = dict(list(changes.items())[:n])
        assert replace(Point(*a), **some) == dataclasses.replace(Point(*a), **some) == Point(**{**vars(Point(*a)), **some})
    with pytest.raises(TypeError):
        replace(Point(*a), z=1)


def test_record_replace_reruns_post_init_and_drops_cached_values():
    from functools import cached_property

    from advisor.core.record import replace

    @record
    class Checked:
        n: int

        def __post_init__(self):
            if self.n < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError):
        replace(Checked(1), n=-1)

    @record
    class Cached:
        n: int

        @cached_property
        def double(self):
            return 2 * self.n

    c = Cached(2)
    assert c.double == 4 and replace(c, n=5).double == 10 and replace(c).double == 4
    class Sub(Point):  # a plain subclass of a record with nothing cached, caching something of its own
        @cached_property
        def twice(self):
            return 2 * self.x

    s = Sub(1)
    assert s.twice == 2 and replace(s, x=3).twice == 6 and type(replace(s, x=3)) is Sub
    assert replace(Point(1), x=2).__dict__ == {"x": 2, "y": 0, "label": ""}
    refs = dataclasses.make_dataclass("Ref", [("x", int)], frozen=True)
    assert replace(refs(1), x=2) == refs(2)  # not a record: dataclasses.replace's
