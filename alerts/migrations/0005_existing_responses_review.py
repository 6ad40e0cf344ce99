"""Responses submitted before the review queue existed get a due time and a colour.

What a nurse would want: every one of them is owed the look the receipt promised, and none of
them has a ResponseReview — nobody ever recorded looking on purpose (the old "seen" was inferred
from page views, the fault this queue fixes). So they are not marked as reviewed, and not given a
fresh due time either: each gets the honest due time its promise gave it (the programme's working
days from when it was answered), so the list shows which ones have waited longest. Already
overdue ones are marked overdue and counted on the worklist; the escalation ladder only climbs
for reviews overdue by less than a week (alerts.review_escalation.REVIEW_ESCALATE_WITHIN), so
deploying this does not page the on-call about last month's answers. Green ones can be cleared
from the list in bulk.

The colour is the worst answer colour of the version answered, lifted to the colour of an
unresolved alert finding on the response. Both calculations are the submission path's own
(questionnaires.review): the stored definition format is the contract they read, and a copy of
the answer-option matching here would be a second, subtly different rule.
"""

from django.db import migrations

from questionnaires.definition import parse
from questionnaires.review import response_colour, review_due_at

RANK = {"green": 0, "yellow": 1, "red": 2}


def forwards(apps, schema_editor):  # noqa: ANN001, ANN201
    Response = apps.get_model("questionnaires", "QuestionnaireResponse")
    Episode = apps.get_model("patients", "TreatmentEpisode")
    Finding = apps.get_model("alerts", "AlertFinding")
    definitions: dict[int, object] = {}
    promise: dict[tuple, int] = {}
    # One query for the colours unresolved alerts gave responses, not one per response.
    alert_colours: dict[str, str] = {}
    for key, severity in (Finding.objects.filter(source_key__startswith="response:")
                          .exclude(alert__status="resolved").values_list("source_key", "severity")):
        if RANK.get(severity, 0) > RANK.get(alert_colours.get(key, "green"), 0):
            alert_colours[key] = severity
    pending = Response.objects.filter(status="completed", review_due_at=None).select_related("questionnaire")
    batch = []
    for response in pending.iterator(chunk_size=500):
        key = (response.patient_id, response.questionnaire.url)
        if key not in promise:
            found = [e.program.review_workdays for e in Episode.objects.filter(
                patient_id=response.patient_id, program__questionnaires__url=response.questionnaire.url)
                .select_related("program")]
            promise[key] = min(found) if found else 2
        response.review_due_at = review_due_at(response.authored_at, promise[key])
        if response.questionnaire_id not in definitions:
            definitions[response.questionnaire_id] = parse(response.questionnaire.resource)
        colour = response_colour(definitions[response.questionnaire_id], response.items)
        alert_colour = alert_colours.get(f"response:{response.pk}", "green")
        if RANK.get(alert_colour, 0) > RANK[colour]:
            colour = alert_colour
        response.review_colour = colour
        batch.append(response)
        if len(batch) >= 500:
            Response.objects.bulk_update(batch, ["review_due_at", "review_colour"])
            batch = []
    if batch:
        Response.objects.bulk_update(batch, ["review_due_at", "review_colour"])


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0004_review_escalation"),
        ("questionnaires", "0005_response_review"),
        ("patients", "0005_program_review_workdays"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
