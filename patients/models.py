import re
import uuid
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

_CPR = re.compile(r"^\d{6}-?\d{4}$")


def validate_cpr(value: str) -> None:
    # The modulus-11 check was dropped by the CPR office in 2007, so only the shape and a
    # valid birth date (DDMMYY) are checked here.
    if not _CPR.match(value):
        raise ValidationError(_("A CPR number has ten digits, DDMMYY-XXXX."))
    day, month = int(value[0:2]), int(value[2:4])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        raise ValidationError(_("The first six digits of a CPR number are a date, DDMMYY."))


class Region(models.TextChoices):
    HOVEDSTADEN = "1084", "Region Hovedstaden"
    SJAELLAND = "1085", "Region Sjælland"
    SYDDANMARK = "1083", "Region Syddanmark"
    MIDTJYLLAND = "1082", "Region Midtjylland"
    NORDJYLLAND = "1081", "Region Nordjylland"


class CareTeam(models.Model):
    """A department's team. Clinicians see the patients whose episodes their teams own."""

    name = models.CharField(max_length=200, unique=True)
    department = models.CharField(max_length=200)
    region = models.CharField(max_length=4, choices=Region.choices)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="care_teams", blank=True
    )

    def __str__(self) -> str:
        return self.name


class Sex(models.TextChoices):
    # FHIR administrative gender
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Unknown")


class Patient(models.Model):
    # A random id is what appears in URLs and FHIR references; the CPR number never does.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="patient",
    )
    cpr = models.CharField("CPR", max_length=11, unique=True, validators=[validate_cpr])
    given_name = models.CharField(max_length=200)
    family_name = models.CharField(max_length=200)
    birth_date = models.DateField()
    sex = models.CharField(max_length=8, choices=Sex.choices)
    phone = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Last change of the row: Bulk $export's _since compares it (FHIR meta.lastUpdated).
    updated_at = models.DateTimeField(auto_now=True)
    # The patient opted out of their data being used for quality work and research
    # (secondary use). Pseudonymised exports and cohorts leave them out from this moment on.
    secondary_use_withdrawn_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def name(self) -> str:
        return str(self)


def age_on(birth_date: date, day: date) -> int:
    """Whole years of age on ``day`` (the birthday itself counts)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


class RelativeGrant(models.Model):
    """The patient lets a relative answer questionnaires on their behalf. Revoking keeps the row:
    who answered when, under which grant, stays traceable."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="relative_grants")
    relative = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants")
    relationship = models.CharField(max_length=100, help_text=_("e.g. daughter, husband, carer"))
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "relative"], condition=models.Q(revoked_at__isnull=True),
                name="uniq_active_relative_grant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.relative_id} for {self.patient_id} ({self.relationship})"


# The receipt's defaults: plain words a 78-year-old reads on a phone. Each department sets its own.
CONTACT_TEXT_DA = "Du har bedt os om at kontakte dig. En sygeplejerske ringer til dig inden for 1 hverdag."
CONTACT_TEXT_EN = "You asked us to contact you. A nurse will call you within 1 weekday."
URGENT_TEXT_DA = "Nogle af dine svar betyder, at vi skal tale med dig i dag. Ring til afdelingen nu."
URGENT_TEXT_EN = "Some of your answers mean that we need to talk to you today. Call the department now."


class Program(models.Model):
    """A follow-up or home-monitoring programme, e.g. lung-cancer follow-up."""

    slug = models.SlugField(_("short name"), unique=True)
    name = models.CharField(_("name"), max_length=200)
    # ICD-10 / SKS code of the condition the programme follows, e.g. DC34 lung cancer.
    condition_code = models.CharField(_("condition code"), max_length=16)
    condition_display = models.CharField(_("condition"), max_length=200)
    questionnaires = models.ManyToManyField(
        "questionnaires.Questionnaire", related_name="programs", blank=True, verbose_name=_("questionnaires")
    )
    # The care teams that run the programme (issue 24): their team leads set it up in the
    # programme editor, also before any patient is enrolled. Access to patients stays the
    # episodes' (patients.access); this names who may change the programme.
    teams = models.ManyToManyField(CareTeam, related_name="programs", blank=True, verbose_name=_("care teams"))
    # The promise on the receipt: a nurse looks at every response within this many working days
    # (Danish public holidays and weekends excluded; questionnaires.review.review_due_at).
    review_workdays = models.PositiveSmallIntegerField(
        _("answers reviewed within (working days)"),
        default=2, validators=[MinValueValidator(1), MaxValueValidator(20)])
    # What the patient's receipt says when the answers need a person (issue 19), in Danish and
    # English. The out-of-hours number and 112 come from patients.selectors.when_to_call.
    department_phone = models.CharField(
        _("department's phone number"), max_length=32, blank=True,
        help_text=_("Shown to patients who ask to be contacted or give a red answer, e.g. 78 45 00 00."))
    contact_text_da = models.TextField(_("contact request text (Danish)"), default=CONTACT_TEXT_DA)
    contact_text_en = models.TextField(_("contact request text (English)"), default=CONTACT_TEXT_EN)
    urgent_text_da = models.TextField(_("urgent-contact text (Danish)"), default=URGENT_TEXT_DA)
    urgent_text_en = models.TextField(_("urgent-contact text (English)"), default=URGENT_TEXT_EN)
    # The measures (monitoring.measures codes) the programme's devices send (issue 24): the rule
    # editor's measure pickers offer only these. A list of codes, chosen with tick boxes.
    measures = models.JSONField(_("measurements"), default=list, blank=True)
    # When the programme was published in the editor (issue 24); None = being set up, and the
    # editor enrols no patient yet. Programmes that existed before the editor count as published.
    published_at = models.DateTimeField(_("published"), null=True, blank=True)

    class Meta:
        verbose_name = _("programme")
        verbose_name_plural = _("programmes")

    def __str__(self) -> str:
        return self.name

    def contact_text(self, lang: str | None) -> str:
        return self.contact_text_en if (lang or "").startswith("en") else self.contact_text_da

    def urgent_text(self, lang: str | None) -> str:
        return self.urgent_text_en if (lang or "").startswith("en") else self.urgent_text_da


class TreatmentEpisode(models.Model):
    """Ties a patient to a programme and the care team that owns them (FHIR EpisodeOfCare).

    ``treatment_start`` is the index date outcome timepoints are counted from."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="episodes")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="episodes")
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="episodes")
    condition_code = models.CharField(max_length=16)
    treatment_start = models.DateField()
    end = models.DateField(null=True, blank=True)
    # Last change (an episode ended, moved team): Bulk $export's _since compares it.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "program", "treatment_start"], name="uniq_episode_start"
            )
        ]
        indexes = [
            # access.patients_for(clinician): episodes of the clinician's teams
            models.Index(fields=["care_team", "patient"], name="episode_team_patient"),
        ]

    def __str__(self) -> str:
        return f"{self.program} from {self.treatment_start}"
