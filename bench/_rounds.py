"""The round loop the side-by-side benchmarks share (phase1_repair.py, rerun.py): every round
times each side once, the order rotated from round to round so neither side always meets a
warmer (or busier) engine, the stack put back before each side when it needs to be."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class Rounds:
    """Seconds per side, in the order the rounds ran."""

    times: dict[str, list[float]] = field(default_factory=dict)

    def last(self, side: str) -> float:
        return self.times[side][-1]


def side_by_side(
    rounds: int,
    sides: Mapping[str, Callable[[], float]],
    *,
    before_each: Callable[[], None] | None = None,
    after_round: Callable[[int, Rounds], None] | None = None,
) -> Rounds:
    """Run `rounds` rounds (at least one) of every side; a side returns the seconds it took
    (only what is compared: its own set-up is not timed). Round n starts with side n mod k,
    the first round with the first side."""
    names = list(sides)
    out = Rounds({name: [] for name in names})
    for n in range(max(1, rounds)):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            if before_each is not None:
                before_each()
            out.times[name].append(sides[name]())
        if after_round is not None:
            after_round(n, out)
    return out
