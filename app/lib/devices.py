"""Readable names for the devices in *My sessions* ("Chrome on Android")."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse

# ua-parser's family names, shortened to what a person calls them.
_BROWSERS = {
    "Chrome Mobile": "Chrome", "Chrome Mobile WebView": "Android app", "HeadlessChrome": "Chrome (headless)",
    "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "iOS app", "Firefox Mobile": "Firefox",
    "Edge Mobile": "Edge", "Samsung Internet": "Samsung Internet",
}
_SYSTEMS = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}


@lru_cache(maxsize=1024)
def describe_device(user_agent: str) -> str:
    """Return "Browser on System" for a User-Agent header, or "Unknown device"."""
    if not user_agent.strip():
        return "Unknown device"
    result = parse(user_agent[:500])
    browser = result.user_agent.family if result.user_agent and result.user_agent.family != "Other" else ""
    system = result.os.family if result.os and result.os.family != "Other" else ""
    browser = _BROWSERS.get(browser, browser)
    system = _SYSTEMS.get(system, system)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
