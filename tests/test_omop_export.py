"""OMOP CDM 5.4 export (issue 25): the official DDL loaded into a throw-away schema (inside the
test's transaction, so it is rolled back), the cast's data exported with every constraint on, and
the rows checked against expectations worked out by hand."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from exports.models import OmopPerson
from exports.omop.export import OmopError, omop_export
from exports.privacy import pseudonym
from monitoring.models import Reading, Source
from outcomes.models import Cohort
from questionnaires.library import load, load_scoring
from questionnaires.models import QuestionnaireResponse
from questionnaires.scoring import score_response
from questionnaires.services import questionnaire_import
from tests.conftest import production_shape_required
from tests.factories import response_items

if connection.vendor != "postgresql" and not production_shape_required():
    pytestmark = pytest.mark.skip(reason="the OMOP export writes into a PostgreSQL schema")

SCHEMA = "omop_test"
RELEASE = date(2026, 12, 1)
# 10:30 UTC on 1 December is 11:30 in Copenhagen (CET, UTC+1): the CDM holds local wall-clock time.
T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _key(settings):
    settings.EXPORT_PSEUDONYM_KEY = "omop-test-key"


def rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as c:
        c.execute(sql.replace("cdm.", f"{SCHEMA}."), params)
        return c.fetchall()


def reading(patient, measure, value, unit, at, value2=None, **extra) -> Reading:
    return Reading.objects.create(patient=patient, measure=measure, value=Decimal(value), unit=unit,
                                  value2=None if value2 is None else Decimal(value2), effective_at=at,
                                  received_at=at, source=Source.WEB, **extra)


PHQ9_ANSWERS = {"phq9-1": "LA6568-5", "phq9-2": "LA6569-3", "phq9-3": "LA6570-1", "phq9-4": "LA6571-9",
                "phq9-5": "LA6568-5", "phq9-6": "LA6569-3", "phq9-7": "LA6570-1", "phq9-8": "LA6571-9",
                "phq9-9": "LA6568-5", "phq9-difficulty": "LA6572-7", "contact": False}


@pytest.fixture
def data(cast):
    """Patient A: a weight, a blood pressure, an erroneous SpO2 and one PHQ-9; patient B: a pulse."""
    a, b = cast.patient_a, cast.patient_b
    weight = reading(a, "body-weight", "81.400", "kg", T0)
    bp = reading(a, "blood-pressure", "142", "mm[Hg]", T0 + timedelta(hours=1), value2="91")
    wrong = reading(a, "spo2", "55", "%", T0 + timedelta(hours=2), erroneous_at=T0 + timedelta(hours=3))
    pulse = reading(b, "heart-rate", "72", "/min", T0)
    phq9 = questionnaire_import(resource=load("phq-9"))
    phq9.scoring = load_scoring("phq-9")
    phq9.save(update_fields=["scoring"])
    items = response_items(phq9, PHQ9_ANSWERS)
    response = QuestionnaireResponse.objects.create(
        patient=a, questionnaire=phq9, items=items, scores=score_response(questionnaire=phq9, items=items),
        authored_at=T0, received_at=T0)
    return {"weight": weight, "bp": bp, "wrong": wrong, "pulse": pulse, "phq9": response}


def export(**kw):
    return omop_export(schema=SCHEMA, release_date=RELEASE, **kw)


def person_id(patient) -> int:
    return OmopPerson.objects.get(patient=patient).pk


def test_the_official_ddl_is_loaded_with_primary_keys_foreign_keys_and_indices_switched_on(data):
    result = export()
    assert result["created"] is True
    (fks,) = rows("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = %s::regnamespace",
                  [SCHEMA])[0]
    (pks,) = rows("SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND connamespace = %s::regnamespace",
                  [SCHEMA])[0]
    (indices,) = rows("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname LIKE 'idx_%%'",
                      [SCHEMA])[0]
    assert fks > 100 and pks >= 28 and indices > 50
    assert all(c["ok"] for c in result["checks"]), result["checks"]


def test_a_person_is_pseudonymised_with_birth_year_and_gender_concept_only(cast, data):
    export()
    a = cast.patient_a
    ((pid, gender, year, month, day, birth, source, gender_source),) = rows(
        "SELECT person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth, birth_datetime, "
        "person_source_value, gender_source_value FROM cdm.person WHERE person_id = %s", [person_id(a)])
    assert (gender, year, month, day, birth, gender_source) == (8532, 1950, None, None, None, "female")
    assert source == pseudonym(a.pk, key=b"omop-test-key")[:50]
    everything = str(rows("SELECT p.*, m.*, o.* FROM cdm.person p LEFT JOIN cdm.measurement m USING (person_id) "
                          "LEFT JOIN cdm.observation o USING (person_id)"))
    assert a.cpr not in everything and a.cpr.replace("-", "") not in everything
    assert str(a.pk) not in everything and "Alma" not in everything


def test_patient_as_readings_become_measurements_with_loinc_concepts_units_and_local_times(cast, data):
    export()
    got = rows("SELECT measurement_id, measurement_concept_id, measurement_date, measurement_datetime, "
               "value_as_number, unit_concept_id, unit_source_value, measurement_source_value "
               "FROM cdm.measurement WHERE person_id = %s ORDER BY measurement_id", [person_id(cast.patient_a)])
    w, bp = data["weight"].pk, data["bp"].pk
    local = datetime(2026, 12, 1, 11, 30)  # noqa: DTZ001 - the CDM's timestamps carry no zone
    assert got == [
        (w * 2, 3025315, date(2026, 12, 1), local, Decimal("81.400"), 9529, "kg", "29463-7"),
        (bp * 2, 3004249, date(2026, 12, 1), local + timedelta(hours=1), Decimal("142.000"), 8876, "mm[Hg]",
         "8480-6"),
        (bp * 2 + 1, 3012888, date(2026, 12, 1), local + timedelta(hours=1), Decimal("91.000"), 8876, "mm[Hg]",
         "8462-4"),
    ]  # the erroneous SpO2 is not there
    assert rows("SELECT DISTINCT measurement_type_concept_id FROM cdm.measurement") == [(32817,)]  # EHR
    assert rows("SELECT DISTINCT observation_type_concept_id FROM cdm.observation") == [(32862,)]  # survey
    assert rows("SELECT measurement_concept_id, unit_concept_id FROM cdm.measurement WHERE person_id = %s",
                [person_id(cast.patient_b)]) == [(3027018, 8541)]  # pulse, per minute


def test_one_phq9_response_becomes_observations_item_by_item_without_free_text(cast, data):
    export()
    rid = data["phq9"].pk
    got = rows("SELECT observation_id, observation_concept_id, observation_source_value, value_as_concept_id, "
               "value_source_value, value_as_number, observation_event_id, observation_date, "
               "observation_source_concept_id, obs_event_field_concept_id "
               "FROM cdm.observation WHERE person_id = %s ORDER BY observation_id", [person_id(cast.patient_a)])
    base = rid * 128
    items = [("44250-9", "LA6568-5"), ("44255-8", "LA6569-3"), ("44259-0", "LA6570-1"), ("44254-1", "LA6571-9"),
             ("44251-7", "LA6568-5"), ("44258-2", "LA6569-3"), ("44252-5", "LA6570-1"), ("44253-3", "LA6571-9"),
             ("44260-8", "LA6568-5"), ("69722-7", "LA6572-7")]
    day = date(2026, 12, 1)
    # The panel row stands for the response (CDM 5.4 has no survey_conduct): PHQ-9 panel 3044486.
    # Items and answers have no citable concept id yet (0, codes as source values); each points
    # at its response's row through observation_event_id (field concept unknown: 0).
    expected = [(base, 3044486, "44249-1", None, None, None, None, day, 3044486, None)]
    expected += [(base + i, 0, code, 0, answer, None, base, day, 0, 0)
                 for i, (code, answer) in enumerate(items, start=1)]
    expected += [(base + 11, 0, "contact", None, "false", Decimal(0), base, day, 0, 0)]
    # 0+1+2+3+0+1+2+3+0 = 12; PHQ-9 total score 3042932
    expected += [(base + 12, 3042932, "44261-6", None, None, Decimal(12), base, day, 3042932, 0)]
    assert got == expected
    assert rows("SELECT count(*) FROM cdm.observation WHERE value_as_string IS NOT NULL") == [(0,)]


def test_the_treatment_episode_goes_out_with_its_index_date_and_icd10_source_code(cast, data):
    export()
    episode = cast.patient_a.episodes.get()
    pid = person_id(cast.patient_a)
    assert rows("SELECT episode_id, person_id, episode_concept_id, episode_start_date, episode_end_date, "
                "episode_number, episode_source_value FROM cdm.episode WHERE person_id = %s", [pid]) == [
        (episode.pk, pid, 32533, episode.treatment_start, None, 1, "C34")]  # 32533 Episode of Care
    assert rows("SELECT condition_occurrence_id, condition_concept_id, condition_start_date, condition_source_value "
                "FROM cdm.condition_occurrence WHERE person_id = %s", [pid]) == [
        (episode.pk, 0, episode.treatment_start, "C34")]
    ((start, end),) = rows("SELECT observation_period_start_date, observation_period_end_date "
                           "FROM cdm.observation_period WHERE person_id = %s", [pid])
    assert start <= episode.treatment_start and end >= date(2026, 12, 1)


def test_every_concept_id_the_export_references_is_in_the_concept_table_and_checks_pass(data):
    result = export()
    assert {c["name"]: c["ok"] for c in result["checks"]} and all(c["ok"] for c in result["checks"])
    assert result["tables"]["measurement"] == 4 and result["tables"]["person"] == 2
    assert rows("SELECT cdm_version, source_release_date, vocabulary_version FROM cdm.cdm_source")[0][:2] == (
        "5.4", RELEASE)


def test_the_same_input_gives_identical_tables_and_a_rerun_adds_no_duplicates(data):
    tables = ("person", "observation_period", "condition_occurrence", "episode", "measurement", "observation",
              "cdm_source", "metadata", "concept")

    def dump() -> dict[str, list[tuple]]:
        return {t: rows(f"SELECT * FROM cdm.{t} ORDER BY 1, 2") for t in tables}  # noqa: S608

    export()
    first = dump()
    assert export()["created"] is False
    assert dump() == first
    # A second, fresh schema from the same input holds the same rows, byte for byte as text.
    omop_export(schema="omop_test_again", release_date=RELEASE)
    for table in tables:
        assert rows(f"SELECT t::text FROM cdm.{table} t ORDER BY 1") == rows(  # noqa: S608
            f"SELECT t::text FROM omop_test_again.{table} t ORDER BY 1"), table  # noqa: S608


def test_an_incremental_rerun_adds_new_readings_and_drops_ones_marked_erroneous_since(cast, data):
    export()
    since = T0 + timedelta(days=1)
    later = reading(cast.patient_a, "body-weight", "80.9", "kg", since + timedelta(hours=1))
    Reading.objects.filter(pk=data["weight"].pk).update(erroneous_at=since + timedelta(hours=2))
    result = export(since=since)
    ids = [r[0] for r in rows("SELECT measurement_id FROM cdm.measurement WHERE person_id = %s ORDER BY 1",
                              [person_id(cast.patient_a)])]
    assert ids == sorted([data["bp"].pk * 2, data["bp"].pk * 2 + 1, later.pk * 2])
    assert all(c["ok"] for c in result["checks"])


def test_withdrawn_consent_removes_the_person_and_all_their_rows_on_the_next_run(cast, data):
    export()
    pid = person_id(cast.patient_a)
    cast.patient_a.secondary_use_withdrawn_at = T0
    cast.patient_a.save()
    export(since=T0 + timedelta(days=5))
    for table in ("person", "observation_period", "condition_occurrence", "episode", "measurement", "observation"):
        assert rows(f"SELECT count(*) FROM cdm.{table} WHERE person_id = %s", [pid]) == [(0,)], table  # noqa: S608
    assert rows("SELECT count(*) FROM cdm.person") == [(1,)]


def test_a_cohort_export_holds_only_its_members(cast, data):
    cohort = Cohort.objects.create(name="Lung", condition_code="DC34")
    export(cohort_id=cohort.pk)
    assert rows("SELECT person_id FROM cdm.person") == [(person_id(cast.patient_a),)]


@pytest.mark.parametrize("schema", ["x; drop", "public", "Omop", "pg_catalog", "", "a" * 64])
def test_a_bad_schema_name_is_refused_with_a_clear_error(data, schema):
    with pytest.raises(OmopError, match="not a usable schema name"):
        omop_export(schema=schema, release_date=RELEASE)


def test_an_existing_schema_that_is_not_omop_is_refused_and_left_alone(data):
    with connection.cursor() as c:
        c.execute("CREATE SCHEMA not_omop")
    with pytest.raises(OmopError, match="holds no OMOP CDM tables"):
        omop_export(schema="not_omop", release_date=RELEASE)


def test_the_command_refuses_an_unknown_cohort_and_garbage_since_in_words(data):
    with pytest.raises(CommandError, match="no cohort 999999"):
        call_command("export_omop", "--schema", SCHEMA, "--cohort", "999999", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="--since"):
        call_command("export_omop", "--schema", SCHEMA, "--since", "yesterday-ish", stdout=StringIO(),
                     stderr=StringIO())
    with pytest.raises(CommandError, match="not a usable schema name"):
        call_command("export_omop", "--schema", "x; drop", stdout=StringIO(), stderr=StringIO())


def test_the_command_exports_and_prints_the_counts_and_checks(data):
    out = StringIO()
    call_command("export_omop", "--schema", SCHEMA, "--release-date", "2026-12-01", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "measurement: 4" in text and "all checks passed" in text


def test_quality_staff_start_an_omop_job_from_the_page_and_read_its_counts_and_checks(
        cast, data, client, django_capture_on_commit_callbacks):
    from exports.models import ExportStatus, OmopExportJob
    from exports.omop.jobs import omop_job_run

    client.force_login(cast.quality)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/quality/omop/", {"schema": SCHEMA})
    assert response.status_code == 302 and len(callbacks) == 1  # enqueued after commit
    job = OmopExportJob.objects.get()
    assert job.status == ExportStatus.QUEUED and job.requester == cast.quality
    omop_job_run(job_id=job.pk)  # what the worker does
    assert omop_job_run(job_id=job.pk) is None  # a second delivery finds it claimed
    status = client.get(f"/quality/omop/{job.pk}.json").json()
    assert status["status"] == "completed" and status["progress"] == 100
    assert status["result"]["tables"]["measurement"] == 4
    assert all(c["ok"] for c in status["result"]["checks"])
    assert SCHEMA in client.get("/quality/omop/").content.decode()


def test_the_page_refuses_a_bad_schema_name_in_words_and_starts_nothing(cast, data, client):
    from exports.models import OmopExportJob

    client.force_login(cast.quality)
    response = client.post("/quality/omop/", {"schema": "x; drop"})
    assert response.status_code == 200 and "not a usable schema name" in response.content.decode()
    assert not OmopExportJob.objects.exists()


def test_a_clinician_can_neither_start_nor_read_omop_exports(cast, client):
    client.force_login(cast.clinician_a)
    assert client.post("/quality/omop/", {"schema": SCHEMA}).status_code == 403
    assert client.get("/quality/omop/").status_code == 403


def test_an_incremental_rerun_brings_all_rows_of_a_person_new_to_the_schema_even_older_ones(cast, data):
    from tests.factories import make_patient

    export()
    patient_c = make_patient("patient-c", "030350-3333", cast.team_a, cast.program_a)
    old = reading(patient_c, "heart-rate", "64", "/min", T0 - timedelta(days=3))
    result = export(since=T0 + timedelta(days=1))
    assert rows("SELECT measurement_id FROM cdm.measurement WHERE person_id = %s",
                [person_id(patient_c)]) == [(old.pk * 2,)]
    assert result["tables"]["person"] == 3 and all(c["ok"] for c in result["checks"])


def test_a_failed_check_fails_the_job_with_the_reason_and_keeps_nothing(cast, data, monkeypatch):
    from exports.models import ExportStatus
    from exports.omop import export as export_module
    from exports.omop.jobs import omop_job_create, omop_job_run

    # Break one step on purpose: without observation periods every event lies outside one.
    monkeypatch.setattr(export_module._Run, "observation_period", lambda self: None)
    job = omop_job_create(user=cast.quality, schema=SCHEMA, since=None, cohort_id=None, release_date=RELEASE,
                          enqueue=False)
    job = omop_job_run(job_id=job.pk)
    assert job.status == ExportStatus.FAILED and "inside an observation period" in job.failure
    failed = [c for c in job.result["checks"] if not c["ok"]]
    assert failed and all("observation period" in c["name"] for c in failed)
    assert rows("SELECT to_regnamespace(%s)", [SCHEMA]) == [(None,)]  # the schema went with the rollback


def test_an_unknown_cohort_is_refused_before_a_job_is_recorded(cast):
    from exports.models import OmopExportJob
    from exports.omop.jobs import omop_job_create

    with pytest.raises(OmopError, match="no cohort 424242"):
        omop_job_create(user=cast.quality, schema=SCHEMA, since=None, cohort_id=424242, release_date=RELEASE)
    assert not OmopExportJob.objects.exists()


def test_a_response_with_more_rows_than_its_id_range_holds_is_refused_in_words(cast, data):
    QuestionnaireResponse.objects.create(
        patient=cast.patient_b, questionnaire=cast.questionnaire, authored_at=T0, received_at=T0,
        items=[{"linkId": "pillows", "answer": [{"valueInteger": i} for i in range(130)]}])
    with pytest.raises(OmopError, match="more than 128 answers and scores"):
        export()


def test_an_incremental_rerun_replaces_the_rows_of_a_response_changed_since(cast, data):
    export()
    since = T0 + timedelta(days=1)
    response = data["phq9"]
    answers = {**PHQ9_ANSWERS, "phq9-1": "LA6571-9"}  # 'nearly every day' instead of 'not at all'
    items = response_items(response.questionnaire, answers)
    QuestionnaireResponse.objects.filter(pk=response.pk).update(
        items=items, scores=score_response(questionnaire=response.questionnaire, items=items),
        updated_at=since + timedelta(hours=1))
    export(since=since)
    base = response.pk * 128
    assert rows("SELECT value_source_value FROM cdm.observation WHERE observation_id = %s", [base + 1]) == [
        ("LA6571-9",)]
    assert rows("SELECT value_as_number FROM cdm.observation WHERE observation_id = %s", [base + 12]) == [
        (Decimal(15),)]  # 12 + 3
    assert rows("SELECT count(*) FROM cdm.observation WHERE observation_id / 128 = %s", [response.pk]) == [(13,)]


def test_answers_are_numbered_in_the_questionnaires_order_whatever_the_responses_order(cast, data):
    """The export numbers each response's rows on its own (no sort over all rows): the places
    still follow the questionnaire's definition, not the order the answers were stored in."""
    response = data["phq9"]
    export()
    before = rows("SELECT observation_id, observation_source_value, value_source_value FROM cdm.observation "
                  "WHERE observation_id / 128 = %s ORDER BY 1", [response.pk])
    # The same answers, the groups and the answers inside them in reverse order.
    items = [{**item, "item": item["item"][::-1]} if "item" in item else item for item in response.items[::-1]]
    assert items != response.items
    QuestionnaireResponse.objects.filter(pk=response.pk).update(items=items)
    export()
    assert rows("SELECT observation_id, observation_source_value, value_source_value FROM cdm.observation "
                "WHERE observation_id / 128 = %s ORDER BY 1", [response.pk]) == before
    assert [r[1] for r in before[:3]] == ["44249-1", "44250-9", "44255-8"]  # panel, item 1, item 2


def test_a_questionnaire_with_a_linkid_used_twice_is_refused_in_words_and_nothing_is_kept(cast, data):
    export()
    phq9 = data["phq9"].questionnaire
    resource = {**phq9.resource, "item": [*phq9.resource["item"], {"linkId": "contact", "type": "boolean"}]}
    type(phq9).objects.filter(pk=phq9.pk).update(resource=resource)  # past the import's validation
    QuestionnaireResponse.objects.create(patient=cast.patient_b, questionnaire=phq9, items=data["phq9"].items,
                                         authored_at=T0, received_at=T0)
    with pytest.raises(OmopError, match="uses the linkId 'contact' twice"):
        export()
    assert rows("SELECT count(*) FROM cdm.observation") == [(13,)]  # the first export's rows, untouched


def test_the_export_puts_the_sessions_time_zone_back(data):
    with connection.cursor() as c:
        c.execute("SHOW TimeZone")
        zone = c.fetchone()[0]
        export()  # its big inserts run with Europe/Copenhagen as the session's zone
        c.execute("SHOW TimeZone")
        assert c.fetchone()[0] == zone
    assert rows("SELECT DISTINCT observation_datetime FROM cdm.observation") == [(datetime(2026, 12, 1, 11, 30),)]
