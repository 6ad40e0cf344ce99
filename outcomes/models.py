"""Saved cohorts: named, re-usable sets of criteria over treatment episodes.

A cohort stores its *criteria*, never its members: who belongs is evaluated whenever it is asked
(``outcomes.selectors.cohort_patient_ids``), so a cohort exported next month includes the patients
who started treatment since, and leaves out those who withdrew from secondary use since.

The criteria are typed columns rather than a JSON document: each one is validated once by the
field (and the database check constraints below), filters are plain SQL, and a cohort can never
hold a criterion the code does not understand.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from patients.models import Region, Sex

_SKS_DIAGNOSIS = re.compile(r"^D[A-Z][0-9]{2}[0-9A-Z]{0,4}$")


def validate_sks_diagnosis(value: str) -> None:
    # SKS diagnosis codes are ICD-10 with a leading "D" (DC34 = ICD-10 C34, lung cancer). A code
    # matches episodes whose code starts with it, so DC34 includes DC341 and DC349.
    if not _SKS_DIAGNOSIS.match(value):
        raise ValidationError(
            _("Enter an SKS diagnosis code: D, a letter and two digits, e.g. DC34 or DC341."),
            code="invalid_sks",
        )


class ConsentCriterion(models.TextChoices):
    # Everything a cohort is used for — the cohort page, FHIR Group, $export, the push to a
    # quality database — is secondary use. A patient who withdrew from secondary use must
    # therefore never be a member, and there is deliberately no choice that would include them:
    # the only value is "has not withdrawn", enforced by a check constraint as well as the form.
    NOT_WITHDRAWN = "not-withdrawn", _("Has not withdrawn from secondary use")


class Cohort(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)

    # --- criteria: an empty criterion does not restrict -------------------------------------
    # PROTECT: deleting a programme must not silently widen every cohort that named it.
    program = models.ForeignKey(
        "patients.Program", on_delete=models.PROTECT, null=True, blank=True,
        related_name="cohorts", verbose_name=_("programme"),
    )
    condition_code = models.CharField(
        _("condition (SKS diagnosis code)"), max_length=16, blank=True,
        validators=[validate_sks_diagnosis],
        help_text=_("Matches the episode's diagnosis and every more specific code, e.g. DC34 includes DC341."),
    )
    treatment_start_from = models.DateField(_("treatment start from"), null=True, blank=True)
    treatment_start_to = models.DateField(_("treatment start to"), null=True, blank=True)
    department = models.CharField(_("department"), max_length=200, blank=True)
    region = models.CharField(_("region"), max_length=4, choices=Region.choices, blank=True)
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices, blank=True)
    # Age at the index date (treatment start) in whole years, both ends inclusive; 80+ = 80..None.
    age_min = models.PositiveSmallIntegerField(_("age at treatment start, from"), null=True, blank=True)
    age_max = models.PositiveSmallIntegerField(_("age at treatment start, to"), null=True, blank=True)
    consent = models.CharField(
        _("consent"), max_length=16, choices=ConsentCriterion.choices,
        default=ConsentCriterion.NOT_WITHDRAWN,
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(treatment_start_from__isnull=True)
                | models.Q(treatment_start_to__isnull=True)
                | models.Q(treatment_start_from__lte=models.F("treatment_start_to")),
                name="cohort_start_range_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(age_min__isnull=True)
                | models.Q(age_max__isnull=True)
                | models.Q(age_min__lte=models.F("age_max")),
                name="cohort_age_band_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(consent=ConsentCriterion.NOT_WITHDRAWN),
                name="cohort_never_includes_withdrawn",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def criteria(self) -> list[tuple[str, str]]:
        """The criteria in words, for pages: (label, value), only those that restrict — and the
        consent rule, which always does."""
        out: list[tuple[str, str]] = []
        if self.program_id:
            out.append((str(_("Programme")), str(self.program)))
        if self.condition_code:
            out.append((str(_("Condition")), self.condition_code))
        if self.treatment_start_from or self.treatment_start_to:
            start = self.treatment_start_from.isoformat() if self.treatment_start_from else "…"
            end = self.treatment_start_to.isoformat() if self.treatment_start_to else "…"
            out.append((str(_("Treatment start")), f"{start} – {end}"))
        if self.department:
            out.append((str(_("Department")), self.department))
        if self.region:
            out.append((str(_("Region")), self.get_region_display()))
        if self.sex:
            out.append((str(_("Sex")), str(self.get_sex_display())))
        if self.age_min is not None or self.age_max is not None:
            low = self.age_min if self.age_min is not None else 0
            band = f"{low}+" if self.age_max is None else f"{low}–{self.age_max}"
            out.append((str(_("Age at treatment start")), band))
        out.append((str(_("Consent")), str(self.get_consent_display())))
        return out

    def clean(self) -> None:
        errors: dict[str, list[ValidationError]] = {}
        if self.condition_code:
            self.condition_code = self.condition_code.strip().upper()
        if (self.treatment_start_from and self.treatment_start_to
                and self.treatment_start_from > self.treatment_start_to):
            errors.setdefault("treatment_start_to", []).append(ValidationError(
                _("The end of the period is before its start."), code="start_after_end"))
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            errors.setdefault("age_max", []).append(ValidationError(
                _("The upper age is below the lower age."), code="age_band_inverted"))
        for field in ("age_min", "age_max"):
            value = getattr(self, field)
            if value is not None and value > 130:
                errors.setdefault(field, []).append(ValidationError(
                    _("Enter an age between 0 and 130."), code="age_out_of_range"))
        if self.consent != ConsentCriterion.NOT_WITHDRAWN:
            errors.setdefault("consent", []).append(ValidationError(
                _("Patients who withdrew from secondary use can never be part of a cohort."),
                code="withdrawn_not_allowed"))
        if errors:
            raise ValidationError(errors)


class IndicatorCell(models.Model):
    """A precomputed aggregate of one outcome indicator (issue 23): its units summed per
    programme, team, month of treatment start, sex and age band (outcomes.indicators.Cell).
    Rebuilt whole, per indicator, by outcomes.services.indicator_cells_refresh; the pages read
    these instead of the live rows when the filters fit the grain (whole months).

    Not micro-data: no patient id, and every figure shown from it is suppressed on the way out
    (outcomes.dashboard). ``values`` holds a distribution's values (medians do not add up)."""

    indicator = models.CharField(max_length=64)
    program = models.ForeignKey("patients.Program", on_delete=models.CASCADE, related_name="+")
    care_team = models.ForeignKey("patients.CareTeam", on_delete=models.CASCADE, related_name="+")
    month = models.CharField(max_length=7)  # "2026-03"
    sex = models.CharField(max_length=8)
    age_band = models.CharField(max_length=8)
    n_patients = models.PositiveIntegerField()
    n_units = models.PositiveIntegerField()
    numerator = models.FloatField()
    denominator = models.FloatField()
    values = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # an indicator page: one indicator's cells, cut by programme and month range
            models.Index(fields=["indicator", "program", "month"], name="indicator_cell_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.indicator} {self.care_team_id} {self.month}"


class IndicatorRefresh(models.Model):
    """When an indicator's cells were last rebuilt, and how long it took; also the row a
    refresh locks, so two refreshes of one indicator never interleave their delete and insert."""

    indicator = models.CharField(max_length=64, unique=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateField(null=True, blank=True)  # the "today" the figures were computed for
    duration_ms = models.PositiveIntegerField(default=0)
    cells = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.indicator} refreshed {self.refreshed_at}"


class ReadingDay(models.Model):
    """A Danish calendar day on which a patient has at least one reading not marked erroneous:
    what the reading-adherence indicator counts. Kept by the indicator refresh, which adds the
    days of the readings stored since its last run and takes back the days whose only readings
    were marked erroneous since (outcomes.reading_days.reading_days_update); nothing is added
    to a reading's ingest. Not micro-data that leaves the platform: it is read only to count
    days per episode, and a patient's rows go with the patient."""

    pk = models.CompositePrimaryKey("patient_id", "day")
    # No constraint in the database: the rows come only from readings, whose patient exists, and
    # checking 8 M of them one by one at the first build's commit took minutes. A patient's
    # deletion still takes the rows with it (Django's CASCADE, which does not need the constraint).
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False)
    day = models.DateField()

    def __str__(self) -> str:
        return f"{self.patient_id} {self.day}"


class ReadingDayMark(models.Model):
    """How far ReadingDay is up to date (one row): every reading with an id up to ``scanned_to``
    is in it, and every erroneous mark made before ``erroneous_checked_at``."""

    scanned_to = models.BigIntegerField(default=0)
    erroneous_checked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"reading days up to reading {self.scanned_to}"
