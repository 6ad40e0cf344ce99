"""QuestionnaireResponse.received_at: when the platform received an answer, apart from
authored_at, the answer's own time (issue 19). Until now authored_at held the receipt time for
FHIR uploads, so for existing rows the two are the same: received_at = authored_at.

The unevaluated-answers index moves to received_at, which is what the sweep now waits on."""

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F


def received_is_authored(apps, schema_editor):
    Response = apps.get_model("questionnaires", "QuestionnaireResponse")
    Response.objects.update(received_at=F("authored_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("questionnaires", "0003_response_draft_per_author"),
    ]

    operations = [
        migrations.AddField(
            model_name="questionnaireresponse",
            name="received_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(received_is_authored, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name="questionnaireresponse",
            name="response_unevaluated",
        ),
        migrations.AddIndex(
            model_name="questionnaireresponse",
            index=models.Index(condition=models.Q(("evaluated_at__isnull", True)), fields=["received_at"],
                               name="response_unevaluated"),
        ),
    ]
