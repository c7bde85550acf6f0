"""gdbext.record against the stdlib's dataclasses: the same class body under
both decorators must construct, print, compare, hash and refuse alike."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, strategies as st

from gdbext import record as rec


def both(body, frozen=False):
    """The class ``body`` defines, once as a dataclass and once as a record."""
    out = []
    for deco in (dataclasses.dataclass(frozen=frozen), rec.record(frozen=frozen)):
        ns = {"field": dataclasses.field if deco.__module__ == "dataclasses" else rec.field}
        exec(body, ns)      # the same source under each decorator
        out.append(deco(ns["Thing"]))
    return out


BODY = '''
class Thing:
    """A thing."""
    a: int
    b: str = "x"
    c: list = field(default_factory=list)
    d: dict = field(default_factory=dict, compare=False, repr=False)
    e: object = field(default=None, repr=False)
'''


def hashed(thing):
    try:
        return hash(thing)
    except TypeError as exc:        # mutable, or frozen with a list field
        return type(exc)


@pytest.mark.parametrize("frozen", [False, True])
@given(a=st.integers(), b=st.text(max_size=5), c=st.lists(st.integers(), max_size=3))
def test_construct_repr_eq_as_dataclasses(frozen, a, b, c):
    D, R = both(BODY, frozen)
    for args, kwargs in (((a,), {}), ((a, b), {}), ((a,), {"c": list(c)}),
                         ((), {"a": a, "b": b, "c": list(c), "d": {1: 2}})):
        d, r = D(*args, **kwargs), R(*args, **kwargs)
        assert repr(r) == repr(d)
        assert [getattr(r, n) for n in "abcde"] == [getattr(d, n) for n in "abcde"]
        assert (r == R(*args, **kwargs)) == (d == D(*args, **kwargs))
        assert r != d                       # another class: NotImplemented, then identity
        assert hashed(r) == hashed(d)       # the tuple of compared fields, or TypeError
    other_d, other_r = D(a, d={"ignored": 1}), R(a, d={"ignored": 1})
    assert (other_r == R(a)) == (other_d == D(a)) is True      # compare=False


def test_defaults_are_fresh_per_instance():
    _, R = both(BODY)
    one, two = R(1), R(2)
    one.c.append(1)
    assert two.c == [] and one.d is not two.d


def test_mutable_records_are_unhashable_frozen_ones_refuse_assignment():
    D, R = both(BODY)
    for cls in (D, R):
        with pytest.raises(TypeError):
            hash(cls(1))
    D, R = both(BODY, frozen=True)
    for cls in (D, R):
        thing = cls(1)
        with pytest.raises(AttributeError):
            thing.a = 2
        with pytest.raises(AttributeError):
            del thing.b
        assert thing.a == 1


def test_missing_and_extra_arguments_fail_as_in_dataclasses():
    D, R = both(BODY)
    for bad_args, bad_kwargs in (((), {}), ((1, "x", [], {}, None, 6), {}), ((1,), {"z": 1}),
                                 ((1,), {"a": 1})):
        with pytest.raises(TypeError):
            D(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            R(*bad_args, **bad_kwargs)


def test_definition_errors_match():
    for body, error in (('class Thing:\n    a: list = []\n', ValueError),
                        ('class Thing:\n    a: int = 1\n    b: int\n', TypeError)):
        for deco in (dataclasses.dataclass, rec.record):
            ns = {}
            exec(body, ns)
            with pytest.raises(error):
                deco(ns["Thing"])


def test_replace_fields_post_init_and_own_methods():
    body = '''
class Thing:
    a: int
    b: list = field(default_factory=list)
    def __post_init__(self):
        self.seen = self.a * 2
    def __repr__(self):
        return "mine"
'''
    D, R = both(body)
    for cls, replace, fields in ((D, dataclasses.replace, dataclasses.fields),
                                 (R, rec.replace, rec.fields)):
        thing = cls(2, [1])
        assert thing.seen == 4 and repr(thing) == "mine"
        other = replace(thing, a=5)
        assert (other.a, other.b, other.seen) == (5, [1], 10)
        assert [f.name for f in fields(cls)] == ["a", "b"] == [f.name for f in fields(thing)]
    with pytest.raises(TypeError):
        rec.fields(object())


def test_frozen_records_hash_as_dataclasses():
    body = 'class Thing:\n    a: int\n    b: str = "x"\n    c: tuple = field(default=(), compare=False)\n'
    D, R = both(body, frozen=True)
    assert hash(R(3, "y", (1,))) == hash(D(3, "y", (2,))) == hash((3, "y"))
    assert len({R(3), R(3, c=(9,)), R(4)}) == 2
