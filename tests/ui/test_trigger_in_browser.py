"""An operator's manual run, in a real browser: sign in, find ``fruits_pipeline``, trigger it with
``k = 3`` in the trigger form, watch the run succeed in the UI, find ``k = 3`` in the PCA report.

Screenshots of each step go to the test's tmp folder and to ``output/ui-screenshots/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from airflow_server import DAG_ID, RUN_TIMEOUT_S, Airflow

from fruits.stages import STAGES

pytestmark = pytest.mark.slow

K = 3
TASKS = ["validate_params", *(stage.name for stage in STAGES), "publish_model"]
UI_TIMEOUT_MS = 120_000  # one page or element, on a busy two-core machine
FORM_TIMEOUT_MS = 30_000


def sign_in(page, airflow: Airflow, shots: Path) -> None:
    page.goto(f"{airflow.url}/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(airflow.username)
    page.get_by_label("Password").fill(airflow.password)
    page.screenshot(path=shots / "01-sign-in.png")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/login)"))


def open_dag(page, shots: Path) -> None:
    """From the Dags list, as a user would: search, then follow the DAG's link."""
    page.get_by_role("link", name="Dags", exact=True).first.click()
    page.get_by_placeholder(re.compile("Search Dags")).fill(DAG_ID)
    page.get_by_role("link", name=DAG_ID, exact=True).click()
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}(\?|$)"))
    page.get_by_role("button", name="Trigger Dag").wait_for()
    page.screenshot(path=shots / "02-dag.png")


def run_badge(page, run_id: str):
    """The state badge beside the run's heading on its page."""
    heading = page.get_by_role("heading", name=run_id, exact=True)
    return heading.locator("xpath=..").get_by_test_id("state-badge")


def open_trigger_form(page, tries: int = 3):
    """Click *Trigger* until its dialog shows the params (a click landing while the page is
    still re-rendering after its data loaded can be lost)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # conftest checks it

    button = page.get_by_role("button", name="Trigger Dag")
    form = page.get_by_role("dialog")
    k_field = form.get_by_role("spinbutton", name="PCA components")
    for _ in range(tries):
        if not form.is_visible():
            button.click()
        try:
            k_field.wait_for(timeout=FORM_TIMEOUT_MS)
            return form
        except PlaywrightTimeoutError:
            continue
    raise AssertionError(f"the trigger form did not open in {tries} clicks on Trigger")


def trigger_with_k(page, shots: Path) -> tuple[str, str]:
    """Trigger from the form with the PCA components param set (the logical date as the form
    prefills it: now); return the new run's id and the URL of its page."""
    form = open_trigger_form(page)
    form.get_by_role("spinbutton", name="PCA components").fill(str(K))
    page.screenshot(path=shots / "03-trigger-form.png")
    form.get_by_role("button", name="Trigger", exact=True).click()
    # The UI opens the new run's page.
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/?]+"))
    run_page = page.url.split("?")[0]  # without the Dags list's search, kept as a task filter
    run_id = unquote(run_page.rsplit("/runs/", 1)[1])
    run_badge(page, run_id).wait_for()
    page.screenshot(path=shots / "04-run-started.png")
    return run_id, run_page


def test_a_run_triggered_in_the_ui_with_k_3_succeeds(browser, airflow: Airflow, screenshots):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        sign_in(page, airflow, screenshots)
        open_dag(page, screenshots)
        run_id, run_page = trigger_with_k(page, screenshots)

        triggered = airflow.run(run_id)
        assert triggered["run_type"] == "manual"
        assert triggered["conf"]["k"] == K  # the form sent the param

        # The API says when to look (meanwhile the page is left, not to spend a CPU on its
        # refreshes); the success must then show in the page itself.
        page.goto("about:blank")
        finished = airflow.wait_until_finished([run_id], RUN_TIMEOUT_S)[0]
        page.goto(run_page)
        badge = run_badge(page, run_id)
        badge.wait_for()
        page.screenshot(path=screenshots / "05-run-finished.png", full_page=True)
        assert finished["state"] == "success", airflow.explain(run_id)
        assert badge.inner_text().strip() == "Success"
        for task in TASKS:  # one row per task in the run's task instances table
            row = page.get_by_role("row").filter(
                has=page.get_by_role("link", name=task, exact=True)
            )
            assert row.get_by_test_id("table-cell-state").inner_text().strip() == "Success", task
    except BaseException:
        with contextlib.suppress(Exception):  # what the page showed when it went wrong
            page.screenshot(path=screenshots / "99-failure.png", full_page=True)
        raise
    finally:
        context.close()

    # The run wrote under its logical date's partition, and the param reached the PCA job.
    logical = dt.datetime.fromisoformat(finished["logical_date"].replace("Z", "+00:00"))
    ds = logical.astimezone(dt.UTC).date().isoformat()
    output = airflow.output
    pca = json.loads((output / "reports" / f"ds={ds}" / "pca.json").read_text())
    assert (pca["k"], pca["k_selection"]) == (K, "given")
    assert len(pca["explained_variance"]) == K
    assert not list(output.glob("*/ds=None")), "a partition named ds=None"
