"""The dashboard's packaged files: no inline script, no markup built from data."""

from __future__ import annotations

import re
from importlib.resources import files

STATIC = files("ailb.dashboard") / "static"


def test_the_page_has_no_inline_script_or_handler() -> None:
    page = (STATIC / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == ['<script src="/dashboard/dashboard.js" defer>']
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    assert "<style" not in page and "style=" not in page
    assert "http://" not in page and "https://" not in page  # nothing from another origin


def test_the_script_builds_the_page_from_text_only() -> None:
    script = (STATIC / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script
    assert "textContent" in script
    assert "localStorage" not in script and "sessionStorage" in script  # the token lives for the tab only
    assert "?token" not in script and "&token" not in script  # and never travels in a URL
