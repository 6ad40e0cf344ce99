"""One reading as plain values: the one row type every hot path uses instead of a model instance.

Ingest parses each item into one (``index`` and ``patient_ref`` say where it came from), looks up
the stored ones it may repeat as the same type, and answers with it once stored; evaluation claims
readings as it (alerts.evaluation.readings) and the rules read its fields as they would a
``Reading``'s. At 1,000 readings a batch, building model instances cost more than the work itself.
The field names are the model's, so code reading either needs no translation."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

# The columns of monitoring_reading in ReadingRow's field order, for SELECTs that build rows
# positionally (ReadingRow(*row)): cheaper than keywords on a claim of thousands.
READING_ROW_COLUMNS = ("measure", "value", "effective_at", "value2", "unit", "id", "patient_id", "device_id",
                       "received_at", "client_id", "source", "unusual", "original")


@dataclass(slots=True)
class ReadingRow:
    measure: str
    value: Decimal
    effective_at: datetime
    value2: Decimal | None = None
    unit: str = ""
    id: int | None = None  # None until stored
    patient_id: UUID | None = None
    device_id: int | None = None
    received_at: datetime | None = None
    client_id: str | None = None
    source: str | None = None
    unusual: bool = False
    original: dict[str, Any] | None = None
    index: int = 0  # ingest: the item's place in its request
    patient_ref: UUID | None = None  # ingest: the patient the item named, if it named one

    @property
    def pk(self) -> int:
        """The stored reading's id, as on the model (only stored rows have one)."""
        if self.id is None:
            raise ValueError("This reading is not stored yet.")
        return self.id
