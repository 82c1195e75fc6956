"""The provenance report in a real browser: Debian's Chromium, headless, driven through WebDriver (selenium and
Debian's /usr/bin/chromedriver, never a downloaded driver: Selenium Manager is kept offline).

Why WebDriver: it reads the page as a person sees it (``is_displayed`` honours CSS), and chromedriver's logging
preferences hand over the browser console and the DevTools network events, so one session checks that a page
makes no request but its own file:// load and logs no console error. For each report: the verdict and every
journey step visible; for a bundle whose records carry ``<script>``, ``<img onerror>`` and ``<svg onload>``: the
probe those payloads would set stays unset, and no such element exists. A control page proves the probe would
be set if the markup ran.

CI (``CI`` set) installs chromium and chromium-driver (.ci/chromium) and fails here if they are missing; on a
developer's machine without them these tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_kit import DIAVIK, KAROWE, LAUNDERED, PAYLOADS, RINGED, demo_bundle, hostile_bundle

from ledger import Policy
from ledger.bundle import check_bundle
from ledger.report import render_report

pytest.importorskip("selenium", reason="the browser tests need selenium (pip install -e '.[dev]')")
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

NO_RU = Policy(deny_origin=frozenset({"RU"}))
VERDICT_WORDS = {"valid": "valid", "valid_compliant": "valid, compliant", "valid_not_compliant": "valid, NOT COMPLIANT"}


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                              else None)
    if browser and driver:
        return browser, driver
    reason = ("Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver; "
              ".ci/chromium does it as root)")
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary, driver_path = _binaries()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or a browser
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1000,1400", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-default-apps", "--disable-sync"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, page: Path) -> str:
    """Load ``page`` after draining the logs; return its file:// URL."""
    driver.get_log("browser")
    driver.get_log("performance")
    url = page.resolve().as_uri()
    driver.get(url)
    driver.execute_script("return document.readyState")
    return url


def _requests(driver: Any) -> list[str]:
    """The URLs of every request the page made (DevTools Network.requestWillBeSent, webSocketCreated)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            params = message["params"]
            urls.append(params["request"]["url"] if "request" in params else params["url"])
    return urls


def _console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


@pytest.mark.parametrize("item", [LAUNDERED, KAROWE, DIAVIK, RINGED])
def test_demo_report_in_chromium(browser: Any, demo: Path, tmp_path: Path, item: str) -> None:
    data, trust = demo_bundle(demo, item)
    report = check_bundle(data, trust, NO_RU)
    assert report.provenance is not None
    page = tmp_path / f"{item}.html"
    page.write_text(render_report(data, trust, NO_RU), encoding="utf-8")
    url = _open(browser, page)
    verdict = browser.find_element(By.ID, "verdict")
    assert verdict.is_displayed() and verdict.size["height"] > 0
    assert verdict.find_element(By.CLASS_NAME, "word").text == VERDICT_WORDS[report.verdict]
    steps = browser.find_elements(By.CSS_SELECTOR, "ol.journey li.step")
    assert [int(s.get_attribute("data-position")) for s in steps] == [s.position for s in report.provenance.path]
    for step in steps:
        assert step.is_displayed() and step.size["height"] > 0 and step.text.strip()
    for section in ("identity", "origin", "ancestry", "journey", "proof"):
        assert browser.find_element(By.ID, section).is_displayed()
    assert set(_requests(browser)) <= {url}, "the page fetched something"
    assert _console_errors(browser) == []


def test_hostile_free_text_runs_nothing(browser: Any, tmp_path: Path) -> None:
    data, trust = hostile_bundle(tmp_path)
    page = tmp_path / "hostile.html"
    page.write_text(render_report(data, trust), encoding="utf-8")
    url = _open(browser, page)
    assert browser.execute_script("return window.__xss === undefined") is True
    assert browser.title != "XSS"
    assert browser.find_elements(By.CSS_SELECTOR, "script, img, iframe, [onerror], [onload]") == []
    text = browser.find_element(By.TAG_NAME, "body").text
    for payload in PAYLOADS:  # shown as text, character for character (the ancestry drawing may cut a note)
        assert payload in text
    assert set(_requests(browser)) <= {url}
    assert _console_errors(browser) == []


def test_the_probe_would_be_set(browser: Any, tmp_path: Path) -> None:
    """Control: raw markup in a page without the report's escaping and policy runs here, and the checks above
    see a request and a console error (port 9 is one Chromium refuses to connect to: nothing leaves)."""
    page = tmp_path / "control.html"
    page.write_text(f"<!DOCTYPE html><html><body>{PAYLOADS[0]}<img src='http://127.0.0.1:9/x.png'>"
                    "<script>console.error('control')</script></body></html>", encoding="utf-8")
    url = _open(browser, page)
    assert browser.execute_script("return window.__xss") == 1
    assert "http://127.0.0.1:9/x.png" in set(_requests(browser)) - {url}
    assert _console_errors(browser)
