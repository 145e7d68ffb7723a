// Signs in to the console with the tenant's OpenID provider, in Debian's Chromium: the console's
// button, the provider's redirects, Tenure's callback and back to the console. Prints one JSON
// line with what it saw; exits 1 on any failure.
//
//   node oidc.mjs BASE_URL TENANT LOGIN
import { run } from './browser.mjs';

const [base, tenant, login] = process.argv.slice(2);
await run(async (browser, seen) => {
  seen.visited = [];
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
});
