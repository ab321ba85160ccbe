"""The dashboard in a real headless Chromium, against the real gateway in front of the wire-level fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.browser import chromium, require_browser
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import Upstreams

ALIASES = """
model_aliases:
  smart: [gpt-4o, claude-3-5-sonnet-latest]
"""
ADMIN_TOKEN = "dashboard-admin-token-0001"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"
WAIT = 30


@pytest.fixture
def browser() -> Iterator[Any]:
    require_browser()
    with chromium() as driver:
        yield driver


def until(driver: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition, message)


def cell(driver: Any, deployment: str, field: str) -> str:
    """The cell's text, read in the page in one step: the live table may redraw the row between a look-up of the
    element and a read of its text."""
    selector = f'#deployments tr[data-deployment="{deployment}"] [data-field="{field}"]'
    script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''"
    return str(driver.execute_script(script, selector))


def drawn(driver: Any, selector: str) -> list[str]:
    """The ``d`` of every path ``selector`` finds, read in the page in one step (the charts redraw their paths)."""
    script = "return Array.from(document.querySelectorAll(arguments[0]), p => p.getAttribute('d') || '')"
    return [str(d) for d in driver.execute_script(script, selector)]


def chat(gateway: RunningGateway, model: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello"}]}
    return httpx.post(gateway.v1 + "/chat/completions", json=body, headers=headers, timeout=30)


def test_the_dashboard_shows_live_figures_without_reloading(
    run_gateway: GatewayFactory, upstreams: Upstreams, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    upstreams.reset()
    env = {
        **upstreams.env(),
        "HEALTH_CHECK_INTERVAL": "0",
        "ROUTING_STRATEGY": "failover",
        "ENABLE_RAG": "true",
        "EMBEDDING_BACKEND": "provider",
        "EMBEDDING_DEPLOYMENT": "openai",
        "EMBEDDING_MODEL": "text-embedding-3-small",
    }
    gateway = run_gateway(env, ALIASES)
    created = httpx.post(gateway.v1 + "/rag/collections", json={"name": "handbook", "description": HOSTILE}, timeout=60)
    assert created.status_code == 201
    upstreams["openai"].fail_next_status(500, "upstream exploded")
    assert chat(gateway, "smart").headers["x-ailb-deployment"] == "anthropic"
    for _ in range(3):
        assert chat(gateway, "gpt-4o").status_code == 200

    page = httpx.get(gateway.url + "/dashboard")
    assert "openai" not in page.text  # the page is static: every figure comes from /api/dashboard
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy

    browser.get(gateway.url + "/dashboard")
    until(browser, lambda d: cell(d, "openai", "requests") == "4", "the deployments table did not fill in")
    rows = browser.find_elements(By.CSS_SELECTOR, "#deployments tbody tr")
    assert [row.get_attribute("data-deployment") for row in rows] == ["openai", "anthropic", "ollama"]
    assert cell(browser, "openai", "errors") == "1" and cell(browser, "anthropic", "requests") == "1"
    assert cell(browser, "openai", "provider") == "openai" and cell(browser, "anthropic", "provider") == "anthropic"
    assert cell(browser, "openai", "circuit") == "closed"
    assert cell(browser, "openai", "p50").endswith("ms") and cell(browser, "openai", "cost").startswith("$")
    assert "failed with HTTP 500" in cell(browser, "openai", "last-error")
    assert cell(browser, "openai", "tokens") != "0 / 0"
    overview = browser.find_element(By.ID, "overview").text
    assert "failover" in overview and "20 %" in overview
    smart = browser.find_elements(By.CSS_SELECTOR, '#routes tr[data-route="smart"]')
    assert [r.get_attribute("data-deployment") for r in smart] == ["openai", "anthropic"]
    stores = browser.find_element(By.ID, "stores").text
    assert "Knowledge bases" in stores and "disabled" in stores  # memory is off in the harness

    # A hostile description is shown as text, never as markup.
    description = browser.find_element(
        By.CSS_SELECTOR, '#collections tr[data-collection="handbook"] [data-field="description"]'
    )
    assert description.text == HOSTILE
    assert not browser.find_elements(By.CSS_SELECTOR, "#collections img")
    assert browser.title == "AILB dashboard"

    # The charts are drawn, one line per deployment, once two samples are in.
    until(
        browser,
        lambda d: len(lines := drawn(d, "#chart-rps path.series")) == 3 and all("L" in line for line in lines),
        "the requests chart was not drawn",
    )
    assert browser.find_elements(By.CSS_SELECTOR, '#chart-latency path.series[data-deployment="openai"]')

    # New traffic shows up by itself: no reload (the marker set in this page survives).
    browser.execute_script("window.__noReload = 'still here'")
    openai_rps = '#chart-rps path[data-deployment="openai"]'
    rps_before = drawn(browser, openai_rps)
    assert len(rps_before) == 1
    for _ in range(5):
        assert chat(gateway, "gpt-4o").status_code == 200
    until(browser, lambda d: cell(d, "openai", "requests") == "9", "the request count did not update")
    until(
        browser,
        lambda d: (now := drawn(d, openai_rps)) and now != rps_before,
        "the chart did not move",
    )
    assert browser.execute_script("return window.__noReload") == "still here"
    assert browser.find_element(By.ID, "login").is_displayed() is False


def test_the_guarded_dashboard_shows_nothing_before_the_token(
    run_gateway: GatewayFactory, upstreams: Upstreams, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    upstreams.reset()
    env = {**upstreams.env(), "HEALTH_CHECK_INTERVAL": "0", "AILB_ADMIN_TOKEN": ADMIN_TOKEN}
    gateway = run_gateway(env, ALIASES)
    assert chat(gateway, "gpt-4o").status_code == 200
    assert httpx.get(gateway.url + "/api/dashboard").status_code == 401
    bad = httpx.get(gateway.url + "/api/dashboard", headers={"Authorization": "Bearer wrong-token"})
    assert bad.status_code == 403
    good = httpx.get(gateway.url + "/api/dashboard", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert good.status_code == 200 and "openai" in good.json()["deployments"]

    browser.get(gateway.url + "/dashboard")
    until(browser, lambda d: d.find_element(By.ID, "login").is_displayed(), "no token prompt")
    assert not browser.find_element(By.ID, "dashboard").is_displayed()
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "openai" not in body and "anthropic" not in body and "gpt-4o" not in body
    assert not browser.find_elements(By.CSS_SELECTOR, "#deployments tbody tr")

    token = browser.find_element(By.ID, "token")
    token.send_keys("wrong-token")
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    until(browser, lambda d: d.find_element(By.ID, "login-error").is_displayed(), "no message for a wrong token")
    assert browser.find_element(By.ID, "login-error").text == "That token was not accepted."
    assert not browser.find_elements(By.CSS_SELECTOR, "#deployments tbody tr")

    browser.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    until(browser, lambda d: cell(d, "openai", "requests") == "1", "the dashboard did not open with the token")
    assert ADMIN_TOKEN not in browser.current_url and browser.current_url.endswith("/dashboard")
    assert browser.execute_script("return sessionStorage.getItem('ailb.dashboard.token')") == ADMIN_TOKEN
    assert not browser.find_element(By.ID, "login").is_displayed()

    browser.refresh()  # the token is kept for the browser session
    until(browser, lambda d: cell(d, "openai", "requests") == "1", "the token was not kept across a reload")

    browser.find_element(By.ID, "sign-out").click()
    until(browser, lambda d: d.find_element(By.ID, "login").is_displayed(), "signing out did not close it")
    assert not browser.find_elements(By.CSS_SELECTOR, "#deployments tbody tr")
    assert browser.execute_script("return sessionStorage.getItem('ailb.dashboard.token')") is None


def test_with_client_keys_a_key_sees_only_its_collections(run_gateway: GatewayFactory, upstreams: Upstreams) -> None:
    upstreams.reset()
    env = {
        **upstreams.env(),
        "HEALTH_CHECK_INTERVAL": "0",
        "ENABLE_RAG": "true",
        "EMBEDDING_BACKEND": "provider",
        "EMBEDDING_DEPLOYMENT": "openai",
        "EMBEDDING_MODEL": "text-embedding-3-small",
        "TEAM_KEY": "team-key-for-the-dashboard",
        "OTHER_KEY": "other-key-for-the-dashboard",
    }
    config = ALIASES + "client_keys:\n  ${TEAM_KEY}:\n    collections: [handbook]\n  ${OTHER_KEY}: {}\n"
    gateway = run_gateway(env, config)
    other = {"Authorization": "Bearer other-key-for-the-dashboard"}
    for name in ("handbook", "payroll"):
        assert httpx.post(gateway.v1 + "/rag/collections", json={"name": name}, headers=other, timeout=60).is_success
    assert httpx.get(gateway.url + "/api/dashboard").status_code == 401
    wrong = httpx.get(gateway.url + "/api/dashboard", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "nope" not in wrong.text

    def collections(key: str) -> list[str]:
        answer = httpx.get(gateway.url + "/api/dashboard", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        return sorted(c["name"] for c in answer.json()["rag"]["collections"])

    assert collections("other-key-for-the-dashboard") == ["handbook", "payroll"]
    assert collections("team-key-for-the-dashboard") == ["handbook"]
