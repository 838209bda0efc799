"""/docs: Swagger UI served whole from the gateway (nothing from a CDN), with the console's security headers."""

from __future__ import annotations

import re

import pytest

from tests.support.api import Api

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

URL = re.compile(r"""https?://[^\s"'<>)]+""")
REFERENCE = re.compile(r"""(?:src|href)="([^"]+)\"""")


def _strict_csp(csp: str) -> None:
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no CDN: the init script is a served file
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


async def test_docs_page_loads_only_the_gateways_own_files(api: Api) -> None:
    base = api.service.url
    r = await api.http.get(base + "/docs")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    _strict_csp(r.headers["content-security-policy"])
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    page = r.text
    assert "<script>" not in page and "<style" not in page and " style=" not in page  # nothing inline
    assert [u for u in URL.findall(page) if not u.startswith(base)] == []
    assets = REFERENCE.findall(page)
    assert len(assets) >= 3, assets  # the style sheet, Swagger UI, its start-up script
    for asset in assets:
        assert asset.startswith("/"), asset
        a = await api.http.get(base + asset)
        assert a.status_code == 200, asset
        assert len(a.content) > 0
        _strict_csp(a.headers["content-security-policy"])
    # the init script asks for the gateway's own document and no validator (which would call swagger.io)
    init = (await api.http.get(base + "/docs/assets/docs-init.js")).text
    assert URL.findall(init) == [] and '"/openapi.json"' in init and "validatorUrl: null" in init
    assert (await api.http.get(base + "/openapi.json")).status_code == 200
    # only the files the page uses; no ReDoc, no CDN-backed OAuth2 redirect page
    for path in ("/docs/assets/index.html", "/docs/assets/swagger-initializer.js", "/docs/assets/..%2Fx", "/redoc"):
        assert (await api.http.get(base + path)).status_code == 404, path
    assert (await api.http.get(base + "/docs/oauth2-redirect")).status_code in (404, 405)
