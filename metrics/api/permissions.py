"""API permissions shared by every app: a request must come from a user with a role."""

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.views import APIView

from metrics.roles import is_bi_reader, is_cco, is_silo_manager


class HasRole(BasePermission):
    """Allow reads to users in a role (BI readers, silo managers, CCO team, superusers).

    Writes are refused here unless a view opts in by overriding ``has_permission``; the
    resources of this module are read-only, so deny-by-default holds.
    """

    message = "Your account has no ducttape role (BI readers, Silo managers, CCO team)."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        if not (is_cco(user) or is_bi_reader(user) or is_silo_manager(user)):
            return False
        return request.method in SAFE_METHODS
