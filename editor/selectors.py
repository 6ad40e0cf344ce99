"""Who may change which programme in the editor."""


from django.db.models import Q, QuerySet

from accounts.models import Role, User
from alerts.models import EscalationPolicy
from patients.models import CareTeam, Program


def led_teams(user: User) -> QuerySet[CareTeam]:
    """The teams whose escalation policy names ``user`` as lead (how a lead is recognised)."""
    return CareTeam.objects.filter(pk__in=EscalationPolicy.objects.filter(lead=user).values("care_team"))


def editable_programs(user: User) -> QuerySet[Program]:
    """Administrators: every programme. A team lead: the programmes their teams run (named on the
    programme) or follow patients in (episodes), as alerts.safety counts a lead."""
    if getattr(user, "role", None) == Role.ADMIN:
        return Program.objects.all()
    teams = led_teams(user)
    return Program.objects.filter(Q(teams__in=teams) | Q(episodes__care_team__in=teams)).distinct()


def may_edit_program(user: User, program: Program) -> bool:
    return editable_programs(user).filter(pk=program.pk).exists()
