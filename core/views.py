"""Pages of the site's shell that belong to no domain app: the user's API token."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.generic import TemplateView
from rest_framework.authtoken.models import Token

from core.roles import has_role, signed_in
from core.tokens import token_create, token_revoke
from core.web import LoginThenRoleMixin


class TokenView(LoginThenRoleMixin, TemplateView):
    """The signed-in user's own API token: create it (its key is shown once, in the
    answer to that request), see that it exists and since when, or revoke it."""

    template_name = "core/token.html"

    def test_func(self) -> bool:
        return has_role(self.request.user)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["token"] = Token.objects.filter(
            user=signed_in(self.request.user)
        ).first()
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        user = signed_in(request.user)
        action = request.POST.get("action")
        if action == "create":
            key = token_create(user=user)
            response = self.render_to_response(self.get_context_data(new_key=key))
            # The key is in this page alone: no cache may keep it.
            response["Cache-Control"] = "no-store"
            return response
        if action == "revoke":
            revoked = token_revoke(user=user)
            return self.render_to_response(self.get_context_data(revoked=revoked))
        return self.render_to_response(
            self.get_context_data(error="Choose to create or to revoke a token."),
            status=400,
        )
