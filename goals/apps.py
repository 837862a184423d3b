from django.apps import AppConfig


class GoalsConfig(AppConfig):
    name = "goals"
    verbose_name = "Goals"

    def ready(self) -> None:
        # New measurements of contributing KPIs ask for a roll-up (see signals).
        from goals import signals  # noqa: F401
        from goals.checks import band_goals_block_direction_change
        from metrics.models import DIRECTION_CHANGE_CHECKS

        if band_goals_block_direction_change not in DIRECTION_CHANGE_CHECKS:
            DIRECTION_CHANGE_CHECKS.append(band_goals_block_direction_change)

        from goals.selectors import digest_goals_off_pace
        from notifications.digest import register_section

        register_section("goals_off_pace", digest_goals_off_pace)
