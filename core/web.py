"""The web shell the report and cycle pages share: who may open a page."""

from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.http import HttpRequest, HttpResponseRedirect

from core.roles import is_cco


class LoginThenRoleMixin(LoginRequiredMixin, UserPassesTestMixin):
    """Anonymous visitors go to the login page; signed-in users that ``test_func``
    refuses get 403 (not a login page they could do nothing with)."""

    # Set by the View this mixin is combined with.
    request: HttpRequest

    def handle_no_permission(self) -> HttpResponseRedirect:
        if self.request.user.is_authenticated:
            self.raise_exception = True
        return super().handle_no_permission()


class CCOOnlyMixin(LoginThenRoleMixin):
    """The CCO team only."""

    def test_func(self) -> bool:
        return is_cco(self.request.user)
