"""Security of the web pages (issue 10, points 4, 8, 9 and 13 of the outside review).

* 4: logins are locked out per (username, client address) after a number of failures
  (django-axes, on PostgreSQL), with a lockout page that says when to try again, an
  unlock in the admin, and the client address read correctly behind a proxy.
* 8: every kind of page carries the Content-Security-Policy and Permissions-Policy
  headers (the browser half, "nothing is blocked", is tests/test_browser_csp.py).
* 9: a form body declared in a charset Django cannot read answers 400, on the admin
  login and on a report page, in Django and through a real gunicorn.
* 13: a login with an unsafe or missing ``next`` lands on the page the user's role
  starts at, not on a 404.

Every test runs against the real PostgreSQL test database; the gunicorn tests start a
real gunicorn on it (as tests/test_faults.py does).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
import requests
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth.models import User
from django.core.exceptions import BadRequest
from django.db import connection
from django.db.models import F
from django.http import HttpResponse
from django.test import Client
from django.test.client import BOUNDARY, encode_multipart
from rest_framework.authtoken.models import Token

from tests import factories
from tests.test_faults import ROOT, free_port, wait_until

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"  # what tests.factories.UserFactory sets
WRONG = "not-the-password"
#: The failure limit and cool-off the tests set (the defaults of .env.example), so that
#: a local .env cannot change what they count.
LIMIT = 10
COOLOFF = dt.timedelta(minutes=30)
#: The reviewer's run: 40 wrong passwords in a row.
ATTEMPTS = 40

LOCKED_TITLE = "<h1>Too many failed logins</h1>"


@pytest.fixture(autouse=True)
def lockout_settings(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = COOLOFF
    settings.TRUSTED_PROXY_COUNT = 0


def log_in(
    client: Client,
    username: str,
    password: str,
    next_: str | None = None,
    **extra: str,
) -> HttpResponse:
    """Post the admin's login form (the login of the report pages too)."""
    path = "/admin/login/" + (f"?next={quote(next_, safe='')}" if next_ else "")
    return client.post(path, {"username": username, "password": password}, **extra)


def signed_in_user(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return None if user_id is None else User.objects.get(pk=user_id).username


# --- 4. Login lockout -------------------------------------------------------------------


@pytest.fixture
def support_manager():
    """The account the reviewer attacked."""
    support = factories.SiloFactory(slug="support", name="Support", position=40)
    return factories.silo_manager(support, username="support_manager")


def test_forty_wrong_passwords_lock_the_user_at_that_address_until_an_admin_unlocks(
    client, support_manager, cco, superuser
):
    statuses = [
        log_in(client, "support_manager", WRONG).status_code for _ in range(ATTEMPTS)
    ]

    # The form answers the first failures; the tenth locks, and every later try is
    # refused with 429 without checking the password.
    assert statuses == [200] * (LIMIT - 1) + [429] * (ATTEMPTS - LIMIT + 1)
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address) == ("support_manager", "127.0.0.1")
    assert attempt.failures_since_start == ATTEMPTS
    assert AccessFailureLog.objects.filter(username="support_manager").count() == 40

    # The right password is refused too while the lock holds, with the lockout page.
    refused = log_in(client, "support_manager", PASSWORD)
    attempt.refresh_from_db()
    retry_at = attempt.attempt_time + COOLOFF
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(int(COOLOFF.total_seconds()))
    # The login view renders its form; axes' middleware puts the lockout page in its
    # place.
    assert "core/lockout.html" in [t.name for t in refused.templates]
    page = refused.content.decode()
    assert LOCKED_TITLE in page
    assert (
        "Logins as <strong>support_manager</strong> from your address are blocked "
        f"after {LIMIT} failed attempts."
    ) in page
    assert (
        f'Try again after <time datetime="{retry_at.isoformat()}">'
        f"{retry_at:%Y-%m-%d %H:%M} UTC</time>, 30 minutes after the last attempt. "
        "Each attempt before then starts the wait again."
    ) in page
    assert (
        "If you cannot wait, ask a superuser or a member of the CCO team to unlock "
        "the account in the admin (Axes, Access attempts)."
    ) in page
    assert signed_in_user(client) is None
    assert attempt.failures_since_start == ATTEMPTS + 1

    # Another user from the same address is not affected; nor is the locked user from
    # another address (the lock is on the pair, see README "Login lockout").
    colleague = Client()
    assert log_in(colleague, "cco", PASSWORD).status_code == 302
    assert signed_in_user(colleague) == "cco"
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert log_in(elsewhere, "support_manager", PASSWORD).status_code == 302
    assert signed_in_user(elsewhere) == "support_manager"

    # A superuser unlocks in the admin: the attempt is listed as locked out, and
    # "delete selected" lifts the lock.
    admin = Client()
    admin.force_login(superuser)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert [row.username for row in listing.context["cl"].result_list] == [
        "support_manager"
    ]
    assert "Locked Out" in listing.content.decode()
    unlocked = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert unlocked.status_code == 302
    assert AccessAttempt.objects.count() == 0

    after = log_in(client, "support_manager", PASSWORD)
    assert after.status_code == 302
    assert signed_in_user(client) == "support_manager"


def test_a_cco_member_unlocks_from_the_attempts_delete_page(
    client, support_manager, cco
):
    for _ in range(LIMIT):
        log_in(client, "support_manager", WRONG)
    attempt = AccessAttempt.objects.get()
    assert log_in(client, "support_manager", PASSWORD).status_code == 429

    member = Client()
    member.force_login(cco)
    confirmation = member.get(f"/admin/axes/accessattempt/{attempt.pk}/delete/")
    assert confirmation.status_code == 200
    response = member.post(
        f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in(client, "support_manager", PASSWORD).status_code == 302


def test_the_lock_ends_by_itself_after_the_cool_off(client, support_manager):
    for _ in range(LIMIT):
        log_in(client, "support_manager", WRONG)
    assert log_in(client, "support_manager", PASSWORD).status_code == 429

    # Age the attempt past the cool-off in the database, as the clock would.
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - COOLOFF - dt.timedelta(seconds=1)
    )

    assert log_in(client, "support_manager", PASSWORD).status_code == 302
    assert signed_in_user(client) == "support_manager"


def test_a_successful_login_clears_the_count_of_failures(client, support_manager):
    first = [log_in(client, "support_manager", WRONG).status_code for _ in range(9)]
    assert log_in(client, "support_manager", PASSWORD).status_code == 302
    client.logout()
    # Without the reset these nine would reach the limit at their first.
    second = [log_in(client, "support_manager", WRONG).status_code for _ in range(9)]

    assert first == second == [200] * (LIMIT - 1)
    assert AccessAttempt.objects.get().failures_since_start == LIMIT - 1


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(client, support_manager):
    """A client cannot pick a fresh address per attempt with a forged header."""
    statuses = [
        log_in(
            client,
            "support_manager",
            WRONG,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{number}",
        ).status_code
        for number in range(ATTEMPTS)
    ]

    assert statuses == [200] * (LIMIT - 1) + [429] * (ATTEMPTS - LIMIT + 1)
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [
        "127.0.0.1"
    ]


def test_behind_one_proxy_the_address_the_proxy_saw_is_locked(
    client, settings, support_manager
):
    """Behind a proxy every request comes from the proxy's address: locking that would
    lock out everyone. The address the proxy appended to X-Forwarded-For is the one
    locked, whatever the client put before it."""
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    statuses = [
        log_in(
            client,
            "support_manager",
            WRONG,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{number}, 203.0.113.9",
            **proxy,
        ).status_code
        for number in range(ATTEMPTS)
    ]

    assert statuses == [200] * (LIMIT - 1) + [429] * (ATTEMPTS - LIMIT + 1)
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [
        "203.0.113.9"
    ]
    # Another client behind the same proxy logs in as the same user.
    other = Client(HTTP_X_FORWARDED_FOR="203.0.113.10", **proxy)
    assert log_in(other, "support_manager", PASSWORD).status_code == 302
    # A request that reached gunicorn without the proxy (no X-Forwarded-For) is judged
    # by its own address: the locked client's, then another.
    assert (
        log_in(
            Client(REMOTE_ADDR="203.0.113.9"), "support_manager", PASSWORD
        ).status_code
        == 429
    )
    assert (
        log_in(
            Client(REMOTE_ADDR="198.51.100.20"), "support_manager", PASSWORD
        ).status_code
        == 302
    )


def test_the_admin_login_is_the_only_password_login():
    """The API authenticates with tokens; DRF's browsable-API login is not routed, so
    the lockout on the admin login covers every password check."""
    client = Client()
    assert client.get("/api-auth/login/").status_code == 404
    assert client.post("/api-auth/login/", {"username": "x"}).status_code == 404


# --- 8. Content-Security-Policy and Permissions-Policy headers -------------------------

#: The policy, directive by directive (django-csp writes them in no fixed order).
EXPECTED_CSP = {
    "default-src": ["'self'"],
    # The one inline handler of the admin: django-import-export's "select all" box on
    # the export form, allowed by its hash alone.
    "script-src": [
        "'self'",
        "'unsafe-hashes'",
        "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='",
    ],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
EXPECTED_PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), "
    "encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), hid=(), "
    "idle-detection=(), magnetometer=(), microphone=(), midi=(), payment=(), "
    "picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
    "serial=(), usb=(), xr-spatial-tracking=()"
)


def csp_directives(header: str) -> dict[str, list[str]]:
    """Return a Content-Security-Policy header as {directive: [sources]}."""
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def assert_security_headers(response: HttpResponse) -> None:
    assert csp_directives(response["Content-Security-Policy"]) == EXPECTED_CSP
    assert response["Permissions-Policy"] == EXPECTED_PERMISSIONS_POLICY


#: (role, path, expected status, extra request headers): one page of every kind.
PAGES = [
    ("anonymous", "/admin/login/", 200, {}),
    ("anonymous", "/", 302, {}),
    ("cco", "/", 200, {}),
    ("reader", "/", 200, {}),
    ("cco", "/admin/", 200, {}),
    ("cco", "/admin/metrics/measurement/export/", 200, {}),
    ("cco", "/report/conflicts/", 200, {}),
    ("cco", "/report/cycles/", 200, {}),
    ("reader", "/api/v1/silos/", 200, {"HTTP_ACCEPT": "text/html"}),
    ("reader", "/api/v1/silos/", 200, {}),
    ("anonymous", "/api/docs/", 200, {}),
    ("anonymous", "/api/docs/?script=", 200, {}),
    ("anonymous", "/api/schema/", 200, {}),
    ("anonymous", "/healthz", 200, {}),
    ("anonymous", "/no-such-page/", 404, {}),
    ("cco", "/report/conflicts/999999/", 404, {}),
    ("reader", "/report/conflicts/", 403, {}),
]


@pytest.mark.parametrize(
    ("role", "path", "status", "headers"),
    PAGES,
    ids=[f"{role} {path} {status}" for role, path, status, _ in PAGES],
)
def test_every_kind_of_page_sends_both_policies(
    client, cco, reader, role, path, status, headers
):
    if role != "anonymous":
        client.force_login({"cco": cco, "reader": reader}[role])

    response = client.get(path, **headers)

    assert response.status_code == status
    assert_security_headers(response)


def test_the_lockout_page_and_a_refused_encoding_send_both_policies(
    client, support_manager
):
    for _ in range(LIMIT):
        locked = log_in(client, "support_manager", WRONG)
    refused = client.post(
        "/admin/login/",
        b"username=x",
        content_type="application/x-www-form-urlencoded; charset=utf-32",
    )

    assert (locked.status_code, refused.status_code) == (429, 400)
    assert_security_headers(locked)
    assert_security_headers(refused)


# --- 9. Form bodies in a charset Django cannot read ---------------------------------------

URLENCODED = "application/x-www-form-urlencoded"
URLENCODED_ONLY_UTF8 = (
    "Form data (application/x-www-form-urlencoded) must be UTF-8: send it without a "
    "charset, or with charset=utf-8."
)
MULTIPART_ASCII_COMPATIBLE = (
    "Form data (multipart/form-data) must be in an ASCII-compatible charset such as "
    "UTF-8: send it without a charset, or with charset=utf-8."
)
UNKNOWN_CHARSET = (
    "The request declares a charset this server cannot decode: send UTF-8 "
    "(charset=utf-8)."
)
REFUSED_URLENCODED = [
    ("utf-32", URLENCODED_ONLY_UTF8),
    ("utf-16", URLENCODED_ONLY_UTF8),
    ("UTF-16LE", URLENCODED_ONLY_UTF8),
    ("cp500", URLENCODED_ONLY_UTF8),  # EBCDIC
    ("utf-7", URLENCODED_ONLY_UTF8),
    ("latin-1", URLENCODED_ONLY_UTF8),
    ("us-ascii", URLENCODED_ONLY_UTF8),
    ("base64", URLENCODED_ONLY_UTF8),  # a codec Python knows that is not text
    ("no-such-charset", UNKNOWN_CHARSET),
]
REFUSED_MULTIPART = [
    ("utf-32", MULTIPART_ASCII_COMPATIBLE),
    ("utf-16", MULTIPART_ASCII_COMPATIBLE),
    ("cp500", MULTIPART_ASCII_COMPATIBLE),
    ("utf-7", MULTIPART_ASCII_COMPATIBLE),
    ("no-such-charset", UNKNOWN_CHARSET),
]
FORM_PATHS = ["/admin/login/", "/report/conflicts/"]


@pytest.fixture
def csrf_client() -> Client:
    """A client that the CSRF middleware checks, holding the CSRF cookie a first visit
    sets: only then does the middleware read the form body (and used to fail)."""
    client = Client(enforce_csrf_checks=True)
    assert client.get("/admin/login/").status_code == 200
    return client


def post_form(
    client: Client, path: str, content_type: str, body: bytes
) -> HttpResponse:
    try:
        return client.generic("POST", path, body, content_type=content_type)
    except BadRequest as error:
        # What used to happen: the 400 handler's CSRF check read the body again, the
        # error escaped every handler, and gunicorn answered its bare 500.
        pytest.fail(f"the error escaped Django's handlers: {error!r}")


def login_body(client: Client, password: str = WRONG) -> bytes:
    token = client.cookies["csrftoken"].value
    return urlencode(
        {"csrfmiddlewaretoken": token, "username": "cco", "password": password}
    ).encode()


@pytest.mark.parametrize("path", FORM_PATHS)
@pytest.mark.parametrize(
    ("charset", "message"),
    REFUSED_URLENCODED,
    ids=[charset for charset, _ in REFUSED_URLENCODED],
)
def test_an_urlencoded_form_in_another_charset_gets_400(
    csrf_client, cco, path, charset, message
):
    response = post_form(
        csrf_client, path, f"{URLENCODED}; charset={charset}", login_body(csrf_client)
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == message
    assert signed_in_user(csrf_client) is None


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", "UTF_8", '"utf-8"'])
def test_an_urlencoded_login_in_utf8_under_any_spelling_works(
    csrf_client, cco, charset
):
    response = post_form(
        csrf_client,
        "/admin/login/",
        f"{URLENCODED}; charset={charset}",
        login_body(csrf_client, PASSWORD),
    )

    assert response.status_code == 302
    assert signed_in_user(csrf_client) == "cco"


@pytest.mark.parametrize("path", FORM_PATHS)
@pytest.mark.parametrize(
    ("charset", "message"),
    REFUSED_MULTIPART,
    ids=[charset for charset, _ in REFUSED_MULTIPART],
)
def test_a_multipart_form_in_a_charset_that_is_not_ascii_compatible_gets_400(
    csrf_client, cco, path, charset, message
):
    body = encode_multipart(
        BOUNDARY,
        {
            "csrfmiddlewaretoken": csrf_client.cookies["csrftoken"].value,
            "username": "cco",
            "password": PASSWORD,
        },
    )
    content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"

    response = post_form(csrf_client, path, content_type, body)

    assert response.status_code == 400
    assert response.content.decode() == message
    assert signed_in_user(csrf_client) is None


@pytest.mark.parametrize("charset", ["utf-8", "latin-1"])
def test_a_multipart_login_in_an_ascii_compatible_charset_works(
    csrf_client, cco, charset
):
    body = encode_multipart(
        BOUNDARY,
        {
            "csrfmiddlewaretoken": csrf_client.cookies["csrftoken"].value,
            "username": "cco",
            "password": PASSWORD,
        },
    )
    content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"

    response = post_form(csrf_client, "/admin/login/", content_type, body)

    assert response.status_code == 302
    assert signed_in_user(csrf_client) == "cco"


def test_the_api_answers_a_refused_charset_in_json(cco):
    client = Client()
    token = Token.objects.create(user=cco)

    response = client.post(
        "/api/v1/silos/",
        b"slug=x&name=X",
        content_type=f"{URLENCODED}; charset=utf-32",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )

    assert response.status_code == 400
    assert response.json() == {"detail": URLENCODED_ONLY_UTF8}


# --- 9 and 4 through a real gunicorn ---------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker) -> Iterator[str]:
    """gunicorn (one gthread worker, the project's gunicorn.conf.py) on the test
    database, behind one (pretend) proxy: TRUSTED_PROXY_COUNT=1."""
    with django_db_blocker.unblock():
        database = connection.settings_dict
    port = free_port()
    environment = dict(os.environ)
    environment.update(
        # The test settings: the same middleware and lockout as production, with the
        # fast password hasher the factories use and no static manifest to build.
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=(
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        TRUSTED_PROXY_COUNT="1",
        LOGIN_FAILURE_LIMIT=str(LIMIT),
        LOGIN_COOLOFF_MINUTES=str(int(COOLOFF.total_seconds() // 60)),
        PYTHONUNBUFFERED="1",
    )
    log_path = ROOT / "test-artifacts" / "gunicorn-security-web.log"
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--config=config/gunicorn.conf.py",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
        ],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answers, 60, "gunicorn to answer")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


@pytest.mark.parametrize("path", FORM_PATHS)
def test_gunicorn_answers_400_to_a_utf32_form(gunicorn, path):
    """The reviewer's request: a CSRF cookie (any visitor gets one), its token in the
    body, and the body declared UTF-32. It used to be gunicorn's bare 500."""
    secret = secrets.token_hex(16)  # a CSRF secret is 32 alphanumeric characters
    response = requests.post(
        f"{gunicorn}{path}",
        data=urlencode({"csrfmiddlewaretoken": secret, "username": "x"}),
        headers={"Content-Type": f"{URLENCODED}; charset=utf-32"},
        cookies={"csrftoken": secret},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 400
    assert response.text == URLENCODED_ONLY_UTF8
    assert csp_directives(response.headers["Content-Security-Policy"]) == EXPECTED_CSP


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_gunicorn_behind_a_proxy_locks_the_client_the_proxy_saw(
    gunicorn, support_manager
):
    """gunicorn leaves REMOTE_ADDR to the proxy's address and passes X-Forwarded-For
    through; the lock falls on the last address the (one) proxy appended."""

    def attempt(password: str, forwarded_for: str) -> requests.Response:
        session = requests.Session()
        login_page = session.get(f"{gunicorn}/admin/login/", timeout=10)
        assert login_page.status_code == 200
        return session.post(
            f"{gunicorn}/admin/login/",
            data={
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "username": "support_manager",
                "password": password,
            },
            headers={"X-Forwarded-For": forwarded_for},
            allow_redirects=False,
            timeout=10,
        )

    statuses = [
        attempt(WRONG, f"192.0.2.{number}, 203.0.113.9").status_code
        for number in range(LIMIT + 2)
    ]
    locked = attempt(PASSWORD, "192.0.2.200, 203.0.113.9")
    other_client = attempt(PASSWORD, "203.0.113.10")

    assert statuses == [200] * (LIMIT - 1) + [429] * 3
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == str(int(COOLOFF.total_seconds()))
    assert LOCKED_TITLE in locked.text
    assert other_client.status_code == 302
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [
        "203.0.113.9"
    ]


# --- 13. Where a login lands -------------------------------------------------------------

UNSAFE_NEXT = ["https://evil.example/", "//evil.example", "https://evil.example/admin/"]


@pytest.fixture
def roles(db) -> dict[str, tuple[User, str]]:
    """One user per role and the page each role starts at."""
    sales = factories.SiloFactory(slug="sales", name="Sales", position=20)
    finance = factories.SiloFactory(slug="finance", name="Finance", position=60)
    # Every role starts at its home, which shows each of the user's roles.
    return {
        "cco": (factories.cco_member(username="cco"), "/"),
        "manager": (factories.silo_manager(sales, username="manager_sales"), "/"),
        "manager without a cycle": (
            factories.silo_manager(finance, username="manager_finance"),
            "/",
        ),
        "reader": (factories.bi_reader(username="reader"), "/"),
        # A superuser in no role group manages the site in the admin.
        "superuser": (
            factories.UserFactory(username="root", is_superuser=True),
            "/admin/",
        ),
        "staff without a role": (factories.UserFactory(username="staff"), "/admin/"),
    }


ROLE_NAMES = [
    "cco",
    "manager",
    "manager without a cycle",
    "reader",
    "superuser",
    "staff without a role",
]


@pytest.mark.parametrize("next_", [*UNSAFE_NEXT, None, ""], ids=repr)
@pytest.mark.parametrize("role", ROLE_NAMES)
def test_a_login_with_an_unsafe_or_no_next_lands_on_the_roles_start_page(
    client, roles, role, next_
):
    user, start = roles[role]

    response = log_in(client, user.username, PASSWORD, next_=next_, follow=True)

    assert response.redirect_chain == [("/start/", 302), (start, 302)]
    assert response.status_code == 200
    assert signed_in_user(client) == user.username


def test_a_safe_next_is_still_followed(client, roles):
    user, _ = roles["manager"]

    response = log_in(client, user.username, PASSWORD, next_="/report/cycles/")

    assert response.status_code == 302
    assert response["Location"] == "/report/cycles/"


def test_the_admins_own_login_form_still_leads_to_the_admin(client, roles):
    """Opened without next, the admin's form carries next=/admin/ (Django's default,
    which the browser tests and bookmarks rely on): that next is safe and followed."""
    page = client.get("/admin/login/")

    assert '<input type="hidden" name="next" value="/admin/">' in page.content.decode()


def test_a_superuser_in_a_role_group_starts_at_the_home(client):
    user = factories.UserFactory(username="root_cco", is_superuser=True)
    user.groups.add(factories.role_group("CCO team"))

    response = log_in(client, user.username, PASSWORD, follow=True)

    assert response.redirect_chain == [("/start/", 302), ("/", 302)]
    assert response.status_code == 200


def test_the_start_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/start/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/start/"


def test_the_lockout_counts_no_failure_for_a_successful_login_with_a_bad_next(
    client, roles
):
    user, _ = roles["cco"]
    for _ in range(LIMIT + 5):
        response = log_in(client, user.username, PASSWORD, next_="//evil.example")
        assert response["Location"] == "/start/"
        client.logout()

    assert not AccessAttempt.objects.exists()
