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


def fuzz_settings(*health_checks):
    """Hypothesis as every fuzz property here runs it: derandomized (a fixed seed), no example database, no
    deadline, and at most PY_RUNNER_FUZZ_EXAMPLES (default 200) examples."""
    import os

    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=int(os.environ.get("PY_RUNNER_FUZZ_EXAMPLES", "200")),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, *health_checks],
    )
