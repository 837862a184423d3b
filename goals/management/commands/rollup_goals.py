"""``manage.py rollup_goals``: snapshot every open cycle's shared goals now."""

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from goals import rollups
from goals.models import RollupRun


class Command(BaseCommand):
    help = (
        "Roll up the shared goals of open cycles into today's snapshots, with progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--day",
            help="Snapshot day (YYYY-MM-DD); today by default.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day = None
        if options["day"]:
            try:
                day = dt.date.fromisoformat(options["day"])
            except ValueError:
                raise CommandError(
                    f"--day {options['day']!r} is not a YYYY-MM-DD date."
                ) from None
        run = rollups.shared_goals_rollup(
            reason=RollupRun.Reason.COMMAND, day=day, progress_line=self.stdout.write
        )
        if run.status == RollupRun.Status.SKIPPED:
            raise CommandError("Another roll-up is running; try again when it ends.")
        self.stdout.write(self.style.SUCCESS(f"Roll-up of {run.day} done."))
