"""The three roles of ducttape and the predicates that every scoped read and write uses.

Roles are Django groups (created by a data migration), so an administrator grants a
role in the admin like any other group membership.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

SILO_MANAGERS = "Silo managers"
CCO_TEAM = "CCO team"
BI_READERS = "BI readers"
ROLE_GROUPS = (SILO_MANAGERS, CCO_TEAM, BI_READERS)

User = AbstractBaseUser | AnonymousUser


def _group_names(user: User) -> set[str]:
    # Cached on the user object: scoped views ask several times per request.
    cached = getattr(user, "_ducttape_groups", None)
    if cached is None:
        cached = (
            set(user.groups.values_list("name", flat=True))
            if user.is_authenticated
            else set()
        )
        user._ducttape_groups = cached  # type: ignore[union-attr]
    return cached


def is_cco(user: User) -> bool:
    """Return whether the user acts for the CCO team (superusers do too)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser) or CCO_TEAM in _group_names(user)


def is_bi_reader(user: User) -> bool:
    """Return whether the user is in the read-only BI readers group."""
    return bool(
        user.is_authenticated and user.is_active
    ) and BI_READERS in _group_names(user)


def is_silo_manager(user: User) -> bool:
    """Return whether the user is in the Silo managers group."""
    return bool(user.is_authenticated and user.is_active) and SILO_MANAGERS in (
        _group_names(user)
    )
