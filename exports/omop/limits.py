"""The programme's limits as OMOP measurement ranges (issue 25, ADR 0019).

A measurement's ``range_low``/``range_high`` are the range inside which the programme raises no
alert for that measure and part: from its active ``threshold`` rules (below ``low`` or above
``high`` alerts; a limit itself does not) and ``bands`` rules (the normal band between the yellow
limits, or the red ones where a yellow is missing). Several rules: the highest lower limit and
the lowest upper limit. Programme rules only — a patient's overrides are that patient's, not the
programme's. Limits are in the measure's canonical unit, as stored readings and the export's
``value_as_number`` are. Other kinds (change, NEWS2, combinations) have no fixed range.
"""

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

from alerts.models import Rule
from alerts.rules import parse_params

RANGED_KINDS = ("threshold", "bands")

Range = tuple[int, str, int, Decimal | None, Decimal | None]  # (programme, measure, part n, low, high)


def programme_ranges() -> list[Range]:
    """One row per (programme, measure, part — 0 the value or systolic, 1 the diastolic) with a
    limit, sorted. A programme whose limits leave no value without an alert (highest low above
    lowest high) gets neither side: there is no range to give."""
    found: dict[tuple[int, str, int], list[Decimal | None]] = {}

    def add(key: tuple[int, str, int], low: Decimal | None, high: Decimal | None) -> None:
        old = found.setdefault(key, [None, None])
        if low is not None and (old[0] is None or low > old[0]):
            old[0] = low
        if high is not None and (old[1] is None or high < old[1]):
            old[1] = high

    for rule in Rule.objects.filter(active=True, kind__in=RANGED_KINDS).order_by("pk"):
        try:
            p: Any = parse_params(rule.kind, rule.params)
        except ValidationError:
            continue  # a stored rule that does not parse raises no alert either
        if rule.kind == "threshold":
            add((rule.program_id, p.measure, 1 if p.component == "value2" else 0), p.low, p.high)
            continue
        for n, bands in ((0, p.bands), (1, p.bands2)):
            if bands is not None:
                add((rule.program_id, p.measure, n),
                    bands.warning_low if bands.warning_low is not None else bands.alert_low,
                    bands.warning_high if bands.warning_high is not None else bands.alert_high)
    rows: list[Range] = []
    for (program, measure, n), (low, high) in sorted(found.items()):
        if low is not None and high is not None and low > high:
            low = high = None
        rows.append((program, measure, n, _plain(low), _plain(high)))
    return rows


def _plain(value: Decimal | None) -> Decimal | None:
    """92.0 and 92 are one limit: normalised, in plain notation (not 9.2E+1)."""
    return None if value is None else Decimal(f"{value.normalize():f}")
