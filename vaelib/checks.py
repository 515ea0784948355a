"""Argument checks, one message style: `<name> must be <what>, got <value>`, `unknown <name> <value>; choose one of ...`.

Public functions and configurations call these before any work, so a bad argument fails at
once with one line that names it. Each check returns the value it accepted.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, TypeVar

_T = TypeVar("_T")

MAX_SEED = 2**63  # seeds are non-negative and fit in a signed 64-bit integer (torch's limit)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # NumPy integers too


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(value: Any, name: str, low: int = 1, high: int | None = None) -> int:
    """An integer (not a bool, not a float; a NumPy integer is one) in [low, high]; `high=None`: no upper bound."""
    if _is_int(value) and low <= value and (high is None or value <= high):
        return value
    if high is not None:
        what = f"an integer between {low} and {high}"
    else:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    raise ValueError(f"{name} must be {what}, got {value!r}")


def check_positive_int(value: Any, name: str) -> int:
    """An integer >= 1."""
    return check_int(value, name, 1)


def check_positive_number(value: Any, name: str) -> float:
    """A finite real number > 0."""
    if _is_real(value) and 0 < value < math.inf:
        return value
    raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def check_probability(value: Any, name: str, *, allow_one: bool = True) -> float:
    """A real number in (0, 1] (or (0, 1) with `allow_one=False`)."""
    if _is_real(value) and 0 < value and (value <= 1 if allow_one else value < 1):
        return value
    raise ValueError(f"{name} must be in (0, {'1]' if allow_one else '1)'}, got {value!r}")


def check_one_of(value: _T, name: str, choices: Iterable[_T]) -> _T:
    """One of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed torch can take: an integer in [0, 2**63)."""
    if _is_int(value) and 0 <= value < MAX_SEED:
        return value
    raise ValueError(f"{name} must be an integer in [0, 2**63), got {value!r}")
