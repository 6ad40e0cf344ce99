import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from monitoring.ingest import range_error
from monitoring.measures import MEASURES, Measure
from monitoring.models import DeviceKind
from proplatform.forms import DecimalTextField, DescribedForm

# How far back a patient may date a measurement typed in by hand.
HAND_ENTRY_MAX_DAYS = 7


def _whole_number_error(value: Any, step: Any) -> str | None:
    """A measure a device counts in whole units (pulse, SpO2, blood pressure): "72,5" typed by
    hand is a slip, said beside the field rather than stored as half a beat."""
    if value is None or step != 1 or value == value.to_integral_value():
        return None
    return str(_("Write a whole number, as your device shows it."))


class _SentReadingForm(DescribedForm):
    """What every reading form of the patient's has: the time (empty: now) and the page's id.
    Errors and help are linked to their fields for screen readers (DescribedForm)."""

    measured_at = forms.DateTimeField(
        label=_("When (leave empty for now)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    # Identifies this filled-in page: sent twice, it is stored once (reading_ingest_from_form).
    submission = forms.CharField(required=False, max_length=36, widget=forms.HiddenInput)
    # The unusual value(s) the patient was asked to check and sent again (_confirm_unusual).
    confirmed = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)

    def _confirm_unusual(self, measure: Measure, value: Any, value2: Any = None) -> None:
        """A possible but unusual value typed by hand (1 kg for 71, 8 % for 98 is refused
        anyway) is shown again with a question beside it; sent again unchanged, it is stored.
        A slip then never reaches the care team as an alert, and a real value costs one tap."""
        if value is None or not measure.is_unusual(value, value2):
            return
        key = "/".join(format(v.normalize(), "f") for v in (value, value2) if v is not None)
        if self.data.get("confirmed") == key:
            return
        data = cast(QueryDict, self.data).copy()  # bound to request.POST
        data["confirmed"] = key  # rendered in the hidden field: the next send confirms it
        self.data = data
        second = getattr(measure, "second", None)
        field = "value2" if second is not None and measure.usual_low <= value <= measure.usual_high else "value"
        shown = value2 if field == "value2" else value
        self.add_error(field if field in self.fields else None, _(
            "%(value)s %(unit)s is unusual. Check the number on your device. If it is right, press "
            "Send again.") % {"value": number_format(shown.normalize()), "unit": measure.unit_label})

    def clean_measured_at(self) -> datetime:
        # A datetime-local field has no zone: it is the patient's local (Danish) time.
        when: datetime | None = self.cleaned_data["measured_at"]
        if when is None:
            return timezone.now()
        # Typed by hand, a time far off is a slip of the finger (2020 for 2026), not a device's
        # clock: said in those words, next to the field.
        now = timezone.now()
        if when > now + timedelta(minutes=5):
            raise forms.ValidationError(_("That time has not come yet. Check the date and the time."))
        if when < now - timedelta(days=HAND_ENTRY_MAX_DAYS):
            raise forms.ValidationError(_(
                "That is more than %(days)s days ago. Check the date; if it is right, tell your care team "
                "about the measurement instead.") % {"days": HAND_ENTRY_MAX_DAYS})
        return when

    def clean_submission(self) -> uuid.UUID | None:
        """The page's id, or None for a missing or altered one: nothing the patient could fix is
        reported, the reading is stored without the once-only guard."""
        try:
            return uuid.UUID(self.cleaned_data["submission"])
        except ValueError:
            return None


class ReadingForm(_SentReadingForm):
    field_order = ["measure", "value"]

    measure = forms.ChoiceField(
        label=_("What did you measure?"),
        # Two-part measures (blood pressure) need two fields: they have their own page.
        choices=[(m.code, f"{m.label} ({m.unit_label})") for m in MEASURES.values()
                 if getattr(m, "second", None) is None],
    )
    value = DecimalTextField(label=_("Value"), max_digits=9, decimal_places=3)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        measure = MEASURES.get(data.get("measure") or "")
        if measure is not None and (message := _whole_number_error(data.get("value"), measure.step)):
            self.add_error("value", message)
        elif measure is not None and data.get("value") is not None and not range_error(
                data["value"], measure.minimum, measure.maximum, measure.unit_label):
            self._confirm_unusual(measure, data["value"])
        return data


# What a patient needs to know to measure well, shown above the field on the measure's page.
MEASURE_HELP = {
    "body-weight": _("Weigh yourself in the morning, after using the toilet and before breakfast."),
    "spo2": _("Sit still for a few minutes first. Use a warm finger without nail polish."),
    "heart-rate": _("Sit still for five minutes first."),
    "body-temperature": _("Measure before you eat or drink anything hot or cold."),
    "respiratory-rate": _("Count your breaths for one whole minute while you sit still."),
    "blood-pressure": _("Sit still for five minutes first, with the cuff on your bare upper arm. "
                        "Write both numbers from the monitor."),
    "glucose": _("Wash and dry your hands before you prick your finger."),
    "peak-flow": _("Stand up, breathe in as deeply as you can and blow as hard and fast as you can. Blow three "
                   "times and write the best of the three."),
}


class MeasureReadingForm(_SentReadingForm):
    """One measure's large, simple form: the value(s) with the unit beside them, and the time."""

    def __init__(self, *args: Any, measure: Measure, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.measure = measure
        number = {"max_digits": 9, "decimal_places": 3,
                  "error_messages": {"required": _("Write the number from your device.")}}
        second = getattr(measure, "second", None)
        if second is None:
            self.fields["value"] = DecimalTextField(label=measure.label, **number)
        else:
            self.fields["value"] = DecimalTextField(label=_("Upper number (systolic)"), **number)
            self.fields["value2"] = DecimalTextField(label=_("Lower number (diastolic)"), **number)
        self.order_fields(["value", "value2"])  # the value(s) first, as on the page

    def clean(self) -> dict[str, Any]:
        """An impossible number is said at once, beside its field, even when the other number
        of blood pressure is still missing (the ingest would only see it on the next send)."""
        data = super().clean() or {}
        parts = [("value", self.measure)]
        if (second := getattr(self.measure, "second", None)) is not None:
            parts.append(("value2", second))
        for name, part in parts:
            value = data.get(name)
            if value is not None and (message := range_error(value, part.minimum, part.maximum,
                                                             self.measure.unit_label)):
                self.add_error(name, message)
            elif message := _whole_number_error(value, self.measure.step):
                self.add_error(name, message)
        if not self.errors and data.get("value") is not None:
            self._confirm_unusual(self.measure, data["value"], data.get("value2"))
        return data


class ErroneousForm(forms.Form):
    """Why a clinician marks a reading as wrong; required, because the mark hides the value
    from rules and outcomes and the next reader must be able to judge it."""

    reason = forms.CharField(
        label=_("Why is this measurement wrong?"), max_length=500,
        help_text=_("For example: the cuff slipped, or someone else stood on the scale. The patient sees the "
                    "reason beside the value on their own pages."),
        widget=forms.Textarea(attrs={"rows": 3, "aria-describedby": "id_reason-help"}),
        error_messages={"required": _("Write the reason.")},
    )

    def full_clean(self) -> None:
        # The help and, after a failed submit, the error are read out with the field
        # (templates/field.html gives them these ids).
        super().full_clean()
        ids = ["id_reason-help"] + (["id_reason-errors"] if "reason" in self.errors else [])
        self.fields["reason"].widget.attrs["aria-describedby"] = " ".join(ids)


# --- the device registry (clinicians) ---------------------------------------------------------

def _date_field(label: Any, *, required: bool = True, help_text: Any = "") -> forms.DateField:
    # A date input sends and shows ISO dates whatever the page's language; with the localised
    # format ("22.11.2026") the browser would show an empty field.
    return forms.DateField(label=label, required=required, help_text=help_text,
                           widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                           # What the hint shows (22-11-2026) is taken too, and the dotted form.
                           input_formats=["%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"],
                           error_messages={"required": _("Give the date."),
                                           "invalid": _("Give a date such as 22-11-2026.")})


class _LendingPeriodForm(DescribedForm):
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("lent_from"), data.get("lent_to")
        if start and end and end < start:
            self.add_error("lent_to", _("The end date cannot be before the start date."))
        return data


class DeviceRegisterForm(_LendingPeriodForm):
    kind = forms.ChoiceField(label=_("Kind of device"), choices=DeviceKind.choices, widget=forms.RadioSelect,
                             error_messages={"required": _("Choose the kind of device.")})
    model = forms.CharField(label=_("Make and model (optional)"), max_length=200, required=False)
    serial = forms.CharField(label=_("Serial number"), max_length=200,
                             help_text=_("As printed on the device's label, often after SN."),
                             error_messages={"required": _("Write the serial number from the device's label.")})
    lent_from = _date_field(_("Lent out from"))
    lent_to = _date_field(_("Lent out until (leave empty until further notice)"), required=False)


class DeviceLendForm(_LendingPeriodForm):
    """Lend a device that is registered and returned (found by kind and serial number)."""

    kind = DeviceRegisterForm.base_fields["kind"]
    serial = DeviceRegisterForm.base_fields["serial"]
    lent_from = _date_field(_("Lent out from"))
    lent_to = _date_field(_("Lent out until (leave empty until further notice)"), required=False)


class DeviceReturnForm(DescribedForm):
    returned_on = _date_field(_("Returned on"), help_text=_("The day the device came back."))


class DeviceFilterForm(forms.Form):
    """The team-wide device list's filter (GET; an invalid choice is simply ignored)."""

    kind = forms.ChoiceField(label=_("Kind of device"), required=False,
                             choices=[("", _("All kinds")), *DeviceKind.choices])
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[
        ("", _("Lent out and returned")), ("lent", _("Lent out")), ("overdue", _("Overdue")),
        ("returned", _("Returned"))])
