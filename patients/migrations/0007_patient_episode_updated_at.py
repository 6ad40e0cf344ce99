"""Patient and TreatmentEpisode get an ``updated_at`` (auto_now), so Bulk ``$export``'s ``_since``
finds later edits (issue 21) instead of comparing the creation time (patients) or nothing at all
(episodes, always exported in full).

Backfill: a patient's from ``created_at`` (the only time known about the row). An episode has no
recorded time at all, so it keeps the time of this migration (the column default): the first
``_since`` export afterwards includes every episode once, which is safe — a receiver misses
nothing — and after that only changed ones."""

from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor):
    apps.get_model("patients", "Patient").objects.update(updated_at=F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("patients", "0006_program_receipt_texts"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.AddField(
            model_name="treatmentepisode",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
