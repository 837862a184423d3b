from django.apps import AppConfig


class ConflictsConfig(AppConfig):
    name = "conflicts"
    verbose_name = "Conflicts"

    def ready(self) -> None:
        # Declared conflicts follow goals, links and cycles as they change (see signals).
        from conflicts import signals  # noqa: F401
