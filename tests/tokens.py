"""DRF tokens for API tests: each request then loads the user afresh, as in production
(force_authenticate keeps one user object, and what is cached on it, across requests)."""

import io

from django.core.management import call_command
from rest_framework.authtoken.models import Token


def token_for(user):
    """Return a token for ``user`` made by ``manage.py drf_create_token``, as an
    operator makes one."""
    out = io.StringIO()
    call_command("drf_create_token", user.username, stdout=out)
    return Token.objects.get(user=user).key


def as_token(api, user):
    """Authenticate the test client as ``user`` with a DRF token, as a real client."""
    token, _ = Token.objects.get_or_create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
