"""The demo command gives both demo programmes schedules and their patients occurrences."""

from django.core.management import call_command

from schedules.models import Occurrence, OccurrenceStatus, Schedule


def test_demo_schedules_both_programmes_and_running_it_again_adds_no_occurrences(
    db, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", patients=4, stdout=None)
    assert set(Schedule.objects.values_list("program__slug", flat=True)) == {
        "lung-cancer-follow-up", "heart-failure-home-monitoring"}
    for username in ("patient-a", "patient-b"):
        assert Occurrence.objects.filter(patient__user__username=username).exists()
    assert not Occurrence.objects.filter(status=OccurrenceStatus.MISSED).exists()
    first = (Schedule.objects.count(), Occurrence.objects.count())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", patients=4, stdout=None)
    assert (Schedule.objects.count(), Occurrence.objects.count()) == first
