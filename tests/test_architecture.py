"""The house's layering, beyond imports (import-linter checks those in .ci/run).

An app may not reach an app above it by name either: not in a string model reference
("planning.PlanningCycle"), a URL name, a template, a table in raw SQL, or a reverse
relation's name. Migrations are history and keep the names they had.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Top to bottom, as in pyproject's import-linter contract.
LAYERS = [
    "home",
    "planning",
    "conflicts",
    "goals",
    "cycles",
    "metrics",
    "notifications",
    "core",
]


def naming(upper: str) -> re.Pattern[str]:
    """ "planning.x" (a model or module), "planning:x" (a URL name), "planning_x" (a
    table), "planning/x" (a template or admin path); and the planning app's word."""
    extra = r"|\bplanning\b" if upper == "planning" else ""
    return re.compile(rf"\b{upper}(?:[.:/][A-Za-z_]|_[a-z]){extra}", re.IGNORECASE)


def sources(app: str) -> list[Path]:
    return sorted(
        path
        for pattern in ("*.py", "*.html", "*.sql")
        for path in (ROOT / app).rglob(pattern)
        if "migrations" not in path.parts
    )


@pytest.mark.parametrize(
    ("upper", "lower"),
    [
        (upper, lower)
        for position, upper in enumerate(LAYERS)
        for lower in LAYERS[position + 1 :]
    ],
)
def test_no_app_names_an_app_above_it(upper, lower):
    pattern = naming(upper)
    found = []
    for path in sources(lower):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_the_check_sees_the_names_the_move_removed():
    # Lines the cycle's move removed from goals and conflicts, and harmless prose.
    removed = [
        '        "planning.PlanningCycle", on_delete=models.PROTECT, related_name="goals"',
        "    LEFT OUTER JOIN planning_planningcycle AS goal_cycle",
        "<a href=\"{% url 'planning:cycles' %}\">Planning cycles</a>",
    ]
    assert all(naming("planning").search(line) for line in removed)
    assert naming("conflicts").search("from conflicts.tasks import x")
    assert not naming("goals").search("silo managers enter their own silos' goals.")
