"""Draw MedChat's app icons (run once; the PNGs are committed under static/icons/).

    .venv/bin/python scripts/make_icons.py

A white speech bubble with a green cross on MedChat's green: 192 and 512 pixel icons with
rounded corners ("any"), and a full-bleed 512 pixel one whose drawing stays inside the
central 80 % circle that launchers may crop to ("maskable"). Needs Pillow (requirements-dev.txt).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

GREEN = (0, 128, 105, 255)
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "static" / "icons"
SCALE = 4  # draw large, then downsample: smooth edges without anti-aliasing support in ImageDraw


def draw(size: int, *, maskable: bool) -> Image.Image:
    big = size * SCALE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if maskable:
        d.rectangle((0, 0, big, big), fill=GREEN)
        content = big * 0.62  # inside the 80 % safe circle, with room to spare
    else:
        d.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=GREEN)
        content = big * 0.74
    # The speech bubble: a rounded body and a tail at the lower left.
    left = (big - content) / 2
    top = (big - content) / 2 - content * 0.02
    w, h = content, content * 0.78
    d.rounded_rectangle((left, top, left + w, top + h), radius=content * 0.2, fill=WHITE)
    d.polygon(
        [(left + w * 0.16, top + h * 0.8), (left + w * 0.1, top + h + content * 0.2), (left + w * 0.44, top + h - 1)],
        fill=WHITE,
    )
    # The cross, centred in the bubble.
    cx, cy = left + w / 2, top + h / 2
    arm, thick = content * 0.25, content * 0.11
    d.rectangle((cx - thick, cy - arm, cx + thick, cy + arm), fill=GREEN)
    d.rectangle((cx - arm, cy - thick, cx + arm, cy + thick), fill=GREEN)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False), ("maskable-512.png", 512, True)):
        path = OUT / name
        draw(size, maskable=maskable).save(path, optimize=True)
        print(f"{path.relative_to(OUT.parent.parent)}: {size}x{size}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
