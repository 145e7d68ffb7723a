// People using the console, in Debian's Chromium driven by playwright-core: an HR administrator
// approves a held plan, replays a dead letter, exports the audit and edits the rules without
// code; an IT administrator publishes (four eyes). Then every page is screenshotted at 1280 px
// and at phone width and checked with axe-core. Prints one JSON line with what it saw; exits 1
// on any failure.
//
//   node console.mjs '{"base": ..., "tenant": ..., "hr": {"login", "password"}, "it": {...},
//                      "held": "hr:s9", "heldName": "Givens9", "record": "hire-s9", "dead": "hr:e1",
//                      "screenshots": DIR}'
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { run, signIn as signInAs } from './browser.mjs';

const setup = JSON.parse(process.argv[2]);
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
let seen;

function watch(page) {
  // Script errors only: a refused request's 4xx is the page working as meant.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) seen.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
}

const signIn = (page, who) => signInAs(page, setup.tenant, who);

async function open(page, name) {
  await page.click(`header a[href="#/${name}"]`);
  await page.locator('main h2').first().waitFor();
}

/** Types into a field and leaves it, as a person does (the console writes on change). */
async function enter(locator, value) {
  await locator.fill(value);
  await locator.press('Tab');
}

/** Waits until the validation line settles on a text containing `wanted`. */
async function validation(page, wanted) {
  const line = page.locator('[data-testid=validation]');
  await line.filter({ hasText: wanted }).filter({ hasNotText: 'checking' }).waitFor();
  return line.textContent();
}

async function asHr(page) {
  await page.goto(`${setup.base}/console/`);
  // A wrong password first: the API's reason is shown, nobody is signed in.
  await page.fill('input[name=tenant]', setup.tenant);
  await page.fill('input[name=login]', setup.hr.login);
  await page.fill('input[name=password]', 'not the password at all');
  await page.click('button[type=submit]');
  seen.refused = await page.textContent('[role=alert]');
  await signIn(page, setup.hr);
  seen.who = await page.textContent('[data-testid=who]');

  // Operations: approve the held plan (a change, so it carries the CSRF token), replay the dead letter.
  const plans = page.locator('[data-testid=held-plans] tbody tr');
  await plans.first().waitFor();
  seen.heldRow = await plans.filter({ hasText: setup.held }).textContent();
  await plans.filter({ hasText: setup.held }).locator('input[type=checkbox]').check();
  await page.fill('[data-testid=held-plans] input[aria-label^=Note]', 'approved in the console');
  await page.click('text=Approve selected');
  seen.approved = await page.textContent('[data-testid=held-plans] [role=status]');
  const observed = page.locator('[data-testid=observed] tbody tr').filter({ hasText: 'hr:f1' });
  seen.observedRow = await observed.first().textContent();
  await page.click('[data-testid=queue] [role=tab]:has-text("completed")');
  await page.locator('[data-testid=queue] tbody tr').filter({ hasText: 'hr:' }).first().waitFor();
  seen.completedJobs = await page.locator('[data-testid=queue] tbody tr').count();
  const dead = page.locator('[data-testid=jobs-dead] tbody tr').filter({ hasText: setup.dead });
  seen.deadRow = await dead.textContent();
  await dead.locator('button', { hasText: 'Replay' }).click();
  seen.replayed = await page.textContent('[data-testid=jobs-dead] [role=status]');

  // People: found by a part of the name; their accounts in every destination.
  await open(page, 'people');
  await page.fill('input[aria-label="Find a person"]', setup.heldName);
  await page.click('text=Find');
  const found = page.locator('[data-testid=people-found] tbody tr').filter({ hasText: setup.held });
  seen.personFound = await found.textContent();
  await found.click();
  await page.locator('[data-testid=person-accounts] li').filter({ hasText: 'crm' }).waitFor();
  seen.personAccounts = await page.textContent('[data-testid=person-accounts]');

  // Audit: the approval found by kind, then the search exported as CSV.
  await open(page, 'audit');
  await page.fill('input[aria-label^=Kind]', 'plan.approved');
  await page.click('text=Search');
  await page.locator('[data-testid=audit] tbody tr').first().waitFor();
  seen.auditRow = await page.locator('[data-testid=audit] tbody tr').first().textContent();
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Export CSV')]);
  seen.exported = readFileSync(await download.path(), 'utf8');

  // Rules: a new rule built without code on the published version.
  await open(page, 'rules');
  await page.locator('[data-testid=versions] tbody tr').filter({ hasText: '(published)' }).click();
  await page.locator('[data-testid=visual-editor]').waitFor();
  await page.click('text=Add a rule');
  await enter(page.locator('article.rule').last().locator('label', { hasText: 'Name' }).locator('input'), 'sales');
  const rule = page.locator('article.rule[data-rule=sales]');
  await rule.locator('button', { hasText: '+ comparison' }).click();
  await enter(rule.locator('.condition input[aria-label=value]'), 'Sales');
  await enter(rule.locator('label', { hasText: 'Container' }).locator('input'), 'OU=Sales');
  seen.testsWhileEditing = await validation(page, 'passed');
  // A condition typed wrong is named where it is, as it is typed.
  await rule.locator('.condition summary').first().click();
  await enter(rule.locator('input[aria-label="When as an expression"]'), 'person.department ==');
  await rule.locator('.condition > [role=alert]').waitFor();
  seen.brokenCondition = await rule.locator('.condition > [role=alert]').textContent();
  await enter(rule.locator('input[aria-label="When as an expression"]'), 'person.department == "Sales"');
  await validation(page, 'passed');
  // The YAML view is the same document.
  await page.click('[role=tab]:has-text("YAML")');
  seen.yaml = await page.inputValue('textarea[aria-label=document]');
  await page.click('[role=tab]:has-text("Visual")');
  // The draft on the live salesperson, with the rules' trace.
  const preview = page.locator('[data-testid=rule-preview]');
  await preview.locator('input[aria-label="record id"]').fill(setup.record);
  await preview.locator('button', { hasText: 'Preview' }).click();
  const traced = preview.locator('[data-testid=trace] tbody tr').filter({ has: page.locator('td:nth-child(2)', { hasText: /^sales$/ }) });
  await traced.first().waitFor();
  seen.traceRow = await traced.first().textContent();
  await page.fill('input[aria-label="change note"]', 'Salespeople go to OU=Sales');
  await page.click('text=Save as a draft');
  await page.locator('[data-testid=rule-editor] > [role=status]').filter({ hasText: 'Saved' }).waitFor();
  seen.saved = await page.textContent('[data-testid=rule-editor] > [role=status]');
  await page.click('text=Impact on everyone');
  await page.locator('[data-testid=impact]').waitFor();
  seen.impact = await page.textContent('[data-testid=impact]');
  // Their own draft is not theirs to publish (four eyes).
  await page.click('[data-testid=rule-editor] button:has-text("Publish")');
  const status = page.locator('[data-testid=rule-editor] > [role=status]');
  await status.filter({ hasText: 'four eyes' }).waitFor();
  seen.ownDraftRefused = await status.textContent();
  await page.click('header button:has-text("Sign out")');
}

async function asIt(page) {
  await signIn(page, setup.it);
  await open(page, 'rules');
  await page.locator('[data-testid=versions] tbody tr').filter({ hasText: 'Salespeople go to' }).click();
  await page.locator('[data-testid=visual-editor]').waitFor();
  await page.click('[data-testid=rule-editor] button:has-text("Publish")');
  const status = page.locator('[data-testid=rule-editor] > [role=status]');
  await status.filter({ hasText: 'published' }).waitFor();
  seen.published = await status.textContent();
  // A rollback to version 1, then version 2 again.
  await page.locator('[data-testid=versions] tbody tr').filter({ hasText: 'the first rules' }).click();
  await page.click('[data-testid=rule-editor] button:has-text("Roll back to this version")');
  await status.filter({ hasText: 'Version 1 is published' }).waitFor();
  seen.rolledBack = await status.textContent();
  await page.locator('[data-testid=versions] tbody tr').filter({ hasText: 'Salespeople go to' }).click();
  await page.click('[data-testid=rule-editor] button:has-text("Publish")');
  await status.filter({ hasText: 'Version 2 is published' }).waitFor();

  // Reconciliation (a dry run) and the access review.
  await open(page, 'operations');
  await page.click('text=Compare (dry run)');
  const reconciled = page.locator('[data-testid=reconciliation] [role=status]').filter({ hasText: 'Report' });
  await reconciled.waitFor();
  seen.reconciled = await reconciled.textContent();
  const [review] = await Promise.all([page.waitForEvent('download'), page.click('text=Download the access review')]);
  seen.accessReview = readFileSync(await review.path(), 'utf8');

  // A token for a machine: shown once, then revoked.
  await open(page, 'access');
  await page.fill('input[aria-label="token name"]', 'workday-feed');
  await page.fill('input[aria-label="token sources"]', 'hr');
  await page.click('text=Make a token');
  await page.locator('[data-testid=token-made]').waitFor();
  seen.tokenMade = await page.textContent('[data-testid=token-made] code');
  await page.click('text=I have copied it');
  await page.locator('[data-testid=tokens] tbody tr').filter({ hasText: 'workday-feed' }).locator('button').click();
  const revoked = page.locator('[data-testid=tokens] [role=status]').filter({ hasText: 'revoked' });
  await revoked.waitFor();
  seen.tokenRevoked = await revoked.textContent();
}

/** Every page at 1280 px and phone width: screenshots, axe-core, no sideways scrolling. */
async function pages(context) {
  mkdirSync(setup.screenshots, { recursive: true });
  const page = await context.newPage();
  watch(page);
  const check = async (name) => {
    await page.waitForLoadState('networkidle');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: `${setup.screenshots}/${name}.png`, fullPage: true });
    await page.addScriptTag({ path: axePath });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(100);
    const phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    await page.screenshot({ path: `${setup.screenshots}/${name}-phone.png` });
    await page.setViewportSize({ width: 1280, height: 900 });
    seen.pages[name] = { violations, phoneOverflow };
  };
  await page.goto(`${setup.base}/console/`);
  await page.locator('input[name=tenant]').waitFor();
  await check('sign-in');
  await signIn(page, setup.it);
  for (const name of ['operations', 'rules', 'people', 'audit', 'dashboard', 'plugins', 'access']) {
    await open(page, name);
    if (name === 'rules') {
      await page.locator('[data-testid=versions] tbody tr').filter({ hasText: 'Salespeople go to' }).click();
      await page.locator('[data-testid=visual-editor]').waitFor();
    }
    if (name === 'people') {
      await page.fill('input[aria-label="Find a person"]', setup.heldName);
      await page.click('text=Find');
      await page.locator('[data-testid=people-found] tbody tr').first().click();
      await page.locator('.person ol li').first().waitFor();
    }
    if (name === 'dashboard') {
      await page.locator('[data-testid=charts] svg').first().waitFor();
      seen.charts = await page.locator('[data-testid=charts] figure').evaluateAll((figures) =>
        figures.map((f) => ({ title: f.querySelector('figcaption')?.textContent, drawn: f.querySelector('svg') !== null })));
    }
    if (name === 'plugins') {
      await page.locator('[data-testid=grants]').first().waitFor();
      seen.grants = await page.locator('[data-testid=grants]').allTextContents();
    }
    if (name === 'audit') {
      await page.click('text=Search');
      await page.locator('[data-testid=audit] tbody tr').first().waitFor();
    }
    await check(name);
  }
}

await run(async (browser, found) => {
  seen = found;
  const strict = await browser.newContext({ acceptDownloads: true });
  const page = await strict.newPage();
  watch(page);
  await asHr(page);
  await asIt(page);
  await strict.close();
  // axe is injected as a script, which the console's policy (rightly) refuses: this context
  // bypasses the policy for the check only; everything above ran under it.
  const checking = await browser.newContext({ bypassCSP: true });
  await pages(checking);
  await checking.close();
}, { consoleErrors: [], pages: {} });
