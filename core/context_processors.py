"""Template context shared by the site's pages."""

from django.http import HttpRequest

from core import navigation as site_navigation


def navigation(request: HttpRequest) -> dict[str, list[tuple[str, str]]]:
    """The header links the signed-in user may follow (see core.navigation)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"navigation": []}
    return {"navigation": site_navigation.links_for(user)}
