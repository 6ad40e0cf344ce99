"""Cohorts: criteria, membership evaluated now, consent, the pages and who may see them."""

import itertools
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.models import Action, AuditEvent
from outcomes.models import Cohort
from outcomes.selectors import cohort_patient_ids, cohort_patient_ids_query
from outcomes.suppression import SuppressedTable, _equations, derivable, display, suppress_table
from patients.models import Patient, Region, Sex, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse
from tests.factories import Cast

pytestmark = pytest.mark.django_db

_cpr_serial = iter(range(1000, 9999))


def _patient(cast: Cast, *, born: date, start: date, sex: str = Sex.FEMALE, team=None, program=None,
             condition: str | None = None) -> Patient:
    program = program or cast.program_a
    patient = Patient.objects.create(
        cpr=f"{born:%d%m%y}-{next(_cpr_serial)}", given_name="Ingrid", family_name="Kohortsen",
        birth_date=born, sex=sex,
    )
    TreatmentEpisode.objects.create(
        patient=patient, program=program, care_team=team or cast.team_a,
        condition_code=condition or program.condition_code, treatment_start=start,
    )
    return patient


# --- membership -------------------------------------------------------------------------------

def test_an_empty_cohort_holds_every_patient_who_has_not_withdrawn(cast: Cast) -> None:
    cohort = Cohort.objects.create(name="Everyone")
    assert set(cohort_patient_ids(cohort=cohort)) == {cast.patient_a.pk, cast.patient_b.pk}


def test_a_patient_who_withdrew_from_secondary_use_is_never_a_member(cast: Cast) -> None:
    cohort = Cohort.objects.create(name="Lung", program=cast.program_a)
    assert cohort_patient_ids(cohort=cohort) == [cast.patient_a.pk]
    Patient.objects.filter(pk=cast.patient_a.pk).update(secondary_use_withdrawn_at=timezone.now())
    assert cohort_patient_ids(cohort=cohort) == []


def test_membership_is_evaluated_when_asked_not_frozen_when_saved(cast: Cast) -> None:
    cohort = Cohort.objects.create(name="Lung", program=cast.program_a)
    before = cohort_patient_ids(cohort=cohort)
    newcomer = _patient(cast, born=date(1960, 1, 1), start=timezone.localdate())
    assert cohort_patient_ids(cohort=cohort) == sorted([*before, newcomer.pk])


def test_programme_condition_department_region_and_sex_each_restrict(cast: Cast) -> None:
    today = timezone.localdate()
    male_b = _patient(cast, born=date(1955, 3, 3), start=today, sex=Sex.MALE, team=cast.team_b,
                      program=cast.program_b)
    specific = _patient(cast, born=date(1955, 3, 3), start=today, condition="DC341")
    a, b = cast.patient_a.pk, cast.patient_b.pk
    assert set(cohort_patient_ids(cohort=Cohort(name="p", program=cast.program_b))) == {b, male_b.pk}
    # A code matches itself and every more specific code, and nothing else.
    assert set(cohort_patient_ids(cohort=Cohort(name="c", condition_code="DC34"))) == {a, specific.pk}
    assert cohort_patient_ids(cohort=Cohort(name="c", condition_code="DC341")) == [specific.pk]
    assert set(cohort_patient_ids(cohort=Cohort(name="d", department="Hjerte"))) == {b, male_b.pk}
    assert set(cohort_patient_ids(cohort=Cohort(name="r", region=Region.MIDTJYLLAND))) == {a, specific.pk}
    assert cohort_patient_ids(cohort=Cohort(name="s", sex=Sex.MALE)) == [male_b.pk]


def test_treatment_start_between_dates_includes_both_ends(cast: Cast) -> None:
    on_first = _patient(cast, born=date(1960, 1, 1), start=date(2025, 1, 1))
    on_last = _patient(cast, born=date(1960, 1, 1), start=date(2025, 3, 31))
    _patient(cast, born=date(1960, 1, 1), start=date(2024, 12, 31))
    _patient(cast, born=date(1960, 1, 1), start=date(2025, 4, 1))
    cohort = Cohort(name="Q1", treatment_start_from=date(2025, 1, 1), treatment_start_to=date(2025, 3, 31))
    assert set(cohort_patient_ids(cohort=cohort)) == {on_first.pk, on_last.pk}


def test_age_band_is_the_age_in_whole_years_on_the_treatment_start(cast: Cast) -> None:
    start = date(2025, 6, 15)
    turns_40_that_day = _patient(cast, born=date(1985, 6, 15), start=start)
    turns_40_next_day = _patient(cast, born=date(1985, 6, 16), start=start)  # still 39
    aged_80 = _patient(cast, born=date(1945, 1, 1), start=start)
    band_18_39 = Cohort(name="18-39", age_min=18, age_max=39, treatment_start_from=start)
    band_40_59 = Cohort(name="40-59", age_min=40, age_max=59, treatment_start_from=start)
    band_80_plus = Cohort(name="80+", age_min=80, treatment_start_from=start)
    assert cohort_patient_ids(cohort=band_18_39) == [turns_40_next_day.pk]
    assert cohort_patient_ids(cohort=band_40_59) == [turns_40_that_day.pk]
    assert cohort_patient_ids(cohort=band_80_plus) == [aged_80.pk]


def test_a_leap_day_birthday_counts_from_the_first_of_march_in_common_years(cast: Cast) -> None:
    leapling = _patient(cast, born=date(2004, 2, 29), start=date(2022, 2, 28))
    on_march_first = _patient(cast, born=date(2004, 2, 29), start=date(2022, 3, 1))
    adults = Cohort(name="adults", age_min=18, treatment_start_from=date(2022, 1, 1),
                    treatment_start_to=date(2022, 12, 31))
    assert cohort_patient_ids(cohort=adults) == [on_march_first.pk]
    minors = Cohort(name="minors", age_max=17, treatment_start_from=date(2022, 1, 1),
                    treatment_start_to=date(2022, 12, 31))
    assert cohort_patient_ids(cohort=minors) == [leapling.pk]


def test_a_patient_with_two_matching_episodes_is_listed_once(cast: Cast) -> None:
    TreatmentEpisode.objects.create(patient=cast.patient_a, program=cast.program_a, care_team=cast.team_a,
                                    condition_code="DC34", treatment_start=timezone.localdate() - timedelta(days=400))
    assert cohort_patient_ids(cohort=Cohort(name="lung", program=cast.program_a)) == [cast.patient_a.pk]


# --- validation of criteria --------------------------------------------------------------------

def test_a_period_ending_before_it_starts_is_refused_on_the_end_field() -> None:
    cohort = Cohort(name="x", treatment_start_from=date(2025, 2, 1), treatment_start_to=date(2025, 1, 1))
    with pytest.raises(ValidationError) as err:
        cohort.full_clean()
    assert "treatment_start_to" in err.value.message_dict


def test_an_inverted_age_band_is_refused_on_the_upper_age_field() -> None:
    with pytest.raises(ValidationError) as err:
        Cohort(name="x", age_min=60, age_max=40).full_clean()
    assert "age_max" in err.value.message_dict


def test_a_malformed_condition_code_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        Cohort(name="x", condition_code="C34; drop").full_clean()
    assert "condition_code" in err.value.message_dict


def test_a_cohort_cannot_ask_for_withdrawn_patients_not_even_past_the_form() -> None:
    with pytest.raises(ValidationError) as err:
        Cohort(name="x", consent="withdrawn").full_clean()
    assert "consent" in err.value.message_dict
    # The database refuses it too, so no other write path can store one.
    with pytest.raises(IntegrityError), transaction.atomic():
        Cohort.objects.create(name="x", consent="withdrawn")


def test_the_database_refuses_an_inverted_period_or_age_band() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Cohort.objects.create(name="p", treatment_start_from=date(2025, 2, 1), treatment_start_to=date(2025, 1, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Cohort.objects.create(name="a", age_min=60, age_max=40)


# --- small-cell suppression ------------------------------------------------------------------

def _free_or(node: tuple[str, int], constrained: bool) -> tuple[str, int]:
    return node if constrained else ("S", 0)


def _bridges(table, row_totals: bool, col_totals: bool) -> set:
    """An independent check, by graph rather than by algebra: rows and columns with a total are
    vertices with an equation; everything without one is merged into one free vertex S; every
    hidden cell joins its row and column, every hidden total joins its row/column to S. A hidden
    value can be worked out exactly when its edge is a bridge (on no cycle)."""
    edges = []
    for i, row in enumerate(table.cells):
        for j, v in enumerate(row):
            if v is None:
                edges.append((("cell", i, j), _free_or(("r", i), row_totals), _free_or(("c", j), col_totals)))
    for i, v in enumerate(table.row_totals or ()):
        if v is None:
            edges.append((("row", i, -1), ("r", i), ("S", 0)))
    for j, v in enumerate(table.col_totals or ()):
        if v is None:
            edges.append((("col", -1, j), ("c", j), ("S", 0)))
    bridges = set()
    for k, (item, a, b) in enumerate(edges):
        if a == b:
            continue  # a loop at S: nothing constrains it
        rest = [e for n, e in enumerate(edges) if n != k]
        seen, todo = {a}, [a]
        while todo:
            node = todo.pop()
            for _, x, y in rest:
                for u, w in ((x, y), (y, x)):
                    if u == node and w not in seen:
                        seen.add(w)
                        todo.append(w)
        if b not in seen:
            bridges.add(item)
    return bridges


_counts = st.one_of(st.integers(0, 6), st.integers(0, 60))
_tables = st.integers(1, 4).flatmap(
    lambda cols: st.lists(st.lists(_counts, min_size=cols, max_size=cols), min_size=1, max_size=4))


@settings(max_examples=300, deadline=None)
@given(rows=_tables, row_totals=st.booleans(), col_totals=st.booleans())
def test_no_suppressed_count_can_be_worked_out_by_subtraction(rows, row_totals, col_totals) -> None:
    table = suppress_table(rows, row_totals=row_totals, col_totals=col_totals)
    assert _bridges(table, row_totals, col_totals) == set()
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            shown = table.cells[i][j]
            assert shown is None or shown == v  # nothing altered, only hidden
            if 1 <= v <= 4:
                assert shown is None and ("cell", i, j) in table.primary
            if v == 0:
                assert shown == 0  # zero identifies nobody and is never a complement
    for totals, sums in ((table.row_totals, [sum(r) for r in rows]),
                         (table.col_totals, [sum(c) for c in zip(*rows, strict=True)])):
        for shown, v in zip(totals or (), sums, strict=False):
            assert shown is None or shown == v
            assert not (1 <= v <= 4 and shown is not None)


@settings(max_examples=300, deadline=None)
@given(rows=_tables, row_totals=st.booleans(), col_totals=st.booleans(), data=st.data())
def test_the_algebraic_check_agrees_with_the_graph_check_on_any_hidden_set(rows, row_totals, col_totals,
                                                                         data) -> None:
    n_rows, n_cols = len(rows), len(rows[0])
    hide = data.draw(st.frozensets(st.tuples(st.integers(0, n_rows - 1), st.integers(0, n_cols - 1))))
    hide_rows = data.draw(st.frozensets(st.integers(0, n_rows - 1))) if row_totals else frozenset()
    hide_cols = data.draw(st.frozensets(st.integers(0, n_cols - 1))) if col_totals else frozenset()
    table = SuppressedTable(
        cells=tuple(tuple(None if (i, j) in hide else 1 for j in range(n_cols)) for i in range(n_rows)),
        row_totals=tuple(None if i in hide_rows else 1 for i in range(n_rows)) if row_totals else None,
        col_totals=tuple(None if j in hide_cols else 1 for j in range(n_cols)) if col_totals else None,
        primary=frozenset(),
    )
    hidden = ([("cell", i, j) for i in range(n_rows) for j in range(n_cols) if (i, j) in hide]
              + [("row", i, -1) for i in sorted(hide_rows)] + [("col", -1, j) for j in sorted(hide_cols)])
    assert derivable(hidden, _equations(n_rows, n_cols, row_totals, col_totals)) == _bridges(
        table, row_totals, col_totals)


def test_a_small_cell_whose_row_total_is_shown_takes_the_total_with_it() -> None:
    # responded 3, did not respond 9, expected 12: showing 9 and 12 would give away the 3.
    table = suppress_table([[3, 9], [20, 15]], row_totals=True)
    assert table.cells == ((None, 9), (20, 15))
    assert table.row_totals == (None, 35)
    assert table.marker(("cell", 0, 0)) == "<5" and table.marker(("row", 0, -1)) == "–"


def test_without_totals_only_the_small_cells_are_hidden() -> None:
    table = suppress_table([[3, 9], [0, 15]])
    assert table.cells == ((None, 9), (0, 15))


def test_with_both_totals_a_single_small_cell_needs_a_second_hidden_value_in_its_row_and_column() -> None:
    table = suppress_table([[3, 10, 12], [11, 13, 14], [15, 16, 17]], row_totals=True, col_totals=True)
    assert table.cells[0][0] is None
    assert _bridges(table, True, True) == set()


def test_a_ragged_or_negative_table_is_refused() -> None:
    with pytest.raises(ValueError):
        suppress_table([[1, 2], [3]])
    with pytest.raises(ValueError):
        suppress_table([[1, -2]])


def test_display_shows_one_to_four_as_under_five_and_zero_as_zero() -> None:
    assert [display(n) for n in (0, 1, 4, 5, None)] == ["0", "<5", "<5", "5", "<5"]


# --- pages --------------------------------------------------------------------------------------

def _form(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {"name": "Lung 60-69", "description": "", "program": "", "condition_code": "",
                               "treatment_start_from": "", "treatment_start_to": "", "department": "",
                               "region": "", "sex": "", "age_min": "", "age_max": "", "consent": "not-withdrawn"}
    data.update(overrides)
    return data


@pytest.mark.parametrize("who", ["clinician_a", "patient_a", "admin_patient_user"])
def test_clinicians_and_patients_get_403_on_every_cohort_page(cast: Cast, client, who: str) -> None:
    user = cast.patient_a.user if who in ("patient_a", "admin_patient_user") else cast.clinician_a
    cohort = Cohort.objects.create(name="Lung", program=cast.program_a)
    client.force_login(user)
    for url in (reverse("cohort-list"), reverse("cohort-new"), reverse("cohort-detail", args=[cohort.pk]),
                reverse("cohort-edit", args=[cohort.pk]), reverse("cohort-delete", args=[cohort.pk])):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("cohort-delete", args=[cohort.pk])).status_code == 403
    assert client.post(reverse("cohort-new"), _form(name="sneaky")).status_code == 403
    assert Cohort.objects.filter(pk=cohort.pk).exists() and not Cohort.objects.filter(name="sneaky").exists()


def test_signed_out_visitors_are_sent_to_the_login_page(cast: Cast, client) -> None:
    response = client.get(reverse("cohort-list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_quality_staff_create_a_cohort_and_the_creation_is_audited(cast: Cast, client) -> None:
    client.force_login(cast.quality)
    response = client.post(reverse("cohort-new"), _form(
        program=cast.program_a.pk, condition_code="dc34", treatment_start_from="2025-01-01",
        treatment_start_to="2025-12-31", department="Lunge", region=Region.MIDTJYLLAND, sex=Sex.FEMALE,
        age_min="60", age_max="69"))
    cohort = Cohort.objects.get(name="Lung 60-69")
    assert response.status_code == 302 and response["Location"] == reverse("cohort-detail", args=[cohort.pk])
    assert (cohort.program, cohort.condition_code, cohort.age_min, cohort.age_max, cohort.created_by) == (
        cast.program_a, "DC34", 60, 69, cast.quality)
    assert AuditEvent.objects.filter(user=cast.quality, action=Action.CREATE, resource=f"Cohort/{cohort.pk}").exists()


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"treatment_start_from": "2025-06-01", "treatment_start_to": "2025-01-01"}, "treatment_start_to", "before"),
    ({"age_min": "70", "age_max": "40"}, "age_max", "below"),
    ({"age_min": "-3"}, "age_min", ""),
    ({"age_max": "400"}, "age_max", "130"),
    ({"program": "999999"}, "program", "programme"),
    ({"program": "lung"}, "program", "programme"),
    ({"department": "Nowhere"}, "department", ""),
    ({"region": "9999"}, "region", ""),
    ({"sex": "robot"}, "sex", ""),
    ({"condition_code": "lung cancer"}, "condition_code", "SKS"),
    ({"treatment_start_from": "31-02-2025"}, "treatment_start_from", ""),
    ({"consent": "withdrawn"}, "consent", ""),
    ({"name": ""}, "name", ""),
])
def test_invalid_criteria_are_refused_with_a_message_next_to_the_field_and_nothing_is_stored(
        cast: Cast, client, overrides: dict, field: str, message: str) -> None:
    client.force_login(cast.quality)
    response = client.post(reverse("cohort-new"), _form(**overrides), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    html = response.content.decode()
    assert f'id="id_{field}-errors"' in html or f'id="id_{field}_0-errors"' in html or 'class="errors"' in html
    assert not Cohort.objects.exists()


def test_a_duplicate_name_is_refused_on_the_name_field(cast: Cast, client) -> None:
    Cohort.objects.create(name="Lung 60-69")
    client.force_login(cast.quality)
    response = client.post(reverse("cohort-new"), _form())
    assert response.status_code == 400 and "name" in response.context["form"].errors
    assert Cohort.objects.count() == 1


def test_editing_keeps_the_creator_and_an_invalid_edit_changes_nothing(cast: Cast, client) -> None:
    cohort = Cohort.objects.create(name="Old", created_by=cast.admin, age_min=40)
    client.force_login(cast.quality)
    bad = client.post(reverse("cohort-edit", args=[cohort.pk]), _form(name="New", age_min="50", age_max="45"))
    assert bad.status_code == 400
    cohort.refresh_from_db()
    assert (cohort.name, cohort.age_min) == ("Old", 40)
    good = client.post(reverse("cohort-edit", args=[cohort.pk]), _form(name="New", age_min="80"))
    assert good.status_code == 302
    cohort.refresh_from_db()
    assert (cohort.name, cohort.age_min, cohort.created_by) == ("New", 80, cast.admin)
    assert AuditEvent.objects.filter(action=Action.UPDATE, resource=f"Cohort/{cohort.pk}").exists()


def test_delete_asks_first_and_deletes_only_on_post(cast: Cast, client) -> None:
    cohort = Cohort.objects.create(name="Temp")
    client.force_login(cast.quality)
    page = client.get(reverse("cohort-delete", args=[cohort.pk]))
    assert page.status_code == 200 and "Temp" in page.content.decode()
    assert Cohort.objects.filter(pk=cohort.pk).exists()
    assert client.post(reverse("cohort-delete", args=[cohort.pk])).status_code == 302
    assert not Cohort.objects.filter(pk=cohort.pk).exists()
    assert client.get(reverse("cohort-detail", args=[cohort.pk])).status_code == 404
    assert client.post(reverse("cohort-delete", args=[cohort.pk])).status_code == 404


def test_the_cohort_page_shows_small_counts_as_under_five_no_identifiers_and_is_audited(cast: Cast, client) -> None:
    today = timezone.localdate()
    for n in range(7):  # seven members whose 3-month window has closed; two of them answered in it
        p = _patient(cast, born=date(1960, 1, 1), start=today - timedelta(days=130))
        if n < 2:
            QuestionnaireResponse.objects.create(
                patient=p, questionnaire=cast.questionnaire, items=[],
                authored_at=timezone.now() - timedelta(days=130 - 91))
    cohort = Cohort.objects.create(name="Recent lung", program=cast.program_a,
                                   treatment_start_from=today - timedelta(days=130),
                                   treatment_start_to=today - timedelta(days=130))
    client.force_login(cast.quality)
    response = client.get(reverse("cohort-detail", args=[cohort.pk]))
    assert response.status_code == 200
    rows = {r.label: r for r in response.context["rows"]}
    three = rows["3 måneder"] if "3 måneder" in rows else rows["3 months"]
    # 2 answered ("<5"), 5 did not: showing 5 next to the total 7 would give the 2 away.
    assert three.cells == ["<5", "–", "0"] and three.members == "7" and three.rate == "–"
    html = response.content.decode()
    for member in Patient.objects.all():
        assert str(member.pk) not in html and member.cpr not in html and member.family_name not in html
    event = AuditEvent.objects.get(resource=f"Cohort/{cohort.pk} outcome counts (aggregate)")
    assert event.user == cast.quality and event.action == Action.READ and event.patient_ref is None


def test_the_cohort_list_shows_member_counts_suppressed_and_links_each_cohort(cast: Cast, client) -> None:
    small = Cohort.objects.create(name="Small", program=cast.program_a)
    client.force_login(cast.quality)
    response = client.get(reverse("cohort-list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert dict((c.name, n) for c, n in response.context["cohorts"]) == {"Small": "<5"}
    assert reverse("cohort-detail", args=[small.pk]) in html
    assert AuditEvent.objects.filter(user=cast.quality, resource="Cohort list (member counts)").exists()


def test_the_quality_overview_links_to_the_cohorts(cast: Cast, client) -> None:
    client.force_login(cast.quality)
    assert reverse("cohort-list") in client.get(reverse("quality-overview")).content.decode()


def test_an_unknown_cohort_is_404(cast: Cast, client) -> None:
    client.force_login(cast.quality)
    assert client.get("/quality/cohorts/999999/").status_code == 404
    assert client.get("/quality/cohorts/999999/edit/").status_code == 404


def _feasible_values(cells, total, primary, row: int):
    """Brute force: every value each hidden item of one row can take, given what is shown — shown
    numbers, "<5" = 1-4, "–" = at least 5 (it would be "<5" if smaller, and a zero is shown)."""
    def allowed(item, v: int) -> bool:
        return 1 <= v <= 4 if item in primary else v >= 5

    hidden = [j for j, v in enumerate(cells) if v is None]
    seen: dict = {("cell", row, j): set() for j in hidden}
    if total is None:
        seen[("row", row, -1)] = set()
    shown_sum = sum(v for v in cells if v is not None)
    ranges = [[v for v in range(0, 40) if allowed(("cell", row, j), v)] for j in hidden]
    for combo in itertools.product(*ranges):
        t = shown_sum + sum(combo)
        if total is not None and t != total:
            continue
        if total is None and not allowed(("row", row, -1), t):
            continue
        for j, v in zip(hidden, combo, strict=True):
            seen[("cell", row, j)].add(v)
        if total is None:
            seen[("row", row, -1)].add(t)
    return seen


_small_tables = st.integers(1, 3).flatmap(
    lambda cols: st.lists(st.lists(st.integers(0, 9), min_size=cols, max_size=cols), min_size=1, max_size=3))


@settings(max_examples=200, deadline=None)
@given(rows=_small_tables, protect_totals=st.booleans())
def test_with_row_totals_no_hidden_count_is_pinned_down_even_using_what_the_markers_say(rows, protect_totals) -> None:
    # The cohort page's shape: each row has a total and rows share no equation.
    table = suppress_table(rows, row_totals=True, protect_totals=protect_totals)
    assert table.row_totals is not None
    for i in range(len(rows)):
        values = _feasible_values(table.cells[i], table.row_totals[i], table.primary, i)
        for item, possible in values.items():
            assert len(possible) >= 2, (rows, table, item, possible)


def test_a_hidden_one_next_to_a_hidden_five_under_a_total_of_six_hides_the_total_too() -> None:
    # "<5" + "–" = 6 would mean 1 + 5: the total must go as well, even when totals are protected.
    table = suppress_table([[1, 5, 0]], row_totals=True, protect_totals=True)
    assert table.cells == ((None, None, 0),) and table.row_totals == (None,)


def test_the_member_query_works_as_a_subquery_and_leaves_withdrawn_patients_out(cast: Cast) -> None:
    cohort = Cohort.objects.create(name="All")
    Patient.objects.filter(pk=cast.patient_b.pk).update(secondary_use_withdrawn_at=timezone.now())
    members = Patient.objects.filter(pk__in=cohort_patient_ids_query(cohort=cohort))
    assert list(members.values_list("pk", flat=True)) == [cast.patient_a.pk]
