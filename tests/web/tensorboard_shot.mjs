// Screenshot of a TensorBoard page (docs/tensorboard.png): waits for its scalar cards to draw.
// usage: node tensorboard_shot.mjs URL OUT.png [FILTER]
import { chromium } from "playwright-core";

const [url, out, filter] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.LOTTERYIR_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1080 } });
  await page.goto(url);
  await page.waitForSelector("canvas, svg .line", { timeout: 120000 });
  // The settings pane opens on a first visit; close it so the charts get the width.
  const toggle = page.getByRole("button", { name: /settings/i }).last();
  if (await page.getByText("GENERAL").count()) await toggle.click().catch(() => {});
  if (filter) {
    await page.locator("input[placeholder*='Filter tags']").first().fill(filter);
    await page.keyboard.press("Escape"); // the tag suggestions would cover the charts
    await page.mouse.click(700, 860);
  }
  await page.waitForTimeout(4000); // the charts animate in
  await page.screenshot({ path: out });
} finally {
  await browser.close();
}
