"""What every server-rendered form shares."""

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from proplatform.input import parse_decimal, parse_integer

_Field = TypeVar("_Field", bound=forms.Field)


def form_field(form: forms.BaseForm, name: str, kind: type[_Field]) -> _Field:
    """``form.fields[name]`` as the field class the form declares it with. Django types a form's
    fields as plain ``Field``; a choice field's queryset or choices are set through this."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"{type(form).__name__}.{name} is a {type(field).__name__}, not a {kind.__name__}")
    return field


@dataclass
class ErrorSummary:
    """What templates/error_summary.html lists after a failed send: the fields left empty that
    had to be answered (``missing``: said once, as a count, with one link to the first — a page
    of nine unanswered questions is one thing to fix, not nine) and every other error with its
    field and message, in page order."""

    missing: list[Any] = dataclasses.field(default_factory=list)  # bound fields
    others: list[tuple[Any, str]] = dataclasses.field(default_factory=list)  # (bound field, message)


def error_summary(form: forms.Form, fields: list[Any] | None = None) -> ErrorSummary:
    summary = ErrorSummary()
    for bound in fields if fields is not None else form.visible_fields():
        errors = form.errors.as_data().get(bound.name) or []
        for error in errors:
            if error.code == "required":
                if bound not in summary.missing:
                    summary.missing.append(bound)
            else:
                summary.others.extend((bound, message) for message in error.messages)
    return summary


class DescribedForm(forms.Form):
    """Help texts and errors are read out with their field: templates/field.html gives them the
    ids ``<field id>-help`` and ``<field id>-errors``, and this links them with aria-describedby
    (a radio group gets it on its fieldset from the template). Prefixed forms work: the ids come
    from the bound field."""

    def full_clean(self) -> None:
        super().full_clean()
        self._describe()

    def add_error(self, field: str | None, error: Any) -> None:
        # Services report some errors after validation (a duplicate serial): linked as well.
        super().add_error(field, error)
        self._describe()

    @property
    def error_summary(self) -> ErrorSummary:
        return error_summary(self)

    def _describe(self) -> None:
        if not hasattr(self, "cleaned_data"):
            return  # add_error during full_clean; described once it is done
        for name, field in self.fields.items():
            auto_id = self[name].auto_id
            ids = [f"{auto_id}-help"] if field.help_text else []
            if name in self.errors:
                ids.append(f"{auto_id}-errors")
            if ids and not isinstance(field.widget, forms.RadioSelect):
                field.widget.attrs["aria-describedby"] = " ".join(ids)


def form_errors_from(form: forms.Form, exc: ValidationError, rename: dict[str, str] | None = None) -> None:
    """Put a service's field errors next to the form's fields (unknown fields: at the top)."""
    for field, messages in (exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}).items():
        target = (rename or {}).get(field or "", field)
        for message in messages:
            form.add_error(target if target in form.fields else None, message)


class DecimalTextField(forms.DecimalField):
    """A decimal a person types: a text field with the numeric keyboard (inputmode=decimal), not
    the browser's number field, which silently drops a comma it does not expect (Chromium turned
    a typed "5,6" mmol/L into 56) or blanks the field. Both "72,5" and "72.5" are 72.5."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
        kwargs.setdefault("localize", True)  # shown back as the page's language writes it
        super().__init__(**kwargs)
        self.error_messages["invalid"] = _("Write a number, such as 72,5.")

    def to_python(self, value: Any) -> Any:
        # The one number parser (proplatform.input): "72,5" or "72.5", spaces ignored; not
        # "1_0_0" or full-width digits, which Decimal() would read as 100 and 60.
        if isinstance(value, str) and value.strip():
            number = parse_decimal("".join(value.split()), decimal_comma=True)
            if number is None:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            value = str(number)
        return super().to_python(value)


class IntegerTextField(forms.IntegerField):
    """A whole number a person types, in a text field with the numeric keyboard: a number field
    would turn a typed "72,5" into 725 without a word; here it is an error."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
        super().__init__(**kwargs)
        self.error_messages["invalid"] = _("Write a whole number, such as 72.")

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            number = parse_integer("".join(value.split()))  # proplatform.input: ASCII digits only
            if number is None:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            value = str(number)
        return super().to_python(value)
