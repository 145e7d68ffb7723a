// Signs in to the console as a person would and approves a held plan, in Debian's Chromium
// driven by playwright-core. Prints one JSON line with what it saw; exits 1 on any failure.
//
//   node console.mjs BASE_URL TENANT LOGIN PASSWORD PERSON_KEY
import { chromium } from 'playwright-core';

const [base, tenant, login, password, person] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions',
    '--no-first-run', '--no-default-browser-check', '--mute-audio'],
});
const seen = { consoleErrors: [] };
try {
  const page = await browser.newPage();
  // Script errors only: a refused sign-in's 401 is the page working as meant.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) seen.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  await page.goto(`${base}/console/`);
  // A wrong password first: the API's reason is shown, nobody is signed in.
  await page.fill('input[name=tenant]', tenant);
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'not the password at all');
  await page.click('button[type=submit]');
  seen.refused = await page.textContent('[role=alert]');
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  seen.who = await page.textContent('[data-testid=who]');
  // The held plan is listed with its operations; approving it is a change, so it carries
  // the CSRF token the console read from its cookie.
  const plans = page.locator('[data-testid=held-plans] tbody tr');
  await plans.first().waitFor();
  seen.heldRow = await plans.filter({ hasText: person }).textContent();
  await plans.filter({ hasText: person }).locator('input[type=checkbox]').check();
  await page.fill('[data-testid=held-plans] input[placeholder^=Note]', 'approved in the console');
  await page.click('text=Approve selected');
  seen.status = await page.textContent('[data-testid=held-plans] [role=status]');
  // The audit page finds the approval by kind.
  await page.click('header a[href="#/audit"]');
  await page.fill('input[placeholder^=Kind]', 'plan.approved');
  await page.click('text=Search');
  await page.locator('[data-testid=audit] tbody tr').first().waitFor();
  seen.auditRow = await page.locator('[data-testid=audit] tbody tr').first().textContent();
  // Every other page renders what the API gives it.
  await page.click('header a[href="#/rules"]');
  await page.locator('[data-testid=versions] tbody tr').first().click();
  await page.click('text=Run the tests');
  seen.tests = await page.textContent('[data-testid=tests] h3');
  await page.click('header a[href="#/people"]');
  await page.fill('input[placeholder^=Person]', person);
  await page.click('text=Show');
  await page.locator('.person ol li').first().waitFor();
  seen.timeline = await page.locator('.person ol li').count();
  await page.click('header a[href="#/dashboard"]');
  seen.kpis = await page.textContent('dl.kpis');
  await page.click('header a[href="#/plugins"]');
  seen.plugins = await page.locator('.plugin h3').allTextContents();
  seen.connections = await page.textContent('[data-testid=connections] tbody');
  console.log(JSON.stringify(seen));
} catch (e) {
  console.log(JSON.stringify({ ...seen, failure: String(e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
