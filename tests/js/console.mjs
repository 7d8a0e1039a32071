// Drives the admin console in headless Chromium (playwright-core) against a running
// appliance, as an administrator would, and checks what every page must do: the
// classification banner at top and bottom, no request leaving the machine, no console
// error, no horizontal scrolling at 1280 px, and a screenshot of each page.
//
//   node tests/js/console.mjs BASE_URL USERNAME PASSWORD SCREENSHOT_DIR EXPECTED_BANNER
//
// Exits 0 when every check passed; prints what failed otherwise.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, username, password, shots, banner] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const problems = [];
const fail = (what) => { problems.push(what); console.error(`FAIL ${what}`); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
// The appliance's generated CA is not in Chromium's store; the test trusts it as a
// person would after checking the fingerprint.
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const local = new URL(base);
page.on('request', (r) => {
  const u = new URL(r.url());
  if (!['https:', 'data:'].includes(u.protocol) || (u.protocol === 'https:' && u.host !== local.host)) {
    fail(`a request left the appliance: ${r.url()}`);
  }
});
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  // A refused form is answered with its page and an error status (401, 422…), which
  // Chromium reports about the document itself; that is the answer, not a fault.
  // Anything else — a missing stylesheet or script, a script error — fails.
  const about = m.location()?.url;
  if (m.text().startsWith('Failed to load resource') && about === page.url()) return;
  fail(`console error on ${page.url()}: ${m.text()} (${about})`);
});
page.on('pageerror', (e) => fail(`script error on ${page.url()}: ${e.message}`));
// The console asks once more before irreversible actions; the administrator agrees.
const asked = [];
page.on('dialog', async (d) => { asked.push(d.message()); await d.accept(); });

let n = 0;
async function check(name) {
  n += 1;
  await page.screenshot({ path: `${shots}/${String(n).padStart(2, '0')}-${name}.png`, fullPage: true });
  const top = await page.locator('.banner.top').textContent().catch(() => null);
  const bottom = await page.locator('.banner.bottom').textContent().catch(() => null);
  if (top?.trim() !== banner || bottom?.trim() !== banner) {
    fail(`${name}: banner top "${top}" bottom "${bottom}", expected "${banner}"`);
  }
  const pos = await page.locator('.banner.top').evaluate((e) => getComputedStyle(e).position).catch(() => null);
  if (pos !== 'sticky' && pos !== 'fixed') fail(`${name}: the banner is not fixed (${pos})`);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 1280) fail(`${name}: the page is ${wide} px wide at 1280 px`);
  const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.name));
  if (unlabeled.length) fail(`${name}: controls without a label: ${unlabeled.join(', ')}`);
}

try {
  // Anyone who is not signed in lands on the sign-in page, which shows the level.
  await page.goto(`${base}/console/networks`);
  if (!page.url().endsWith('/console/sign-in')) fail(`not sent to sign in: ${page.url()}`);
  await check('sign-in');

  await page.fill('#username', username);
  await page.fill('#password', 'wrong password');
  await page.click('button[type=submit]');
  if (!(await page.locator('#sign-in-error').textContent())?.includes('incorrect')) fail('no message for a wrong password');
  await check('sign-in-wrong-password');

  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL('**/console/networks');
  await check('networks');

  // Keyboard: the skip link is the first stop and leads to the content.
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.textContent);
  if (first?.trim() !== 'Skip to content') fail(`the first Tab stop is "${first}"`);

  await page.fill('#name', 'Field Ops');
  await page.click('form[action="/console/networks"] button[type=submit]');
  await page.waitForURL('**/console/networks');
  const flash = await page.locator('.flash').textContent();
  if (!flash?.includes('Network Field Ops')) fail(`no confirmation after creating a network: ${flash}`);
  if (!(await page.locator('td', { hasText: 'Field Ops' }).count())) fail('the new network is not listed');
  await check('network-created');

  // A reload no longer shows the confirmation.
  await page.reload();
  if (await page.locator('.flash').count()) fail('the confirmation is shown twice');

  // The team directory: pages of 50, search, and the status filter.
  await page.click('td a:has-text("outpost")');
  await page.click('a:has-text("Team directory")');
  await page.waitForURL(/\/users$/);
  let rows = await page.locator('table.list tbody tr').count();
  if (rows !== 50) fail(`the directory's first page has ${rows} rows, not 50`);
  await check('directory');
  await page.click('a[rel=next]');
  rows = await page.locator('table.list tbody tr').count();
  if (rows !== 10) fail(`the directory's second page has ${rows} rows, not 10`);
  await page.fill('#search', 'member7@');
  await page.click('form.filters button[type=submit]');
  rows = await page.locator('table.list tbody tr').count();
  if (rows !== 1) fail(`searching member7@ finds ${rows} rows`);
  await page.fill('#search', '');
  await page.selectOption('#status', 'suspended');
  await page.click('form.filters button[type=submit]');
  const suspended = await page.locator('table.list tbody tr td:first-child').allTextContents();
  if (suspended.length !== 1 || suspended[0] !== 'member7@example.test') fail(`the suspended filter shows ${suspended}`);
  await check('directory-filtered');
  await page.selectOption('#status', 'locked');
  await page.click('form.filters button[type=submit]');
  if (!(await page.locator('.empty').textContent())?.includes('No user matches')) fail('no empty state for a filter without matches');
  await page.goto(`${base}/console/networks`);

  // The network's page: tags, then deleting it (typed word and password).
  await page.click('a:has-text("Field Ops")');
  await page.waitForURL(/\/console\/networks\/\d{8}$/);
  await check('network');
  await page.fill('#tag-key', 'site');
  await page.fill('#tag-value', 'north');
  await page.click('form[action$="/tags"] button[type=submit]');
  if (!(await page.locator('.flash').textContent())?.includes('Tag site saved')) fail('no confirmation for a tag');
  if (!(await page.locator('td', { hasText: 'north' }).count())) fail('the tag is not shown');
  await page.click('button[aria-label="Remove tag site"]');
  if (await page.locator('td', { hasText: 'north' }).count()) fail('the tag was not removed');
  await page.fill('#confirm', 'confirm');
  await page.fill('#delete-password', 'not my password');
  await page.click('button:has-text("Delete network")');
  if (!(await page.locator('#network-error').textContent())?.includes('not yours')) fail('a wrong password did not stop the deletion');
  await check('network-delete-refused');
  await page.fill('#confirm', 'yes');
  await page.fill('#delete-password', password);
  await page.click('button:has-text("Delete network")');
  if (!(await page.locator('#network-error').textContent())?.includes('confirm')) fail('deleting without the word went through');
  await page.fill('#confirm', 'confirm');
  await page.fill('#delete-password', password);
  await page.click('button:has-text("Delete network")');
  await page.waitForURL('**/console/networks');
  if (!(await page.locator('.flash').textContent())?.includes('deleted')) fail('no confirmation of the deletion');
  if (await page.locator('td', { hasText: 'Field Ops' }).count()) fail('the deleted network is still listed');
  if (!asked.length) fail('deleting did not ask once more');

  await page.click('button:has-text("Sign out")');
  await page.waitForURL('**/console/sign-in?signed_out=1');
  if (!(await page.locator('.flash').textContent())?.includes('signed out')) fail('no signed-out notice');
  await check('signed-out');
  // Signed out, the console is closed again.
  await page.goto(`${base}/console/networks`);
  if (!page.url().includes('/console/sign-in')) fail('still signed in after signing out');
} catch (e) {
  fail(`the walk stopped: ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(problems.length ? `${problems.length} problem(s)` : 'console: every check passed');
process.exit(problems.length ? 1 : 0);
