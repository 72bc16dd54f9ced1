"""Every page of the admin UI passes axe-core's accessibility checks: no problem axe rates
"serious" or "critical" (missing names and labels, colour contrast, broken ARIA, a scrolling box
the keyboard cannot reach, ...), at a laptop's size and a phone's, and in dark mode (its colours
differ, so does contrast).

axe-core comes from npm, pinned in .ci/node/package-lock.json; .ci/run installs it, and so does
``npm ci --prefix .ci/node`` locally. Without it this test fails rather than skips, since CI
always has it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright").expect

AXE = Path(__file__).resolve().parents[2] / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ["serious", "critical"]

SHOWN_PER_RULE = 8  # offending elements listed per rule; a rule broken on every link of a page says how many more

# Runs axe on the whole document: per broken rule its id, impact, help text and the CSS selectors
# of the offending elements.
RUN_AXE = """async (impacts) => {
    const results = await axe.run(document, {resultTypes: ['violations']});
    return results.violations.filter(rule => impacts.includes(rule.impact)).map(rule => ({
        id: rule.id, impact: rule.impact, help: rule.help,
        targets: rule.nodes.map(node => node.target.join(' >>> ')),
    }));
}"""


def axe_problems(page) -> list[str]:
    """Each serious or critical problem on the page, as "rule (impact): help: where"."""
    # Evaluated rather than added as a <script> tag: the app's Content-Security-Policy refuses
    # inline scripts, and turning the policy off (bypass_csp) would also let inline styles
    # apply, so axe would judge colours no user sees.
    if page.evaluate("typeof axe === 'undefined'"):
        page.evaluate(AXE.read_text())
    problems = []
    for rule in page.evaluate(RUN_AXE, BLOCKING_IMPACTS):
        targets = rule["targets"]
        where = ", ".join(targets[:SHOWN_PER_RULE])
        if len(targets) > SHOWN_PER_RULE:
            where += f" and {len(targets) - SHOWN_PER_RULE} more"
        problems.append(f"{rule['id']} ({rule['impact']}): {rule['help']}: {where}")
    return problems


# Dark mode at one size: the phone layout changes sizes and wrapping, not colours.
@pytest.mark.parametrize(("width", "height", "color_scheme"), [
    (1280, 900, "light"), (390, 844, "light"), (1280, 900, "dark"),
])
def test_no_page_has_a_serious_accessibility_problem(open_tab, browser_login, every_page, width, height, color_scheme):
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE}): install it with `npm ci --prefix .ci/node` in the checkout, "
                    "as .ci/run does")
    page = open_tab(width, height, color_scheme=color_scheme)
    found = {}

    def check(what: str) -> None:
        if problems := axe_problems(page):
            found[what] = problems

    page.goto("/login")
    check("/login")
    browser_login(every_page["admin"], tab=page)
    for path in every_page["pages"]:
        page.goto(path)
        check(path)
    # The inline edit form, opened in its row by htmx.
    page.goto(every_page["ti"])
    page.get_by_role("button", name=f"Edit {every_page['long_key']}", exact=True).click()
    expect(page.get_by_role("button", name="Save")).to_be_visible()
    check(f"{every_page['ti']} with the edit form open in a row")

    report = "\n".join(f"{what}:\n  " + "\n  ".join(problems) for what, problems in found.items())
    assert not found, f"serious or critical accessibility problems at {width}x{height}, {color_scheme}:\n{report}"
