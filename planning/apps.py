from django.apps import AppConfig


class PlanningConfig(AppConfig):
    name = "planning"
    verbose_name = "Planning cycles"

    def ready(self) -> None:
        from core.navigation import Link, register
        from core.roles import User, is_cco, is_silo_manager

        def plans(user: User) -> bool:
            return is_cco(user) or is_silo_manager(user)

        register(Link("Planning cycles", "planning:cycles", plans, order=30))
