"""The console's browser tests say what is missing: without Debian's chromium they fail in CI and skip elsewhere,
naming the package to install."""

from __future__ import annotations

import pytest

from tests.support import browser


def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        browser.chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"chromium is not installed"):
        browser.chromium()
