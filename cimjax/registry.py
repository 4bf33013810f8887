"""Name -> entry tables that code plugs into (search methods, joint methods), with one error rule.

A :class:`Registry` is a dict in registration order (the order ``--help`` and errors list the names);
:meth:`Registry.entry` is the decorator a registering module uses, :meth:`Registry.lookup` the one
lookup that refuses an unknown name with the allowed ones. JAX-free: the CLI reads the names for its help.
"""

from __future__ import annotations

from collections.abc import Callable


class Registry(dict):
    """Entries by name; ``unknown`` is the start of the error for a name not registered, e.g.
    ``"search method {name!r} is not known"``."""

    def __init__(self, unknown: str):
        super().__init__()
        self.unknown = unknown

    def entry(self, name: str, make: Callable[[Callable], object]) -> Callable[[Callable], Callable]:
        """A decorator registering ``make(function)`` under ``name`` and returning the function unchanged."""

        def register(function: Callable) -> Callable:
            self[name] = make(function)
            return function

        return register

    def lookup(self, name: str):
        """The entry registered as ``name``; a ValueError naming the allowed ones if there is none."""
        if name not in self:
            raise ValueError(f"{self.unknown.format(name=name)}; allowed: {list(self)}")
        return self[name]
