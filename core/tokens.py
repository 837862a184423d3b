"""A user's own API token: created and shown once, or revoked (DRF's token model)."""

from __future__ import annotations

from django.db import transaction
from rest_framework.authtoken.models import Token

from core.roles import Account


def token_create(*, user: Account) -> str:
    """Replace ``user``'s API token with a new one and return its key.

    The key is shown to the user once, in the answer to this request; pages show only
    that a token exists and when it was made. An older token stops working at once.
    """
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user).key


def token_revoke(*, user: Account) -> bool:
    """Delete ``user``'s API token; return whether there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0
