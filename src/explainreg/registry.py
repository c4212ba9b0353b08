"""One registry for every family of named things: penalties, attribution methods, metrics, data sets,
models and studies (contextual decomposition's rules are keyed by module type, through the same class).

A :class:`Registry` maps names to objects. Lookups are normalised (case, surrounding space and ``-``
versus ``_`` do not matter: ``"Gradient-L1"`` finds ``gradient_l1``), an object may have aliases, a
name already taken by another object is refused, and :meth:`Registry.describe` lists each name with a
one-line description (the command line's choices and help, ``explainreg datasets`` and the docs'
tables read it). A registry is a read-only mapping of its canonical names.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable, Generic, Iterator, TypeVar

__all__ = ["Registry", "RegistryView", "UnknownNameError", "first_line", "normalise"]

T = TypeVar("T")


def normalise(name: Any) -> Any:
    """The lookup key of a name: stripped, lower case, ``-`` as ``_``; a non-string key (a type) as it is.

    Example:
        >>> normalise(" Gradient-L1 "), normalise(int)
        ('gradient_l1', <class 'int'>)
    """
    if not isinstance(name, str):
        return name
    if not name.strip():
        raise ValueError(f"a registered name must be a non-empty string, got {name!r}")
    return name.strip().lower().replace("-", "_")


def first_line(obj: Any) -> str:
    """One line about ``obj``: its ``help`` attribute when it has one, else the first sentence of its
    docstring (the first paragraph up to ``". "``), or ``""``.

    Example:
        >>> def f():
        ...     '''Adds nothing to
        ...     anything. Really.
        ...
        ...     More.'''
        >>> first_line(f)
        'Adds nothing to anything.'
    """
    text = getattr(obj, "help", None)
    if not isinstance(text, str):
        text = getattr(obj, "__doc__", None) or ""
    paragraph = " ".join(line.strip() for line in text.strip().split("\n\n")[0].splitlines())
    end = re.search(r"(?<!\bal)(?<!e\.g)(?<!i\.e)\.\s", paragraph)   # not after "et al", "e.g", "i.e"
    return paragraph if end is None else paragraph[:end.start() + 1]


class UnknownNameError(KeyError, ValueError):
    """A name no object is registered under (a ``KeyError`` and a ``ValueError``); the message lists the
    registered names.

    Example:
        >>> str(UnknownNameError("unknown colour 'blue'; available: red"))   # not quoted, as KeyError would
        "unknown colour 'blue'; available: red"
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _qualname(obj: Any) -> str:
    target = getattr(obj, "function", obj)  # a record that wraps a function names the function
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(target).__qualname__)}"


def _same(held: Any, obj: Any) -> bool:
    """Whether registering ``obj`` where ``held`` is repeats one registration: the same object, the same
    function or class defined again (a module loaded twice), or an equal record (two records of one class
    that differ are two things)."""
    if held is obj:
        return True
    if any(hasattr(o, "__qualname__") or hasattr(o, "function") for o in (held, obj)):
        return _qualname(held) == _qualname(obj)
    try:
        return bool(held == obj)
    except Exception:  # an object without a usable ==
        return False


class Registry(Mapping, Generic[T]):
    """Named objects of one ``family`` (``"penalty"``, ``"metric"``, ``"data set"``, …).

    Args:
        family: what the registry holds, for messages (``"unknown penalty 'x'; available: ..."``).
        key: the function from a name to its lookup key (default :func:`normalise`).
        hint: appended to the message for an unknown name (e.g. where else to look).

    Example:
        >>> colours = Registry("colour")
        >>> @colours.register("red", aliases=("crimson",), description="The colour of blood.")
        ... def red():
        ...     return (255, 0, 0)
        >>> colours["Crimson"] is colours["RED"] is red, list(colours), "crimson" in colours
        (True, ['red'], True)
        >>> colours.describe()
        {'red': 'The colour of blood.'}
        >>> colours.register("crimson", lambda: (220, 20, 60))
        Traceback (most recent call last):
        ...
        ValueError: colour name 'crimson' is already registered to ...red; register ... under another name (or pass replace=True), or remove the old one first: .pop('crimson')
        >>> colours["blue"]
        Traceback (most recent call last):
        ...
        explainreg.registry.UnknownNameError: unknown colour 'blue'; available: red
    """

    def __init__(self, family: str, *, key: Callable[[Any], Any] = normalise, hint: str = "") -> None:
        self.family = family
        self.hint = hint
        self._key = key
        self._items: dict[Any, T] = {}          # canonical key → object
        self._names: dict[Any, Any] = {}        # canonical key → the name as registered
        self._aliases: dict[Any, Any] = {}      # alias key → canonical key
        self._descriptions: dict[Any, str] = {}

    # --------------------------------------------------------------------------------- registering
    def register(self, name: Any = None, obj: T | None = None, *, aliases: tuple = (), description: str | None = None,
                 replace: bool = False) -> Any:
        """Register ``obj`` under ``name`` (and ``aliases``); without ``obj``, a decorator.

        Args:
            name: the canonical name (default: the object's ``name`` attribute).
            obj: the object; None: return a decorator that registers what it decorates.
            aliases: other names that find it.
            description: one line for listings (default: the first line of its docstring or ``help``).
            replace: replace an object already registered under the name (default: refuse).

        Returns:
            ``obj`` (or the decorator, which returns what it decorates unchanged).
        """
        if obj is None:
            return lambda target: self.register(name, target, aliases=aliases, description=description,
                                                replace=replace)
        canonical = getattr(obj, "name", None) if name is None else name
        if canonical is None:
            raise ValueError(f"register a {self.family} with a name (or give the object a `name` attribute)")
        key = self._key(canonical)
        keys = [key] + [self._key(a) for a in aliases]
        for k, shown in zip(keys, (canonical, *aliases)):
            held = self._items.get(self._aliases.get(k, k))
            if held is not None and not replace and not _same(held, obj):
                label = shown.__name__ if isinstance(shown, type) else repr(shown)   # a type key shows its name
                what = f"{self.family} {label}" if isinstance(shown, type) else f"{self.family} name {label}"
                raise ValueError(f"{what} is already registered to {_qualname(held)}; register {_qualname(obj)} under "
                                 f"another name (or pass replace=True), or remove the old one first: .pop({label})")
        if replace and key in self._items:
            self.pop(canonical)
        self._items[key] = obj
        self._names[key] = canonical
        self._descriptions[key] = first_line(obj) if description is None else description
        for a in keys[1:]:
            if a != key:
                self._aliases[a] = key
        return obj

    def pop(self, name: Any, *default: Any) -> Any:
        """Remove ``name`` (canonical, with its aliases; or one alias) and return its object."""
        k = self._key(name)
        if k in self._aliases and k not in self._items:
            return self._items[self._aliases.pop(k)]
        if k not in self._items:
            if default:
                return default[0]
            raise UnknownNameError(self._unknown(name))
        self._aliases = {a: c for a, c in self._aliases.items() if c != k}
        self._names.pop(k)
        self._descriptions.pop(k)
        return self._items.pop(k)

    # ----------------------------------------------------------------------------------- looking up
    def resolve(self, name: Any) -> Any:
        """The canonical name of ``name`` (or of the alias ``name``); :class:`UnknownNameError` (a ``KeyError``
        and a ``ValueError``) listing the registered names when there is none."""
        k = self._key(name) if not isinstance(name, str) or name.strip() else name
        k = self._aliases.get(k, k)
        if k not in self._items:
            raise UnknownNameError(self._unknown(name))
        return self._names[k]

    def _unknown(self, name: Any) -> str:
        shown = ", ".join(str(getattr(n, "__name__", n)) for n in self._names.values()) or "none"
        return f"unknown {self.family} {name!r}; available: {shown}{self.hint}"

    def __getitem__(self, name: Any) -> T:
        return self._items[self._key(self.resolve(name))]

    def __contains__(self, name: object) -> bool:
        try:
            self.resolve(name)
        except (KeyError, ValueError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._names.values()))

    def __len__(self) -> int:
        return len(self._items)

    def __delitem__(self, name: Any) -> None:
        self.pop(name)

    @property
    def aliases(self) -> dict[Any, Any]:
        """``{alias: canonical name}``."""
        return {a: self._names[c] for a, c in self._aliases.items()}

    def names(self, *, with_aliases: bool = False) -> list[Any]:
        """The canonical names in registration order (and then the aliases)."""
        return list(self) + (list(self.aliases) if with_aliases else [])

    def where(self, predicate: Callable[[T], bool], family: str, *, hint: str = "") -> "RegistryView[T]":
        """A live, read-only :class:`RegistryView` of the entries whose object satisfies ``predicate`` (an
        object registered later that satisfies it appears in the view)."""
        return RegistryView(self, predicate, family, hint=hint)

    def describe(self) -> dict[Any, str]:
        """``{canonical name: one-line description}`` in registration order."""
        return {self._names[k]: self._descriptions[k] for k in self._items}

    def table(self, width: int = 24) -> str:
        """One line per name: the name, its aliases in brackets, its description (for ``--help`` and listings).

        Example:
            >>> r = Registry("shape"); _ = r.register("square", object(), aliases=("box",), description="Four sides.")
            >>> print(r.table(12))
            square (box) Four sides.
        """
        by_canonical: dict[Any, list[Any]] = {}
        for alias, canonical in self.aliases.items():
            by_canonical.setdefault(canonical, []).append(alias)
        lines = []
        for name, text in self.describe().items():
            label = str(name) + (f" ({', '.join(map(str, by_canonical[name]))})" if name in by_canonical else "")
            lines.append(f"{label:<{width}} {text}".rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}: {', '.join(map(str, self))})"


class RegistryView(Registry[T]):
    """The entries of ``parent`` whose object satisfies ``predicate``, read live: a registry that looks
    up, lists and describes as :class:`Registry` does, and is changed only through ``parent``.

    Args:
        parent: the registry it shows.
        predicate: ``predicate(obj) -> bool``: whether an entry belongs (e.g. a declared need).
        family: what the view holds, for messages.
        hint: appended to the message for an unknown name.

    Example:
        >>> numbers = Registry("number")
        >>> _ = numbers.register("two", 2, aliases=("pair",)); _ = numbers.register("three", 3)
        >>> even = numbers.where(lambda n: n % 2 == 0, "even number")
        >>> _ = numbers.register("four", 4)
        >>> list(even), even["PAIR"], "three" in even
        (['two', 'four'], 2, False)
        >>> even.register("six", 6)
        Traceback (most recent call last):
        ...
        TypeError: even numbers are a view of the number registry: register in that registry instead
    """

    def __init__(self, parent: Registry[T], predicate: Callable[[T], bool], family: str, *, hint: str = "") -> None:
        self.parent, self.predicate, self.family, self.hint = parent, predicate, family, hint
        self._key = parent._key

    @property
    def _items(self) -> dict[Any, T]:  # type: ignore[override]
        return {k: obj for k, obj in self.parent._items.items() if self.predicate(obj)}

    @property
    def _names(self) -> dict[Any, Any]:  # type: ignore[override]
        return {k: name for k, name in self.parent._names.items() if self.predicate(self.parent._items[k])}

    @property
    def _aliases(self) -> dict[Any, Any]:  # type: ignore[override]
        return {a: k for a, k in self.parent._aliases.items() if self.predicate(self.parent._items[k])}

    @property
    def _descriptions(self) -> dict[Any, str]:  # type: ignore[override]
        return {k: text for k, text in self.parent._descriptions.items() if self.predicate(self.parent._items[k])}

    def register(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.family}s are a view of the {self.parent.family} registry: register in that registry "
                        "instead")

    def pop(self, *args: Any) -> Any:
        raise TypeError(f"{self.family}s are a view of the {self.parent.family} registry: remove from that registry "
                        "instead")
