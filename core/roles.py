"""The three roles of ducttape and the predicates that every scoped read and write uses.

Roles are Django groups (created by a data migration), so an administrator grants a
role in the admin like any other group membership.
"""

from collections.abc import Callable
from typing import TypeGuard, TypeVar, cast

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as Account

SILO_MANAGERS = "Silo managers"
CCO_TEAM = "CCO team"
BI_READERS = "BI readers"
ROLE_GROUPS = (SILO_MANAGERS, CCO_TEAM, BI_READERS)

# Whoever makes a request: a signed-in account, or an anonymous visitor.
User = Account | AnonymousUser

T = TypeVar("T")


def signed_in(user: User) -> Account:
    """Return ``user`` typed as the signed-in account it is where the view already
    requires one (the admin, authenticated API endpoints, login-only pages).

    Django types ``request.user`` as possibly anonymous whatever the view requires;
    nothing is checked here at run time.
    """
    return cast(Account, user)


def cached_on_user(user: User, name: str, compute: Callable[[], T]) -> T:
    """Return the answer remembered on ``user`` as ``name``, computing it first if
    there is none (Django builds the user object afresh for every request).

    Scoped views ask the same question several times per request. The attribute is
    not a field of either user class, so it is set by name.
    """
    cached = getattr(user, name, None)
    if cached is None:
        cached = compute()
        setattr(user, name, cached)
    return cached


def _group_names(user: User) -> set[str]:
    return cached_on_user(
        user,
        "_ducttape_groups",
        lambda: (
            set(user.groups.values_list("name", flat=True))
            if user.is_authenticated
            else set()
        ),
    )


# Each predicate holds only for a signed-in account (TypeGuard tells the type checker).


def is_cco(user: User) -> TypeGuard[Account]:
    """Return whether the user acts for the CCO team (superusers do too)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser) or CCO_TEAM in _group_names(user)


def is_bi_reader(user: User) -> TypeGuard[Account]:
    """Return whether the user is in the read-only BI readers group."""
    return bool(
        user.is_authenticated and user.is_active
    ) and BI_READERS in _group_names(user)


def is_silo_manager(user: User) -> TypeGuard[Account]:
    """Return whether the user is in the Silo managers group."""
    return bool(user.is_authenticated and user.is_active) and SILO_MANAGERS in (
        _group_names(user)
    )


def holds_role_group(user: User) -> TypeGuard[Account]:
    """Return whether the user is in one of the three role groups (a superuser in none
    holds no role here, though is_cco counts them for the CCO team's rights)."""
    return bool(user.is_authenticated and user.is_active) and bool(
        _group_names(user) & set(ROLE_GROUPS)
    )


def has_role(user: User) -> TypeGuard[Account]:
    """Return whether the user holds any of the three roles (the CCO team counts
    superusers)."""
    return is_cco(user) or is_bi_reader(user) or is_silo_manager(user)
