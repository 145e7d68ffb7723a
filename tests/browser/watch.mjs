// Watches a hire become an account in the console, in Debian's Chromium: signs in, then looks
// the person up on the people page (again every half second, as someone waiting would) until
// their account in the destination is listed. Prints one JSON line; exits 1 on any failure.
//
//   node watch.mjs BASE_URL TENANT LOGIN PASSWORD NAME DESTINATION
import { run, signIn } from './browser.mjs';

const [base, tenant, login, password, name, destination] = process.argv.slice(2);
await run(async (browser, seen) => {
  seen.looks = 0;
  const page = await browser.newPage();
  await page.goto(`${base}/console/`);
  await signIn(page, tenant, { login, password });
  await page.click('header a[href="#/people"]');
  await page.fill('input[aria-label="Find a person"]', name);
  const deadline = Date.now() + 60_000;
  for (;;) {
    seen.looks += 1;
    await page.click('text=Find');
    const row = page.locator('[data-testid=people-found] tbody tr').filter({ hasText: name });
    await page.locator('[data-testid=people-found]').waitFor();
    if ((await row.count()) > 0) {
      await row.first().click();
      const accounts = page.locator('[data-testid=person-accounts]');
      await accounts.waitFor();
      const text = await accounts.textContent();
      if (text.includes(destination)) {
        seen.found = await row.first().textContent();
        seen.accounts = text;
        break;
      }
    }
    if (Date.now() > deadline) throw new Error(`no account in ${destination} for ${name} after ${seen.looks} looks`);
    await page.waitForTimeout(500);
  }
});
