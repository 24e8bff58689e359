"""report.html: self-contained, complete, and rendered by headless Chromium into a non-blank
picture (Chromium comes from the apt packages that `make setup` installs)."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from edgec.toolchain.plan import plan_memory
from edgec.toolchain.report import build_report, write_report
from edgec.toolchain.report_html import render_html, write_html_report
from edgec.toolchain.target import load_target
from test_report import full_report, program

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


def no_network_references(html: str) -> list[str]:
    return re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>]*", html)


def test_html_is_self_contained_and_complete(tmp_path):
    path = write_html_report(full_report(), tmp_path)
    html = path.read_text()
    assert path.name == "report.html"
    assert "http://" not in html and "https://" not in html
    assert no_network_references(html) == []
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert html.count("<svg") >= 4  # timeline, two bar charts, flash
    # every buffer of the plan has a rectangle with a tooltip naming it, its bytes, lifetime
    assert "<title>h (tensor)\n512 B at arena offset" in html
    assert "conv1:scratch (scratch)\n64 B" in html
    assert "step 0: conv1 (conv2d, edgec_conv2d_s8)" in html
    assert "arena = bound, 832 B" in html  # the arena line, which is the lower bound here
    assert "SRAM budget 320.0 KB: off this scale" in html
    assert "flash budget 1.00 MB" in html and "conv1 (conv2d): 288 B of weights" in html
    assert "Instructions" in html and "MACs" in html


def test_html_without_build_or_profile(tmp_path):
    p = program()
    rep = build_report(target=load_target("stm32f746"), program=p, plan=plan_memory(p),
                       model="tiny.onnx", stopped="--no-build")
    html = render_html(rep)
    assert "not built" in html and "compile with <code>--profile</code>" in html
    assert "code size is not known" in html
    write_report(rep, tmp_path)  # writes report.html beside report.json and report.md
    assert (tmp_path / "report.html").read_text() == html


def read_png(path: Path) -> np.ndarray:
    """8-bit RGB/RGBA non-interlaced PNG -> (h, w, channels) uint8 (no imaging library)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    bpp = 3 if ctype == 2 else 4
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int64)
    for r in range(h):
        kind = raw[r * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, r * (stride + 1) + 1).astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # sub
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # up
            cur = (line + prev) % 256
        else:  # average, paeth: sequential along the row
            cur, up = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                if kind == 3:
                    cur[i] = (cur[i] + (a + up[i]) // 2) & 255
                    continue
                b, c = up[i], (up[i - bpp] if i >= bpp else 0)
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.asarray(cur, np.int64)
        out[r] = cur
        prev = cur
    return out.reshape(h, w, bpp)



def test_chromium_renders_a_non_blank_page(tmp_path):
    html = write_html_report(full_report(), tmp_path / "out")
    png = tmp_path / "report.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={png}", "--window-size=1400,1800", f"file://{html}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.is_file(), proc.stderr[-2000:]
    pixels = read_png(png)[..., :3].astype(np.float64)
    assert pixels.shape[:2] == (1800, 1400)
    assert pixels.std() > 10  # not blank
    # the page background, white cards and coloured plot marks are all there
    colours = {tuple(p) for p in pixels[::7, ::7].reshape(-1, 3).astype(int)}
    assert len(colours) > 50
    assert (245, 247, 250) in colours  # the page background (#f5f7fa)
