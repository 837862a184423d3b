from django.apps import AppConfig


class ConflictsConfig(AppConfig):
    name = "conflicts"
    verbose_name = "Conflicts"

    def ready(self) -> None:
        # Declared conflicts follow goals, links and cycles as they change (see signals).
        from conflicts import signals  # noqa: F401
        from core.navigation import Link, register
        from core.roles import is_cco

        register(
            Link("Conflict report", "conflicts:report", is_cco, order=10),
            Link("Conflict register", "conflicts:register", is_cco, order=20),
        )

        from conflicts.selectors import digest_open_conflicts
        from notifications.digest import register_section

        register_section("open_conflicts", digest_open_conflicts)
