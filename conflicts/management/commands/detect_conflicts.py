"""``manage.py detect_conflicts``: run conflict detection now, with progress output."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from conflicts import services
from conflicts.models import Conflict, Method, Status
from conflicts.services import runs
from metrics import detection


class Command(BaseCommand):
    help = (
        "Run conflict detection synchronously over all measurements, update the "
        "conflict register and print a summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-lag",
            type=int,
            default=detection.DEFAULT_MAX_LAG,
            help="Largest lag tested, in periods (default %(default)s).",
        )
        parser.add_argument(
            "--min-pairs",
            type=int,
            default=detection.DEFAULT_MIN_PAIRS,
            help="Fewest paired changes a pair needs to be tested (default %(default)s).",
        )
        parser.add_argument(
            "--q",
            type=float,
            default=detection.DEFAULT_Q_THRESHOLD,
            dest="q_threshold",
            help="False-discovery rate threshold (default %(default)s).",
        )
        parser.add_argument(
            "--block-size",
            type=int,
            default=runs.DEFAULT_BLOCK_SIZE,
            help="Leader KPIs per block (default %(default)s).",
        )
        parser.add_argument(
            "--method",
            choices=Method.values,
            default=Method.DRIVERS,
            help="drivers (common drivers removed; the default) or pairwise (the "
            "first method, for comparison).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.management.base import CommandError

        # The same bounds as POST /api/v1/detection-runs/ (conflicts.services.runs).
        for name, flag, (low, high) in (
            ("max_lag", "--max-lag", runs.MAX_LAG_RANGE),
            ("min_pairs", "--min-pairs", runs.MIN_PAIRS_RANGE),
            ("q_threshold", "--q", runs.Q_THRESHOLD_RANGE),
            ("block_size", "--block-size", runs.BLOCK_SIZE_RANGE),
        ):
            if not low <= options[name] <= high:
                raise CommandError(f"{flag} must be between {low:g} and {high:g}.")
        verbosity = options["verbosity"]

        def progress(line: str) -> None:
            if verbosity >= 1:
                self.stdout.write(line)

        run = services.detection_run_now(
            max_lag=options["max_lag"],
            min_pairs=options["min_pairs"],
            q_threshold=options["q_threshold"],
            block_size=options["block_size"],
            method=options["method"],
            progress=progress,
        )
        open_conflicts = Conflict.objects.filter(status=Status.OPEN, stale=False)
        self.stdout.write(
            self.style.SUCCESS(
                f"Detection run {run.pk} {run.status} in {run.duration_seconds:.2f} s: "
                f"{run.kpis} KPIs, {run.tests} tests; {run.conflicts_found} conflicts "
                f"and {run.synergies_found} synergies found; {run.new_conflicts} new, "
                f"{run.reopened} reopened, {run.marked_stale} marked stale, "
                f"{run.contradicted_links} declared links contradicted. "
                f"Open now: {open_conflicts.count()} "
                f"({open_conflicts.filter(severity='high').count()} high); "
                f"{run.high_alerts} high-severity to review, mailed."
            )
        )
        for driver in run.drivers:
            names = ", ".join(entry["kpi"] for entry in driver["kpis"][:6])
            more = len(driver["kpis"]) - 6
            self.stdout.write(
                f"Driver {driver['number']} ({driver['grid']}): {len(driver['kpis'])} "
                f"KPIs of {driver['silos']} silos move together - {names}"
                + (f" and {more} more" if more > 0 else "")
                + "."
            )
        if run.untested_kpis:
            self.stdout.write(f"{run.untested_kpis} KPIs could not be tested:")
            for entry in run.untested[:10]:
                self.stdout.write(f"  {entry['kpi']}: {entry['reason']}")
            if run.untested_kpis > 10:
                self.stdout.write(
                    f"  ... and {run.untested_kpis - 10} more (see the run in the API)."
                )
