// Loads a page written by `acl-ipc-guard report --html` in headless Chromium (the system's,
// driven by playwright-core) and prints what it found as one JSON object on stdout: console
// and page errors, every request the page made, the lanes, the violation marks, and the
// results of the steps asked for. The Python tests judge it; this file only looks.
//
// usage: node report_page.cjs CONFIG.json
//   CONFIG: {"page": PATH, "chromium": PATH, "node_modules": DIR, "profile": DIR,
//            "timeout_ms": N, "viewport": [W, H], "screenshot": PATH (optional),
//            "steps": [JS expression, ...] (optional: each evaluated in the page, then the
//            chart's mode and the number of key bars drawn are read)}
"use strict";
const fs = require("fs");
const path = require("path");
const url = require("url");

async function frames(page) {
  // Two animation frames: whatever redraw was scheduled has run.
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
}

async function chartState(page) {
  return page.evaluate(() => {
    const svg = document.getElementById("chart");
    return {
      mode: svg.getAttribute("data-mode"),
      visible_keys: Number(svg.getAttribute("data-visible-keys")),
      key_bars: document.querySelectorAll("#chart rect.key").length,
      arrows: document.querySelectorAll("#chart path.arrow").length,
      densities: document.querySelectorAll("#chart [data-density]").length,
    };
  });
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const { chromium } = require(path.join(cfg.node_modules, "playwright-core"));
  const browser = await chromium.launchPersistentContext(cfg.profile, {
    executablePath: cfg.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    viewport: { width: cfg.viewport[0], height: cfg.viewport[1] },
    timeout: cfg.timeout_ms,
  });
  const out = { console_errors: [], page_errors: [], requests: [], dialogs: [] };
  try {
    const page = browser.pages()[0] || (await browser.newPage());
    page.setDefaultTimeout(cfg.timeout_ms);
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") out.console_errors.push(m.type() + ": " + m.text());
    });
    page.on("pageerror", (e) => out.page_errors.push(String(e)));
    page.on("dialog", (d) => { out.dialogs.push(d.message()); d.dismiss(); });
    browser.on("request", (r) => out.requests.push(r.url()));
    const target = url.pathToFileURL(path.resolve(cfg.page)).href;
    out.url = target;
    await page.goto(target, { waitUntil: "load" });
    await frames(page);
    Object.assign(out, await page.evaluate(() => {
      const lanes = Array.from(document.querySelectorAll("[data-lane]")).map((g) => ({
        lane: Number(g.getAttribute("data-lane")),
        pid: Number(g.getAttribute("data-pid")),
        tag: g.getAttribute("data-tag"),
        dead: g.getAttribute("data-dead") === "1",
        label: Array.from(g.querySelectorAll("text")).map((t) => t.textContent).join(" | "),
        title: (g.querySelector(":scope > title") || {}).textContent || "",
      }));
      const viols = Array.from(document.querySelectorAll("#chart [data-rule]")).map((g) => ({
        rule: g.getAttribute("data-rule"),
        pid: Number(g.getAttribute("data-pid")),
        count: Number(g.getAttribute("data-count")),
        title: (g.querySelector("title") || {}).textContent || "",
      }));
      const dead_marks = Array.from(document.querySelectorAll("#chart [data-dead-lane]")).map((g) => Number(g.getAttribute("data-dead-lane")));
      const rows = (id) => Array.from(document.querySelectorAll("#" + id + " table tr")).slice(1).map((tr) =>
        Array.from(tr.children).map((td) => td.textContent));
      const ids = Array.from(document.querySelectorAll("[id]")).map((e) => e.id);
      return {
        lanes, viols, dead_marks,
        duplicate_ids: ids.filter((id, i) => ids.indexOf(id) !== i),
        viol_rows: rows("viol-table"),
        proc_rows: rows("proc-table"),
        verdict: document.getElementById("verdict").textContent,
        viol_title: document.getElementById("viol-title").textContent,
        summary: document.getElementById("summary").textContent,
        injected: document.getElementById("pwned") !== null || window.__pwned !== undefined ||
          document.querySelectorAll("img").length > 0,
      };
    }));
    out.chart = await chartState(page);
    out.steps = [];
    for (const expr of cfg.steps || []) {
      const value = await page.evaluate(expr);
      await frames(page);
      out.steps.push({ expr, value: value === undefined ? null : value, chart: await chartState(page) });
    }
    if (cfg.screenshot) await page.screenshot({ path: cfg.screenshot, fullPage: !!cfg.full_page });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write("report_page.cjs: " + (e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
