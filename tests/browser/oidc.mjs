// Signs in to the console with the tenant's OpenID provider, in Debian's Chromium: the console's
// button, the provider's redirects, Tenure's callback and back to the console. Prints one JSON
// line with what it saw; exits 1 on any failure.
//
//   node oidc.mjs BASE_URL TENANT LOGIN
import { chromium } from 'playwright-core';

const [base, tenant, login] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--no-default-browser-check'],
});
const seen = { visited: [] };
try {
  const page = await browser.newPage();
  // Every navigation, redirects included: the way through the provider and back.
  page.on('request', (r) => r.isNavigationRequest() && seen.visited.push(new URL(r.url()).origin));
  await page.goto(`${base}/console/`);
  await page.fill('input[name=tenant]', tenant);
  await page.fill('input[name=login]', login);
  await page.click("text=Sign in with your company's provider");
  await page.locator('[data-testid=who]').waitFor();
  seen.who = await page.textContent('[data-testid=who]');
  seen.at = new URL(page.url()).pathname;
  const cookies = await page.context().cookies(base);
  seen.cookies = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
  console.log(JSON.stringify(seen));
} catch (e) {
  console.log(JSON.stringify({ ...seen, failure: String(e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
