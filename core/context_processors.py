"""Template context shared by the report pages."""

from django.http import HttpRequest

from core.roles import is_cco, is_silo_manager


def roles(request: HttpRequest) -> dict[str, bool]:
    """Say which report links the signed-in user may follow."""
    user = getattr(request, "user", None)
    if user is None:
        return {"user_is_cco": False, "user_is_silo_manager": False}
    return {"user_is_cco": is_cco(user), "user_is_silo_manager": is_silo_manager(user)}
