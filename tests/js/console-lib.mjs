// What every console walk shares: a headless Chromium (playwright-core) at 1280 px
// that trusts the appliance's generated certificate, and the checks every page must
// pass — the classification banner at top and bottom and fixed, no request leaving
// the machine, no console or script error, no horizontal scrolling, a label on every
// control — with a full-page screenshot of each page checked.
//
//   const w = await openConsole({ base, shots, banner });
//   await w.signIn(username, password);   // lands on /console/networks
//   await w.check('name');                // screenshot + the checks above
//   w.fail('what went wrong');            // record a failure and go on
//   await w.finish('walk name');          // closes the browser, exits 0 or 1
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

export async function openConsole({ base, shots, banner }) {
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
    if (!['https:', 'data:', 'blob:'].includes(u.protocol) || (u.protocol === 'https:' && u.host !== local.host)) {
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

  async function signIn(username, password) {
    await page.goto(`${base}/console/sign-in`);
    await page.fill('#username', username);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await page.waitForURL('**/console/networks');
  }

  async function finish(walk) {
    await browser.close();
    console.log(problems.length ? `${problems.length} problem(s)` : `${walk}: every check passed`);
    process.exit(problems.length ? 1 : 0);
  }

  return { page, check, fail, asked, signIn, finish, base };
}
