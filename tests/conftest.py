import os
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.utils import translation

from proplatform.celery import app as celery_app
from tests.factories import Cast, make_cast


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Browser and live-server tests start their own processes: run them last, after the fast ones.
    items.sort(key=lambda item: ("browser" in item.keywords, "live" in item.keywords))


@pytest.fixture(autouse=True)
def _tasks_in_process(request: pytest.FixtureRequest):
    """Unit tests run Celery tasks in-process (the same task code, no worker to wait for).
    Tests marked ``live`` get the real broker and a real worker instead (tests/live.py)."""
    if "live" in request.keywords:
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _site_language() -> Iterator[None]:
    # The test client's requests activate the language they ask for in this thread and leave it
    # there (LocaleMiddleware does not switch back): each test starts in the site's language, so
    # no test passes or fails by the language of the test before it.
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _test_client_web(settings):
    # The test client speaks plain HTTP (the HTTPS redirect has its own test in
    # test_health_and_settings.py). Production serves hashed files from collectstatic's
    # manifest; tests serve them as they are.
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _staff_two_factor_off(settings):
    # Most tests log staff in with force_login and test what they may see; two-factor login for
    # staff (on by default in the production shape) has its own tests in test_login_security.py.
    settings.REQUIRE_STAFF_TWO_FACTOR = False


@pytest.fixture(autouse=True)
def _fast_password_hashing(request: pytest.FixtureRequest, settings):
    # Live tests log in against servers in other processes, which use the real hashers.
    if "live" not in request.keywords:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cast(db: None) -> Cast:
    return make_cast()


@pytest.fixture
def live_cast(transactional_db: None) -> Cast:
    """The cast, committed, so servers in other processes see it."""
    return make_cast()


def production_shape_required() -> bool:
    """In CI the live tests must run against PostgreSQL and Redis; skipping them is a failure."""
    return os.environ.get("PROPLATFORM_REQUIRE_PRODUCTION_SHAPE") == "1"


pytest_plugins = ["tests.live"]
