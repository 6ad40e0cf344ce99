"""Forms of the programme editor: they parse and say what is wrong next to the field; the
writes live in editor.services."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _l

from accounts.models import User
from monitoring.measures import MEASURES
from patients.models import CareTeam, Patient, Program
from proplatform.forms import DecimalTextField, DescribedForm, IntegerTextField, form_field
from questionnaires.models import Questionnaire


class QuestionnaireVersionsField(forms.ModelMultipleChoiceField):
    """Each questionnaire version by its title and version."""

    def label_from_instance(self, obj: Questionnaire) -> str:
        return f"{obj.title} ({obj.version})"


class ProgramForm(forms.ModelForm):
    measures = forms.MultipleChoiceField(
        label=_l("Measurements from the patients' devices"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[], help_text=_l("The rules can only use the measurements ticked here."))
    questionnaires = QuestionnaireVersionsField(
        label=_l("Questionnaires"), required=False, widget=forms.CheckboxSelectMultiple,
        queryset=Questionnaire.objects.none(),
        help_text=_l("Only questionnaires ticked here can be scheduled or used by the rules."))

    class Meta:
        model = Program
        fields = ["name", "slug", "condition_code", "condition_display", "review_workdays", "department_phone",
                  "contact_text_da", "contact_text_en", "urgent_text_da", "urgent_text_en", "measures",
                  "questionnaires", "teams"]
        labels = {
            "name": _l("Name"), "slug": _l("Short name in addresses"),
            "condition_code": _l("Condition code (ICD-10/SKS)"),
            "condition_display": _l("Condition"), "review_workdays": _l("Answers reviewed within (working days)"),
        }
        help_texts = {
            "name": _l("E.g. \"Hjemmemonitorering ved KOL\"."),
            "slug": _l("Letters, digits and hyphens, e.g. \"kol-hjemme\"."),
            "condition_code": _l("E.g. DJ44 for COPD."),
            "review_workdays": _l("The promise on the patient's receipt, e.g. 2."),
        }
        widgets = {f: forms.Textarea(attrs={"rows": 2}) for f in
                   ("contact_text_da", "contact_text_en", "urgent_text_da", "urgent_text_en")}
        error_messages = {
            "name": {"required": _l("Give the programme a name.")},
            "slug": {"required": _l("Give a short name."), "invalid": _l("Use only letters, digits and hyphens."),
                     "unique": _l("Another programme has this short name.")},
            "condition_code": {"required": _l("Give the condition's code.")},
            "condition_display": {"required": _l("Give the condition.")},
        }

    teams = forms.ModelMultipleChoiceField(
        label=_l("Care teams that run the programme"), required=False, widget=forms.CheckboxSelectMultiple,
        queryset=CareTeam.objects.none(), help_text=_l("Their team leads may change the programme."))

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        from editor.selectors import led_teams

        super().__init__(*args, **kwargs)
        self.user = user
        self.is_admin = getattr(user, "role", None) == "admin"
        # A team lead names only their own teams; teams already on the programme stay as they are.
        self.own_teams = CareTeam.objects.all() if self.is_admin else led_teams(user)
        teams, measures = self.fields["teams"], self.fields["measures"]
        questionnaires = self.fields["questionnaires"]
        assert isinstance(teams, forms.ModelMultipleChoiceField) and isinstance(measures, forms.MultipleChoiceField)
        assert isinstance(questionnaires, forms.ModelMultipleChoiceField)
        teams.queryset = self.own_teams.order_by("name")
        measures.choices = [(code, m.label) for code, m in MEASURES.items()]
        # Each questionnaire version by its title and version (QuestionnaireVersionsField); newest first.
        questionnaires.queryset = Questionnaire.objects.order_by("title", "-created_at")
        if self.instance.pk is None:
            self.initial.setdefault("measures", [])

    def clean_teams(self) -> Any:
        chosen = self.cleaned_data.get("teams")
        if self.is_admin:
            return chosen
        if self.instance.pk is None and not chosen:
            raise forms.ValidationError(_l("Tick your team: it runs the new programme."))
        # Teams the lead does not lead keep their place on the programme.
        others = self.instance.teams.exclude(pk__in=self.own_teams) if self.instance.pk else CareTeam.objects.none()
        # The field gives a queryset (empty when nothing is ticked); None would mean none ticked too.
        mine = chosen.values_list("pk", flat=True) if chosen is not None else []
        keep = [*mine, *others.values_list("pk", flat=True)]
        return CareTeam.objects.filter(pk__in=keep)


class ReasonForm(DescribedForm):
    reason = forms.CharField(label=_l("Why?"), max_length=500,
                             error_messages={"required": _l("Say why the rule goes back to an earlier version.")})


WEEKDAY_CHOICES = [("mon", _l("Monday")), ("tue", _l("Tuesday")), ("wed", _l("Wednesday")), ("thu", _l("Thursday")),
                   ("fri", _l("Friday")), ("sat", _l("Saturday")), ("sun", _l("Sunday"))]
SCHEDULE_KINDS = [("once", _l("Once")), ("offsets", _l("On fixed days")), ("every", _l("Every so many days")),
                  ("weekdays", _l("On fixed weekdays"))]


class ScheduleForm(DescribedForm):
    """A schedule in days from the index date (treatment start), without JSON: the kind's fields
    are plain numbers and tick boxes, turned into the typed spec of schedules.spec."""

    name = forms.CharField(label=_l("Name"), max_length=200, help_text=_l("E.g. \"CAT weekly\"."),
                           error_messages={"required": _l("Give the schedule a name.")})
    questionnaire_url = forms.ChoiceField(
        label=_l("Questionnaire"), help_text=_l("Only the programme's questionnaires."),
        error_messages={"required": _l("Choose one of the programme's questionnaires."),
                        "invalid_choice": _l("Choose one of the programme's questionnaires.")})
    kind = forms.ChoiceField(label=_l("How often"), choices=SCHEDULE_KINDS, widget=forms.RadioSelect, initial="every")
    day = IntegerTextField(label=_l("Day (once)"), required=False, min_value=-3650, max_value=3650,
                           help_text=_l("Days from treatment start: 0 is the day treatment starts, -7 a week before."))
    days = forms.CharField(label=_l("Days (on fixed days)"), required=False, max_length=500,
                           help_text=_l("Day numbers separated by commas, e.g. 7, 14, 30, 90."))
    every_days = IntegerTextField(label=_l("Every (days)"), required=False, min_value=1, max_value=366,
                                  help_text=_l("E.g. 7 for weekly."))
    from_day = IntegerTextField(label=_l("From day"), required=False, min_value=-3650, max_value=3650,
                                help_text=_l("E.g. 0: from treatment start."))
    to_day = IntegerTextField(label=_l("To day"), required=False, min_value=-3650, max_value=3650,
                              help_text=_l("E.g. 84: for 12 weeks."))
    weekdays = forms.MultipleChoiceField(label=_l("Weekdays"), required=False, choices=WEEKDAY_CHOICES,
                                         widget=forms.CheckboxSelectMultiple)
    before_start = forms.BooleanField(
        label=_l("May be before treatment start (a baseline questionnaire)"), required=False)
    due_time = forms.TimeField(label=_l("Due at (Danish time)"), initial="09:00",
                               widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                               error_messages={"invalid": _l("Give a time of day, e.g. 09:00.")})
    open_before_days = DecimalTextField(label=_l("Opens days before"), required=False, min_value=0, max_value=30,
                                        help_text=_l("E.g. 1: the patient can answer from the day before."))
    window_days = DecimalTextField(label=_l("Open for (days) after the due time"), min_value=0, max_value=60,
                                   help_text=_l("E.g. 2: after that it counts as missed."),
                                   error_messages={"required": _l("Give how many days the questionnaire stays open.")})
    remind_before_hours = DecimalTextField(label=_l("Reminder (hours before the deadline)"), required=False,
                                           min_value=0, max_value=24 * 60, help_text=_l("Empty: no reminder."))
    example_start = forms.DateField(label=_l("Example treatment start for the preview"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                                    error_messages={"invalid": _l("Give a date, e.g. 2026-12-07.")})

    def __init__(self, *args: Any, program: Program, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        seen: dict[str, str] = {}
        for q in program.questionnaires.order_by("url", "-created_at"):
            seen.setdefault(q.url, q.title)
        questionnaire_url = self.fields["questionnaire_url"]
        assert isinstance(questionnaire_url, forms.ChoiceField)
        questionnaire_url.choices = [("", _l("Choose a questionnaire")), *seen.items()]

    def clean_days(self) -> list[int]:
        text = self.cleaned_data.get("days") or ""
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError as exc:
            raise forms.ValidationError(_l("Give whole day numbers separated by commas, e.g. 7, 14, 30.")) from exc

    def clean(self) -> dict[str, Any]:
        from datetime import timedelta

        from schedules.spec import spec_params

        cleaned = super().clean() or {}
        kind: str = cleaned.get("kind") or ""
        required = {"once": ["day"], "offsets": ["days"], "every": ["every_days", "from_day", "to_day"],
                    "weekdays": ["weekdays", "from_day", "to_day"]}.get(kind, [])
        for name in required:
            if name not in self.errors and cleaned.get(name) in (None, "", []):
                self.add_error(name, _l("Needed for this kind of schedule."))
        if self.errors:
            return cleaned
        window = cleaned.get("window_days")
        if window is not None and window <= 0:
            self.add_error("window_days", _l("The questionnaire must stay open for some time (more than 0 days)."))
        params: dict[str, Any] = {name: cleaned[name] for name in required}
        try:
            from schedules.spec import spec_parse

            spec = spec_parse(kind, params)
        except ValidationError:
            self.add_error("to_day" if kind in ("every", "weekdays") else required[0],
                           _l("Check the days: the last day must not come before the first, and each day once."))
            return cleaned
        first = min(spec.days(cleaned.get("example_start") or timezone.localdate()), default=0)
        if first < 0 and not cleaned.get("before_start"):
            field = {"once": "day", "offsets": "days"}.get(kind, "from_day")
            self.add_error(field, _l("This is before treatment start. Tick \"May be before treatment start\" "
                                     "for a baseline questionnaire."))
        if self.errors or window is None:  # window_days is required: if missing, its error is on the form
            return cleaned
        cleaned["spec"] = spec
        cleaned["params"] = spec_params(spec)
        cleaned["window"] = timedelta(days=float(window))
        cleaned["open_before"] = timedelta(days=float(cleaned.get("open_before_days") or 0))
        hours = cleaned.get("remind_before_hours")
        cleaned["remind_before"] = timedelta(hours=float(hours)) if hours else None
        return cleaned


MAX_UPLOAD = 1_000_000  # bytes; the largest library instrument is ~40 kB


class QuestionnaireUploadForm(DescribedForm):
    """A FHIR Questionnaire file, or one of the shipped instruments. Parsed here; a file that is
    not a FHIR Questionnaire is refused next to the field."""

    file = forms.FileField(label=_l("FHIR Questionnaire file (JSON)"), required=False,
                           help_text=_l("E.g. exported from Medplum, REDCap or the LHC-Forms builder."))
    library = forms.ChoiceField(label=_l("Or one of the platform's questionnaires"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from questionnaires import library

        super().__init__(*args, **kwargs)
        choices: list[tuple[str, str | Promise]] = [("", _l("None"))]
        for name in library.names():
            choices.append((name, library.load(name).get("title") or name))
        field = self.fields["library"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean(self) -> dict[str, Any]:
        import json

        from questionnaires import library

        cleaned = super().clean() or {}
        upload, name = cleaned.get("file"), cleaned.get("library")
        if bool(upload) == bool(name):
            self.add_error("file", _l("Choose a file or one of the platform's questionnaires (one of them)."))
            return cleaned
        if name:
            cleaned["resource"] = library.load(name)
            return cleaned
        assert upload is not None  # exactly one of the two was given, and it was not the library's
        if upload.size > MAX_UPLOAD:
            self.add_error("file", _l("The file is too large for a questionnaire (at most 1 MB)."))
            return cleaned
        try:
            resource = json.loads(upload.read().decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            self.add_error("file", _l("This file is not a FHIR Questionnaire: it is not JSON. "
                                      "Export the questionnaire as FHIR R4 JSON and try again."))
            return cleaned
        if not isinstance(resource, dict) or resource.get("resourceType") != "Questionnaire":
            self.add_error("file", _l("This file is JSON but not a FHIR Questionnaire "
                                      "(its resourceType is not \"Questionnaire\")."))
            return cleaned
        cleaned["resource"] = resource
        return cleaned


ENROL_HITS = 20  # more than this: the search is too wide to pick from


class EnrolForm(DescribedForm):
    """Who, which team and from when. The patient is picked among the hits of a search by name
    or CPR number (editor.views.enrol, sent by POST like the patient list's), never from a list
    of every patient: the radio buttons show the hits only, while the choice is checked against
    all the patients the person may see."""

    patient: forms.ModelChoiceField = forms.ModelChoiceField(
                                     label=_l("Patient"), queryset=None,
                                     widget=forms.RadioSelect, empty_label=None,
                                     error_messages={"required": _l("Search for the patient and choose one."),
                                                     "invalid_choice": _l("Search for the patient and choose one.")})
    care_team: forms.ModelChoiceField = forms.ModelChoiceField(
        label=_l("Care team"), queryset=None, empty_label=_l("Choose a care team"),
        error_messages={"required": _l("Choose the team that follows the patient."),
                        "invalid_choice": _l("Choose the team that follows the patient.")})
    treatment_start = forms.DateField(label=_l("Treatment start (index date)"),
                                      widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                                      help_text=_l("The schedules count their days from this date."),
                                      error_messages={"required": _l("Give the date treatment starts."),
                                                      "invalid": _l("Give a date, e.g. 2026-12-07.")})

    def __init__(self, *args: Any, patients: QuerySet[Patient], teams: QuerySet[CareTeam], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        patient = form_field(self, "patient", forms.ModelChoiceField)
        patient.queryset = patients
        # Name and birth date: enough to tell two patients apart, no CPR number on the page.
        # (Django's documented way to label a choice: replacing the method on this instance.)
        patient.label_from_instance = lambda p: f"{p.name} ({p.birth_date:%d.%m.%Y})"  # type: ignore[assignment]
        form_field(self, "care_team", forms.ModelChoiceField).queryset = teams.order_by("name")

    def show_only(self, patients: QuerySet[Patient]) -> None:
        """Render ``patients`` as the choices (the hits, or the one chosen), not every patient."""
        form_field(self, "patient", forms.ModelChoiceField).queryset = patients
