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

        from planning import events

        events.connect()

        from notifications.digest import register_section
        from planning.selectors import digest_cycles_waiting

        register_section("cycles_waiting", digest_cycles_waiting)
