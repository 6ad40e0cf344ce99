from django.core.management import call_command

from accounts.models import User
from alerts.models import Alert, Status
from monitoring.models import Reading
from patients.models import CareTeam, Patient, Program, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (User, Patient, CareTeam, Program, TreatmentEpisode, Reading,
                          QuestionnaireResponse, Alert)}


def test_demo_creates_the_documented_cast_history_and_open_alerts(
    db, capsys, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", patients=8, password="pw-for-test-1")
    out = capsys.readouterr().out
    for login in ("patient-a", "patient-b", "clinician-a", "clinician-b", "quality", "admin"):
        assert login in out
        assert User.objects.get(username=login).check_password("pw-for-test-1")
    assert "dv_" in out  # a device token to try the API with
    assert CareTeam.objects.count() == 2 and Program.objects.count() == 2
    assert Reading.objects.count() > 500  # months of readings
    assert QuestionnaireResponse.objects.count() > 20
    open_alerts = Alert.objects.filter(status=Status.OPEN)
    assert open_alerts.filter(severity="red").exists() and open_alerts.filter(severity="yellow").exists()
    # the cast sits on the documented teams
    a = Patient.objects.get(user__username="patient-a").episodes.get()
    b = Patient.objects.get(user__username="patient-b").episodes.get()
    assert a.care_team.members.filter(username="clinician-a").exists()
    assert b.care_team.members.filter(username="clinician-b").exists()
    assert a.care_team != b.care_team


def test_demo_run_twice_duplicates_nothing(db, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", patients=6, stdout=None)
    first = _counts()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", patients=6)
    assert _counts() == first


def test_the_demo_programmes_have_each_instruments_safety_net_and_a_phone_number(
    db, django_capture_on_commit_callbacks
) -> None:
    from alerts.models import Rule

    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", patients=2, password="pw-for-test-1")
    for program in Program.objects.all():
        urls = set(program.questionnaires.values_list("url", flat=True))
        nets = set(Rule.objects.filter(program=program, kind="safety", active=True)
                   .values_list("safety_net_for", flat=True))
        assert urls and urls <= nets, program.slug
        assert program.department_phone
    lung = Program.objects.get(slug="lung-cancer-follow-up")
    assert Rule.objects.filter(program=lung, safety_net_for__endswith="/phq-9", active=True).exists()


def test_every_response_the_demo_stores_is_valid_fhir_as_served(db, django_capture_on_commit_callbacks) -> None:
    """Issue 21: the demo wrote answers with a pydantic model_dump (display_element, extension: []);
    452 of 593 responses served under /fhir were invalid."""
    from interop.mapping import response_to_fhir
    from tests.fhir_schema import fhir_problems

    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", patients=6, stdout=None)
    responses = QuestionnaireResponse.objects.select_related("questionnaire", "patient")
    assert responses.count() > 20
    problems = [p for r in responses for p in fhir_problems(response_to_fhir(r))]
    assert problems == [], problems[:10]
