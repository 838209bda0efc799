"""A new activation code for a resident who has not activated yet: the old code stops working, an activated
account gets none, staff of another unit or property get 404, and the reissue is audited."""

from __future__ import annotations

import pytest

from tests.support.api import PASSWORD, Api, bearer, building, problem

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


async def test_reissue_replaces_a_pending_residents_code(api: Api) -> None:
    async with building(api) as b:
        r = await api.http.post(
            "/properties/p1/units/a/residents", json={"username": "carol"}, headers=bearer(b.manager)
        )
        assert r.status_code == 201, r.text
        carol, first = r.json()["account"]["id"], r.json()["activation_code"]
        path = f"/properties/p1/units/a/residents/{carol}/activation-code"

        problem(await api.http.post(path, headers=bearer(b.installer)), 403, "role_forbidden")
        r2 = f"/properties/p1/units/b/residents/{carol}/activation-code"  # carol lives in a, not b
        problem(await api.http.post(r2, headers=bearer(b.manager)), 404, "account_not_found")

        r = await api.http.post(path, headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        second = r.json()["activation_code"]
        assert second != first and r.json()["account"]["status"] == "pending"

        def activate(code: str) -> dict[str, str]:
            return {"username": "carol", "activation_code": code, "password": PASSWORD}

        assert (await api.http.post("/auth/activate", json=activate(first))).status_code >= 400
        r = await api.http.post("/auth/activate", json=activate(second))
        assert r.status_code == 200, r.text

        # activated: no new code
        problem(await api.http.post(path, headers=bearer(b.manager)), 409, "account_not_pending")
        audit = (await api.http.get("/properties/p1/audit", headers=bearer(b.manager))).json()["entries"]
        assert [e["target"] for e in audit if e["action"] == "resident.code_reissued"] == [carol]
