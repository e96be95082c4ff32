"""Small parsers and sizes that several sources share, one definition each.

Each raises ValueError with a message that quotes the offending text (shortened), which the
source turns into a reject; none of them guesses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Landmark model: 68 points (iBUG 300-W), as (x, y) pairs.
N_LANDMARKS = 68
#: Characters of offending text quoted in a message (enough to recognise, never a whole row).
QUOTE = 40


def ceil_div(a: int, b: int) -> int:
    """a / b rounded up, for positive b."""
    return -(-a // b)


def items_per_shard(total: int, max_items: int, min_shards: int) -> int:
    """Shard size: at most MAX_ITEMS, small enough for at least MIN_SHARDS shards (>= 1)."""
    return max(1, min(max_items, ceil_div(total, max(1, min_shards))))


def whole_number(text: str, what: str) -> int:
    """An integer written as an integer or a float with no fraction (`3`, `3.0`, `3.0000000e+00`)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text[:QUOTE]!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{what} {text[:QUOTE]!r} is not a whole number")
    return int(value)


def landmarks68(values: Sequence[str] | Sequence[Sequence[str]], what: str) -> np.ndarray:
    """(68, 2) float points from 136 numbers (flat, or as 68 x/y pairs)."""
    flat = [v for row in values for v in row] if values and not isinstance(values[0], str) else list(values)
    if len(flat) != 2 * N_LANDMARKS or any(not isinstance(row, str) and len(row) != 2 for row in values):
        raise ValueError(f"{what} holds {len(flat)} values, expected {N_LANDMARKS} x/y pairs")
    try:
        points = np.array([float(v) for v in flat], dtype=np.float64).reshape(N_LANDMARKS, 2)
    except ValueError:
        raise ValueError(f"{what} holds something that is not a number") from None
    if not np.isfinite(points).all():
        raise ValueError(f"{what} holds non-finite values")
    return points
