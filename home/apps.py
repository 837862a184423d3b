from django.apps import AppConfig


class HomeConfig(AppConfig):
    """The product's pages across apps: each role's home and the KPI page. The top
    layer: it reads every app's selectors, and no app imports it."""

    name = "home"
    verbose_name = "Home pages"

    def ready(self) -> None:
        from core.navigation import Link, register
        from core.roles import has_role

        register(Link("Home", "home:home", has_role, order=0))
