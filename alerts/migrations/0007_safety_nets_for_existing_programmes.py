"""Issue 19: every questionnaire already in a programme gets its safety net now, so
/rules/safety/ lists them from the start (evaluation would otherwise create each one at the first
answer). The same rows alerts.safety.safety_rules_ensure makes: a ``safety`` rule per programme
and instrument URL with its first RuleRevision."""

from django.db import migrations


def forwards(apps, schema_editor):
    Program = apps.get_model("patients", "Program")
    Rule = apps.get_model("alerts", "Rule")
    RuleRevision = apps.get_model("alerts", "RuleRevision")
    for program in Program.objects.all():
        have = set(Rule.objects.filter(program=program).exclude(safety_net_for="")
                   .values_list("safety_net_for", flat=True))
        titles: dict[str, str] = {}
        for url, title in program.questionnaires.order_by("created_at").values_list("url", "title"):
            titles[url] = title or url.rsplit("/", 1)[-1]  # the newest version's title wins
        for url, title in sorted(titles.items()):
            if url in have:
                continue
            rule = Rule.objects.create(program=program, kind="safety", name=f"Sikkerhedsnet: {title}",
                                       severity="red", params={"questionnaire": url}, safety_net_for=url,
                                       version=1, active=True)
            RuleRevision.objects.create(rule=rule, version=1, kind=rule.kind, name=rule.name,
                                        severity=rule.severity, params=rule.params, active=True,
                                        cooldown=rule.cooldown, reason="safety net of the instrument (issue 19)")


def backwards(apps, schema_editor):
    # Safety nets that never raised an alert go; the others are kept (alerts point at them).
    Rule = apps.get_model("alerts", "Rule")
    Rule.objects.exclude(safety_net_for="").filter(alerts=None).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0006_rule_safety_net"),
        ("questionnaires", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
