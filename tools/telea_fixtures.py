"""Make the OpenCV Telea reference fixtures for shared/tests/telea_opencv.rs.

Not part of CI: the fixtures are committed, this only regenerates them. From the
repository root, in a virtual environment:

    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install numpy opencv-python-headless
    /tmp/venv/bin/python tools/telea_fixtures.py

For each fixture NAME it writes, into shared/tests/fixtures/telea/:
    NAME_clean.png   the ground truth,
    NAME_input.png   the clean image with its hidden pixels set to 0 (what both
                     inpainters are given; neither reads hidden pixels),
    NAME_mask.png    0 = visible, 255 = hidden,
    NAME_opencv.png  cv2.inpaint(input, mask, 5, cv2.INPAINT_TELEA).
Everything is deterministic (fixed formulas and a seeded generator). Masks stay a few
pixels off the image edge, so the comparison is about the march itself, not about how
each implementation treats neighbours outside the image (shared/src/inpaint.rs has its
own border tests).
"""

import os

import cv2
import numpy as np

RADIUS = 5
OUT = os.path.join(os.path.dirname(__file__), "..", "shared", "tests", "fixtures", "telea")


def coords(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return x, y


def gradient():
    """Smooth colour gradients, rectangular hole."""
    h = w = 48
    x, y = coords(h, w)
    r = 40 + 150 * x / (w - 1)
    g = 200 - 120 * y / (h - 1)
    b = 110 + 60 * np.sin(x / 9.0) * np.cos(y / 11.0)
    img = np.stack([r, g, b], -1)
    mask = np.zeros((h, w), np.uint8)
    mask[19:29, 17:31] = 255
    return img, mask


def scene():
    """Sky, ground, a disc, a box and a pole (hard edges); thick brush strokes."""
    h = w = 64
    x, y = coords(h, w)
    img = np.zeros((h, w, 3))
    sky = y < 36
    img[sky] = np.stack([90 + 2 * y, 140 + 1.5 * y, 230 - y], -1)[sky]
    ground = ~sky
    img[ground] = np.stack([70 + 0.5 * x, 120 - 0.3 * x, 40 + 0 * x], -1)[ground]
    disc = (x - 44) ** 2 + (y - 16) ** 2 <= 9 ** 2
    img[disc] = (250, 220, 60)
    box = (x >= 10) & (x < 26) & (y >= 26) & (y < 48)
    img[box] = (150, 40, 40)
    pole = (np.abs(x - 0.4 * y - 30) < 1.5) & (y > 20)
    img[pole] = (20, 20, 20)
    mask = np.zeros((h, w), np.uint8)
    cv2.polylines(mask, [np.array([[8, 14], [30, 24], [52, 34]], np.int32)], False, 255, 5)
    cv2.line(mask, (20, 56), (40, 40), 255, 6)
    cv2.line(mask, (46, 8), (50, 54), 255, 4)
    return img, mask


def texture():
    """Diagonal stripes, a checker and mild noise; text-like bars."""
    h = w = 64
    x, y = coords(h, w)
    rng = np.random.default_rng(20040101)
    stripes = 60 * np.sin(2 * np.pi * (x + y) / 11.0)
    checker = 30 * (((x // 8) + (y // 8)) % 2)
    base = 120 + stripes + checker
    noise = rng.normal(0, 6, (h, w, 3))
    img = np.stack([base, 0.8 * base + 30, 200 - 0.5 * base], -1) + noise
    mask = np.zeros((h, w), np.uint8)
    # Three "lines of text": glyph-sized vertical and horizontal bars, 3 px thick.
    for row, top in enumerate((10, 28, 46)):
        x0 = 8 + 3 * row
        for k in range(6):
            gx = x0 + 8 * k
            if gx + 6 > w - 6:
                break
            mask[top:top + 9, gx:gx + 3] = 255
            if (k + row) % 2 == 0:
                mask[top + 3:top + 6, gx:gx + 6] = 255
            else:
                mask[top:top + 3, gx:gx + 6] = 255
    return img, mask


def grey():
    """Single channel: radial gradient, a vertical edge and a bar; box plus strokes."""
    h = w = 56
    x, y = coords(h, w)
    img = 60 + 2.2 * np.hypot(x - 20, y - 30)
    img[:, 34:] += 50
    img[12:18, :] = 30
    mask = np.zeros((h, w), np.uint8)
    mask[22:34, 26:40] = 255
    cv2.line(mask, (8, 8), (48, 20), 255, 4)
    cv2.line(mask, (12, 46), (44, 40), 255, 3)
    return img, mask


def psnr_hidden(a, b, mask):
    hidden = mask > 0
    d = a.astype(np.float64)[hidden] - b.astype(np.float64)[hidden]
    mse = np.mean(d * d)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"OpenCV {cv2.__version__}, radius {RADIUS}")
    for name, make in [("gradient", gradient), ("scene", scene), ("texture", texture), ("grey", grey)]:
        img, mask = make()
        clean = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        if clean.ndim == 3:
            clean = cv2.cvtColor(clean, cv2.COLOR_RGB2BGR)  # imwrite stores BGR as RGB
        inp = clean.copy()
        inp[mask > 0] = 0
        out = cv2.inpaint(inp, mask, RADIUS, cv2.INPAINT_TELEA)
        for suffix, arr in [("clean", clean), ("input", inp), ("mask", mask), ("opencv", out)]:
            path = os.path.join(OUT, f"{name}_{suffix}.png")
            cv2.imwrite(path, arr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"{name:9s} {clean.shape} hidden {np.mean(mask > 0):5.1%} "
              f"OpenCV PSNR(hidden) {psnr_hidden(out, clean, mask):6.2f} dB")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"total {total} bytes in {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
