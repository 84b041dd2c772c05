"""The dashboard in a real browser: headless Chromium (Debian's chromium and chromium-driver,
which `make test` installs when missing) driven by Selenium, against `leadlens serve` started as
a subprocess. Screenshots of each page land in `build/screenshots/` (or $LEADLENS_SCREENSHOTS).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.serving.test_http import KEY, _start, _stop, _wait_ready

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("LEADLENS_SCREENSHOTS", REPO / "build" / "screenshots"))
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def server(served_home):
    runtime, _report, _crm = served_home
    proc, base = _start(runtime.home)
    try:
        _wait_ready(base)
        yield base
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail(f"{CHROMIUM} and {DRIVER} are needed: `make test` installs Debian's "
                    "chromium and chromium-driver packages when they are missing")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _wait(driver, css: str, timeout: float = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def _all(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def _flagged_period(base: str) -> tuple[str, dict]:
    """A quarter of the served CRM with a flagged rep (the CRM has weak reps)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    latest = httpx.get(f"{base}/ui/api/reps", headers=headers, timeout=60).json()
    year, q = int(latest["period"][:4]), int(latest["period"][-1])
    for _ in range(4):
        report = httpx.get(f"{base}/ui/api/reps?period={year}-Q{q}", headers=headers,
                           timeout=60).json()
        flagged = [r for r in report["reps"] if r["status"] == "flagged"]
        if flagged:
            return f"{year}-Q{q}", flagged[0]
        year, q = (year, q - 1) if q > 1 else (year - 1, 4)
    pytest.fail("no quarter of the test CRM has a flagged rep")


def test_dashboard_in_chromium(server, browser):
    base, driver = server, browser
    headers = {"Authorization": f"Bearer {KEY}"}

    # the key, asked once
    driver.get(base + "/")
    _wait(driver, "#key-form")
    assert not _all(driver, "#leads-table tbody tr")
    driver.find_element("css selector", "#api-key").send_keys(KEY)
    driver.find_element("css selector", "#key-submit").click()
    _wait(driver, "#leads-table tbody tr[data-lead-id]")
    rows = _all(driver, "#leads-table tbody tr[data-lead-id]")
    api = httpx.get(f"{base}/ui/api/leads?per_page={len(rows)}", headers=headers).json()
    assert [r.get_attribute("data-lead-id") for r in rows] == [r["lead_id"] for r in api["rows"]]
    driver.save_screenshot(str(SHOTS / "01-leads.png"))

    # every reason on the leads list is in plain words
    listed = [el.text for el in _all(driver, "#leads-table .reason")]
    assert listed and not [t for t in listed if "_" in t or "as_of" in t], listed[:5]

    # a lead: its reasons are the page API's, in plain words, each the sum of /explain's
    # contributions of its features; its next steps are POST /next_steps'
    from core.reason_text import family_of

    lead_id = rows[0].get_attribute("data-lead-id")
    rows[0].click()
    _wait(driver, "#waterfall svg")
    items = _all(driver, "#reasons li")
    shown = [(li.get_attribute("data-feature"), float(li.get_attribute("data-points")))
             for li in items]
    view = httpx.get(f"{base}/ui/api/lead?id={lead_id}", headers=headers).json()
    assert len(shown) >= 3
    assert [f for f, _ in shown] == [r["feature"] for r in view["reasons"]]
    texts = [li.find_element("css selector", ".label").text for li in items]
    assert texts == [r["text"] for r in view["reasons"]]
    assert not [t for t in texts if "_" in t or "as_of" in t], texts
    full = httpx.post(f"{base}/explain", headers=headers,
                      json={"lead": {"lead_id": lead_id}}).json()
    families: dict[str, float] = {}
    for c in full["contributions"]:
        key = family_of(c["feature"])
        families[key] = families.get(key, 0.0) + c["points"]
    assert [p for _, p in shown] == pytest.approx([families[family_of(f)] for f, _ in shown],
                                                  abs=1e-3)
    plan = httpx.post(f"{base}/next_steps", headers=headers, json={"lead_id": lead_id}).json()
    steps = [li.text for li in _all(driver, "#actions li")]
    assert sorted(t.split(":")[0] for t in steps) == sorted(s["label"] for s in plan["steps"])
    assert _all(driver, "#timeline")
    driver.save_screenshot(str(SHOTS / "02-lead.png"))

    # reps: a flagged rep's evidence
    period, flagged = _flagged_period(base)
    driver.find_element("css selector", "#tab-reps").click()
    _wait(driver, "#period")
    box = driver.find_element("css selector", "#period")
    box.clear()
    box.send_keys(period)
    driver.find_element("css selector", "#period-submit").click()
    _wait(driver, f"#reps-table tr[data-rep-id='{flagged['rep_id']}']")
    _wait(driver, "#oe-chart svg")
    row = driver.find_element("css selector", f"#reps-table tr[data-rep-id='{flagged['rep_id']}']")
    assert row.get_attribute("data-status") == "flagged"
    driver.save_screenshot(str(SHOTS / "03-reps.png"))
    row.click()
    _wait(driver, "#rep-flags li.flag")
    assert len(_all(driver, "#rep-flags li.flag")) == len(flagged["flags"])
    linked = {a.get_attribute("data-lead-id") for a in _all(driver, "#rep-flags a.lead-link")}
    assert linked == {i for f in flagged["flags"] for i in f["lead_ids"]}
    driver.save_screenshot(str(SHOTS / "04-rep-evidence.png"))

    # the model page: the versions being served, their calibration
    driver.find_element("css selector", "#tab-model").click()
    card = _wait(driver, ".model-card[data-kind='conversion']")
    served = httpx.get(f"{base}/model", headers=headers).json()["models"]
    version = card.find_element("xpath", ".//dt[text()='version']/following-sibling::dd[1]")
    assert version.text == str(served["conversion"]["version"])
    assert _all(driver, ".model-card[data-kind='conversion'] .calibration svg")
    assert _all(driver, "#promotions tbody tr")
    # how much of the open book lies outside the training range, as GET /model says
    coverage = httpx.get(f"{base}/model", headers=headers).json()["coverage"]
    shown = driver.find_element("css selector", "#coverage").text
    age = coverage["outside_training_range"]["lead_age_days"]
    found = re.search(r"lead age days: (\d+)%", shown)
    assert found and abs(int(found[1]) - 100 * age) <= 0.5 + 1e-9, shown
    driver.save_screenshot(str(SHOTS / "05-model.png"))

    # the key is kept for the browser session
    driver.refresh()
    _wait(driver, "#tab-leads")
    assert not driver.find_element("css selector", "#key-form").is_displayed()
