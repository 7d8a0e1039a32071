// Drives the admin console in headless Chromium (playwright-core) against a running
// appliance, as an administrator would, and checks what every page must do: the
// classification banner at top and bottom, no request leaving the machine, no console
// error, no horizontal scrolling at 1280 px, and a screenshot of each page.
//
//   node tests/js/console.mjs BASE_URL USERNAME PASSWORD SCREENSHOT_DIR EXPECTED_BANNER
//
// Exits 0 when every check passed; prints what failed otherwise.
import { openConsole } from './console-lib.mjs';

const [base, username, password, shots, banner] = process.argv.slice(2);
const { page, check, fail, asked, finish } = await openConsole({ base, shots, banner });

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
}
await finish('console');
