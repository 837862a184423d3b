"""API permissions shared by every app.

Deny by default: a request must come from a user in a role; reads are open to every
role (alignment needs transparency across silos); a write is allowed only when the view
names a role that may write it (``write_roles``). Which *rows* a silo manager may write
is decided by scoped querysets and related fields, not here.
"""

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from core.roles import is_bi_reader, is_cco, is_silo_manager

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.views import APIView

#: ``write_roles`` values.
CCO = "cco"
SILO_MANAGER = "silo_manager"


class RolePermission(BasePermission):
    """Allow reads to users in any role, writes to the roles the view lists."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        cco = is_cco(user)
        if not (cco or is_bi_reader(user) or is_silo_manager(user)):
            self.message = "Your account has no ducttape role (BI readers, Silo managers, CCO team)."
            return False
        if request.method in SAFE_METHODS:
            return True
        write_roles = getattr(view, "write_roles", ())
        if cco and (CCO in write_roles or SILO_MANAGER in write_roles):
            return True
        if SILO_MANAGER in write_roles and is_silo_manager(user):
            return True
        self.message = (
            "Only the CCO team may change this."
            if write_roles == (CCO,)
            else "Your role may read here but not write."
        )
        return False
