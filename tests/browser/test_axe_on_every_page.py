"""The net under every browser test: a console page (one with console.css) that loads in any of
the tests' browser contexts is checked by axe-core by itself, and a critical or serious
violation reaches the test's ledger (which fails the test at teardown)."""

from __future__ import annotations

from playwright.sync_api import Page, Route

from browser.conftest import AxeLedger

BAD_PAGE = """<!doctype html><html lang="en"><head><title>Broken</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body><main><h1>Broken</h1><form><input id="nameless"></form></main></body></html>"""


def test_a_console_page_with_a_serious_violation_is_caught_without_asking(
    page: Page, axe_on_every_page: AxeLedger
) -> None:
    def serve(route: Route) -> None:
        if route.request.url.endswith(".css"):
            route.fulfill(status=200, content_type="text/css", body="")
        else:
            route.fulfill(status=200, content_type="text/html", body=BAD_PAGE)

    page.route("http://console.test/**", serve)
    page.goto("http://console.test/broken")
    axe_on_every_page.settle()
    found = list(axe_on_every_page.violations)
    assert axe_on_every_page.checked == ["/broken at 1280 px"]
    assert found and "label" in found[0], found  # the input has no label: critical
    axe_on_every_page.violations.clear()  # caught as it should be: not this test's failure
