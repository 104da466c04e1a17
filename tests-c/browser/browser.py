"""Loads a page written by `report --html` in headless Chromium (Debian's `chromium`, driven
by npm's playwright-core through report_page.cjs) and returns what the page showed. Used by
tests/report_html.py and scripts/report-screenshot.sh; playwright-core is installed once into
BUILD/node."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "report_page.cjs")
PLAYWRIGHT = "playwright-core@1"


def chromium():
    for path in (os.environ.get("AIG_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def missing(build):
    """Why the browser cannot run here (None when it can): chromium, node or npm absent, or
    playwright-core not installable into build/node."""
    if chromium() is None:
        return "no chromium (Debian package `chromium`; scripts/setup.sh installs it as root)"
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"no {tool}"
    modules = os.path.join(build, "node", "node_modules")
    if not os.path.exists(os.path.join(modules, "playwright-core", "package.json")):
        os.makedirs(os.path.join(build, "node"), exist_ok=True)
        p = subprocess.run(["npm", "install", "--prefix", os.path.join(build, "node"), "--no-audit", "--no-fund",
                            "--loglevel=error", PLAYWRIGHT],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        if p.returncode != 0:
            return f"npm install {PLAYWRIGHT} failed:\n{p.stdout.decode(errors='replace')}"
    return None


def load(build, page, steps=(), screenshot=None, viewport=(1280, 800), full_page=False, timeout_s=180):
    """Opens page in a fresh profile, runs steps (JS expressions) and returns the driver's
    JSON (see report_page.cjs). Raises RuntimeError when the driver fails."""
    profile = tempfile.mkdtemp(prefix="aig-chromium-")
    try:
        cfg = {
            "page": page, "chromium": chromium(), "node_modules": os.path.join(build, "node", "node_modules"),
            "profile": profile, "timeout_ms": timeout_s * 1000, "viewport": list(viewport),
            "steps": list(steps), "screenshot": screenshot, "full_page": full_page,
        }
        cfg_path = os.path.join(profile, "..", os.path.basename(profile) + ".json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        try:
            p = subprocess.run(["node", DRIVER, cfg_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout_s + 60)
        finally:
            os.unlink(cfg_path)
        if p.returncode != 0:
            raise RuntimeError(f"{DRIVER} exited {p.returncode}:\n{p.stderr.decode(errors='replace')}")
        return json.loads(p.stdout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    # browser.py BUILD PAGE.html SHOT.png [WIDTH HEIGHT [JS...]]: a screenshot of the page,
    # after the JS expressions (e.g. window.aclIpcGuardReport.selectKey(0, false)).
    build, page, shot = (os.path.abspath(a) for a in sys.argv[1:4])
    size = tuple(int(x) for x in sys.argv[4:6]) or (1280, 800)
    why = missing(build)
    if why:
        sys.exit(f"browser.py: {why}")
    out = load(build, page, steps=sys.argv[6:], screenshot=shot, viewport=size)
    if out["console_errors"] or out["page_errors"]:
        sys.exit(f"browser.py: the page reported errors: {out['console_errors'] + out['page_errors']}")
