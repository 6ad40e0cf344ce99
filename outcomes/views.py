from collections import defaultdict
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.db.models.functions import TruncQuarter
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from audit.models import Action
from audit.services import audit_record
from outcomes.forms import CohortForm
from outcomes.models import Cohort
from outcomes.selectors import cohort_count, cohort_timepoint_counts, cohorts_all
from outcomes.services import cohort_delete, cohort_save
from outcomes.suppression import display, suppress_table
from patients.models import TreatmentEpisode

QUALITY_ROLES = (Role.QUALITY, Role.ADMIN)


def suppressed(count: int) -> str:
    """Small-cell suppression for aggregate tables: counts of 1-4 are shown as "<5"."""
    return display(count)


@role_required(*QUALITY_ROLES)
def overview(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Patients starting treatment per programme and quarter. Aggregates only, no identifiers,
    and no totals, so that no suppressed cell can be recovered by subtraction."""
    rows = (
        # Quality figures are secondary use: patients who opted out are not counted.
        TreatmentEpisode.objects.filter(patient__secondary_use_withdrawn_at=None)
        .annotate(quarter=TruncQuarter("treatment_start"))
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
    audit_record(user=request.user, action=Action.READ, resource="Outcomes overview (aggregate)", request=request)
    return render(request, "outcomes/overview.html",
                  {"quarters": labels, "rows": body, "cohort_total": Cohort.objects.count()})


# --- cohorts ------------------------------------------------------------------------------------

@role_required(*QUALITY_ROLES)
def cohort_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    cohorts = [(c, display(cohort_count(cohort=c))) for c in cohorts_all()]
    # Member counts are aggregated data: their view is a read, with no patient in it.
    audit_record(user=request.user, action=Action.READ, resource="Cohort list (member counts)", request=request)
    return render(request, "outcomes/cohort_list.html", {"cohorts": cohorts})


def _cohort_form(request: AuthenticatedHttpRequest, cohort: Cohort) -> HttpResponse:
    form = CohortForm(request.POST or None, instance=cohort)
    if request.method == "POST" and form.is_valid():
        try:
            saved = cohort_save(cohort=form.save(commit=False), user=request.user, request=request)
        except ValidationError as err:  # a rule only the model knows, e.g. a race on the name
            form.add_error(None, err)
        else:
            messages.success(request, _("The cohort “%(name)s” is saved.") % {"name": saved.name})
            return redirect("cohort-detail", cohort_id=saved.pk)
    status = 400 if form.errors else 200
    return render(request, "outcomes/cohort_form.html", {"form": form, "cohort": cohort}, status=status)


@role_required(*QUALITY_ROLES)
def cohort_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _cohort_form(request, Cohort())


@role_required(*QUALITY_ROLES)
def cohort_edit(request: AuthenticatedHttpRequest, cohort_id: int) -> HttpResponse:
    return _cohort_form(request, get_object_or_404(Cohort, pk=cohort_id))


@role_required(*QUALITY_ROLES)
def cohort_delete_view(request: AuthenticatedHttpRequest, cohort_id: int) -> HttpResponse:
    cohort = get_object_or_404(Cohort, pk=cohort_id)
    if request.method == "POST":
        name = cohort.name
        cohort_delete(cohort=cohort, user=request.user, request=request)
        messages.success(request, _("The cohort “%(name)s” is deleted.") % {"name": name})
        return redirect("cohort-list")
    return render(request, "outcomes/cohort_confirm_delete.html", {"cohort": cohort})


@dataclass(frozen=True)
class TimepointRow:
    label: str
    window: str
    cells: list[str]  # responded, did not respond, not yet due
    members: str
    rate: str


@role_required(*QUALITY_ROLES)
def cohort_detail(request: AuthenticatedHttpRequest, cohort_id: int) -> HttpResponse:
    cohort = get_object_or_404(Cohort.objects.select_related("program"), pk=cohort_id)
    members = cohort_count(cohort=cohort)
    counts = cohort_timepoint_counts(cohort=cohort, today=timezone.localdate())
    # Each row splits the members three ways, with the cohort size as its total: the same total
    # on every row, so it is never hidden as a complement (hiding it on one row would hide
    # nothing), only when it is itself 1-4.
    raw = [[c.responded, c.expected - c.responded, members - c.expected] for c in counts]
    table = suppress_table(raw, row_totals=True, protect_totals=True)
    rows = []
    for i, c in enumerate(counts):
        shown = table.cells[i]
        cells = [str(v) if v is not None else table.marker(("cell", i, j)) for j, v in enumerate(shown)]
        total = table.row_totals[i] if table.row_totals else None
        responded, not_responded = shown[0], shown[1]
        # A rate is shown only when both the numbers it comes from are shown; a rate from a
        # hidden count would give the count back.
        if responded is None or not_responded is None or c.expected == 0:
            rate = "–" if c.expected else ""
        else:
            rate = f"{round(100 * responded / c.expected)} %"
        rows.append(TimepointRow(
            label=str(c.timepoint.label),
            window=_("day %(start)s to %(end)s") % {"start": c.timepoint.start_day, "end": c.timepoint.end_day},
            cells=cells, members=str(total) if total is not None else table.marker(("row", i, -1)), rate=rate))
    audit_record(user=request.user, action=Action.READ, resource=f"Cohort/{cohort.pk} outcome counts (aggregate)",
                 request=request)
    return render(request, "outcomes/cohort_detail.html",
                  {"cohort": cohort, "members": display(members), "rows": rows})
