"""``{% if user|may_set_up_programmes %}``: the staff menu's link to the programme editor, for
administrators and team leads (editor.selectors.led_teams) — the people the editor lets in."""


from django import template
from django.contrib.auth.models import AnonymousUser

from accounts.models import Role, User
from editor.selectors import led_teams

register = template.Library()


@register.filter
def may_set_up_programmes(user: User | AnonymousUser) -> bool:
    if not isinstance(user, User):  # the menu of a signed-out page
        return False
    if user.role == Role.ADMIN:
        return True
    if user.role != Role.CLINICIAN:
        return False
    # One query per page for a clinician, kept on the request's user object.
    cached = getattr(user, "_leads_a_team", None)
    if cached is None:
        cached = led_teams(user).exists()
        user._leads_a_team = cached  # type: ignore[attr-defined]  # a per-request cache on this user object
    return bool(cached)
