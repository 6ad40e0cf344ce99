"""Repair stored answers that are not valid FHIR (issue 21).

The demo data command wrote answers with ``Coding.model_dump(exclude_none=True)``: the parser's
own field name ``display_element`` (the translations of ``_display``) and empty ``extension: []``
arrays, 2,622 and 7,866 times in the tester's database. Every response is served and exported as
stored, so clients saw them. This removes every key that is a parser field name (``*_element``)
and every empty array, object, string or null, at any depth, from ``QuestionnaireResponse.items``.

Idempotent: a clean response is not written. A repaired row gets a new ``updated_at``, so a Bulk
``$export`` with ``_since`` hands the corrected version to receivers that got the broken one.
The function is copied here, not imported, so later code changes cannot change this migration.
"""

from typing import Any

from django.db import migrations
from django.utils import timezone

_DROP = object()


def cleaned(value: Any) -> Any:
    """``value`` without parser field names and empty values; _DROP when nothing is left."""
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            if isinstance(key, str) and key.endswith("_element"):
                continue
            child = cleaned(child)
            if child is not _DROP:
                out[key] = child
        return out or _DROP
    if isinstance(value, list):
        out_list = [c for c in (cleaned(child) for child in value) if c is not _DROP]
        return out_list or _DROP
    if value is None or value == "":
        return _DROP
    return value


def items_cleaned(items: Any) -> Any:
    result = cleaned(items)
    return [] if result is _DROP else result


def repair(apps: Any, schema_editor: Any) -> None:
    QuestionnaireResponse = apps.get_model("questionnaires", "QuestionnaireResponse")
    now = timezone.now()
    for pk, items in QuestionnaireResponse.objects.order_by("pk").values_list("pk", "items").iterator(
            chunk_size=500):
        repaired = items_cleaned(items)
        if repaired != items:
            # update(): no model save, so no signals; updated_at set by hand (auto_now is save's).
            QuestionnaireResponse.objects.filter(pk=pk).update(items=repaired, updated_at=now)


class Migration(migrations.Migration):

    dependencies = [
        ("questionnaires", "0005_response_review"),
    ]

    operations = [
        migrations.RunPython(repair, migrations.RunPython.noop),
    ]
