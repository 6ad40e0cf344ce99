from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from questionnaires import definition as qdef


class Questionnaire(models.Model):
    """One version of a questionnaire. ``resource`` is the FHIR R4 Questionnaire JSON as
    imported; responses point at the exact version they answered."""

    url = models.URLField(max_length=300)  # canonical URL, the same across versions
    version = models.CharField(max_length=32)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=8, default="active")
    resource = models.JSONField()
    # Declarative scoring rules of this version (parsed by questionnaires.scoring); None = unscored.
    scoring = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = gettext_lazy("questionnaire")
        verbose_name_plural = gettext_lazy("questionnaires")
        constraints = [
            models.UniqueConstraint(fields=["url", "version"], name="uniq_questionnaire_version")
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.version})"

    @property
    def definition(self) -> qdef.Definition:
        return qdef.parse(self.resource)


@dataclass(frozen=True)
class GivenAnswer:
    question: str
    code: str
    display: str


class ReviewColour(models.TextChoices):
    """AmbuFlex's sorting of a whole response: green (nothing coloured), yellow, red. Every
    completed response has one, so none goes unseen (questionnaires.review)."""

    GREEN = "green", gettext_lazy("Green")
    YELLOW = "yellow", gettext_lazy("Yellow")
    RED = "red", gettext_lazy("Red")


class ResponseStatus(models.TextChoices):
    # FHIR QuestionnaireResponse.status codes
    IN_PROGRESS = "in-progress", "In progress"
    COMPLETED = "completed", "Completed"


class QuestionnaireResponse(models.Model):
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="responses"
    )
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT)
    # A draft is "in-progress" and is never evaluated by the rules; submitting completes it.
    status = models.CharField(max_length=16, choices=ResponseStatus.choices, default=ResponseStatus.COMPLETED)
    # FHIR QuestionnaireResponse.item, nested as the questionnaire's groups are.
    items = models.JSONField()
    # The client's identifier (FHIR QuestionnaireResponse.identifier): a resubmission with the
    # same one is stored once.
    identifier = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - NULL = none given
    # Computed on submission by questionnaires.scoring: [{code, system, display, value, band}, ...]
    scores = models.JSONField(default=list, blank=True)
    # Where the patient was in the form when the draft was last saved (page index).
    current_page = models.PositiveSmallIntegerField(default=0)
    # The answer's own time: FHIR ``authored`` as the client sent it, or when the web form was
    # sent. Rules, schedules and outcomes judge the answer at this time (a late upload is paired
    # with the readings of when it was given, not of when it arrived).
    authored_at = models.DateTimeField(default=timezone.now)
    # When the platform received it (FHIR meta.lastUpdated); back-testing sees an answer only
    # from here on, and the sweep of unevaluated answers waits from here.
    received_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # The review queue ("Svar til gennemsyn", questionnaires.review): set on submission from the
    # programme's promise and the answers' colours; empty while a draft. Closed only by a
    # ResponseReview row.
    review_due_at = models.DateTimeField(null=True, blank=True)
    review_colour = models.CharField(max_length=8, choices=ReviewColour.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "identifier"],
                condition=models.Q(identifier__isnull=False),
                name="uniq_response_identifier",
            ),
            # One draft per patient, questionnaire version and author: coming back resumes it.
            # A relative's draft and the patient's are apart (ADR 0006): neither sees what the
            # other started.
            models.UniqueConstraint(
                fields=["patient", "questionnaire", "author"],
                condition=models.Q(status="in-progress"),
                name="uniq_response_draft",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "authored_at"], name="response_history"),
            # responses_sweep_unevaluated: completed answers received a while ago and not evaluated
            models.Index(
                fields=["received_at"],
                condition=models.Q(evaluated_at__isnull=True),
                name="response_unevaluated",
            ),
            # The review queue and the overdue sweep: completed responses by due time.
            models.Index(
                fields=["review_due_at"],
                condition=models.Q(review_due_at__isnull=False),
                name="response_review_due",
            ),
        ]

    def __str__(self) -> str:
        return f"response {self.pk} to {self.questionnaire_id} at {self.authored_at:%Y-%m-%d %H:%M}"

    def answers_for(self, link_id: str) -> list[GivenAnswer]:
        found = []
        for item in qdef.response_items_walk(self.items):
            if item.get("linkId") != link_id:
                continue
            for answer in item.get("answer", []):
                coding = answer.get("valueCoding")
                if coding:
                    code, display = coding["code"], coding.get("display") or coding["code"]
                else:
                    raw = next((v for k, v in answer.items() if k.startswith("value")), "")
                    if isinstance(raw, bool):
                        # The code rules match on is "true"/"false"; people read Yes/No.
                        code, display = str(raw).lower(), gettext("Yes") if raw else gettext("No")
                    else:
                        code = display = str(raw)
                found.append(GivenAnswer(item.get("text", link_id), code, display))
        return found


class ResponseReview(models.Model):
    """A clinician looked at a response on purpose ("Markér som gennemset"). The one source of
    "Seen by your care team" on the patient's pages: never inferred from page views. One per
    response — the one-to-one column is the claim, so two nurses clicking at once store one row
    and the second is told who was first."""

    response = models.OneToOneField(QuestionnaireResponse, on_delete=models.CASCADE, related_name="review")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    # Ticked with other green responses on the list rather than opened one by one.
    bulk = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"review of response {self.response_id} by {self.reviewed_by_id}"
