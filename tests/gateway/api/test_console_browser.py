"""The property console as a manager uses it, in Debian's chromium driven by Playwright: sign in, a reload that
keeps the session (and no token in storage or URLs), a lock going offline and a leak appearing live, move-in and
move-out, unbinding and binding a device, a self-test, the audit log, a refusal with its code, axe-core's
accessibility check and no horizontal overflow at 390 px. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.support.api import PASSWORD, Api, building
from tests.support.browser import accessibility_violations, console_page, overflows, screenshot

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

LIVE = 10_000  # ms: how long a live change may take to show


def unit(page: Page, label: str):  # type: ignore[no-untyped-def]
    return page.locator(f"article.unit:has(h3:text-is('Unit {label}'))")


async def sign_in(page: Page, username: str) -> None:
    await page.goto("/console")
    form = page.locator("#sign-in-form")
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()


async def test_manager_console_in_chromium(api: Api) -> None:
    async with building(api) as b, console_page(api.service.url) as page:
        await sign_in(page, "maria.manager")
        await expect(unit(page, "u101")).to_be_visible()
        await expect(unit(page, "u102")).to_be_visible()
        await expect(page.locator("#live")).to_have_text(re.compile("^Live"))
        await expect(page.locator("#no-alerts")).to_be_visible()
        await screenshot(page, "01-signed-in")

        # accessible, and nothing wider than a phone
        violations = await accessibility_violations(page)
        assert violations == [], [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in violations]
        assert not await overflows(page)

        # a reload keeps the session: the token is in no storage and no URL; the cookie is HttpOnly and Strict
        await page.reload()
        await expect(unit(page, "u101")).to_be_visible()
        assert await page.evaluate("localStorage.length + sessionStorage.length") == 0
        assert "token" not in page.url
        (cookie,) = await page.context.cookies()
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
            True,
            "Strict",
            "/api/v1/auth/console-session",
        )

        # the front door lock of u101 goes offline: shown live, as an alert, without a reload
        await b.sims["a"].lock.drop_offline()
        alerts = page.locator("#alert-list")
        await expect(alerts).to_contain_text("Unit u101: Front door lock offline", timeout=LIVE)
        await expect(unit(page, "u101")).to_contain_text("offline")
        # worst first: u101 now leads the list
        await expect(page.locator("article.unit").first).to_have_attribute("data-unit", "a")

        # a leak in u102 appears live and goes to the top
        await b.sims["b"].leak.set_leak(True)
        await expect(alerts.locator("li").first).to_have_text(re.compile("Unit u102: Leak reported by"), timeout=LIVE)
        await expect(page.locator("article.unit").first).to_have_attribute("data-unit", "b")
        # the leak is queued once as a notice for bob's app, which the manager sees too
        await page.locator("#notices summary").click()
        await expect(page.locator("#notice-list")).to_contain_text("reports water", timeout=LIVE)
        await expect(page.locator("#notice-list li", has_text="reports water")).to_have_count(1)
        await expect(page.locator("#notice-list")).to_contain_text("not a security or alarm system")
        await screenshot(page, "02-lock-offline-and-leak")
        await page.get_by_label("Show").select_option("leak")
        await expect(page.locator("article.unit")).to_have_count(1)
        await page.get_by_label("Show").select_option("all")

        # move a resident in: the activation code is shown once; then out again
        form = page.locator("#move-in-form")
        await form.get_by_label("Unit").select_option(label="u102")
        await form.get_by_label("Username", exact=True).fill("carol")
        await form.get_by_role("button", name="Move in").click()
        code = page.locator("#activation-code")
        await expect(code).to_have_value(re.compile(r"\S{6,}"))
        await expect(unit(page, "u102")).to_contain_text("carol (carol): pending")
        await screenshot(page, "03-moved-in")
        first = await code.input_value()
        await page.get_by_role("button", name="Done").first.click()
        await expect(page.locator("#activation")).to_be_hidden()
        assert await code.input_value() == ""
        # a new code for carol, who has not activated yet: the old one stops working
        await page.get_by_role("button", name="New activation code for carol").click()
        await expect(code).to_have_value(re.compile(r"\S{6,}"))
        assert await code.input_value() != first
        r = await api.http.post(
            "/auth/activate", json={"username": "carol", "activation_code": first, "password": PASSWORD}
        )
        assert r.status_code >= 400, r.text
        await page.get_by_role("button", name="Done").first.click()

        # a refusal shows the gateway's own code and words
        await form.get_by_label("Unit").select_option(label="u101")
        await form.get_by_label("Username", exact=True).fill("alice")
        await form.get_by_role("button", name="Move in").click()
        await expect(page.locator("#action-error")).to_have_text(re.compile(r"\(\w+\)$"))

        await page.get_by_role("button", name="Move out carol").click()
        await expect(unit(page, "u102")).not_to_contain_text("carol")

        # unbind u102's light, then bind it again
        light = "fwsim-u102-light"
        await unit(page, "u102").get_by_role("button", name=re.compile("^Unbind .*")).first.click()
        await expect(page.locator("#bind-device option")).to_have_count(1)
        unbound = await page.locator("#bind-device option").first.get_attribute("value")
        assert unbound is not None and unbound.startswith("fwsim-u102-")
        bind = page.locator("#bind-form")
        await bind.get_by_label("Unit").select_option(label="u102")
        await bind.get_by_role("button", name="Bind").click()
        await expect(page.locator("#action-status")).to_have_text(f"{unbound} bound.")
        assert api.services.building.unit_of_device(unbound) == "b"
        del light

        # a self-test of u101 fails on its offline lock, and says what failed
        await page.get_by_role("button", name="Run self-test of unit u101").click()
        await expect(unit(page, "u101").locator(".test-failed")).to_contain_text("Self-test failed", timeout=LIVE)
        await expect(alerts).to_contain_text("Unit u101: Self-test failing: the latest self-test failed", timeout=LIVE)
        await screenshot(page, "04-self-test")

        # a storm is declared, shown among the open outages, and ended
        await page.locator("#storm-form").get_by_label("What happened (optional)").fill("hail")
        await page.get_by_role("button", name="Declare storm").click()
        storms = page.locator("#outage-list li", has_text="storm")
        await expect(storms).to_have_count(1)
        await expect(storms).to_contain_text("hail")
        await storms.get_by_role("button", name=re.compile("^End storm")).click()
        await expect(storms).to_have_count(0)

        # the audit log shows what was done
        await page.get_by_role("button", name="Read the audit log").click()
        audit = page.locator("#audit-list")
        await expect(audit).to_contain_text("resident.move_in")
        await expect(audit).to_contain_text("resident.move_out")
        await expect(audit).to_contain_text("resident.code_reissued")
        await screenshot(page, "05-audit")
        assert not await overflows(page)

        # signing out ends the session: a reload asks to sign in
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.locator("#sign-in")).to_be_visible()
        await page.reload()
        await expect(page.locator("#sign-in")).to_be_visible()
        await expect(page.locator("#app")).to_be_hidden()


async def test_installer_and_operator_see_what_their_roles_do(api: Api) -> None:
    async with building(api) as b, console_page(api.service.url) as page:
        del b
        # keyboard only: the sign-in form is the first thing Tab reaches
        await page.goto("/console")
        await page.keyboard.press("Tab")
        await page.keyboard.type("ivan.installer")
        await page.keyboard.press("Tab")
        await page.keyboard.type(PASSWORD)
        await page.keyboard.press("Enter")
        await expect(page.locator("#role-help")).to_contain_text("As the installer you bind and unbind devices")
        await expect(unit(page, "u101")).to_contain_text("Devices (5)")
        await expect(unit(page, "u101")).not_to_contain_text("Residents")  # residents are the manager's
        await expect(page.locator("#bind")).to_be_visible()
        for manager_only in ("#move-in", "#storms", "#audit", "#manager-view"):
            await expect(page.locator(manager_only)).to_be_hidden()
        await expect(page.get_by_role("button", name=re.compile("^Run self-test"))).to_have_count(0)
        await screenshot(page, "10-installer")
        violations = await accessibility_violations(page)
        assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
        assert not await overflows(page)
        await page.get_by_role("button", name="Sign out").click()

        await sign_in(page, "root-operator")
        await expect(page.locator("#role-help")).to_contain_text("As the service operator")
        await expect(page.locator("#connectivity")).to_contain_text("Broadband:")
        await expect(page.locator("#overview")).to_be_hidden()
        await expect(page.locator("#credentials")).to_be_visible()  # of the chosen property
        await expect(page.locator("#property option")).to_have_count(1)
        await expect(page.get_by_label("Show")).to_be_hidden()
        await expect(page.locator("#overview-error")).to_be_hidden()  # nothing refused
        await page.get_by_role("button", name="Read the audit log").click()
        await expect(page.locator("#audit-list")).to_contain_text("resident.move_in")
        await screenshot(page, "11-operator")
        violations = await accessibility_violations(page)
        assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def test_a_resident_is_refused_with_the_gateways_code(api: Api) -> None:
    async with building(api) as b, console_page(api.service.url) as page:
        del b
        await sign_in(page, "alice")
        await expect(page.locator("#sign-in-error")).to_have_text(re.compile(r"\(role_forbidden\)$"))
        await expect(page.locator("#app")).to_be_hidden()
        assert await page.context.cookies() == []
