from django.apps import AppConfig


class GoalsConfig(AppConfig):
    name = "goals"
    verbose_name = "Goals"

    def ready(self) -> None:
        # New measurements of contributing KPIs ask for a roll-up (see signals).
        from goals import signals  # noqa: F401
