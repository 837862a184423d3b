from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Silos and KPIs"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from notifications.audience import register_silo_managers

        # Notifications reach "the silos' managers" of an event through this.
        register_silo_managers(
            lambda silo_ids: get_user_model().objects.filter(managed_silos__in=silo_ids)
        )
