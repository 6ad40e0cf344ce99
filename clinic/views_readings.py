"""The reading pages, patient's and clinician's: the reading form, the trend pages (chart, table,
CSV) and marking a reading as wrong. In clinic because they compose monitoring (readings) with
alerts (the patient's limits, whether a value is beyond them, alerts citing a reading); their
templates stay under templates/monitoring/."""

import csv
import uuid
from datetime import timedelta
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from alerts.selectors import alerts_citing_reading
from alerts.selectors_readings import reading_beyond_limits, reading_measures_for, thresholds_for
from audit.models import Action, Outcome
from audit.services import audit_record
from monitoring.charts import reading_chart_svg
from monitoring.forms import MEASURE_HELP, ErroneousForm, MeasureReadingForm, ReadingForm
from monitoring.measures import MEASURES, Measure, component_labels
from monitoring.models import Reading
from monitoring.selectors import PERIODS, period_days, readings_in_period
from monitoring.services import AlreadyErroneous, IngestResult, reading_ingest_from_form, reading_mark_erroneous
from patients.access import own_patient_or_404, patient_or_404
from patients.models import Patient
from patients.selectors import when_to_call
from proplatform.forms import form_errors_from


@role_required(Role.PATIENT)
def reading_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ReadingForm(request.POST or None, initial={"submission": uuid.uuid4()})
    if request.method == "POST" and form.is_valid():
        patient = own_patient_or_404(request, action=Action.CREATE, resource="Reading (web form)")
        measure = MEASURES[form.cleaned_data["measure"]]
        try:
            result = reading_ingest_from_form(
                submission=form.cleaned_data["submission"], patient=patient, measure=measure.code,
                value=form.cleaned_data["value"], unit=measure.unit, effective_at=form.cleaned_data["measured_at"],
                entered_by=request.user)
        except ValidationError as exc:
            form_errors_from(form, exc, rename={"effective_at": "measured_at", "unit": "measure"})
        else:
            _sent_message(request, result, patient)
            return redirect("my-home")
    return render(request, "monitoring/reading_new.html", {"form": form, "measures": MEASURES.values()})


def _sent_message(request: AuthenticatedHttpRequest, result: IngestResult, patient: Patient) -> None:
    if result.created:
        messages.success(request, _("Thank you. Your measurement has been sent."))
    else:  # the same page sent again: stored once
        messages.success(request, _("Thank you. Your measurement had already been sent; it is saved once."))
    # A worrying value gets more than a thank-you: what happens now, and what to do meanwhile.
    reading = result.reading
    if reading_beyond_limits(patient=patient, reading=reading):
        messages.warning(request, _("This measurement is outside the limits your care team has set for you, "
                                    "so they are told about it.") + " " + when_to_call(patient))
    elif reading.unusual:
        messages.warning(request, _("This measurement is unusual. If you feel unwell, contact your care team.")
                         + " " + when_to_call(patient))


# Where the ingest reports an error (its field names) -> the field of the web form.
_FORM_FIELD = {"systolic": "value", "diastolic": "value2", "effective_at": "measured_at"}


@role_required(Role.PATIENT)
def reading_new_measure(request: AuthenticatedHttpRequest, measure: str) -> HttpResponse:
    """One measure's page: a large field (two for blood pressure) with the unit beside it."""
    m = _measure_or_404(measure)
    form = MeasureReadingForm(request.POST or None, measure=m, initial={"submission": uuid.uuid4()})
    if request.method == "POST" and form.is_valid():
        patient = own_patient_or_404(request, action=Action.CREATE, resource=f"Reading (web form, {m.code})")
        try:
            result = reading_ingest_from_form(
                submission=form.cleaned_data["submission"], patient=patient, measure=m.code,
                value=form.cleaned_data["value"], value2=form.cleaned_data.get("value2"), unit=m.unit,
                effective_at=form.cleaned_data["measured_at"], entered_by=request.user)
        except ValidationError as exc:
            form_errors_from(form, exc, rename=_FORM_FIELD)
        else:
            _sent_message(request, result, patient)
            return redirect("my-readings-measure", m.code)
    return render(request, "monitoring/reading_new_measure.html", {
        "form": form, "measure": m, "help": MEASURE_HELP.get(m.code, ""),
        "value_fields": [form[name] for name in ("value", "value2") if name in form.fields],
    })


# --- trend pages: chart, table and CSV of one measure ------------------------------------------

def _clinician_patient(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, *, resource: str,
                       action: Action = Action.READ) -> Patient:
    """The patient, for a clinician on one of their teams (or an admin). Other roles are refused
    by role before any lookup, which is still audited as an attempt on this patient's record."""
    if request.user.role not in {Role.CLINICIAN, Role.ADMIN}:
        audit_record(user=request.user, action=action, resource=resource, outcome=Outcome.DENIED,
                     patient_id=patient_id, request=request)
        raise PermissionDenied
    return patient_or_404(request, patient_id, action=action, resource=resource)


def _measure_or_404(code: str) -> Measure:
    measure = MEASURES.get(code)
    if measure is None:
        raise Http404("No such measure.")
    return measure


def _value_text(reading: Reading, measure: Measure) -> str:
    value = number_format(reading.value.normalize())
    if reading.value2 is not None:
        value += "/" + number_format(reading.value2.normalize())
    return f"{value}\u00a0{measure.unit_label}"  # no break between number and unit


def _trend_page(request: AuthenticatedHttpRequest, *, patient: Patient, measure: Measure, mine: bool) -> HttpResponse:
    days = period_days(request.GET.get("days"))
    end = timezone.now()
    start = end - timedelta(days=days)
    readings = list(readings_in_period(patient=patient, measure=measure.code, days=days, now=end))
    thresholds = thresholds_for(patient=patient, measure=measure.code)

    def url(code: str, suffix: str = "") -> str:
        if mine:
            return reverse("my-readings-measure" + suffix, args=[code])
        return reverse("patient-readings" + suffix, args=[patient.pk, code])

    label = (_("%(measure)s over the last %(days)s days") if readings
             else _("%(measure)s: no measurements in the last %(days)s days")) % {
        "measure": measure.label, "days": days}
    can_mark = not mine and request.user.role == Role.CLINICIAN
    return render(request, "monitoring/readings.html", {
        "patient": patient, "mine": mine, "measure": measure, "days": days,
        "measures": [(MEASURES[c], url(c) + f"?days={days}", c == measure.code)
                     for c in reading_measures_for(patient)],
        "periods": [(d, f"{url(measure.code)}?days={d}", d == days) for d in PERIODS],
        "chart": reading_chart_svg(measure=measure, readings=readings, thresholds=thresholds,
                                   start=start, end=end, label=label) if readings else "",
        "chart_label": label,
        "has_unusual": any(r.unusual and r.erroneous_at is None for r in readings),
        "has_erroneous": any(r.erroneous_at for r in readings),
        "thresholds": thresholds,
        "has_early_warning": any(t.severity == "yellow" for t in thresholds),
        "parts": component_labels(measure),
        "rows": [{"reading": r, "value": _value_text(r, measure),
                  "mark_url": reverse("reading-erroneous", args=[patient.pk, r.pk])
                  if can_mark and r.erroneous_at is None else ""} for r in readings],
        "csv_url": f"{url(measure.code, '-csv')}?days={days}",
        "can_mark": can_mark,
    })


@login_required
def patient_readings(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, measure: str) -> HttpResponse:
    patient = _clinician_patient(request, patient_id, resource=f"Reading (trend {measure}, page)")
    return _trend_page(request, patient=patient, measure=_measure_or_404(measure), mine=False)


@role_required(Role.PATIENT)
def my_readings(request: AuthenticatedHttpRequest, measure: str | None = None) -> HttpResponse:
    patient = own_patient_or_404(request, resource=f"Reading (my readings{', ' + measure if measure else ''})")
    if measure is None:
        # The first measure the patient has (or has limits for); none yet: an empty page.
        codes = reading_measures_for(patient)
        if not codes:
            return render(request, "monitoring/readings.html", {"patient": patient, "mine": True,
                                                                "measure": None})
        measure = codes[0]
    return _trend_page(request, patient=patient, measure=_measure_or_404(measure), mine=True)


# The CSV is for opening in a spreadsheet by the people who see the page, and in Denmark that is
# Excel with Danish settings. So: UTF-8 *with* a byte-order mark (without it Excel reads UTF-8 as
# Windows-1252 and "°C" or "Åse" become mojibake), ";" between fields and a decimal comma (what
# Danish Excel expects; with "," and "." it puts each row in one cell or reads 36.5 as a date).
# The format is fixed, not chosen by the page's language, so a file means the same whoever saved
# it; times are ISO 8601 with their UTC offset, unambiguous across daylight saving.
CSV_DELIMITER = ";"


def _csv_number(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f").replace(".", ",")


def _csv_text(text: str) -> str:
    # A reason typed as "=HYPERLINK(...)" must stay text in Excel (CSV formula injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_response(*, patient: Patient, measure: Measure, days: int) -> HttpResponse:
    readings = readings_in_period(patient=patient, measure=measure.code, days=days)
    parts = component_labels(measure)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    # No name or CPR number in the file name: downloads end up in shared folders and mail.
    filename = f"readings-{measure.code}-{timezone.localdate():%Y-%m-%d}-{days}d.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    values = ["systolic", "diastolic"] if parts else ["value"]
    # The last two columns repeat the time as Danish Excel reads a date and a time (it keeps an
    # ISO time with its offset as text): sortable, and ready for a chart.
    writer.writerow(["effective_time", "measure", "loinc", *values, "unit", "source", "unusual",
                     "erroneous", "erroneous_reason", "erroneous_marked_at", "date", "time"])
    for r in readings:
        local = timezone.localtime(r.effective_at)
        writer.writerow([
            local.isoformat(timespec="seconds"), measure.code, measure.loinc,
            _csv_number(r.value), *([_csv_number(r.value2)] if parts else []), r.unit, r.source,
            "yes" if r.unusual else "no", "yes" if r.erroneous_at else "no",
            _csv_text(r.erroneous_reason),
            timezone.localtime(r.erroneous_at).isoformat(timespec="seconds") if r.erroneous_at else "",
            local.strftime("%d-%m-%Y"), local.strftime("%H:%M"),
        ])
    return response


@login_required
def patient_readings_csv(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, measure: str) -> HttpResponse:
    patient = _clinician_patient(request, patient_id, action=Action.EXPORT,
                                 resource=f"Reading (trend {measure}, CSV)")
    return _csv_response(patient=patient, measure=_measure_or_404(measure),
                         days=period_days(request.GET.get("days")))


@role_required(Role.PATIENT)
def my_readings_csv(request: AuthenticatedHttpRequest, measure: str) -> HttpResponse:
    patient = own_patient_or_404(request, action=Action.EXPORT, resource=f"Reading (my readings {measure}, CSV)")
    return _csv_response(patient=patient, measure=_measure_or_404(measure),
                         days=period_days(request.GET.get("days")))


# --- marking a reading as erroneous ---------------------------------------------------------------

@role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def reading_erroneous(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, reading_id: int) -> HttpResponse:
    """A small confirmation page: the reading, and the reason the clinician must give."""
    patient = patient_or_404(request, patient_id, resource=f"Reading/{reading_id} (mark erroneous)")
    reading = Reading.objects.filter(pk=reading_id, patient=patient).select_related("erroneous_by").first()
    if reading is None:
        raise Http404("No such reading for this patient.")
    measure = MEASURES[reading.measure]
    back = reverse("patient-readings", args=[patient.pk, reading.measure])
    form = ErroneousForm(request.POST or None)
    already = reading.erroneous_at is not None
    if request.method == "POST" and not already and form.is_valid():
        try:
            reading_mark_erroneous(reading=reading, by=request.user, reason=form.cleaned_data["reason"],
                                   request=request)
        except AlreadyErroneous:
            already = True  # someone else was quicker; show their mark
            reading.refresh_from_db()
        else:
            messages.success(request, _("The measurement is marked as wrong."))
            # Marked wrong, it no longer counts for rules; an alert it raised stays until a
            # clinician resolves it, so say so, with the way there.
            for alert in alerts_citing_reading(patient, reading.pk):
                messages.warning(request, format_html(
                    _("This measurement is behind an open alert: “{reason}”. "
                      "<a href=\"{url}\">See the alert on the patient's page</a> and resolve it if it no longer "
                      "applies."), reason=alert.reason, url=reverse("patient-detail", args=[patient.pk])))
            return redirect(back)
    status = 409 if already and request.method == "POST" else 200
    return render(request, "monitoring/reading_erroneous.html", {
        "patient": patient, "reading": reading, "measure": measure, "value": _value_text(reading, measure),
        "form": form, "already": already, "back": back,
    }, status=status)
