"""Accessibility checks in the real-browser tests: axe-core, run inside the page.

axe-core (tests/vendor/axe-core, MPL-2.0) is evaluated through the DevTools protocol
(page.evaluate of its source): a script tag would be inline script, which the page's
Content-Security-Policy rightly blocks, and the test must not weaken the policy it
checks the page under. A check fails on any violation whose impact is serious or
critical, and names the rule, the help text and the offending elements.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page as it stands; return every violation it reports."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))})); }"
    )
    return list(result)


def assert_accessible(page: Page) -> None:
    """Fail when axe-core finds a serious or critical violation on the page."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"{page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'][:5])}"
        for v in blocking
    )


def assert_no_sideways_scroll(page: Page) -> None:
    """Fail when the page is wider than the viewport (it would scroll sideways)."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    if widths[0] > widths[1]:
        wide = page.evaluate(
            "(width) => [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > width + 1)"
            ".slice(0, 8).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' +"
            " e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
            widths[1],
        )
        raise AssertionError(
            f"{page.url}: {widths[0]} px wide in {widths[1]} px; too wide: {wide}"
        )
