"""The links of the site's header, registered by the apps that own the pages.

The shell (base template, context processor) lives here, below every app, so it cannot
name their pages; each app registers its links in its ``AppConfig.ready`` instead, with
who may see them, as NetBox's plugins register their menu items.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse

from core.roles import User


@dataclass(frozen=True)
class Link:
    """A header link: shown, in ``order``, to the users ``audience`` accepts."""

    label: str
    url_name: str
    audience: Callable[[User], bool]
    order: int


_LINKS: dict[str, Link] = {}


def register(*links: Link) -> None:
    """Add links to the header (registering a URL name again replaces its link)."""
    for link in links:
        _LINKS[link.url_name] = link


def links_for(user: User) -> list[tuple[str, str]]:
    """Return the (label, URL) pairs of the header that ``user`` may follow."""
    return [
        (link.label, reverse(link.url_name))
        for link in sorted(_LINKS.values(), key=lambda link: (link.order, link.label))
        if link.audience(user)
    ]
