// The console's people pages in headless Chromium (playwright-core), as an owner
// would use them: invite a user, bulk CSV files (a bad file's row-by-row report, then
// good files to invite, suspend and delete), a user's details and devices, edit,
// suspend, unsuspend, reset devices and delete (refused with a wrong password), bots,
// invitations, the mail outbox, and admin accounts and roles. Every page passes the
// shared checks (banner, no outside request, no console error, no sideways
// scrolling, labels) and is screenshotted.
//
//   node tests/js/console-people.mjs BASE_URL USERNAME PASSWORD SCREENSHOT_DIR EXPECTED_BANNER NETWORK_ID
//
// Exits 0 when every check passed; prints what failed otherwise.
import { openConsole } from './console-lib.mjs';

const [base, username, password, shots, banner, network] = process.argv.slice(2);
const { page, check, fail, asked, signIn, finish } = await openConsole({ base, shots, banner });
const net = `${base}/console/networks/${network}`;
const text = async (sel) => ((await page.locator(sel).first().textContent().catch(() => null)) ?? '').trim();
const expectText = async (sel, want, what) => {
  const got = await text(sel);
  if (!got.includes(want)) fail(`${what}: "${sel}" says "${got}", expected "${want}"`);
};
const csv = (name, body) => ({ name, mimeType: 'text/csv', buffer: Buffer.from(body) });

try {
  await signIn(username, password);

  // The directory: its actions, and a user's page from a row.
  await page.goto(`${net}/users`);
  await check('directory');
  for (const link of ['Invite a user', 'Bulk invite, suspend or delete (CSV)', 'Download the directory (CSV)', 'Invitations', 'Bots']) {
    if (!(await page.locator('ul.actions a', { hasText: link }).count())) fail(`the directory has no "${link}" link`);
  }
  // The group filter lists the network's groups.
  if ((await page.locator('#group option').count()) < 2) fail('the group filter has no groups');

  // Invite one person: their page, with the one-time link (mail is off in tests).
  await page.fill('#invite-email', 'new.person@example.test');
  await page.fill('#invite-first-name', 'Nova');
  await page.fill('#invite-last-name', 'Person');
  await page.click('#invite-form button[type=submit]');
  await page.waitForURL(/\/users\/[0-9a-f-]{36}$/);
  await expectText('.flash', 'Invited new.person@example.test', 'invite');
  await expectText('.flash', '/invite/oi_', 'the registration link is shown');
  await expectText('#user-status', 'pending', 'an invited user');
  await check('user-invited');

  // A bad e-mail is refused with the form kept.
  await page.goto(`${net}/users`);
  await page.fill('#invite-email', 'not an e-mail');
  await page.evaluate(() => { document.querySelector('#invite-email').type = 'text'; });
  await page.fill('#invite-first-name', 'Kept');
  await page.click('#invite-form button[type=submit]');
  await expectText('#invite-error', 'email', 'a bad e-mail');
  if ((await page.inputValue('#invite-first-name')) !== 'Kept') fail('the refused invite form lost what was typed');
  await check('invite-refused');

  // The directory as CSV and a template, as the links download them.
  const exported = await page.request.get(`${net}/users/export`);
  const body = await exported.text();
  if (!exported.ok() || !body.startsWith('email,') || !body.includes('new.person@example.test')) fail(`the export: ${exported.status()} ${body.slice(0, 80)}`);
  const tpl = await page.request.get(`${net}/users/templates/invite`);
  if (!(await tpl.text()).startsWith('email,first_name')) fail('the invite template');

  // Bulk: a file with bad rows changes nothing and reports each one.
  await page.goto(`${net}/users/bulk`);
  await check('bulk');
  await page.setInputFiles('#invite-file', csv('people.csv',
    'email,first_name,last_name,country_code,phone,security_group\n' +
    'good.one@example.test,Good,One,,,\n' +
    'not-an-email,Bad,Row,,,\n' +
    'member1@example.test,Already,Here,,,\n' +
    'good.two@example.test,Good,Two,+44,abc,\n'));
  await page.click('#bulk-invite button[type=submit]');
  await expectText('#bulk-error', 'nothing was changed', 'a bad file');
  const lines = await page.locator('#report-table tbody tr td:first-child').allTextContents();
  for (const l of ['3', '4', '5']) if (!lines.includes(l)) fail(`the report has no line ${l}: ${lines}`);
  if (lines.includes('2')) fail(`the report blames the good line 2: ${lines}`);
  await check('bulk-report');

  // A good file invites everyone in it and shows their links.
  await page.setInputFiles('#invite-file', csv('good.csv',
    'email,first_name,last_name\ngood.one@example.test,Good,One\ngood.two@example.test,Good,Two\n'));
  await page.click('#bulk-invite button[type=submit]');
  await expectText('#bulk-result', '2 of 2 users invited', 'a good file');
  if ((await page.locator('#invitations-table tbody tr').count()) !== 2) fail('the invited users\' links are not listed');
  await check('bulk-invited');

  // Suspend by file — dropped onto the form's box rather than chosen.
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['email\ngood.two@example.test\n'], 'suspend.csv', { type: 'text/csv' }));
    const zone = document.querySelector('#bulk-suspend');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  const dropped = await page.evaluate(() => document.querySelector('#suspend-file').files[0]?.name);
  if (dropped !== 'suspend.csv') fail(`a file dropped on the form is not chosen: ${dropped}`);
  await page.click('#bulk-suspend button[type=submit]');
  await expectText('#bulk-result', '1 of 1 users suspended', 'bulk suspend');

  // Delete by file: the box must be ticked (the server checks it too) and the password given.
  if (!(await page.locator('#acknowledge[required]').count())) fail('the irreversibility box is not required');
  await page.setInputFiles('#delete-file', csv('delete.csv', 'email\nmember0@example.test\n'));
  await page.evaluate(() => { document.querySelector('#acknowledge').required = false; });
  await page.fill('#bulk-delete-password', password);
  await page.click('#bulk-delete button[type=submit]');
  await expectText('#bulk-error', 'irreversible', 'bulk delete without the box');
  await page.setInputFiles('#delete-file', csv('delete.csv', 'email\nmember0@example.test\n'));
  await page.check('#acknowledge');
  await page.fill('#bulk-delete-password', password);
  await page.click('#bulk-delete button[type=submit]');
  await expectText('#bulk-result', '1 of 1 users deleted', 'bulk delete');
  await check('bulk-deleted');

  // A registered user's details, with their device.
  await page.goto(`${net}/users?search=dev%40`);
  await page.click('td a:has-text("dev@example.test")');
  await page.waitForURL(/\/users\/[0-9a-f-]{36}$/);
  const userUrl = page.url();
  if ((await page.locator('table.list tbody tr').count()) !== 1) fail('the user\'s device is not listed');
  await expectText('#user-status', 'active', 'a registered user');
  await check('user');

  // Edit; a bad phone number is refused.
  await page.fill('#first-name', 'Devon');
  await page.click('#edit-form button[type=submit]');
  await expectText('.flash', 'Saved dev@example.test', 'edit');
  if ((await page.inputValue('#first-name')) !== 'Devon') fail('the edit did not stick');
  await page.fill('#phone', 'call me');
  await page.click('#edit-form button[type=submit]');
  await expectText('#user-error', 'phone', 'a bad phone number');
  await check('user-edit-refused');

  // Suspend (asked once more) and unsuspend.
  await page.goto(userUrl);
  await page.click('#suspend');
  await page.waitForURL(userUrl);
  await expectText('.flash', 'is suspended', 'suspend');
  await expectText('#user-status', 'suspended', 'a suspended user');
  if (!asked.some((q) => q.startsWith('Suspend dev@example.test'))) fail('suspending did not ask first');
  await check('user-suspended');
  await page.click('#unsuspend');
  await expectText('#user-status', 'active', 'unsuspend');

  // A password reset link (mail is off: shown once).
  await page.click('#password-reset');
  await expectText('.flash', 'Password reset for dev@example.test', 'password reset');
  await expectText('.flash', '/reset/or_', 'the reset link is shown');

  // Reset devices: the typed word and the password.
  await page.fill('#reset-confirm', 'confirm');
  await page.fill('#reset-password', password);
  await page.click('form[action$="/devices/reset"] button[type=submit]');
  await expectText('.flash', '1 device was reset', 'reset devices');

  // Unlock someone locked out by failed sign-ins.
  await page.goto(`${net}/users?status=locked`);
  await page.click('td a:has-text("locked@example.test")');
  await expectText('#user-status', 'locked', 'a locked user');
  await page.click('#unlock');
  await expectText('.flash', 'locked@example.test is unlocked', 'unlock');
  await expectText('#user-status', 'active', 'an unlocked user');

  // Delete the invited person: refused with a wrong password, done with the right one.
  await page.goto(`${net}/users?search=new.person%40`);
  await page.click('td a:has-text("new.person@example.test")');
  await page.fill('#delete-confirm', 'confirm');
  await page.fill('#delete-password', 'not my password');
  await page.click('form[action$="/delete"] button[type=submit]');
  await expectText('#user-error', 'not yours', 'delete with a wrong password');
  await check('user-delete-refused');
  // (The person is invited again below, from the invitations page, so they stay.)

  // Invitations: the pending people, resend and revoke.
  await page.goto(`${net}/invitations`);
  await check('invitations');
  const row = page.locator('#invitations-table tr', { hasText: 'new.person@example.test' });
  if (!(await row.count())) fail('the invited person is not on the invitations page');
  await row.locator('button:has-text("Resend")').click();
  await expectText('.flash', 'New invitation for new.person@example.test', 'resend');
  await page.locator('#invitations-table tr', { hasText: 'new.person@example.test' }).locator('button:has-text("Revoke")').click();
  await expectText('.flash', 'no longer works', 'revoke');
  await expectText('#invitations-table tr:has-text("new.person@example.test")', 'revoked or never sent', 'a revoked invitation');
  await check('invitation-revoked');

  // Now delete someone for real.
  await page.goto(`${net}/users?search=good.one%40`);
  await page.click('td a:has-text("good.one@example.test")');
  await page.fill('#delete-confirm', 'confirm');
  await page.fill('#delete-password', password);
  await page.click('form[action$="/delete"] button[type=submit]');
  await page.waitForURL(/\/users$/);
  await expectText('.flash', 'good.one@example.test was deleted', 'delete');

  // The mail outbox (mail is off here: empty).
  await page.click('nav a:has-text("Mail outbox")');
  await page.waitForURL('**/console/mail');
  await expectText('.empty', 'No mail', 'the empty outbox');
  await check('mail');

  // Bots: empty, create one (its token once), suspend it, delete it.
  await page.goto(`${net}/bots`);
  await expectText('.empty', 'no bots', 'no bots yet');
  await check('bots-empty');
  await page.fill('#bot-username', 'alertbot');
  await page.fill('#bot-display-name', 'Alerts');
  await page.click('#bot-form button[type=submit]');
  const firstToken = await text('#token');
  if (!firstToken.startsWith('ob_')) fail(`no token shown for the new bot: ${firstToken}`);
  await check('bot-created');
  // A new token replaces it (asked once more), shown once too.
  await page.click('button[aria-label="New API token for alertbot"]');
  const secondToken = await text('#token');
  if (!secondToken.startsWith('ob_') || secondToken === firstToken) fail(`no new token: ${secondToken}`);
  await page.goto(`${net}/bots`);
  if (await page.locator('#token').count()) fail('the bot token is shown again on a later visit');
  await page.click('button[aria-label="Suspend alertbot"]');
  await expectText('.flash', 'Saved alertbot', 'suspend a bot');
  await expectText('table.list tbody tr', 'suspended', 'a suspended bot');
  await page.fill('#bot-username', 'Not A Bot');
  await page.click('#bot-form button[type=submit]');
  await expectText('#bot-error', 'username', 'a bad bot name');
  await page.fill('#bot-delete-confirm', 'confirm');
  await page.fill('#bot-delete-password', password);
  await page.click('#bot-delete-form button[type=submit]');
  await expectText('.flash', 'Bot alertbot was deleted', 'delete a bot');
  await check('bot-deleted');

  // Admins and roles.
  await page.click('nav a:has-text("Admins")');
  await page.waitForURL('**/console/admins');
  await check('admins');
  await page.fill('#admin-username', 'ops.admin');
  await page.check('#role-admin');
  await page.check(`#net-${network}`);
  await page.click('#admin-form button[type=submit]');
  if ((await text('#one-time-password')).length < 12) fail('no one-time password for the new admin');
  await check('admin-created');
  await page.click('td a:has-text("ops.admin")');
  await page.waitForURL(/\/console\/admins\/[0-9a-f-]{36}$/);
  await check('admin');
  await page.check('#role-auditor');
  await page.click('#role-form button[type=submit]');
  await expectText('.flash', 'ops.admin is now auditor', 'change a role');
  await expectText('#admin-role', 'auditor', 'the new role');
  await page.click('#reset-password');
  if ((await text('#one-time-password')).length < 12) fail('no one-time password after a reset');
  await page.fill('#admin-delete-confirm', 'confirm');
  await page.fill('#admin-delete-password', password);
  await page.click('form[action$="/delete"] button[type=submit]');
  await page.waitForURL('**/console/admins');
  await expectText('.flash', 'ops.admin was removed', 'remove an admin');
  if (await page.locator('td', { hasText: 'ops.admin' }).count()) fail('the removed admin is still listed');
} catch (e) {
  fail(`the walk stopped: ${e.stack || e}`);
}
await finish('console people');
