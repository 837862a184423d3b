"""Create or repair the demo company, so that a new user can log in and look around."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from planning.demo import ADMIN_URL, DemoSeedError, demo_seed


class Command(BaseCommand):
    help = (
        "Create a demo company (silos, KPIs, 36 months of measurements, impact links, "
        "FY2026/FY2027 plans) and one login per role. Safe to run again: a second run "
        "changes nothing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        verbose = options["verbosity"] >= 1
        try:
            report = demo_seed(
                stdout_progress=self.stdout.write if verbose else lambda line: None
            )
        except DemoSeedError as error:
            raise CommandError(str(error)) from error
        if report.changed_anything:
            self.stdout.write(self.style.SUCCESS("Demo data is in place."))
        else:
            self.stdout.write(
                self.style.SUCCESS("Nothing to do: the demo data was already in place.")
            )
        self.stdout.write("")
        self.stdout.write(f"Log in at {ADMIN_URL} with:")
        self.stdout.write("")
        self.stdout.write(f"  {'Username':<20}{'Password':<16}Role")
        for username, role in report.logins:
            self.stdout.write(f"  {username:<20}{report.password:<16}{role}")
        self.stdout.write("")
        self.stdout.write(
            "Users that existed before this run keep the password they had."
        )
