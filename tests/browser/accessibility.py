"""axe-core in the browser tests: `assert_accessible(page)` injects axe (npm axe-core, pinned in
tests/browser/axe/package-lock.json; installed with `npm ci` on first use, so a fresh clone's
`make test` needs nothing else) into the open page and fails on any critical or serious
violation, naming the rule and the elements."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
_installing = threading.Lock()
BLOCKING = ("critical", "serious")
RUN = """async () => {
  // The check every console page runs by itself on load (see AUTO_CHECK) ends first:
  // axe refuses two runs at once.
  await (window.__sislinkAxe || null);
  const found = await axe.run(document, { resultTypes: ["violations"] });
  return found.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
  }));
}"""


def install_axe() -> None:
    """`npm ci` from the committed lock file when axe-core is not installed yet (as the sign-in
    tests install their provider); without npm the check below fails under CI, else skips."""
    with _installing:
        npm = shutil.which("npm")
        if AXE.exists() or npm is None:
            return
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=AXE_DIR,
            check=True,
            timeout=300,
        )


def violations(page: Page) -> list[dict[str, Any]]:
    """The page's critical and serious axe violations (rule, impact, help, first elements)."""
    install_axe()
    if not AXE.exists():
        message = f"{AXE} is missing and npm could not install it: cd tests/browser/axe && npm ci"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(RUN)
    return [v for v in found if v["impact"] in BLOCKING]


def assert_accessible(page: Page) -> None:
    bad = violations(page)
    assert not bad, f"{page.url}: " + "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at {', '.join(v['nodes'])}" for v in bad
    )


# Every console page (one with console.css) that loads in a browser context of the tests runs axe
# by itself once loaded and hands its critical and serious violations to the binding
# REPORT_BINDING; the conftest fails the test on any (see axe_on_every_page). A page left before
# its check ends (a click that navigates at once) says so through the same binding.
REPORT_BINDING = "__sislinkAxeReport"
AUTO_CHECK = """(() => {
  if (window.top !== window) return;
  const report = (message) => window.__BINDING__(message).catch(() => null);
  window.addEventListener("load", () => {
    if (!document.querySelector('link[href*="console.css"]') || !window.axe) return;
    const where = location.pathname + location.search;
    report({ where, state: "started" });
    window.__sislinkAxe = axe
      .run(document, { resultTypes: ["violations"] })
      .then((found) => report({
        where,
        state: "checked",
        violations: found.violations
          .filter((v) => v.impact === "critical" || v.impact === "serious")
          .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) })),
      }))
      .catch((error) => report({ where, state: "failed", error: String(error) }));
  });
})();""".replace("__BINDING__", REPORT_BINDING)


def auto_check_script() -> str | None:
    """axe-core followed by AUTO_CHECK, for BrowserContext.add_init_script; None when axe-core
    cannot be installed (assert_accessible then skips or fails as it says)."""
    install_axe()
    if not AXE.exists():
        return None
    return AXE.read_text(encoding="utf-8") + "\n" + AUTO_CHECK


def describe(found: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at {', '.join(v['nodes'])}" for v in found
    )
