"""What the fuzz suite (test_fuzz.py) tried, printed at the end of the run by this folder's conftest."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
MAXIMA: dict[str, float] = {}


def count(name: str, n: int = 1) -> None:
    COUNTS[name] += n


def peak(name: str, value: float) -> None:
    MAXIMA[name] = max(MAXIMA.get(name, value), value)


def lines() -> list[str]:
    return [f"{name}: {n}" for name, n in sorted(COUNTS.items())] + [
        f"{name}: {value:.2f}" for name, value in sorted(MAXIMA.items())
    ]
