"""A real headless Chromium driven by Selenium, for the dashboard tests and its screenshot.

Debian's ``chromium`` and ``chromium-driver`` packages (``scripts/dev test`` installs them when missing). The
driver is given by path, so Selenium never looks for one to download.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def require_browser() -> None:
    """Skip without Chromium and its driver, unless ``AILB_REQUIRE_BROWSER`` is set (``scripts/dev test``)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = f"the dashboard tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("AILB_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium(width: int = 1440, height: int = 1000) -> Iterator[object]:
    """A fresh headless Chromium (its own profile folder), closed afterwards."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ailb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
