"""The statistics of the outcome indicators, in plain Python (no numpy/scipy on the platform).

- Proportions: Wilson score interval (better than the normal approximation for small n and for
  shares near 0 or 100 %, which quality indicators often are).
- Rates (events per person-time): Byar's approximation to the exact Poisson interval.
- Means: Student's t interval; the t quantile by the Cornish-Fisher expansion, which is within
  0.002 of the tables from 4 degrees of freedom up (the smallest shown group has 5 patients).
- Quantiles: linear interpolation between order statistics (R's type 7, Excel's PERCENTILE.INC),
  so a figure can be checked in a spreadsheet.
"""

import math
from collections.abc import Sequence
from statistics import NormalDist

Z975 = NormalDist().inv_cdf(0.975)


def t975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (df ≥ 1)."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df == 1:
        return 12.706204736
    if df == 2:
        return 4.302652730
    if df == 3:
        return 3.182446305
    z = Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def wilson(successes: int, n: int) -> tuple[float, float]:
    if n <= 0:
        raise ValueError("n must be positive")
    p = successes / n
    z2 = Z975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def poisson_ci(events: int) -> tuple[float, float]:
    """95 % interval for a Poisson count (Byar). Divide by the person-time for a rate."""
    if events < 0:
        raise ValueError("events cannot be negative")
    z = Z975
    if events == 0:
        low = 0.0
    else:
        a = events
        low = a * (1 - 1 / (9 * a) - z / (3 * math.sqrt(a))) ** 3
    b = events + 1
    high = b * (1 - 1 / (9 * b) + z / (3 * math.sqrt(b))) ** 3
    return max(0.0, low), high


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high); needs at least two values."""
    n = len(values)
    if n < 2:
        raise ValueError("a confidence interval needs at least two values")
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def quantile(values: Sequence[float], q: float) -> float:
    """Type-7 quantile (linear interpolation), 0 ≤ q ≤ 1."""
    if not values:
        raise ValueError("no values")
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])
