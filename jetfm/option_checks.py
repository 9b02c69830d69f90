"""Value checks of the command-line options, run by argparse while it parses (``type=``).

A bad value (``--batch-size -5``, ``--mask-fraction 1.5``) stops the command before it
reads, generates or creates anything, with one line and exit status 2::

    jetfm finetune: error: argument --batch-size: must be a whole number ≥ 1, got '-5'

The ranges are those the library refuses too (a command is checked at once instead of
after minutes of reading or generating); ``--help`` states them where they are not obvious.

Each check takes the option's text and returns the value (or raises
:class:`argparse.ArgumentTypeError`, whose message argparse prints after the option's name).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

#: seeds go to numpy, torch and Pythia: a 32-bit unsigned integer
MAX_SEED = 2**32 - 1


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    """A whole number ``≥ low``."""
    what = f"a whole number ≥ {low}"

    def check(text: str) -> int:
        value = _int(text, what)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    check.__name__ = f"int_at_least_{low}"
    return check


#: a whole number ≥ 1 (batch sizes, steps, jets, widths)
positive_int = int_at_least(1)
positive_int.__name__ = "positive_int"
#: a whole number ≥ 0 (worker counts where 0 means "none", patience where 0 means "off")
non_negative_int = int_at_least(0)
non_negative_int.__name__ = "non_negative_int"


def steps(text: str) -> int:
    """Optimiser steps: a whole number ≥ 1, or -1 for "use the epochs instead"."""
    what = "a whole number ≥ 1, or -1 (use the epochs)"
    value = _int(text, what)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number in [0, 2³² − 1] (what numpy, torch and Pythia accept)."""
    what = f"a whole number from 0 to {MAX_SEED}"
    value = _int(text, what)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, sizes)."""
    what = "a number > 0"
    value = _float(text, what)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0 (scales where 0 switches something off)."""
    what = "a number ≥ 0"
    value = _float(text, what)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def float_in(
    low: float, high: float, *, low_closed: bool = True, high_closed: bool = True
) -> Callable[[str], float]:
    """A number between ``low`` and ``high``, each end included or not."""
    what = f"a number in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"

    def check(text: str) -> float:
        value = _float(text, what)
        above = value >= low if low_closed else value > low
        below = value <= high if high_closed else value < high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    check.__name__ = "float_in"
    return check


#: a fraction in [0, 1]
fraction = float_in(0, 1)
#: a fraction strictly between 0 and 1
open_fraction = float_in(0, 1, low_closed=False, high_closed=False)
#: a factor in (0, 1] that shrinks something (1 leaves it as it is)
unit_fraction = float_in(0, 1, low_closed=False)


def comma_list(item: Callable[[str], object], *, count: int | None = None) -> Callable:
    """A comma-separated list whose items pass ``item`` (``count`` of them if given)."""

    def check(text: str) -> list:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts or (count is not None and len(parts) != count):
            size = f"{count} " if count is not None else ""
            raise argparse.ArgumentTypeError(f"must be {size}comma-separated values, got {text!r}")
        values = []
        for part in parts:
            try:
                values.append(item(part))
            except argparse.ArgumentTypeError as err:
                raise argparse.ArgumentTypeError(f"{err} (in {text!r})") from None
        return values

    check.__name__ = f"comma_list_{getattr(item, '__name__', 'item')}"
    return check


__all__ = [
    "MAX_SEED",
    "comma_list",
    "float_in",
    "fraction",
    "int_at_least",
    "non_negative_float",
    "non_negative_int",
    "open_fraction",
    "positive_float",
    "positive_int",
    "seed",
    "steps",
    "unit_fraction",
]
