"""Reads for the patient's questionnaire pages."""

from accounts.models import User
from patients.access import episodes_in_care
from patients.models import Patient
from questionnaires.models import Questionnaire
from questionnaires.services import responses_draft_of


def questionnaires_offered(patient: Patient, user: User) -> tuple[list[Questionnaire], set[int]]:
    """The newest version of each questionnaire of the patient's programmes — or the version of
    ``user``'s draft (the patient's, or the relative's own), finished on the version started —
    and the ids of the versions ``user`` has a draft of."""
    # Retired versions are no longer offered. Drafts are: a programme only lists a draft while
    # it is being tried out with patients (the SDC test forms are drafts, too).
    # Only programmes whose episode still has a care team looking (patients.access.episodes_in_care):
    # answers given after that would reach nobody.
    in_care = episodes_in_care().filter(patient=patient).values("program_id")
    candidates = (Questionnaire.objects.filter(programs__in=in_care)
                  .exclude(status="retired").distinct())
    newest: dict[str, Questionnaire] = {}
    for q in candidates.order_by("url", "-created_at"):
        newest.setdefault(q.url, q)
    # Oldest first: with drafts of two versions of one questionnaire, the one worked on last wins.
    drafts = list(responses_draft_of(patient=patient, author=user).filter(questionnaire__url__in=list(newest))
                  .select_related("questionnaire").order_by("updated_at", "pk"))
    for draft in drafts:
        newest[draft.questionnaire.url] = draft.questionnaire
    return list(newest.values()), {d.questionnaire_id for d in drafts}
