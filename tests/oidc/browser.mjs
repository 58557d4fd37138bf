// Signs in through sluice in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): opens START_URL, fills the test provider's login form as USER, waits to be
// back on the start host, then opens that host's user page (/.pomerium/) and screenshots it.
// Usage: node browser.mjs START_URL USER SCREENSHOT.png
// Prints one JSON line: {"final_url", "body_text", "user_page_text"}.
import { chromium } from 'playwright-core';

const [start, user, screenshot] = process.argv.slice(2);
if (!start || !user || !screenshot) {
  console.error('usage: node browser.mjs START_URL USER SCREENSHOT.png');
  process.exit(2);
}
const startUrl = new URL(start);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  timeout: 30_000,
  // The flags this machine's closed network needs (no background fetches to Google's hosts).
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--host-resolver-rules=MAP *.localhost 127.0.0.1',
  ],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  await page.goto(start);
  // The provider's login form (its dev interactions accept any password).
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'x');
  await Promise.all([
    page.waitForURL((u) => u.host === startUrl.host && !u.pathname.startsWith('/.pomerium/callback')),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForLoadState('load');
  const finalUrl = page.url();
  const bodyText = await page.innerText('body');
  await page.goto(new URL('/.pomerium/', startUrl).toString());
  const userPageText = await page.innerText('body');
  await page.screenshot({ path: screenshot, fullPage: true });
  process.stdout.write(`${JSON.stringify({ final_url: finalUrl, body_text: bodyText, user_page_text: userPageText })}\n`);
} finally {
  await browser.close();
}
