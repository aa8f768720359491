// Drive the e2e page in Debian's Chromium (headless, playwright-core, no browser download).
// Usage: node e2e/drive.mjs '{"chromium": "/usr/bin/chromium", "pages": [{"url": ..., "shot": ...}],
//                            "status": {"url": ..., "shot": ...}}'
// For each page: load, wait for window.__ready, screenshot, close (fires pagehide).
// Prints one JSON line: {"pages": [window.__result, ...]}.
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
});
const results = [];
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  for (const p of cfg.pages) {
    const page = await context.newPage();
    const console_ = [];
    page.on("console", (m) => console_.push(m.text()));
    await page.goto(p.url);
    await page.waitForFunction(() => window.__ready || window.__error, null, { timeout: 90_000 });
    const error = await page.evaluate(() => window.__error);
    if (error) throw new Error(`${p.url}: ${error}\n${console_.join("\n")}`);
    results.push(await page.evaluate(() => window.__result));
    await page.screenshot({ path: p.shot });
    // runBeforeUnload: close as a user does, so pagehide fires and the SDK's sendBeacon runs.
    // close() then returns at once; wait for the page to be gone.
    const closed = new Promise((resolve) => page.once("close", resolve));
    await page.close({ runBeforeUnload: true });
    await closed;
  }
  if (cfg.status) {
    const page = await context.newPage();
    await page.goto(cfg.status.url);
    await page.waitForTimeout(cfg.status.settleMs ?? 2000);
    await page.screenshot({ path: cfg.status.shot, fullPage: true });
    await page.close();
  }
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify({ pages: results }));
