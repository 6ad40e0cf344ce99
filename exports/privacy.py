"""Pseudonymisation for secondary use (ADR 0007).

- A patient's pseudonym is HMAC-SHA256(key, patient id): stable across exports with the same key,
  unlinkable across projects with different keys, and not reversible without the key, which
  lives outside the database (setting EXPORT_PSEUDONYM_KEY from the environment).
- Every other exported resource gets an id the same way from "<type>/<our id>", so no database
  key (sequential, guessable) leaves the platform either.
- Dates can be shifted per patient by a whole number of days derived from the same key, so the
  intervals within one patient (days since the index date) survive, but calendar dates do not.
- Free text goes: string/text answers, attachments, notes; CPR, names, phone never enter the
  pseudonymised mappers at all.
"""

import hashlib
import hmac
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# A resource's id in an export: its row's pk (an int, or a UUID) or a local name (qr12-score0).
ResourceId = int | str | uuid.UUID

# Date shifts are drawn from ±MAX_SHIFT_DAYS, never 0 (a zero shift would leak the real dates).
MAX_SHIFT_DAYS = 182

# Answer types that carry what the patient typed or uploaded, not a choice or a number.
_FREE_TEXT_ANSWERS = {"valueString", "valueAttachment", "valueReference", "valueUri"}


class PseudonymKeyMissing(ImproperlyConfigured):
    pass


def pseudonym_key() -> bytes:
    key = settings.EXPORT_PSEUDONYM_KEY
    if not key:
        raise PseudonymKeyMissing(
            "EXPORT_PSEUDONYM_KEY is not set: pseudonymised exports need the project's key "
            "(kept outside the database). See docs/production.md.")
    return key.encode()


class Pseudonymiser:
    """Keyed ids and date shifts for one export run. Per-patient results are cached: an export
    looks the same patient up once per row."""

    def __init__(self, key: bytes, *, shift_dates: bool) -> None:
        self._key = key
        # The keyed HMAC state, copied per message: the same HMAC-SHA256, without re-keying
        # for every row (half the cost on the export's hot path).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.shift_dates = shift_dates
        self._patients: dict[Any, str] = {}  # keyed by the id as the database returns it (UUID)
        self._shifts: dict[str, timedelta] = {}

    def _mac(self, message: str) -> str:
        mac = self._keyed.copy()
        mac.update(message.encode())
        return mac.hexdigest()

    def patient(self, patient_id: uuid.UUID) -> str:
        found = self._patients.get(patient_id)
        if found is None:
            found = self._patients[patient_id] = self._mac(f"Patient/{patient_id}")
        return found

    def resource_id(self, resource_type: str, id_: ResourceId) -> str:
        return self._mac(f"{resource_type}/{id_}")

    def shift(self, patient_id: uuid.UUID) -> timedelta:
        if not self.shift_dates:
            return timedelta(0)
        pid = str(patient_id)
        found = self._shifts.get(pid)
        if found is None:
            digest = hmac.new(self._key, f"date-shift/{pid}".encode(), hashlib.sha256).digest()
            days = int.from_bytes(digest[:4], "big") % (2 * MAX_SHIFT_DAYS + 1) - MAX_SHIFT_DAYS
            found = self._shifts[pid] = timedelta(days=days or MAX_SHIFT_DAYS)
        return found


def pseudonym(patient_id: uuid.UUID, *, key: bytes) -> str:
    """The stable pseudonym of one patient under ``key``."""
    return Pseudonymiser(key, shift_dates=False).patient(patient_id)


def shift_date_str(value: str, shift: timedelta) -> str:
    """Shift a FHIR date or dateTime string; partial dates (year, year-month) are left alone,
    as they carry too little to shift meaningfully."""
    if not shift or len(value) < 10:
        return value
    if len(value) == 10:
        return (date.fromisoformat(value) + shift).isoformat()
    return (datetime.fromisoformat(value) + shift).isoformat()


def items_without_free_text(items: list[dict[str, Any]], shift: timedelta) -> list[dict[str, Any]]:
    """QuestionnaireResponse items for a pseudonymised export: free-text answers and item texts
    dropped (linkId refers to the questionnaire), date answers shifted; an item left with
    neither answers nor sub-items is dropped."""
    out: list[dict[str, Any]] = []
    for item in items:
        kept: dict[str, Any] = {"linkId": item["linkId"]}
        answers = []
        for answer in item.get("answer", []):
            clean = {k: v for k, v in answer.items() if k not in _FREE_TEXT_ANSWERS and k != "item"}
            if isinstance(clean.get("valueCoding"), dict):
                # The code says which option; its display may be what a client typed (an option
                # list we cannot expand, ADR 0004): free text, so it stays behind.
                clean["valueCoding"] = {k: v for k, v in clean["valueCoding"].items() if k != "display"}
            if shift:
                for k in ("valueDate", "valueDateTime"):
                    if k in clean:
                        clean[k] = shift_date_str(clean[k], shift)
            nested = items_without_free_text(answer.get("item", []), shift)
            if nested:
                clean["item"] = nested
            # An answer whose free-text value went keeps its coded follow-up items (R4 allows an
            # answer with items only).
            if nested or any(k.startswith("value") for k in clean):
                answers.append(clean)
        if answers:
            kept["answer"] = answers
        children = items_without_free_text(item.get("item", []), shift)
        if children:
            kept["item"] = children
        if answers or children:
            out.append(kept)
    return out
