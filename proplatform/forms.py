"""What every server-rendered form shares."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError


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
