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
