"""Records: the part of dataclasses' semantics our data classes use, at a
fraction of the cost of defining them.

Every gdb is a new Python, so defining classes is paid on every command.
crash-triage defines ~40 record classes; with ``@dataclass`` that was
~45 ms of a ~130 ms crash-triage (10 ms to import dataclasses, which
imports inspect, and ~1 ms a class for field processing and four compiled
methods; measured on the everyday py-string-at core, 2026-11-29).  Here a
class gets one compiled ``__init__``, made on its first instance (most
classes a command imports are never instantiated), and shared
``__repr__``/``__eq__``/``__hash__``.

What is kept from dataclasses: fields are the annotated class attributes in
order; ``field(default=..., default_factory=..., repr=..., compare=...)``;
``frozen=True`` (assignment raises FrozenInstanceError, an AttributeError;
instances hash by their compared fields); mutable records compare equal
field by field and are unhashable; ``__post_init__``; a method the class
defines itself is not replaced.  ``replace`` and ``fields`` as in
dataclasses.  Type checkers are shown dataclasses themselves.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:   # the same semantics, for type checkers
    from dataclasses import dataclass as record, field, fields, replace  # noqa: F401
else:
    _MISSING = object()
    _FACTORY = object()         # an argument left to its default_factory

    class FrozenInstanceError(AttributeError):
        """Assignment to a field of a frozen record."""

    class Field:
        """One field: its name, default or default_factory, and whether it
        is shown by repr and compared by ==."""
        __slots__ = ("name", "default", "default_factory", "repr", "compare")

        def __init__(self, default=_MISSING, default_factory=_MISSING, repr=True,
                     compare=True):
            if default is not _MISSING and default_factory is not _MISSING:
                raise ValueError("cannot specify both default and default_factory")
            self.name = None
            self.default = default
            self.default_factory = default_factory
            self.repr = repr
            self.compare = compare

        def __repr__(self):
            return f"Field(name={self.name!r})"

    def field(*, default=_MISSING, default_factory=_MISSING, repr=True, compare=True):
        """As dataclasses.field, for the options records support."""
        return Field(default, default_factory, repr, compare)

    def record(cls=None, /, *, frozen: bool = False):
        """As ``@dataclass`` / ``@dataclass(frozen=True)``."""
        if cls is None:
            return lambda c: _process(c, frozen)
        return _process(cls, frozen)

    def fields(obj) -> tuple:
        """The fields of a record class or instance, in order."""
        try:
            return (obj if isinstance(obj, type) else type(obj)).__record_fields__
        except AttributeError:
            raise TypeError("fields() takes a record class or instance") from None

    def replace(obj, /, **changes):
        """A new record like ``obj`` with ``changes`` (dataclasses.replace)."""
        for f in fields(obj):
            if f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return type(obj)(**changes)

    def _process(cls, frozen: bool):
        own = cls.__dict__
        specs = []
        defaulted = None
        for name in own.get("__annotations__", {}):
            value = own.get(name, _MISSING)
            f = value if isinstance(value, Field) else Field(default=value)
            f.name = name
            if f.default is not _MISSING:
                if type(f.default).__hash__ is None:     # list, dict, set: shared by all
                    raise ValueError(f"mutable default {type(f.default)} for field {name} "
                                     "is not allowed: use default_factory")
                setattr(cls, name, f.default)
            elif isinstance(value, Field):
                delattr(cls, name)
            has_default = f.default is not _MISSING or f.default_factory is not _MISSING
            if has_default:
                defaulted = name
            elif defaulted is not None:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            specs.append(f)
        cls.__record_fields__ = tuple(specs)
        cls.__record_repr__ = tuple(f.name for f in specs if f.repr)
        cls.__record_compare__ = tuple(f.name for f in specs if f.compare)
        cls.__record_frozen__ = frozen

        def first_init(self, *args, **kwargs):
            init = _make_init(cls)
            cls.__init__ = init
            init(self, *args, **kwargs)
        first_init.__qualname__ = f"{cls.__qualname__}.__init__"
        _set_new(cls, "__init__", first_init)
        _set_new(cls, "__repr__", _repr)
        _set_new(cls, "__eq__", _eq)
        explicit_hash = own.get("__hash__", _MISSING)
        if explicit_hash is _MISSING or (explicit_hash is None and "__eq__" in own):
            cls.__hash__ = _hash if frozen else None        # dataclasses' rule
        if frozen:
            _set_new(cls, "__setattr__", _frozen_setattr)
            _set_new(cls, "__delattr__", _frozen_delattr)
        return cls

    def _set_new(cls, name: str, value) -> None:
        if name not in cls.__dict__:
            setattr(cls, name, value)

    def _make_init(cls):
        """One __init__ for the class, compiled like dataclasses' own."""
        scope = {"_FACTORY": _FACTORY, "_set": object.__setattr__}
        params, body = ["self"], []
        for i, f in enumerate(cls.__record_fields__):
            if f.default_factory is not _MISSING:
                scope[f"_f{i}"] = f.default_factory
                params.append(f"{f.name}=_FACTORY")
                value = f"_f{i}() if {f.name} is _FACTORY else {f.name}"
            elif f.default is not _MISSING:
                scope[f"_d{i}"] = f.default
                params.append(f"{f.name}=_d{i}")
                value = f.name
            else:
                params.append(f.name)
                value = f.name
            body.append(f"_set(self, {f.name!r}, {value})" if cls.__record_frozen__
                        else f"self.{f.name} = {value}")
        if hasattr(cls, "__post_init__"):
            body.append("self.__post_init__()")
        source = f"def __init__({', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
        exec(source, scope)     # noqa: S102 - our own field names, as dataclasses does
        init = scope["__init__"]
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        return init

    def _repr(self):
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in type(self).__record_repr__)
        return f"{type(self).__qualname__}({shown})"

    def _eq(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = self.__record_compare__
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def _hash(self):
        return hash(tuple(getattr(self, n) for n in self.__record_compare__))

    def _frozen_setattr(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def _frozen_delattr(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")
