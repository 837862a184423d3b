"""What the home pages remember about a user between visits."""

from django.conf import settings
from django.db import models


class HomeVisit(models.Model):
    """When a user last opened their home page, so that the next visit can say what
    is new since.

    A row, not the session: a session ends at logout (and on another browser there is
    another one), while "new since your last visit" should mean since the person last
    looked, whichever browser they used.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="home_visit"
    )
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} saw their home at {self.seen_at:%Y-%m-%d %H:%M}"
