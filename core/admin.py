"""Who may see and lift login lockouts in the admin (django-axes' models).

Axes registers its admin for every staff user that holds its model permissions. Here
the rule is fixed instead: superusers and the groups of ``LOCKOUT_ADMIN_GROUPS`` (the
CCO team) may view the access attempts and the logs, and may delete an attempt, which
unlocks that username at that address; nobody else sees them, whatever permissions a
group is given. Nobody adds or edits attempts, and the logs stay as written (prune them
with ``manage.py axes_reset_logs``).
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest

from core.roles import cached_on_user


def may_manage_lockouts(request: HttpRequest) -> bool:
    """Return whether the signed-in user may see and lift login lockouts."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    # Asked several times per admin page: remember the answer on the user object.
    return cached_on_user(
        user,
        "_may_manage_lockouts",
        lambda: user.groups.filter(name__in=settings.LOCKOUT_ADMIN_GROUPS).exists(),
    )


class WrittenByCodeAdminMixin:
    """Rows only the code writes (logs, runs, deliveries): nobody adds, changes or
    deletes them in the admin, whatever permissions a group holds."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyForLockoutManagers(WrittenByCodeAdminMixin):
    """Visible to lockout managers only; nobody adds, changes or deletes."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_manage_lockouts(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_lockouts(request)


class LockoutAttemptAdmin(ReadOnlyForLockoutManagers, AccessAttemptAdmin):
    """Failed attempts per (username, address): deleting one lifts its lockout."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_lockouts(request)


class LockoutAccessLogAdmin(ReadOnlyForLockoutManagers, AccessLogAdmin):
    """Successful logins and logouts."""


class LockoutFailureLogAdmin(ReadOnlyForLockoutManagers, AccessFailureLogAdmin):
    """Every failed login, kept after its attempt is deleted or expires."""


for model, model_admin in (
    (AccessAttempt, LockoutAttemptAdmin),
    (AccessLog, LockoutAccessLogAdmin),
    (AccessFailureLog, LockoutFailureLogAdmin),
):
    # Axes registers its own classes unless AXES_ENABLE_ADMIN is off.
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
