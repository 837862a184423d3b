"""The conflict's evidence in plain words: what the report, the pages and the
notifications say about it."""

from __future__ import annotations

from conflicts.models import Conflict, Method
from core.text import one_line

LAG_WORDS = {0: "in the same {unit}", 1: "one {unit} later"}
UNIT_WORDS = {"weekly": "week", "monthly": "month", "quarterly": "quarter"}


def unit_of(conflict: Conflict) -> str:
    """The period the conflict's evidence counts in ("month"): its grid's."""
    grid = conflict.grid or conflict.leader_kpi.frequency
    return UNIT_WORDS.get(grid, "period")


def when(conflict: Conflict) -> str:
    """Say the conflict's lag in words: "one month later"."""
    unit = unit_of(conflict)
    if conflict.lag in LAG_WORDS:
        return LAG_WORDS[conflict.lag].format(unit=unit)
    return f"{conflict.lag} {unit}s later"


def number(value: float) -> str:
    """A figure for a sentence: three significant digits, thousands separated."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def quantity(value: float, unit: str) -> str:
    """``value`` in ``unit`` for a sentence: "8 tickets", "2.5 percentage points"."""
    unit = one_line(unit)
    if unit == "%":
        unit = "percentage point" if number(value) == "1" else "percentage points"
    if unit.lower() in ("count", "number", "#"):
        unit = ""
    return f"{number(value)} {unit}".rstrip()


def effect_words(conflict: Conflict) -> str:
    """Say what the conflict costs, or "" without an effect size.

    "A rise of 10 deals in Sales' deals closed in a month, beyond what the company-wide
    drivers explain, comes with a rise of 31 tickets in Support's ticket backlog one
    month later (95% CI 24 to 38)."
    """
    if conflict.effect is None or not conflict.effect_step:
        return ""
    # Detection writes the interval together with the effect (services.register).
    assert conflict.effect_low is not None
    assert conflict.effect_high is not None
    leader, affected = conflict.leader_kpi, conflict.affected_kpi
    # The leader's step in the direction that improves it.
    step = conflict.effect_step
    improving = -step if leader.direction == "lower_is_better" else step
    change = conflict.effect * improving
    low, high = sorted(
        (conflict.effect_low * improving, conflict.effect_high * improving)
    )
    if change < 0:
        low, high = -high, -low
    beyond = (
        "more than usual"
        if conflict.last_run is not None and conflict.last_run.method == Method.PAIRWISE
        else "beyond what the company-wide drivers explain"
    )
    return (
        f"A {'rise' if improving > 0 else 'fall'} of "
        f"{quantity(abs(improving), leader.unit)} in "
        f"{_possessive(conflict.leader_silo.name)} {_in_sentence(leader.name)} in a "
        f"{unit_of(conflict)}, {beyond}, comes with a "
        f"{'rise' if change > 0 else 'fall'} of {quantity(abs(change), affected.unit)} "
        f"in {_possessive(conflict.affected_silo.name)} {_in_sentence(affected.name)} "
        f"{when(conflict)} (95% CI {number(low)} to {number(high)})."
    )


def headline(conflict: Conflict) -> str:
    """Say what the conflict does in plain words, without statistics: the conflict
    page's headline (the evidence terms are explained beside it).

    "When Sales' deals closed rises by 10 deals, Support's ticket backlog rises by 31
    tickets one month later (95% interval 24 to 38)."
    """
    leader, affected = conflict.leader_kpi, conflict.affected_kpi
    leader_words = (
        f"{_possessive(conflict.leader_silo.name)} {_in_sentence(leader.name)}"
    )
    affected_words = (
        f"{_possessive(conflict.affected_silo.name)} {_in_sentence(affected.name)}"
    )
    if conflict.stale:
        return (
            f"When {leader_words} improves, {affected_words} no longer worsens: "
            "neither declared nor found by the latest run."
        )
    if conflict.correlation is None or not (
        conflict.is_observed or conflict.contradicted
    ):
        return (
            f"When {leader_words} improves, {affected_words} is declared to worsen "
            "(no evidence in the data yet)."
        )
    if conflict.contradicted:
        return (
            f"{affected_words[0].upper()}{affected_words[1:]} is declared to worsen "
            f"when {leader_words} improves, but the data show it improving too, "
            f"{when(conflict)}."
        )
    if conflict.effect is None:
        return (
            f"When {leader_words} improves, {affected_words} worsens {when(conflict)}."
        )
    # Detection writes the interval together with the effect (services.register).
    assert conflict.effect_low is not None
    assert conflict.effect_high is not None
    # The leader's typical step in the direction that improves it (1 of its unit
    # when the run gave no typical step).
    step = conflict.effect_step or 1.0
    improving = -abs(step) if leader.direction == "lower_is_better" else abs(step)
    change = conflict.effect * improving
    low, high = sorted(
        (conflict.effect_low * improving, conflict.effect_high * improving)
    )
    if change < 0:
        low, high = -high, -low
    return (
        f"When {leader_words} {'rises' if improving > 0 else 'falls'} by "
        f"{quantity(abs(improving), leader.unit)}, {affected_words} "
        f"{'rises' if change > 0 else 'falls'} by "
        f"{quantity(abs(change), affected.unit)} {when(conflict)} "
        f"(95% interval {number(low)} to {number(high)})."
    )


def verdict(conflict: Conflict) -> str:
    """Say why the affected silo minds, from its KPI's direction: "That is bad for
    Support: a lower ticket backlog is better." ("" for a target band or without an
    effect)."""
    if conflict.effect is None or conflict.contradicted or conflict.stale:
        return ""
    affected = conflict.affected_kpi
    # The affected KPI's change when the leader improves: its sign says which way.
    change = conflict.effect * (
        -1.0 if conflict.leader_kpi.direction == "lower_is_better" else 1.0
    )
    if affected.direction == "higher_is_better" and change < 0:
        better = "higher"
    elif affected.direction == "lower_is_better" and change > 0:
        better = "lower"
    else:
        return ""
    return (
        f"That is bad for {one_line(conflict.affected_silo.name)}: a {better} "
        f"{_in_sentence(affected.name)} is better."
    )


def describe(conflict: Conflict) -> str:
    """Say a conflict's evidence in plain words, as the CCO report shows it."""
    leader, affected = conflict.leader_kpi, conflict.affected_kpi
    unit = unit_of(conflict)
    head = f"When {_possessive(conflict.leader_silo.name)} {_in_sentence(leader.name)} improves, "
    affected_owner = _possessive(conflict.affected_silo.name)
    if conflict.stale:
        found = (
            f" (last evidence: r = {conflict.correlation:.2f}, "
            f"{format_q(conflict.q_value)}, over {conflict.periods} {unit}s)"
            if conflict.correlation is not None
            else ""
        )
        return (
            head
            + f"{affected_owner} {_in_sentence(affected.name)} no longer worsens: "
            + f"neither declared nor found by the latest run{found}."
        )
    if conflict.correlation is None or not (
        conflict.is_observed or conflict.contradicted
    ):
        return (
            head
            + f"{affected_owner} {_in_sentence(affected.name)} is declared to worsen"
            + " (no evidence in the data yet)."
        )
    verb = "improves too" if conflict.contradicted else "worsens"
    evidence = (
        f"r = {conflict.correlation:.2f}, {format_q(conflict.q_value)}, "
        f"over {conflict.periods} {unit}s"
    )
    sized = "" if conflict.contradicted else effect_words(conflict)
    if sized:
        # "... (95% CI 24 to 38)." becomes "... (95% CI 24 to 38; r = ..., over ...)."
        return f"{sized[:-2]}; {evidence})."
    return (
        head
        + f"{affected_owner} {_in_sentence(affected.name)} {verb} {when(conflict)}: "
        + evidence
        + (" (this contradicts the declared link)." if conflict.contradicted else ".")
    )


def _possessive(name: str) -> str:
    name = one_line(name)
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _in_sentence(name: str) -> str:
    # A name is shown on one line, whatever someone typed into it (mail, the report).
    name = one_line(name)
    # "Deals closed" reads "deals closed" mid-sentence; "CSAT" and "NPS score" stay.
    if len(name) > 1 and name[0].isupper() and not name[1].isupper():
        return name[0].lower() + name[1:]
    return name


def format_q(q: float | None) -> str:
    """Format a q-value the way people read them: "q = 0.012", or "q < 0.001"."""
    if q is None:
        return "q n/a"
    return "q < 0.001" if q < 0.001 else f"q = {q:.3f}"
