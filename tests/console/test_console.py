"""The operations console in a real browser: Debian's chromium, driven by Playwright, against
`cityloop up --demo` as a new user runs it. Sign in with the login link it prints, see the
demo's cases, watch a case appear and change without a reload, act on it, be refused a case out
of scope, log out; /docs and /redoc render with nothing fetched from elsewhere.

CITYLOOP_CONSOLE_SCREENSHOTS=docs/console also saves the board, the map and a case page there."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from api.console.board import BOARD_STATUSES, DESK_STATUS
from cityloop.broker import free_port
from tests.conftest import TEST_SECRET, bearer
from tests.e2e.test_up_demo import processes_with_env

pytestmark = [pytest.mark.broker, pytest.mark.long(70)]

CHROMIUM = "/usr/bin/chromium"  # Debian's; .ci/run installs it. Playwright downloads nothing.
WAIT_MS = 20_000
SCREENSHOTS = os.environ.get("CITYLOOP_CONSOLE_SCREENSHOTS")


@dataclass
class Demo:
    api_url: str
    login_link: str
    output: str
    outside: list[str] = field(default_factory=list)
    """Requests the browser tried to send anywhere but the API (refused, and recorded)."""

    def get(
        self, path: str, role: str = "duty_officer", scope: str = "510100", **params: Any
    ) -> Any:
        answer = httpx.get(
            f"{self.api_url}{path}", params=params, headers=bearer(role, scope), timeout=10
        )
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`cityloop up --demo`, signing with the tests' secret so that they can mint tokens of
    other roles; its own topics, whatever broker it finds."""
    tag = uuid.uuid4().hex
    api_port = free_port()
    env = {
        **os.environ,
        "CITYLOOP_BROKER_PORT": str(free_port()),
        "CITYLOOP_API_PORT": str(api_port),
        "CITYLOOP_TOPIC_PREFIX": f"tconsole-{tag[:8]}",
        "CITYLOOP_JWT_SECRET": TEST_SECRET,
        "CITYLOOP_E2E_MARKER": tag,
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "cityloop", "up", "--demo"],
        cwd=tmp_path_factory.mktemp("up"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert up.stdout is not None
        link = None
        deadline = time.monotonic() + 150
        for line in up.stdout:
            output.append(line)
            found = re.search(r"(http://\S+/console/login\?ticket=\S+)", line)
            if found:
                link = found.group(1)
                break
            if time.monotonic() > deadline:
                break
        assert link, "".join(output)
        yield Demo(f"http://127.0.0.1:{api_port}", link, "".join(output))
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
        for pid in processes_with_env(f"CITYLOOP_E2E_MARKER={tag}"):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


def offline_context(browser: Browser, demo: Demo) -> BrowserContext:
    """A browser context that reaches the API and nothing else, and notes what it tried."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    context.set_default_timeout(WAIT_MS)

    def only_the_api(route: Route) -> None:
        if route.request.url.startswith(demo.api_url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            demo.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_api)
    return context


@pytest.fixture(scope="module")
def officer(browser: Browser, demo: Demo) -> Iterator[Page]:
    """The city duty officer's browser, signed in with the demo's login link."""
    context = offline_context(browser, demo)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(demo.login_link)
    page.wait_for_url(f"{demo.api_url}/console")
    yield page
    assert errors == []
    context.close()


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def hotline_order(
    order_id: str, title: str, text: str, area_code: str, category: str
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "specversion": "1.0",
        "id": order_id,
        "source": "/12345/chengdu",
        "type": "cn.cityloop.hotline.work_order.v1",
        "time": now,
        "data": {
            "order_id": order_id,
            "received_at": now,
            "channel": "phone",
            "category_code": category,
            "title": title,
            "text": text,
            "area_code": area_code,
            "caller_name": "赵敏",
            "caller_phone": "13900001234",
            "urgency": "normal",
        },
    }


def test_the_demo_link_signs_in_once_to_a_board_of_the_demo_cases(
    demo: Demo, officer: Page, browser: Browser
) -> None:
    assert "ticket" not in officer.url  # the address bar keeps no ticket
    cases = demo.get("/v1/cases", limit=100)["items"]
    printed = re.search(r"demo: (\d+) cases", demo.output)
    assert printed and len(cases) == int(printed.group(1)) >= 10, demo.output
    still_open = [case for case in cases if case["status"] in BOARD_STATUSES]
    expect(officer.locator("#count-open")).to_have_text(str(len(still_open)))
    for case in still_open:
        where = "#desk-queue" if case["status"] == DESK_STATUS else "#lanes"
        expect(officer.locator(f'{where} [data-case-id="{case["case_id"]}"]')).to_have_count(1)
    expect(officer.locator("header .who")).to_contain_text("值班长")

    session = next(c for c in officer.context.cookies() if c["name"] == "cityloop_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert "cityloop_session" not in officer.evaluate("document.cookie")

    # the link is spent: a second browser opening it is not signed in
    other = offline_context(browser, demo)
    again = other.new_page()
    answer = again.goto(demo.login_link)
    assert answer is not None and answer.status == 400
    expect(again.locator("#problem")).to_contain_text("used already")
    assert not [c for c in other.cookies() if c["name"] == "cityloop_session"]
    other.close()


def test_a_case_appears_and_changes_on_the_board_without_a_reload(
    demo: Demo, officer: Page
) -> None:
    officer.goto(f"{demo.api_url}/console")
    expect(officer.locator("#live-state.on")).to_be_visible()  # the stream is open
    officer.evaluate("window.stayed = 'the same page'")

    order = hotline_order(
        f"WO-{uuid.uuid4().hex[:8]}",
        "路灯不亮",
        "小区门口一排路灯全部不亮",
        "510105002001",
        "streetlight_out",
    )
    posted = httpx.post(
        f"{demo.api_url}/v1/events/hotline",
        json=order,
        headers=bearer("publisher", "hotline"),
        timeout=10,
    )
    assert posted.status_code == 202, posted.text
    before = int(officer.locator("#count-open").inner_text())
    card = officer.locator("#lanes .card", has_text="路灯不亮")
    expect(card).to_have_count(1)
    expect(officer.locator("#count-open")).to_have_text(str(before + 1))
    case_id = card.get_attribute("data-case-id")
    assert case_id
    case = demo.get(f"/v1/cases/{case_id}")
    department = case["lead_department"]
    expect(card).to_have_attribute("data-status", "dispatched")

    accepted = httpx.post(
        f"{demo.api_url}/v1/cases/{case_id}/actions",
        json={"type": "accept"},
        headers=bearer("department", department),
        timeout=10,
    )
    assert accepted.status_code == 202, accepted.text
    expect(officer.locator(f'#lanes [data-case-id="{case_id}"]')).to_have_attribute(
        "data-status", "accepted"
    )
    expect(officer.locator(f'#lanes [data-case-id="{case_id}"] .badge').first).to_have_text(
        "已签收"
    )
    assert officer.evaluate("window.stayed") == "the same page"
    shot(officer, "board")

    # the map: open cases drawn on the topology, and a click through to the case
    officer.goto(f"{demo.api_url}/console/map")
    expect(officer.locator("#map .marker")).to_have_count(before + 1)
    expect(officer.locator("#map path.region").first).to_be_visible()
    shot(officer, "map")
    if SCREENSHOTS:
        officer.goto(f"{demo.api_url}/console/map?area=510104")
        expect(officer.locator("#map .marker").first).to_be_visible()
        shot(officer, "map-district")
        officer.goto(f"{demo.api_url}/console/map")
    officer.locator(f'#map .marker[data-case-id="{case_id}"]').click()
    officer.wait_for_url(f"{demo.api_url}/console/cases/{case_id}")

    # the case page: the duty officer escalates; the outcome shows, the page follows live
    expect(officer.locator("#case-status")).to_have_attribute("data-status", "accepted")
    expect(officer.locator("#reports .caller")).to_contain_text("13900001234")  # unmasked
    loop_before = officer.locator("#case-loop").get_attribute("data-loop")
    officer.evaluate("window.stayed = 'the case page'")
    officer.locator('#action-buttons [data-action="escalate"]').click()
    officer.locator('#action-form textarea[name="reason"], #action-form input[name="reason"]').fill(
        "涉及多个社区，需街道统筹"
    )
    officer.locator("#action-form button[type=submit]").click()
    expect(officer.locator('#outcomes li[data-state="applied"]')).to_contain_text("上报")
    expect(officer.locator("#case-loop")).not_to_have_attribute("data-loop", loop_before or "")
    expect(officer.locator('#timeline li[data-type="CaseEscalated"]')).to_have_count(1)
    assert officer.evaluate("window.stayed") == "the case page"

    # an action the case handlers refuse shows their reason
    officer.locator("#action-buttons summary").click()
    officer.locator('#action-buttons [data-action="verify"]').click()
    officer.locator('#action-form select[name="satisfied"]').select_option("true")
    officer.locator("#action-form button[type=submit]").click()
    expect(officer.locator('#outcomes li[data-state="rejected"]')).to_contain_text("invalid_state")
    shot(officer, "case")

    # assessment: the figures of GET /v1/stats, by department
    officer.goto(f"{demo.api_url}/console/stats?by=department")
    expect(officer.locator("#stats-table tbody tr")).not_to_have_count(0)
    expect(officer.locator("#chart")).to_be_visible()


def test_a_department_sees_its_own_cases_and_is_refused_another_departments(
    demo: Demo, browser: Browser
) -> None:
    mine = next(iter(demo.get("/v1/cases", category="streetlight_out")["items"]), None)
    assert mine, "the live test's case"
    department = mine["lead_department"]
    other = next(
        c for c in demo.get("/v1/cases", limit=100)["items"] if c["lead_department"] != department
    )

    context = offline_context(browser, demo)
    page = context.new_page()
    page.goto(f"{demo.api_url}/console")
    page.wait_for_url(re.compile(r".*/console/login\?next=.*"))  # not signed in: sent to sign in
    token = bearer("department", department)["Authorization"].removeprefix("Bearer ")
    page.locator("#token").fill(token)
    page.locator("#sign-in").click()
    page.wait_for_url(f"{demo.api_url}/console")
    expect(page.locator("header .who")).to_contain_text("职能部门")
    expect(page.locator(f'#lanes [data-case-id="{mine["case_id"]}"]')).to_have_count(1)
    expect(page.locator(f'#lanes [data-case-id="{other["case_id"]}"]')).to_have_count(0)

    answer = page.goto(f"{demo.api_url}/console/cases/{other['case_id']}")
    assert answer is not None and answer.status == 404
    expect(page.locator("#refused")).to_be_visible()
    assert other["title"] not in page.content()
    refused = page.request.get(f"{demo.api_url}/v1/cases/{other['case_id']}")  # the cookie alone
    assert refused.status == 404

    page.goto(f"{demo.api_url}/console/cases/{mine['case_id']}")
    expect(page.locator("#reports .caller")).to_contain_text("139****1234")  # masked, as the API
    assert "13900001234" not in page.content()
    context.close()


def test_logging_out_ends_the_session(demo: Demo, officer: Page) -> None:
    officer.goto(f"{demo.api_url}/console")
    cookie = next(c for c in officer.context.cookies() if c["name"] == "cityloop_session")
    officer.locator("#logout").click()
    expect(officer.locator("#signed-out")).to_be_visible()
    assert not [c for c in officer.context.cookies() if c["name"] == "cityloop_session"]
    officer.goto(f"{demo.api_url}/console")
    officer.wait_for_url(re.compile(r".*/console/login\?next=.*"))
    # the old cookie, sent again by hand, is refused too
    replayed = httpx.get(
        f"{demo.api_url}/v1/cases", cookies={"cityloop_session": cookie["value"]}, timeout=10
    )
    assert replayed.status_code == 401


def test_the_api_docs_render_with_nothing_from_elsewhere(demo: Demo, browser: Browser) -> None:
    context = offline_context(browser, demo)
    page = context.new_page()
    page.goto(f"{demo.api_url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("cityloop")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.goto(f"{demo.api_url}/redoc")
    expect(page.locator("h1").first).to_contain_text("cityloop")
    context.close()
    assert demo.outside == []
