"""The layers of docs/architecture.md hold: the import-linter contracts in pyproject.toml pass, and
every app of ours is under them."""

import subprocess
import sys
import tomllib
from pathlib import Path

from django.apps import apps

from patients.access import unfinished_work_kinds

ROOT = Path(__file__).resolve().parent.parent


def _importlinter() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_the_import_contracts_pass():
    # A subprocess: import-linter reads the source, not what this test process has imported.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_app_of_ours_is_in_one_layer():
    config = _importlinter()
    layers = next(c for c in config["contracts"] if c["id"] == "layers")["layers"]
    named = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    ours = {app.name for app in apps.get_app_configs() if (ROOT / app.name.replace(".", "/")).is_dir()}
    assert ours - {"proplatform"} <= named
    assert ours <= set(config["root_packages"])


def test_no_file_of_app_code_is_over_600_lines():
    # Issue 22: a module past this has grown more than one concern (as monitoring/ingest.py had
    # at 918 lines). Migrations are generated; tests and benchmarks are not app code.
    config = _importlinter()
    too_long = {
        str(path.relative_to(ROOT)): lines
        for package in config["root_packages"]
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert too_long == {}


def test_alerts_and_answers_each_keep_a_teams_access_while_work_is_unfinished():
    # patients.access names no app above it; the apps holding the work register it. Without
    # these, access would end with an open alert on nobody's worklist.
    assert unfinished_work_kinds() == ["alerts.unresolved", "questionnaires.unreviewed"]


def test_schedules_completes_the_occurrence_an_answer_fulfils_from_inside_its_submission():
    # questionnaires does not import schedules (it lies below); schedules plugs in at ready().
    from questionnaires.services import response_submitted_hooks
    from schedules.services import occurrence_fulfil

    assert response_submitted_hooks() == [occurrence_fulfil]


def test_the_inbox_asks_for_the_evaluation_task_the_alerts_app_plugged_in():
    # The enqueue side does not import the task (contract "enqueue-side"); alerts.apps gives it.
    from alerts.evaluation import dispatch
    from alerts.evaluation.tasks import evaluate_send

    assert dispatch._task_send is evaluate_send
