"""The base viewset of every app's model resources."""

from typing import Any

from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.serializers import BaseSerializer

from core.services import recorded_delete


class ServiceModelViewSet(viewsets.ModelViewSet):
    """A model resource whose writes call a service and look up writable rows only.

    Subclasses set ``write_roles`` and ``save_service`` (called with ``user``, the
    instance to update or None, and the validated fields) and may narrow
    ``get_write_queryset``.
    """

    write_roles: tuple[str, ...] = ()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def save_service(self, *, user: Any, instance: Any, **fields: Any) -> Any:
        raise NotImplementedError

    def get_read_queryset(self) -> QuerySet:
        return super().get_queryset()

    def get_write_queryset(self) -> QuerySet:
        return self.get_read_queryset()

    def get_queryset(self) -> QuerySet:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return self.get_read_queryset()
        return self.get_write_queryset()

    def perform_create(self, serializer: BaseSerializer) -> None:
        saved = self.save_service(
            user=self.request.user, instance=None, **serializer.validated_data
        )
        serializer.instance = self.reloaded(saved)

    def perform_update(self, serializer: BaseSerializer) -> None:
        saved = self.save_service(
            user=self.request.user,
            instance=serializer.instance,
            **serializer.validated_data,
        )
        serializer.instance = self.reloaded(saved)

    def reloaded(self, instance: Any) -> Any:
        # Answer with what is stored, related rows included, not the pre-write cache.
        return self.get_read_queryset().get(pk=instance.pk)

    def perform_destroy(self, instance: Any) -> None:
        recorded_delete(instance=instance, user=self.request.user)
