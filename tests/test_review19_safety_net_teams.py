"""From a review of issue 19 (3): a programme's safety net is one rule for every team that uses the programme, and the
lead of *any* team with a patient in the programme may switch it off (alerts.safety.
may_switch_safety_nets). Team B's lead, with one patient in the lung programme, silences team A's
patients' red answers; team A's nurses are not told (the switched-off state and its reason are only
on /rules/safety/, which answers them 404, and nowhere on the patient page or the worklist)."""


import pytest
from django.core.exceptions import PermissionDenied

from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, EscalationPolicy, Rule
from alerts.safety import safety_rule_switch
from questionnaires import library
from questionnaires.services import questionnaire_import, response_submit
from tests.factories import make_patient, response_items

pytestmark = pytest.mark.django_db
PHQ9 = "https://proplatform.example/fhir/Questionnaire/phq-9"


def test_lead_of_another_team_cannot_switch_off_my_patients_safety_net(cast, client):
    phq9 = questionnaire_import(resource=library.load("phq-9"))
    cast.program_a.questionnaires.add(phq9)
    Rule.objects.filter(safety_net_for="").update(active=False)  # the net alone
    # Team B follows one patient in the lung programme too, and has a lead.
    make_patient("patient-c", "030350-3333", cast.team_b, cast.program_a)
    EscalationPolicy.objects.create(care_team=cast.team_b, lead=cast.clinician_b)
    net = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    # Team B's lead leads only one of the programme's two teams: refused, nothing changed.
    with pytest.raises(PermissionDenied):
        safety_rule_switch(rule=net, active=False, reason="Team B ringer selv til sine patienter",
                           by=cast.clinician_b)
    net.refresh_from_db()
    assert net.active

    # Team A's patient answers PHQ-9 item 9 "Flere dage".
    response = response_submit(patient=cast.patient_a, questionnaire=phq9,
                               items=response_items(phq9, {"phq9-9": "LA6569-3"}), author=cast.patient_a.user)
    response_evaluate(response_id=response.pk)
    client.force_login(cast.clinician_a)
    page = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    # Expected: switching off needs authority over every team it affects (or is per team), and team
    # A sees that its net is off. Observed: no alert, and nothing tells team A.
    assert Alert.objects.filter(patient=cast.patient_a).exists() or "Team B ringer selv" in page
