// The console's audit log, analytics and system status in headless Chromium
// (playwright-core), on top of console-lib.mjs's checks (banner, no request leaving the
// machine, no console error, no horizontal scrolling, labels) on every page:
// searching the audit log by event and result, an event's details (secrets redacted),
// the JSON-lines export, the chain verification; analytics with data in it (overview,
// members broken down by platform, messages, the CSV export, a refused range); the
// system status page.
//
//   node tests/js/console-ops.mjs BASE USERNAME PASSWORD SHOTS BANNER NETWORK_ID MESSAGES FILES [DOCS_DIR]
//
// With DOCS_DIR, also saves the README's screenshots there (viewport-sized PNGs).
import { openConsole } from './console-lib.mjs';
import { readFileSync } from 'node:fs';

const [base, username, password, shots, banner, network, messages, files, docs] = process.argv.slice(2);
const { page, check, fail, finish } = await openConsole({ base, shots, banner });

async function doc(name) {
  if (docs) await page.screenshot({ path: `${docs}/${name}.png` });
}

async function download(selector) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const failure = await dl.failure();
  if (failure) { fail(`the download of ${selector} failed: ${failure}`); return ''; }
  return readFileSync(await dl.path(), 'utf8');
}

const text = async (sel) => (await page.locator(sel).textContent())?.trim();

try {
  // A refused sign-in first, so the log has an error to find.
  await page.goto(`${base}/console/sign-in`);
  await page.fill('#username', username);
  await page.fill('#password', 'not the password');
  await page.click('button[type=submit]');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL('**/console/networks');

  // The audit log: the newest event first, reached from the header.
  await page.click('nav[aria-label=Console] a:has-text("Audit log")');
  await page.waitForURL('**/console/audit');
  const rows = await page.locator('table.list tbody tr').count();
  if (rows < 3) fail(`the audit log shows ${rows} events`);
  const newest = await text('table.list tbody tr:first-child td:nth-child(3)');
  if (!newest?.startsWith('ListNetworks')) fail(`the newest event is "${newest}", not ListNetworks`);
  await check('audit');
  await doc('console-audit');

  // Search: refused sign-ins.
  await page.selectOption('#name', 'CreateAdminSession');
  await page.selectOption('#result', 'error');
  await page.click('form.filters button[type=submit]');
  const found = await page.locator('table.list tbody tr').allTextContents();
  if (found.length !== 1 || !found[0].includes('error 401')) fail(`the search for refused sign-ins finds ${JSON.stringify(found)}`);
  await check('audit-search');

  // Its details: the parameters without the password.
  await page.click('table.list tbody tr:first-child td:nth-child(3) a');
  await page.waitForURL(/\/console\/audit\/events\/\d+$/);
  const params = await text('#event-parameters');
  if (params?.includes('not the password')) fail('the event shows the password');
  if (!params?.includes(username)) fail(`the event's parameters do not name the username: ${params}`);
  if (!(await page.locator('dd', { hasText: 'invalid_credentials' }).count()) && !(await page.locator('dd', { hasText: '401' }).count())) fail('the event does not show its result');
  await check('audit-event');
  await page.goBack();

  // The export of the search: JSON lines of those events only.
  const jsonl = await download('#audit-export');
  const events = jsonl.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  if (events.length !== 1 || events[0].name !== 'CreateAdminSession' || events[0].result.status !== 'error') {
    fail(`the export holds ${JSON.stringify(events.map((e) => [e.name, e.result?.status]))}`);
  }
  if (!events[0]?.hash || !events[0]?.prev_hash) fail('exported events have no hashes');

  // An impossible time is a message, not an error page.
  await page.goto(`${base}/console/audit?from=yesterday`);
  if (!(await text('#audit-error'))?.includes('UTC date')) fail('no message for a bad time');
  // No match: the empty state.
  await page.goto(`${base}/console/audit?name=DeleteAdmin`);
  if (!(await text('.empty'))?.includes('No event matches')) fail('no empty state for a search without matches');

  // The chain.
  await page.goto(`${base}/console/audit`);
  await page.click('a:has-text("Verify the chain")');
  await page.waitForURL('**/console/audit/verify');
  if (!(await text('#verify-result'))?.includes('The chain is intact')) fail(`verification says ${await text('#verify-result')}`);
  await check('audit-verify');

  // Analytics, from the network's page.
  await page.goto(`${base}/console/networks/${network}`);
  await page.click('a:has-text("Analytics")');
  await page.waitForURL(`**/console/networks/${network}/analytics`);
  const registered = Number(await text('#stat-registered'));
  if (!(registered >= 2)) fail(`analytics shows ${registered} registered users`);
  if (Number(await text('#stat-devices')) < 2) fail('analytics shows fewer than 2 devices');
  if (!(await page.locator('svg.chart rect').count())) fail('the registrations chart has no bar');
  await check('analytics-overview');

  await page.click('nav.tabs a:has-text("Members")');
  const active = Number(await text('#stat-active'));
  if (!(active >= 2)) fail(`analytics shows ${active} active users`);
  await page.selectOption('#breakdown', 'platform');
  await page.click('form.filters button[type=submit]');
  const series = await page.locator('details table thead th').allTextContents();
  if (!series.includes('linux')) fail(`active users by platform show ${JSON.stringify(series)}`);
  await check('analytics-members');
  // By security group: a deleted group's members count as Deleted#.
  await page.selectOption('#breakdown', 'security_group');
  await page.click('form.filters button[type=submit]');
  const groups = await page.locator('details table thead th').allTextContents();
  if (!groups.includes('Deleted#') || !groups.includes('Default')) fail(`active users by group show ${JSON.stringify(groups)}`);
  await doc('console-analytics-members');

  await page.click('nav.tabs a:has-text("Messages")');
  if (await text('#stat-messages') !== messages) fail(`analytics shows ${await text('#stat-messages')} messages, not ${messages}`);
  if (await text('#stat-files') !== files) fail(`analytics shows ${await text('#stat-files')} files, not ${files}`);
  await check('analytics-messages');
  const csv = await download('#analytics-export');
  if (!csv.startsWith('tab,metric,bucket,series,value\n')) fail(`the CSV starts ${csv.slice(0, 40)}`);
  if (!csv.includes(`messages,messages,,,${messages}\n`)) fail('the CSV does not hold the messages total');

  // A range that ends before it starts is explained.
  await page.fill('#from', '2026-12-10');
  await page.fill('#to', '2026-12-01');
  await page.click('form.filters button[type=submit]');
  if (!(await text('#analytics-error'))?.includes('after it ends')) fail('no message for a reversed range');
  await check('analytics-bad-range');

  // System status.
  await page.click('nav[aria-label=Console] a:has-text("System status")');
  await page.waitForURL('**/console/status');
  if (!(await text('#status-listeners'))?.includes('https')) fail('the status page lists no HTTPS listener');
  if (!(await text('#status-version'))?.startsWith('outpost ')) fail('the status page shows no version');
  if (!(await page.locator('#status-certificate').count())) fail('the status page shows no certificate');
  if (!(await text('#status-exporter'))?.includes('running')) fail('the status page does not show the retention exporter running');
  if (!(await text('#status-exporter-events'))?.includes('started')) fail("the status page lists no exporter event (its 'started')");
  await check('status');
  await doc('console-status');
} catch (e) {
  fail(`the walk stopped: ${e.stack || e}`);
}
await finish('console-ops');
