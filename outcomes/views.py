from collections import defaultdict

from django.db.models import Count
from django.db.models.functions import TruncQuarter
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import role_required
from accounts.models import Role
from patients.models import TreatmentEpisode


def suppressed(count: int) -> str:
    """Small-cell suppression for aggregate tables: counts of 1-4 are shown as "<5"."""
    return "<5" if 1 <= count <= 4 else str(count)


@role_required(Role.QUALITY, Role.ADMIN)
def overview(request: HttpRequest) -> HttpResponse:
    """Patients starting treatment per programme and quarter. Aggregates only, no identifiers,
    and no totals, so that no suppressed cell can be recovered by subtraction."""
    rows = (
        TreatmentEpisode.objects.annotate(quarter=TruncQuarter("treatment_start"))
        .values("program__name", "quarter")
        .annotate(n=Count("patient", distinct=True))
        .order_by("program__name", "quarter")
    )
    quarters = sorted({r["quarter"] for r in rows})
    table: dict[str, dict] = defaultdict(dict)
    for r in rows:
        table[r["program__name"]][r["quarter"]] = r["n"]
    body = [(name, [suppressed(cells.get(q, 0)) for q in quarters]) for name, cells in table.items()]
    labels = [f"{q.year}-Q{(q.month - 1) // 3 + 1}" for q in quarters]
    return render(request, "outcomes/overview.html", {"quarters": labels, "rows": body})
