"""Device gets an ``updated_at`` (auto_now), so Bulk ``$export``'s ``_since`` exports only devices
changed since (issue 21) instead of every device every time. No creation time was recorded, so
existing devices keep the time of this migration (the column default): the first ``_since``
export afterwards includes them once, which misses nothing."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0009_device_returned_on"),
    ]

    operations = [
        migrations.AddField(
            model_name="device",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
    ]
