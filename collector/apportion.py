"""Pure: exact apportioning by the largest-remainder method, shared by attribution (tokens and micro-dollars per
team) and the bill's allocation (cents per team): the parts always add up to the whole."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction


def largest_remainder(total: int, weights: Sequence[Decimal | int | Fraction]) -> list[int]:
    """Integers proportional to `weights` that sum exactly to `total` (>= 0): floors first, then one more to the
    largest remainders, ties to the earlier weight. All-zero weights split evenly."""
    if not weights:
        if total:
            raise ValueError(f"cannot apportion {total} over nothing")
        return []
    fractions = [Fraction(w) for w in weights]
    if any(f < 0 for f in fractions):
        raise ValueError("weights must not be negative")
    whole = sum(fractions)
    if whole == 0:
        fractions, whole = [Fraction(1)] * len(weights), Fraction(len(weights))
    quotas = [total * f / whole for f in fractions]
    shares = [q.numerator // q.denominator for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares
