"""``@immutable``: a frozen dataclass for the type checker, a plain slotted one at run time.

A ``frozen=True`` dataclass sets each field through ``object.__setattr__`` in its ``__init__``: five to six times
the cost of a plain one (``RouteInfo``, six fields: ~1.3 µs against ~0.2 µs). Small records made for every request
use this instead: mypy still refuses an assignment to a field (``dataclass_transform(frozen_default=True)``), and
equality and hashing are the frozen dataclass's (``unsafe_hash``); only the run-time ``FrozenInstanceError`` goes.
Change one with ``dataclasses.replace``, as before. (``ChatCall`` stays frozen at run time too: it is the
contract every surface, memory and RAG hand on, and its immutability is promised there.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def immutable(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
