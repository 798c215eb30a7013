// Drives a lotteryir web page in headless Chromium: waits for the model, uploads an image,
// waits for the restoration and writes the restored pixels (and optionally a screenshot).
// usage: node browser_check.mjs JOBS.json   where JOBS.json is [{url, image, out, screenshot?}]
import { readFileSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
// A fresh profile per run and nothing that phones home: the page must work offline.
const browser = await chromium.launch({
  executablePath: process.env.LOTTERYIR_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const settle = (page, states) => page.waitForFunction(
  (s) => s.includes(document.body.dataset.state), states, { timeout: 180000 });
try {
  for (const job of jobs) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const page = await context.newPage();
    const outside = [];
    const messages = [];
    page.on("request", (r) => { if (!new URL(r.url()).hostname.startsWith("127.0.0.1")) outside.push(r.url()); });
    page.on("console", (m) => messages.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => messages.push(`pageerror: ${e.message}`));
    await page.goto(job.url);
    await settle(page, ["ready", "error"]);
    let state = await page.evaluate(() => document.body.dataset.state);
    if (state === "ready") {
      await page.setInputFiles("#file", job.image);
      await page.waitForFunction(() => document.body.dataset.state !== "ready", null, { timeout: 10000 });
      await settle(page, ["done", "error"]);
      state = await page.evaluate(() => document.body.dataset.state);
    }
    const result = await page.evaluate(() => {
      const canvas = document.getElementById("after");
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      return { width: canvas.width, height: canvas.height, rgba: Array.from(data),
               status: document.getElementById("status").textContent,
               timing: document.getElementById("timing").textContent,
               model: document.getElementById("model").textContent };
    });
    if (job.screenshot) await page.screenshot({ path: job.screenshot, fullPage: true });
    writeFileSync(job.out, JSON.stringify({ state, outside, messages, ...result }));
    await context.close();
  }
} finally {
  await browser.close();
}
