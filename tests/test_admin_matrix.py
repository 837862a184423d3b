"""The authorization matrix of the admin: every URL of admin.site for every role.

The API's matrix is tests/test_api_matrix.py; this is its admin half. Every URL pattern
that admin.site serves (each ModelAdmin's changelist, add, change, delete and history
views, simple-history's revert views, the measurement import and export, the user
password form, the app indexes, login, logout, password change and the rest) has an
entry here, and a pattern the matrix lacks fails the suite: a new admin URL cannot ship
without deciding who may open it. Each entry names one or more requests (a GET, and for
the views that write, a POST with a minimal body: empty for the forms, a confirmation
for deletes and bulk deletes) and the outcome for each role. One test per (URL pattern,
role) makes the entry's requests in order and reports every mismatch at once; a server
error counts as a mismatch (status 500).

Outcomes: an HTTP status (200, 403, 404, 405), or one of the redirects below. Every
outcome but SAVED must leave the database exactly as it was; SAVED must change it.

manager_a manages silo A ("sales"), whose objects the requests name; manager_b manages
silo B ("support"), so for the admins scoped to silos manager_b is the "another silo's
object" case.
"""

import datetime as dt
import hashlib
import re
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import URLResolver
from django.urls.resolvers import RegexPattern
from django.utils import timezone
from rest_framework.authtoken.models import Token

from goals.models import Contribution, Guardrail, RollupRun
from metrics.models import KPI, MeasurementImport
from notifications.models import Channel, Delivery, Event, Subscription
from planning.models import FundingAllocation, ReadinessAnswer, Responsibility, SignOff
from tests import factories
from tests.test_api_matrix import database_fingerprint, fill

ROLES = ["anonymous", "reader", "manager_a", "manager_b", "cco", "superuser"]

# Redirects (302), told apart by where they go.
LOGIN = "302 to the login page, next= this URL"
GONE = "302 to the admin index with Django's 'doesn't exist' message"
INDEX = "302 to the admin index"
MOVED = "302 to the object's change page"
BACK = "302 back to this URL, nothing done"
LISTED = "302 to the model's changelist, nothing done"
SAVED = "302 after a write that changed the database"

# Outcomes per role, in ROLES order.
VIEW = (LOGIN, 200, 200, 200, 200, 200)
SCOPED_VIEW = (LOGIN, 200, 200, GONE, 200, 200)
# Writes of the domain models only the CCO team (and superusers) make.
CCO = (LOGIN, 403, 403, 403, 200, 200)
CCO_SAVES = (LOGIN, 403, 403, 403, SAVED, SAVED)
# Writes silo managers make for their own silos (KPIs, measurements, goals).
MANAGERS = (LOGIN, 403, 200, 200, 200, 200)
SCOPED_WRITE = (LOGIN, 403, 200, GONE, 200, 200)
SCOPED_SAVES = (LOGIN, 403, SAVED, GONE, SAVED, SAVED)
# Users, groups and API tokens: superusers only.
ROOT = (LOGIN, 403, 403, 403, 403, 200)
ROOT_SAVES = (LOGIN, 403, 403, 403, 403, SAVED)
NOBODY = (LOGIN, 403, 403, 403, 403, 403)
# Login lockouts (django-axes): superusers and the CCO team (core.admin).
LOCKOUTS = (LOGIN, 403, 403, 403, 200, 200)
LOCKOUTS_SAVES = (LOGIN, 403, 403, 403, SAVED, SAVED)
EVERYONE_MOVED = (LOGIN, MOVED, MOVED, MOVED, MOVED, MOVED)


class Request(NamedTuple):
    method: str
    path: str  # placeholders such as {kpi} name objects of the world
    body: dict | None
    outcomes: tuple
    label: str = ""


def get(path, outcomes, label=""):
    return Request("GET", path, None, outcomes, label)


def post(path, body, outcomes, label=""):
    return Request("POST", path, body, outcomes, label)


def bulk_delete(pk_placeholder):
    """The changelist's "delete selected" action, confirmed."""
    return {"action": "delete_selected", "_selected_action": [pk_placeholder]}


CONFIRM = {"post": "yes"}
UPLOAD = "{upload}"  # a fresh CSV file, made per request
CSV = "kpi,period,value,source\nsales.deals_closed,2024-02-01,12,matrix\n"


def axes_log(*, model: str, pk: str) -> dict[str, list[Request]]:
    """The entries of one of django-axes' logs (core.admin): superusers and the CCO
    team read it; nobody adds, edits or deletes (no action is offered, so a bulk
    delete shows the list again)."""
    base = f"/admin/axes/{model}/"
    return {
        base: [get(base, LOCKOUTS), post(base, bulk_delete(pk) | CONFIRM, LOCKOUTS)],
        f"{base}add/": [get(f"{base}add/", NOBODY), post(f"{base}add/", {}, NOBODY)],
        f"{base}<path:object_id>/change/": [
            get(f"{base}{pk}/change/", LOCKOUTS),
            post(f"{base}{pk}/change/", {}, NOBODY),
        ],
        f"{base}<path:object_id>/delete/": [
            get(f"{base}{pk}/delete/", NOBODY),
            post(f"{base}{pk}/delete/", CONFIRM, NOBODY),
        ],
        f"{base}<path:object_id>/history/": [get(f"{base}{pk}/history/", LOCKOUTS)],
        f"{base}<path:object_id>/": [get(f"{base}{pk}/", EVERYONE_MOVED)],
    }


def written_by_code(*, app: str, model: str, pk: str) -> dict[str, list[Request]]:
    """The entries of a model only the code writes (notifications' events, deliveries
    and subscriptions): the CCO team and superusers read it; nobody adds, edits or
    deletes (no action is offered, so a bulk delete shows the list again)."""
    base = f"/admin/{app}/{model}/"
    return {
        base: [get(base, CCO), post(base, bulk_delete(pk) | CONFIRM, CCO)],
        f"{base}add/": [get(f"{base}add/", NOBODY), post(f"{base}add/", {}, NOBODY)],
        f"{base}<path:object_id>/change/": [
            get(f"{base}{pk}/change/", CCO),
            post(f"{base}{pk}/change/", {}, NOBODY),
        ],
        f"{base}<path:object_id>/delete/": [
            get(f"{base}{pk}/delete/", NOBODY),
            post(f"{base}{pk}/delete/", CONFIRM, NOBODY),
        ],
        f"{base}<path:object_id>/history/": [get(f"{base}{pk}/history/", CCO)],
        f"{base}<path:object_id>/": [get(f"{base}{pk}/", EVERYONE_MOVED)],
    }


# URL pattern of admin.site -> the requests made to it.
MATRIX: dict[str, list[Request]] = {
    # The site's own views.
    "/admin/": [get("/admin/", VIEW)],
    "/admin/login/": [get("/admin/login/", (200, INDEX, INDEX, INDEX, INDEX, INDEX))],
    "/admin/logout/": [
        # Logging out is a POST since Django 5.0.
        get("/admin/logout/", (INDEX, 405, 405, 405, 405, 405)),
        post("/admin/logout/", {}, (INDEX, 200, 200, 200, 200, 200)),
    ],
    "/admin/password_change/": [
        get("/admin/password_change/", VIEW),
        post("/admin/password_change/", {}, VIEW),
    ],
    "/admin/password_change/done/": [get("/admin/password_change/done/", VIEW)],
    "/admin/autocomplete/": [
        get(
            "/admin/autocomplete/?app_label=goals&model_name=goal&field_name=kpi&term=",
            VIEW,
        )
    ],
    "/admin/jsi18n/": [get("/admin/jsi18n/", VIEW)],
    # No model here has a get_absolute_url: "view on site" finds nothing.
    "/admin/r/<path:content_type_id>/<path:object_id>/": [
        get("/admin/r/{kpi_ct}/{kpi}/", (LOGIN, 404, 404, 404, 404, 404))
    ],
    "/admin/<url>": [get("/admin/no-such-page/", (LOGIN, 404, 404, 404, 404, 404))],
    # The app indexes: an app where the user may see no model is "not found".
    "/admin/auth/": [get("/admin/auth/", (LOGIN, 404, 404, 404, 404, 200))],
    "/admin/authtoken/": [get("/admin/authtoken/", (LOGIN, 404, 404, 404, 404, 200))],
    "/admin/metrics/": [get("/admin/metrics/", VIEW)],
    "/admin/goals/": [get("/admin/goals/", VIEW)],
    "/admin/cycles/": [get("/admin/cycles/", VIEW)],
    "/admin/planning/": [get("/admin/planning/", VIEW)],
    "/admin/notifications/": [
        get("/admin/notifications/", (LOGIN, 404, 404, 404, 200, 200))
    ],
    #
    # Notification channels: the CCO team alone, reads included (a webhook's URL is a
    # secret of its own). {channel_spare} is deleted by the SAVED cases.
    "/admin/notifications/channel/": [
        get("/admin/notifications/channel/", CCO),
        post(
            "/admin/notifications/channel/",
            bulk_delete("{channel_spare}") | CONFIRM,
            CCO_SAVES,
        ),
    ],
    "/admin/notifications/channel/add/": [
        get("/admin/notifications/channel/add/", CCO),
        post("/admin/notifications/channel/add/", {}, CCO),
    ],
    "/admin/notifications/channel/<path:object_id>/change/": [
        get("/admin/notifications/channel/{channel}/change/", CCO),
        post("/admin/notifications/channel/{channel}/change/", {}, CCO),
    ],
    "/admin/notifications/channel/<path:object_id>/delete/": [
        get("/admin/notifications/channel/{channel_spare}/delete/", CCO),
        post(
            "/admin/notifications/channel/{channel_spare}/delete/", CONFIRM, CCO_SAVES
        ),
    ],
    "/admin/notifications/channel/<path:object_id>/history/": [
        get("/admin/notifications/channel/{channel}/history/", CCO)
    ],
    "/admin/notifications/channel/<path:object_id>/": [
        get("/admin/notifications/channel/{channel}/", EVERYONE_MOVED)
    ],
    **written_by_code(app="notifications", model="event", pk="{event}"),
    **written_by_code(app="notifications", model="delivery", pk="{delivery}"),
    **written_by_code(app="notifications", model="subscription", pk="{subscription}"),
    #
    # Users: superusers only. {user} is a spare account, deleted by the SAVED cases.
    "/admin/auth/user/": [
        get("/admin/auth/user/", ROOT),
        post("/admin/auth/user/", bulk_delete("{user}") | CONFIRM, ROOT_SAVES),
    ],
    "/admin/auth/user/add/": [
        get("/admin/auth/user/add/", ROOT),
        post("/admin/auth/user/add/", {}, ROOT),
    ],
    "/admin/auth/user/<path:object_id>/change/": [
        get("/admin/auth/user/{user}/change/", ROOT),
        post("/admin/auth/user/{user}/change/", {}, ROOT),
    ],
    "/admin/auth/user/<path:object_id>/delete/": [
        get("/admin/auth/user/{user}/delete/", ROOT),
        post("/admin/auth/user/{user}/delete/", CONFIRM, ROOT_SAVES),
    ],
    "/admin/auth/user/<path:object_id>/history/": [
        get("/admin/auth/user/{user}/history/", ROOT)
    ],
    "/admin/auth/user/<path:object_id>/": [
        get("/admin/auth/user/{user}/", EVERYONE_MOVED)
    ],
    "/admin/auth/user/<id>/password/": [
        get("/admin/auth/user/{user}/password/", ROOT),
        post("/admin/auth/user/{user}/password/", {}, ROOT),
    ],
    #
    # Groups (the roles themselves): superusers only.
    "/admin/auth/group/": [
        get("/admin/auth/group/", ROOT),
        post("/admin/auth/group/", bulk_delete("{group}") | CONFIRM, ROOT_SAVES),
    ],
    "/admin/auth/group/add/": [
        get("/admin/auth/group/add/", ROOT),
        post("/admin/auth/group/add/", {}, ROOT),
    ],
    "/admin/auth/group/<path:object_id>/change/": [
        get("/admin/auth/group/{group}/change/", ROOT),
        post("/admin/auth/group/{group}/change/", {}, ROOT),
    ],
    "/admin/auth/group/<path:object_id>/delete/": [
        get("/admin/auth/group/{group}/delete/", ROOT),
        post("/admin/auth/group/{group}/delete/", CONFIRM, ROOT_SAVES),
    ],
    "/admin/auth/group/<path:object_id>/history/": [
        get("/admin/auth/group/{group}/history/", ROOT)
    ],
    "/admin/auth/group/<path:object_id>/": [
        get("/admin/auth/group/{group}/", EVERYONE_MOVED)
    ],
    #
    # API tokens (DRF's TokenAdmin names a token by its user's id; it has no actions).
    "/admin/authtoken/tokenproxy/": [
        get("/admin/authtoken/tokenproxy/", ROOT),
        post("/admin/authtoken/tokenproxy/", bulk_delete("{user}") | CONFIRM, ROOT),
    ],
    "/admin/authtoken/tokenproxy/add/": [
        get("/admin/authtoken/tokenproxy/add/", ROOT),
        post("/admin/authtoken/tokenproxy/add/", {}, ROOT),
    ],
    "/admin/authtoken/tokenproxy/<path:object_id>/change/": [
        get("/admin/authtoken/tokenproxy/{user}/change/", ROOT),
        post("/admin/authtoken/tokenproxy/{user}/change/", {}, ROOT),
    ],
    "/admin/authtoken/tokenproxy/<path:object_id>/delete/": [
        get("/admin/authtoken/tokenproxy/{user}/delete/", ROOT),
        post("/admin/authtoken/tokenproxy/{user}/delete/", CONFIRM, ROOT_SAVES),
    ],
    "/admin/authtoken/tokenproxy/<path:object_id>/history/": [
        get("/admin/authtoken/tokenproxy/{user}/history/", ROOT)
    ],
    "/admin/authtoken/tokenproxy/<path:object_id>/": [
        get("/admin/authtoken/tokenproxy/{user}/", EVERYONE_MOVED)
    ],
    #
    # Silos: everyone views every silo (the admin does not scope them); the CCO team
    # writes. {silo} is "sales"; {silo_empty} has no KPIs, so it can be deleted.
    "/admin/metrics/silo/": [
        get("/admin/metrics/silo/", VIEW),
        post(
            "/admin/metrics/silo/",
            bulk_delete("{silo_empty}") | CONFIRM,
            (LOGIN, 200, 200, 200, SAVED, SAVED),
        ),
    ],
    "/admin/metrics/silo/add/": [
        get("/admin/metrics/silo/add/", CCO),
        post("/admin/metrics/silo/add/", {}, CCO),
    ],
    "/admin/metrics/silo/<path:object_id>/change/": [
        get("/admin/metrics/silo/{silo}/change/", VIEW),
        post("/admin/metrics/silo/{silo}/change/", {}, CCO),
    ],
    "/admin/metrics/silo/<path:object_id>/delete/": [
        get("/admin/metrics/silo/{silo_empty}/delete/", CCO),
        post("/admin/metrics/silo/{silo_empty}/delete/", CONFIRM, CCO_SAVES),
    ],
    "/admin/metrics/silo/<path:object_id>/history/": [
        get("/admin/metrics/silo/{silo}/history/", VIEW)
    ],
    "/admin/metrics/silo/<object_id>/history/<version_id>/": [
        # HOLE (a 500 for every role): simple-history's history_form_view passes the
        # class's prepopulated_fields ({"slug": ["name"]}) to the form, but a silo with
        # KPIs has "slug" read-only (SiloAdmin.get_readonly_fields), so the form has no
        # "slug" and rendering raises KeyError. The secure, intended answer is 200.
        get("/admin/metrics/silo/{silo}/history/{silo_version}/", VIEW),
        get(
            "/admin/metrics/silo/{silo_empty}/history/{silo_empty_version}/",
            VIEW,
            "silo without KPIs",
        ),
        # simple-history's revert: read-only for everyone (metrics.admin_mixins.HistoryAdmin).
        post("/admin/metrics/silo/{silo}/history/{silo_version}/", {}, NOBODY),
    ],
    "/admin/metrics/silo/<path:object_id>/": [
        get("/admin/metrics/silo/{silo}/", EVERYONE_MOVED)
    ],
    #
    # KPIs: scoped to the manager's silos. {kpi} is sales.deals_closed; {kpi_unused}
    # (sales) has no measurements, goals or links, so it can be deleted.
    "/admin/metrics/kpi/": [
        get("/admin/metrics/kpi/", VIEW),
        post(
            "/admin/metrics/kpi/",
            bulk_delete("{kpi_unused}") | CONFIRM,
            (LOGIN, 200, SAVED, BACK, SAVED, SAVED),
        ),
    ],
    "/admin/metrics/kpi/add/": [
        get("/admin/metrics/kpi/add/", MANAGERS),
        post("/admin/metrics/kpi/add/", {}, MANAGERS),
    ],
    "/admin/metrics/kpi/<path:object_id>/change/": [
        get("/admin/metrics/kpi/{kpi}/change/", SCOPED_VIEW),
        post("/admin/metrics/kpi/{kpi}/change/", {}, SCOPED_WRITE),
    ],
    "/admin/metrics/kpi/<path:object_id>/delete/": [
        get("/admin/metrics/kpi/{kpi_unused}/delete/", SCOPED_WRITE),
        post("/admin/metrics/kpi/{kpi_unused}/delete/", CONFIRM, SCOPED_SAVES),
    ],
    # simple-history's view refuses another silo's object (it could show a deleted
    # object's last copy, so it does not ask the queryset).
    "/admin/metrics/kpi/<path:object_id>/history/": [
        get("/admin/metrics/kpi/{kpi}/history/", (LOGIN, 200, 200, 403, 200, 200))
    ],
    "/admin/metrics/kpi/<object_id>/history/<version_id>/": [
        get(
            "/admin/metrics/kpi/{kpi}/history/{kpi_version}/",
            (LOGIN, 200, 200, 404, 200, 200),
        ),
        post("/admin/metrics/kpi/{kpi}/history/{kpi_version}/", {}, NOBODY),
    ],
    "/admin/metrics/kpi/<path:object_id>/": [
        get("/admin/metrics/kpi/{kpi}/", EVERYONE_MOVED)
    ],
    #
    # Measurements: scoped; a plain ModelAdmin (no simple-history) with CSV import and
    # export. {measurement} is sales.deals_closed's only value, and deletable.
    "/admin/metrics/measurement/": [
        get("/admin/metrics/measurement/", VIEW),
        post(
            "/admin/metrics/measurement/",
            bulk_delete("{measurement}") | CONFIRM,
            (LOGIN, 200, SAVED, BACK, SAVED, SAVED),
        ),
    ],
    "/admin/metrics/measurement/add/": [
        get("/admin/metrics/measurement/add/", MANAGERS),
        post("/admin/metrics/measurement/add/", {}, MANAGERS),
    ],
    "/admin/metrics/measurement/<path:object_id>/change/": [
        get("/admin/metrics/measurement/{measurement}/change/", SCOPED_VIEW),
        post("/admin/metrics/measurement/{measurement}/change/", {}, SCOPED_WRITE),
    ],
    "/admin/metrics/measurement/<path:object_id>/delete/": [
        get("/admin/metrics/measurement/{measurement}/delete/", SCOPED_WRITE),
        post("/admin/metrics/measurement/{measurement}/delete/", CONFIRM, SCOPED_SAVES),
    ],
    "/admin/metrics/measurement/<path:object_id>/history/": [
        get("/admin/metrics/measurement/{measurement}/history/", SCOPED_VIEW)
    ],
    "/admin/metrics/measurement/<path:object_id>/": [
        get("/admin/metrics/measurement/{measurement}/", EVERYONE_MOVED)
    ],
    # Importing takes the "add" permission. An upload that parses is stored for its
    # preview (SAVED: a MeasurementImport row), whoever's silos it names; rows are
    # checked by the preview. {import} is the role's own stored import of a sales row,
    # {import_other} one of another user: it "does not exist" for everyone else (302
    # to the changelist with a message). manager_b's preview shows a row error (a KPI
    # of a silo they do not manage), and their confirmation writes nothing and shows
    # it again (200).
    "/admin/metrics/measurement/import/": [
        get("/admin/metrics/measurement/import/", MANAGERS),
        post(
            "/admin/metrics/measurement/import/",
            {"import_file": UPLOAD},
            (LOGIN, 403, SAVED, SAVED, SAVED, SAVED),
        ),
    ],
    "/admin/metrics/measurement/import/<int:import_id>/": [
        get("/admin/metrics/measurement/import/{import}/", MANAGERS),
        get(
            "/admin/metrics/measurement/import/{import_other}/",
            (LOGIN, 403, LISTED, LISTED, LISTED, LISTED),
            "another user's import",
        ),
    ],
    "/admin/metrics/measurement/import/<int:import_id>/confirm/": [
        post(
            "/admin/metrics/measurement/import/{import_other}/confirm/",
            {},
            (LOGIN, 403, LISTED, LISTED, LISTED, LISTED),
            "another user's import",
        ),
        post(
            "/admin/metrics/measurement/import/{import}/confirm/",
            {},
            (LOGIN, 403, SAVED, 200, SAVED, SAVED),
        ),
    ],
    # A CSV to fill in for a silo the user may import into.
    "/admin/metrics/measurement/import/template/<slug:silo_slug>/": [
        get(
            "/admin/metrics/measurement/import/template/sales/",
            (LOGIN, 403, 200, 404, 200, 200),
        ),
    ],
    # Exporting is reading: everyone gets a CSV of the rows they see.
    "/admin/metrics/measurement/export/": [
        get("/admin/metrics/measurement/export/", VIEW),
        post(
            "/admin/metrics/measurement/export/",
            {"format": "0", "resource": "0"}
            | {
                f"measurementresource_{column}": "on"
                for column in ("kpi", "period", "value", "source")
            },
            VIEW,
        ),
    ],
    #
    # Declared links: managers see the links touching their silos and write none.
    # {link} joins sales.deals_closed to ops.uptime, so it does not touch silo B.
    "/admin/metrics/impactlink/": [
        get("/admin/metrics/impactlink/", VIEW),
        post(
            "/admin/metrics/impactlink/",
            bulk_delete("{link}") | CONFIRM,
            (LOGIN, 200, 200, 200, SAVED, SAVED),
        ),
    ],
    "/admin/metrics/impactlink/add/": [
        get("/admin/metrics/impactlink/add/", CCO),
        post("/admin/metrics/impactlink/add/", {}, CCO),
    ],
    "/admin/metrics/impactlink/<path:object_id>/change/": [
        get("/admin/metrics/impactlink/{link}/change/", SCOPED_VIEW),
        # Without the change permission the refusal comes before the lookup: 403.
        post("/admin/metrics/impactlink/{link}/change/", {}, CCO),
    ],
    "/admin/metrics/impactlink/<path:object_id>/delete/": [
        get("/admin/metrics/impactlink/{link}/delete/", CCO),
        post("/admin/metrics/impactlink/{link}/delete/", CONFIRM, CCO_SAVES),
    ],
    "/admin/metrics/impactlink/<path:object_id>/history/": [
        get(
            "/admin/metrics/impactlink/{link}/history/",
            (LOGIN, 200, 200, 403, 200, 200),
        )
    ],
    "/admin/metrics/impactlink/<object_id>/history/<version_id>/": [
        get(
            "/admin/metrics/impactlink/{link}/history/{link_version}/",
            (LOGIN, 200, 200, 404, 200, 200),
        ),
        post("/admin/metrics/impactlink/{link}/history/{link_version}/", {}, NOBODY),
    ],
    "/admin/metrics/impactlink/<path:object_id>/": [
        get("/admin/metrics/impactlink/{link}/", EVERYONE_MOVED)
    ],
    #
    # Goals: scoped, written by managers while the cycle is proposing or aligning, and
    # by nobody once it is committed. {goal} is sales' goal of FY2027 (proposing),
    # {goal_free} another one no shared goal uses, {goal_locked} sales' goal of the
    # committed FY2026.
    "/admin/goals/goal/": [
        get("/admin/goals/goal/", VIEW),
        post(
            "/admin/goals/goal/",
            bulk_delete("{goal_free}") | CONFIRM,
            (LOGIN, 200, SAVED, BACK, SAVED, SAVED),
        ),
        post(
            "/admin/goals/goal/",
            bulk_delete("{goal_locked}") | CONFIRM,
            (LOGIN, 200, 403, BACK, 403, 403),
            "committed cycle",
        ),
    ],
    "/admin/goals/goal/add/": [
        get("/admin/goals/goal/add/", MANAGERS),
        post("/admin/goals/goal/add/", {}, MANAGERS),
    ],
    "/admin/goals/goal/<path:object_id>/change/": [
        get("/admin/goals/goal/{goal}/change/", SCOPED_VIEW),
        post("/admin/goals/goal/{goal}/change/", {}, SCOPED_WRITE),
        get("/admin/goals/goal/{goal_locked}/change/", SCOPED_VIEW, "committed cycle"),
        post(
            "/admin/goals/goal/{goal_locked}/change/",
            {},
            (LOGIN, 403, 403, GONE, 403, 403),
            "committed cycle",
        ),
    ],
    "/admin/goals/goal/<path:object_id>/delete/": [
        get("/admin/goals/goal/{goal_free}/delete/", SCOPED_WRITE),
        post("/admin/goals/goal/{goal_free}/delete/", CONFIRM, SCOPED_SAVES),
        get(
            "/admin/goals/goal/{goal_locked}/delete/",
            (LOGIN, 403, 403, GONE, 403, 403),
            "committed cycle",
        ),
        post(
            "/admin/goals/goal/{goal_locked}/delete/",
            CONFIRM,
            (LOGIN, 403, 403, GONE, 403, 403),
            "committed cycle",
        ),
    ],
    "/admin/goals/goal/<path:object_id>/history/": [
        get("/admin/goals/goal/{goal}/history/", (LOGIN, 200, 200, 403, 200, 200))
    ],
    "/admin/goals/goal/<object_id>/history/<version_id>/": [
        get(
            "/admin/goals/goal/{goal}/history/{goal_version}/",
            (LOGIN, 200, 200, 404, 200, 200),
        ),
        post("/admin/goals/goal/{goal}/history/{goal_version}/", {}, NOBODY),
    ],
    "/admin/goals/goal/<path:object_id>/": [
        get("/admin/goals/goal/{goal}/", EVERYONE_MOVED)
    ],
    #
    # Shared goals: the CCO team's; read-only once the cycle is committed.
    "/admin/goals/sharedgoal/": [
        get("/admin/goals/sharedgoal/", VIEW),
        post(
            "/admin/goals/sharedgoal/",
            bulk_delete("{shared}") | CONFIRM,
            (LOGIN, 200, 200, 200, SAVED, SAVED),
        ),
        post(
            "/admin/goals/sharedgoal/",
            bulk_delete("{shared_locked}") | CONFIRM,
            (LOGIN, 200, 200, 200, 403, 403),
            "committed cycle",
        ),
    ],
    "/admin/goals/sharedgoal/add/": [
        get("/admin/goals/sharedgoal/add/", CCO),
        post("/admin/goals/sharedgoal/add/", {}, CCO),
    ],
    "/admin/goals/sharedgoal/<path:object_id>/change/": [
        get("/admin/goals/sharedgoal/{shared}/change/", VIEW),
        post("/admin/goals/sharedgoal/{shared}/change/", {}, CCO),
        get("/admin/goals/sharedgoal/{shared_locked}/change/", VIEW, "committed cycle"),
        post(
            "/admin/goals/sharedgoal/{shared_locked}/change/",
            {},
            NOBODY,
            "committed cycle",
        ),
    ],
    "/admin/goals/sharedgoal/<path:object_id>/delete/": [
        get("/admin/goals/sharedgoal/{shared}/delete/", CCO),
        post("/admin/goals/sharedgoal/{shared}/delete/", CONFIRM, CCO_SAVES),
        get(
            "/admin/goals/sharedgoal/{shared_locked}/delete/",
            NOBODY,
            "committed cycle",
        ),
        post(
            "/admin/goals/sharedgoal/{shared_locked}/delete/",
            CONFIRM,
            NOBODY,
            "committed cycle",
        ),
    ],
    "/admin/goals/sharedgoal/<path:object_id>/history/": [
        get("/admin/goals/sharedgoal/{shared}/history/", VIEW)
    ],
    "/admin/goals/sharedgoal/<object_id>/history/<version_id>/": [
        get("/admin/goals/sharedgoal/{shared}/history/{shared_version}/", VIEW),
        post("/admin/goals/sharedgoal/{shared}/history/{shared_version}/", {}, NOBODY),
    ],
    "/admin/goals/sharedgoal/<path:object_id>/": [
        get("/admin/goals/sharedgoal/{shared}/", EVERYONE_MOVED)
    ],
    #
    # Roll-up runs: written by the job alone; every role reads them.
    "/admin/goals/rolluprun/": [get("/admin/goals/rolluprun/", VIEW)],
    "/admin/goals/rolluprun/add/": [
        get("/admin/goals/rolluprun/add/", NOBODY),
        post("/admin/goals/rolluprun/add/", {}, NOBODY),
    ],
    "/admin/goals/rolluprun/<path:object_id>/change/": [
        get("/admin/goals/rolluprun/{rollup_run}/change/", VIEW),
        post("/admin/goals/rolluprun/{rollup_run}/change/", {}, NOBODY),
    ],
    "/admin/goals/rolluprun/<path:object_id>/delete/": [
        get("/admin/goals/rolluprun/{rollup_run}/delete/", NOBODY),
        post("/admin/goals/rolluprun/{rollup_run}/delete/", CONFIRM, NOBODY),
    ],
    "/admin/goals/rolluprun/<path:object_id>/history/": [
        get("/admin/goals/rolluprun/{rollup_run}/history/", VIEW)
    ],
    "/admin/goals/rolluprun/<path:object_id>/": [
        get("/admin/goals/rolluprun/{rollup_run}/", EVERYONE_MOVED)
    ],
    #
    # Planning cycles: the CCO team's; a committed cycle is read-only here (it is
    # reopened through the workflow). {cycle_empty} has no goals: it can be deleted.
    "/admin/cycles/cycle/": [
        get("/admin/cycles/cycle/", VIEW),
        post(
            "/admin/cycles/cycle/",
            bulk_delete("{cycle_empty}") | CONFIRM,
            (LOGIN, 200, 200, 200, SAVED, SAVED),
        ),
        post(
            "/admin/cycles/cycle/",
            bulk_delete("{cycle_locked_empty}") | CONFIRM,
            (LOGIN, 200, 200, 200, 403, 403),
            "committed cycle",
        ),
    ],
    "/admin/cycles/cycle/add/": [
        get("/admin/cycles/cycle/add/", CCO),
        post("/admin/cycles/cycle/add/", {}, CCO),
    ],
    "/admin/cycles/cycle/<path:object_id>/change/": [
        get("/admin/cycles/cycle/{cycle}/change/", VIEW),
        post("/admin/cycles/cycle/{cycle}/change/", {}, CCO),
        get(
            "/admin/cycles/cycle/{cycle_locked}/change/",
            VIEW,
            "committed cycle",
        ),
        post(
            "/admin/cycles/cycle/{cycle_locked}/change/",
            {},
            NOBODY,
            "committed cycle",
        ),
    ],
    "/admin/cycles/cycle/<path:object_id>/delete/": [
        get("/admin/cycles/cycle/{cycle_empty}/delete/", CCO),
        post("/admin/cycles/cycle/{cycle_empty}/delete/", CONFIRM, CCO_SAVES),
        get(
            "/admin/cycles/cycle/{cycle_locked_empty}/delete/",
            NOBODY,
            "committed cycle",
        ),
        post(
            "/admin/cycles/cycle/{cycle_locked_empty}/delete/",
            CONFIRM,
            NOBODY,
            "committed cycle",
        ),
    ],
    "/admin/cycles/cycle/<path:object_id>/history/": [
        get("/admin/cycles/cycle/{cycle}/history/", VIEW)
    ],
    "/admin/cycles/cycle/<object_id>/history/<version_id>/": [
        get("/admin/cycles/cycle/{cycle}/history/{cycle_version}/", VIEW),
        post(
            "/admin/cycles/cycle/{cycle}/history/{cycle_version}/",
            {},
            NOBODY,
        ),
    ],
    "/admin/cycles/cycle/<path:object_id>/": [
        get("/admin/cycles/cycle/{cycle}/", EVERYONE_MOVED)
    ],
    #
    # Priorities: the CCO team's, like their cycle.
    "/admin/planning/priority/": [
        get("/admin/planning/priority/", VIEW),
        post(
            "/admin/planning/priority/",
            bulk_delete("{priority}") | CONFIRM,
            (LOGIN, 200, 200, 200, SAVED, SAVED),
        ),
        post(
            "/admin/planning/priority/",
            bulk_delete("{priority_locked}") | CONFIRM,
            (LOGIN, 200, 200, 200, 403, 403),
            "committed cycle",
        ),
    ],
    "/admin/planning/priority/add/": [
        get("/admin/planning/priority/add/", CCO),
        post("/admin/planning/priority/add/", {}, CCO),
    ],
    "/admin/planning/priority/<path:object_id>/change/": [
        get("/admin/planning/priority/{priority}/change/", VIEW),
        post("/admin/planning/priority/{priority}/change/", {}, CCO),
        get(
            "/admin/planning/priority/{priority_locked}/change/",
            VIEW,
            "committed cycle",
        ),
        post(
            "/admin/planning/priority/{priority_locked}/change/",
            {},
            NOBODY,
            "committed cycle",
        ),
    ],
    "/admin/planning/priority/<path:object_id>/delete/": [
        get("/admin/planning/priority/{priority}/delete/", CCO),
        post("/admin/planning/priority/{priority}/delete/", CONFIRM, CCO_SAVES),
        get(
            "/admin/planning/priority/{priority_locked}/delete/",
            NOBODY,
            "committed cycle",
        ),
        post(
            "/admin/planning/priority/{priority_locked}/delete/",
            CONFIRM,
            NOBODY,
            "committed cycle",
        ),
    ],
    "/admin/planning/priority/<path:object_id>/history/": [
        get("/admin/planning/priority/{priority}/history/", VIEW)
    ],
    "/admin/planning/priority/<object_id>/history/<version_id>/": [
        get("/admin/planning/priority/{priority}/history/{priority_version}/", VIEW),
        post(
            "/admin/planning/priority/{priority}/history/{priority_version}/",
            {},
            NOBODY,
        ),
    ],
    "/admin/planning/priority/<path:object_id>/": [
        get("/admin/planning/priority/{priority}/", EVERYONE_MOVED)
    ],
    #
    # Login lockouts (django-axes, restricted in core.admin): superusers and the CCO
    # team see them; deleting an attempt unlocks its (username, address). Nobody adds
    # or edits one, and the logs are never deleted here. {attempt} is a locked pair.
    "/admin/axes/": [get("/admin/axes/", (LOGIN, 404, 404, 404, 200, 200))],
    "/admin/axes/accessattempt/": [
        get("/admin/axes/accessattempt/", LOCKOUTS),
        post(
            "/admin/axes/accessattempt/",
            bulk_delete("{attempt}") | CONFIRM,
            LOCKOUTS_SAVES,
        ),
    ],
    "/admin/axes/accessattempt/add/": [
        get("/admin/axes/accessattempt/add/", NOBODY),
        post("/admin/axes/accessattempt/add/", {}, NOBODY),
    ],
    "/admin/axes/accessattempt/<path:object_id>/change/": [
        get("/admin/axes/accessattempt/{attempt}/change/", LOCKOUTS),
        post("/admin/axes/accessattempt/{attempt}/change/", {}, NOBODY),
    ],
    "/admin/axes/accessattempt/<path:object_id>/delete/": [
        get("/admin/axes/accessattempt/{attempt}/delete/", LOCKOUTS),
        post("/admin/axes/accessattempt/{attempt}/delete/", CONFIRM, LOCKOUTS_SAVES),
    ],
    "/admin/axes/accessattempt/<path:object_id>/history/": [
        get("/admin/axes/accessattempt/{attempt}/history/", LOCKOUTS)
    ],
    "/admin/axes/accessattempt/<path:object_id>/": [
        get("/admin/axes/accessattempt/{attempt}/", EVERYONE_MOVED)
    ],
    **axes_log(model="accesslog", pk="{access_log}"),
    **axes_log(model="accessfailurelog", pk="{failure_log}"),
}

# Unnamed groups of regex URL patterns, in order (simple-history's revert view).
REGEX_GROUP_NAMES = ("object_id", "version_id")


def pattern_text(pattern) -> str:
    """A URL pattern as the matrix writes it: routes as is, regexes as <name>s."""
    if not isinstance(pattern, RegexPattern):
        return str(pattern)
    text = str(pattern).removeprefix("^").removesuffix("$")
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", text)
    names = iter(REGEX_GROUP_NAMES)
    return re.sub(r"\([^)]*\)", lambda _: f"<{next(names)}>", text)


def admin_url_patterns() -> set[str]:
    """Every URL pattern admin.site serves; the app index once per registered app."""
    found = set()

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + pattern_text(entry.pattern))
            elif entry.name == "app_list":
                labels = re.search(r"<app_label>(\w+(?:\|\w+)*)", str(entry.pattern))
                found.update(
                    f"{prefix}{label}/" for label in labels.group(1).split("|")
                )
            else:
                found.add(prefix + pattern_text(entry.pattern))

    walk(admin.site.get_urls(), "/admin/")
    return found


def test_the_matrix_covers_every_admin_url():
    assert admin_url_patterns() == set(MATRIX)


def test_every_role_has_an_outcome_for_every_request():
    for requests in MATRIX.values():
        for request in requests:
            assert len(request.outcomes) == len(ROLES), request


def fingerprint() -> str:
    """The API matrix's fingerprint, plus what it leaves out and the admin can write:
    many-to-many tables (group members, silo managers, cycle silos), API tokens and
    the admin's log."""
    digest = hashlib.sha256(database_fingerprint().encode())
    tables = sorted(
        {
            model._meta.db_table
            for label in ("metrics", "goals", "planning", "auth")
            for model in apps.get_app_config(label).get_models(
                include_auto_created=True
            )
            if model._meta.auto_created
        }
        | {
            model._meta.db_table
            for label in ("authtoken", "admin")
            for model in apps.get_app_config(label).get_models()
        }
        # Login lockouts; not axes' AccessLog, which every logout writes to.
        | {AccessAttempt._meta.db_table, AccessFailureLog._meta.db_table}
    )
    with connection.cursor() as cursor:
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted} ORDER BY 1")  # noqa: S608 - table names from the ORM
            digest.update(repr(cursor.fetchall()).encode())
    return digest.hexdigest()


def build_world() -> dict:
    """One object of every admin-registered model (and of every inline's model)."""
    sales = factories.SiloFactory(slug="sales", name="Sales", position=20)
    support = factories.SiloFactory(slug="support", name="Support", position=40)
    ops = factories.SiloFactory(slug="ops", name="Operations", position=60)
    empty = factories.SiloFactory(slug="empty", name="Empty", position=80)
    users = {
        "manager_a": factories.silo_manager(sales, username="manager_a"),
        "manager_b": factories.silo_manager(support, username="manager_b"),
        "cco": factories.cco_member(username="cco"),
        "reader": factories.bi_reader(username="reader"),
        "superuser": factories.UserFactory(username="root", is_superuser=True),
    }
    spare = factories.UserFactory(username="spare", is_staff=False)
    group = Group.objects.create(name="Spare")
    spare.groups.add(group)
    Token.objects.create(user=spare)

    cycle = factories.CycleFactory(name="FY2027")
    cycle.silos.set([sales, support])
    locked = factories.CycleFactory(
        name="FY2026", start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 12, 31)
    )
    locked.silos.set([sales, support])
    cycle_empty = factories.CycleFactory(name="FY2030", phase="draft")

    deals = factories.KPIFactory(silo=sales, slug="deals_closed")
    kpi_unused = factories.KPIFactory(silo=sales, slug="unused")
    free = factories.KPIFactory(silo=sales, slug="free")
    csat = factories.KPIFactory(silo=support, slug="csat", aggregation="mean")
    uptime = factories.KPIFactory(silo=ops, slug="uptime", aggregation="mean")
    measurement = factories.MeasurementFactory(kpi=deals)
    factories.MeasurementFactory(kpi=csat)
    link = factories.ImpactLinkFactory(leader_kpi=deals, affected_kpi=uptime)
    factories.ImpactLinkFactory(leader_kpi=csat, affected_kpi=uptime)

    goal = factories.GoalFactory(cycle=cycle, kpi=deals)
    goal_b = factories.GoalFactory(cycle=cycle, kpi=csat)
    goal_free = factories.GoalFactory(cycle=cycle, kpi=free)
    shared = factories.SharedGoalFactory(cycle=cycle, name="Growth")
    for contributor in (goal, goal_b):
        Contribution.objects.create(shared_goal=shared, goal=contributor, weight=1)
    Guardrail.objects.create(shared_goal=shared, kpi=uptime, baseline=99, tolerance=1)
    priority = factories.PriorityFactory(cycle=cycle, accountable_silo=sales)
    Responsibility.objects.create(priority=priority, silo=sales, role="accountable")
    FundingAllocation.objects.create(priority=priority, silo=sales, amount=1000)
    SignOff.objects.create(cycle=cycle, silo=sales, user=users["manager_a"])
    ReadinessAnswer.objects.create(
        cycle=cycle, number=1, answer="yes", answered_by=users["cco"]
    )
    rollup_run = RollupRun.objects.create(
        reason="command",
        status="failed",
        day=dt.date(2027, 3, 1),
        started_at=dt.datetime(2027, 3, 1, 3, tzinfo=dt.UTC),
        finished_at=dt.datetime(2027, 3, 1, 3, 0, 1, tzinfo=dt.UTC),
        error="DataError: value out of range",
    )

    # FY2026's plan, made while it was proposing, then committed. {goal_locked} is in
    # no shared goal, so deleting it is refused for the lock, not for a protected row.
    in_2026 = {"period_start": dt.date(2026, 1, 1), "period_end": dt.date(2026, 12, 1)}
    goal_locked = factories.GoalFactory(cycle=locked, kpi=deals, **in_2026)
    shared_locked = factories.SharedGoalFactory(cycle=locked, name="Growth 2026")
    for kpi in (free, csat):
        contributor = factories.GoalFactory(cycle=locked, kpi=kpi, **in_2026)
        Contribution.objects.create(
            shared_goal=shared_locked, goal=contributor, weight=1
        )
    priority_locked = factories.PriorityFactory(cycle=locked, accountable_silo=sales)
    for silo in (sales, support):
        SignOff.objects.create(cycle=locked, silo=silo, user=silo.managers.get())
    # A committed cycle without goals: deleting it is refused for the lock alone (the
    # goals of FY2026 protect it from deletion anyway).
    locked_empty = factories.CycleFactory(
        name="FY2025", start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 12, 31)
    )
    for cycle_to_commit in (locked, locked_empty):
        cycle_to_commit.phase = "committed"
        cycle_to_commit.save()

    # A locked-out pair, a login and a failure, as django-axes records them. Recent: a
    # login (force_login too) deletes attempts older than the cool-off.
    client = {
        "username": "spare",
        "ip_address": "192.0.2.1",
        "user_agent": "matrix",
        "http_accept": "*/*",
        "path_info": "/admin/login/",
        "attempt_time": timezone.now(),
    }
    attempt = AccessAttempt.objects.create(
        **client, get_data="", post_data="", failures_since_start=10
    )
    access_log = AccessLog.objects.create(**client)
    failure_log = AccessFailureLog.objects.create(**client, locked_out=True)

    channel = Channel.objects.create(
        name="Ops webhook",
        kind="webhook",
        url="https://hooks.example.com/ducttape",
        secret="s" * 32,
        events=["conflict.new"],
    )
    channel_spare = Channel.objects.create(
        name="Spare Slack", kind="slack", url="https://hooks.slack.com/services/T/B/x"
    )
    subscription = Subscription.objects.create(
        user=users["manager_a"], events=["conflict.new"]
    )
    event = Event.objects.create(
        name="conflict.new",
        key="conflict.new:matrix",
        occurred_at=timezone.now(),
        title="New conflict",
    )
    delivery = Delivery.objects.create(
        event=event, channel=channel, kind="webhook", target=channel.url
    )

    def version(obj):
        return obj.history.latest().history_id

    return {
        "users": users,
        "ids": {
            "silo": sales.pk,
            "silo_empty": empty.pk,
            "kpi": deals.pk,
            "kpi_unused": kpi_unused.pk,
            "measurement": measurement.pk,
            "link": link.pk,
            "goal": goal.pk,
            "goal_free": goal_free.pk,
            "goal_locked": goal_locked.pk,
            "shared": shared.pk,
            "shared_locked": shared_locked.pk,
            "cycle": cycle.pk,
            "cycle_empty": cycle_empty.pk,
            "cycle_locked": locked.pk,
            "cycle_locked_empty": locked_empty.pk,
            "priority": priority.pk,
            "priority_locked": priority_locked.pk,
            "rollup_run": rollup_run.pk,
            "user": spare.pk,
            "group": group.pk,
            "silo_version": version(sales),
            "silo_empty_version": version(empty),
            "kpi_version": version(deals),
            "link_version": version(link),
            "goal_version": version(goal),
            "shared_version": version(shared),
            "cycle_version": version(cycle),
            "priority_version": version(priority),
            "kpi_ct": ContentType.objects.get_for_model(KPI).pk,
            "attempt": attempt.pk,
            "access_log": access_log.pk,
            "failure_log": failure_log.pk,
            "channel": channel.pk,
            "channel_spare": channel_spare.pk,
            "subscription": subscription.pk,
            "event": event.pk,
            "delivery": delivery.pk,
        },
    }


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, built once for the module inside a transaction rolled back at its
    end; each test runs in a savepoint of it (pytest-django's django_db), so a test's
    writes are undone before the next one."""
    with django_db_blocker.unblock(), transaction.atomic():
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)


@pytest.fixture
def import_ids(db, world, role):
    """A stored CSV import of the role's user (manager_a's for anonymous), as an upload
    leaves it for its preview and confirmation, and one of another user."""
    owner = world["users"]["manager_a" if role == "anonymous" else role]
    return {
        "import": MeasurementImport.objects.create(
            user=owner, filename="measurements.csv", content=CSV
        ).pk,
        "import_other": MeasurementImport.objects.create(
            user_id=world["ids"]["user"], filename="theirs.csv", content=CSV
        ).pk,
    }


@pytest.mark.django_db
def test_the_world_holds_an_object_of_every_admin_model(world):
    for model in admin.site._registry:
        assert model._default_manager.exists(), model


def materialize(body, ids):
    if body is None:
        return None
    data = fill(body, ids)
    for key, value in data.items():
        if value == UPLOAD:
            data[key] = SimpleUploadedFile(
                "measurements.csv", CSV.encode(), content_type="text/csv"
            )
    return data


def mismatch(response, outcome, full_path, changed) -> str | None:
    """Why ``response`` is not ``outcome`` (None when it is)."""
    status, location = response.status_code, response.get("Location", "")
    got = f"got {status}" + (f" to {location}" if location else "")
    got += ", the database changed" if changed else ", the database unchanged"
    if outcome == SAVED:
        ok = status == 302 and changed and not location.startswith("/admin/login/")
        return None if ok else got
    if changed:
        return got
    if isinstance(outcome, int):
        return None if status == outcome else got
    if status != 302:
        return got
    if outcome == LOGIN:
        login = urlsplit(location)
        next_ = parse_qs(login.query).get("next")
        ok = login.path == "/admin/login/" and next_ == [full_path]
    elif outcome == GONE:
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        ok = location == "/admin/" and any(
            "doesn\u2019t exist" in message for message in messages
        )
    elif outcome == INDEX:
        ok = location == "/admin/"
    elif outcome == MOVED:
        ok = location == f"{full_path}change/"
    elif outcome == BACK:
        ok = location == full_path
    else:
        assert outcome == LISTED, outcome
        ok = re.fullmatch(r"/admin/\w+/\w+/", location) is not None
        ok = ok and full_path.startswith(location)
    return None if ok else got


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("pattern", sorted(MATRIX))
def test_admin_url_answers_each_role_as_the_matrix_says(
    client, world, import_ids, pattern, role
):
    # A server error is an answer like any other here: it fails as a mismatch.
    client.raise_request_exception = False
    if role != "anonymous":
        client.force_login(world["users"][role])
    problems = []

    for request in MATRIX[pattern]:
        outcome = request.outcomes[ROLES.index(role)]
        ids = {**world["ids"], **import_ids}
        full_path = fill(request.path, ids)
        body = materialize(request.body, ids)
        before = fingerprint()
        if request.method == "GET":
            response = client.get(full_path)
        else:
            response = client.post(full_path, body)
        problem = mismatch(response, outcome, full_path, fingerprint() != before)
        if problem:
            label = f" [{request.label}]" if request.label else ""
            problems.append(
                f"{request.method} {full_path}{label}: expected {outcome!r}, {problem}"
            )

    assert not problems, "\n".join(problems)
