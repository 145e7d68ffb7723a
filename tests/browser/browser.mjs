// What every browser script shares: Debian's Chromium launched headless through playwright-core,
// and one JSON line printed at the end with what the script saw (exit 1 on any failure).
import { chromium } from 'playwright-core';

/**
 * Runs `script(browser, seen)` in a fresh headless Chromium, then prints `seen` as one JSON line,
 * with `failure` set when the script threw.
 */
export async function run(script, seen = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions',
      '--no-first-run', '--no-default-browser-check', '--mute-audio'],
  });
  try {
    await script(browser, seen);
    console.log(JSON.stringify(seen));
  } catch (e) {
    console.log(JSON.stringify({ ...seen, failure: String(e) }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/** Signs in with a password on the console's sign-in page. */
export async function signIn(page, tenant, who) {
  await page.fill('input[name=tenant]', tenant);
  await page.fill('input[name=login]', who.login);
  await page.fill('input[name=password]', who.password);
  await page.click('button[type=submit]');
  await page.locator('[data-testid=who]').waitFor();
}
