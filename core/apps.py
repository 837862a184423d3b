"""The core app: project-wide plumbing no domain app owns.

It is an installed app for its templates (the lockout page) and its admin module, which
must load after django-axes' (``core`` comes after ``axes`` in INSTALLED_APPS).
"""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core.navigation import Link, register
        from core.roles import has_role

        register(Link("API token", "api-token", has_role, order=90))
