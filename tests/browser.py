"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium:
open a page, collect console errors and every image's load state, save a screenshot."""
from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def inspect(page: Path, screenshot: Path | None = None, width: int = 1400) -> dict:
    """Load ``page``; return console messages, per-image load state and the page height."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in FLAGS + [f"--user-data-dir={profile}", f"--window-size={width},1000"]:
            opts.add_argument(f)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        try:
            driver.set_page_load_timeout(120)
            driver.get(page.resolve().as_uri())
            driver.execute_script("return document.readyState")
            images = driver.execute_script(
                "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,"
                " w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width}))")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            text = driver.execute_script("return document.body.innerText")
            logs = driver.get_log("browser")
            if screenshot is not None:
                shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 16000), "scale": 1}})
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            driver.quit()
    return {"images": images, "height": height, "text": text,
            "errors": [e for e in logs if e.get("level") == "SEVERE"], "logs": logs}
