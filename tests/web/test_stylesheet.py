"""static/css/app.css: one rule per selector, and every colour themable for dark mode."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

CSS = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()


def blocks(css: str) -> list[tuple[str, str, str]]:
    """(enclosing @media or "", selector list, declarations) for every rule."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out: list[tuple[str, str, str]] = []
    media = ""
    depth = 0
    head = ""
    i = 0
    while i < len(css):
        ch = css[i]
        if ch == "{":
            if head.strip().startswith("@media"):
                media = head.strip()
                depth += 1
                head = ""
            else:
                end = css.index("}", i)
                out.append((media, head.strip(), css[i + 1 : end]))
                head = ""
                i = end
        elif ch == "}":
            depth -= 1
            media = ""
            head = ""
        else:
            head += ch
        i += 1
    return out


def test_each_selector_has_one_rule_per_media_condition() -> None:
    # A selector has one rule of its own (beside the lists that share declarations with
    # others): no later layer overriding an earlier one.
    seen = Counter((media, selectors) for media, selectors, _ in blocks(CSS) if "," not in selectors)
    repeated = [key for key, count in seen.items() if count > 1]
    assert repeated == []
    # The same media condition is written once.
    conditions = [m for m in re.findall(r"@media[^{]*", re.sub(r"/\*.*?\*/", "", CSS, flags=re.S))]
    assert len(conditions) == len({c.strip() for c in conditions})


def test_colours_are_custom_properties_and_the_banners_have_dark_ones() -> None:
    for media, selectors, body in blocks(CSS):
        if selectors == ":root":
            continue
        assert not re.search(r"#[0-9a-fA-F]{3,8}\b", body), (media, selectors, body)
    dark = next(body for media, selectors, body in blocks(CSS) if "prefers-color-scheme: dark" in media and selectors == ":root")
    for name in ("--banner", "--banner-text", "--offline", "--offline-text"):
        assert re.search(rf"{name}:\s*#", dark), name
    rules = {selectors: body for _, selectors, body in blocks(CSS)}
    assert "var(--banner)" in rules[".banner"] and "var(--offline)" in rules[".banner.offline"]
