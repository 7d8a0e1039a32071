// The console's network policies and security groups in headless Chromium
// (playwright-core), as an administrator would use them: read receipts, data retention,
// the consent pop-up with its live preview, the file-download default, the
// classification banner; then a security group created, its tabs walked (by keyboard
// too), invalid values refused with the API's messages next to their fields, valid ones
// saved, and the group deleted (the typed word and the password).
//
//   node tests/js/console-policies.mjs BASE_URL USERNAME PASSWORD SCREENSHOT_DIR BANNER NETWORK_ID \
//        ADMIN_USERNAME AUDITOR_USERNAME COMPLIANCE_USERNAME OTHERS_PASSWORD
//
// Then a network admin (who may change policies but not switch data retention), an
// auditor (who may only look) and a compliance officer (who may switch data retention
// and nothing else) see the same pages with what their roles allow.
//
// Exits 0 when every check passed; prints what failed otherwise.
import { openConsole } from './console-lib.mjs';

const [base, username, password, shots, banner, network, adminName, auditorName, complianceName, othersPassword] = process.argv.slice(2);
const { page, check, fail, asked, signIn, finish } = await openConsole({ base, shots, banner });

const text = async (sel) => ((await page.locator(sel).first().textContent().catch(() => null)) ?? '').trim();
const expectText = async (sel, want, what) => {
  const got = await text(sel);
  if (!got.includes(want)) fail(`${what}: ${sel} says "${got}", expected "${want}"`);
};
const submit = async (formSel) => {
  await Promise.all([page.waitForLoadState('load'), page.click(`${formSel} button[type=submit]`)]);
};
const policies = `${base}/console/networks/${network}/policies`;
const section = (name) => `form:has(input[name=_section][value=${name}])`;

try {
  await signIn(username, password);

  // The network's page leads to its policies and its security groups.
  await page.goto(`${base}/console/networks/${network}`);
  await page.click('a:has-text("Network policies")');
  await page.waitForURL(/\/policies$/);
  await check('policies');

  // Read receipts.
  await page.selectOption('#f-read-receipts', 'force_enabled');
  await submit(section('messaging'));
  await expectText('.flash', 'Messaging policy saved', 'read receipts');
  if ((await page.inputValue('#f-read-receipts')) !== 'force_enabled') fail('read receipts were not saved');

  // Data retention: on, then off again.
  await expectText('#retention-status', 'off', 'retention at first');
  await submit('form[action*="/policies/data-retention"]');
  await expectText('.flash', 'Data retention is on', 'retention on');
  await expectText('#retention-status', 'on', 'retention after switching it on');
  await check('policies-retention-on');
  await submit('form[action*="/policies/data-retention"]');
  await expectText('#retention-status', 'off', 'retention after switching it off');

  // The consent pop-up: the preview follows the typing, before anything is saved.
  await page.check('#f-consent-enabled');
  await page.fill('#f-consent-title', 'Terms of use');
  await page.fill('#f-consent-body', 'Line one.\nLine two, <b>as typed</b>.');
  await page.fill('#f-consent-button-label', 'I agree');
  await expectText('[data-preview="consent.title"]', 'Terms of use', 'live preview of the title');
  await expectText('[data-preview="consent.button_label"]', 'I agree', 'live preview of the button');
  await check('policies-consent-typed');
  await submit(section('consent'));
  await expectText('.flash', 'Consent pop-up policy saved', 'consent saved');
  // After saving, the server renders the same preview.
  await expectText('[data-preview="consent.title"]', 'Terms of use', 'saved preview of the title');
  await expectText('[data-preview="consent.body"]', 'Line two, <b>as typed</b>.', 'saved preview of the body');
  if (await page.locator('[data-preview="consent.body"] b').count()) fail('the consent body was rendered as HTML');
  await expectText('#consent', 'Version 1', 'consent version');
  // An enabled pop-up without a title is refused, with the API's message by the field.
  await page.fill('#f-consent-title', '');
  await submit(section('consent'));
  await expectText('#f-consent-title-error', 'an enabled consent pop-up needs a title', 'consent without a title');
  await expectText('#consent-problems', 'Nothing was saved', 'consent problem summary');
  await check('policies-consent-refused');
  await page.goto(policies);
  await expectText('[data-preview="consent.title"]', 'Terms of use', 'the refused title was not saved');

  // New groups start without file download.
  await page.uncheck('#f-file-download');
  await submit(section('files'));
  await expectText('.flash', 'Files and guests policy saved', 'file download default');

  // Classification: the banner changes with it (every page shows the appliance's level).
  await page.selectOption('#f-classification-level', 'top_secret');
  await page.fill('#f-classification-caveats', 'rel to fvey');
  await submit(section('classification'));
  for (const where of ['top', 'bottom']) {
    const b = await text(`.banner.${where}`);
    if (b !== 'TOP SECRET//REL TO FVEY') fail(`the ${where} banner says "${b}" after the change`);
    const cls = await page.locator(`.banner.${where}`).getAttribute('class');
    if (!cls.includes('level-top-secret')) fail(`the ${where} banner's colours are ${cls}`);
  }
  await expectText('#network-banner', 'TOP SECRET//REL TO FVEY', 'the network banner');
  await page.screenshot({ path: `${shots}/policies-top-secret.png`, fullPage: true });
  // Back to the level the rest of the walk expects.
  await page.selectOption('#f-classification-level', 'secret');
  await page.fill('#f-classification-caveats', 'noforn');
  await submit(section('classification'));
  await check('policies-classification-restored');

  // Security groups: the list, then a new group.
  await page.goto(`${base}/console/networks/${network}`);
  await page.click('a:has-text("Security groups")');
  await page.waitForURL(/\/groups$/);
  if (!(await page.locator('td', { hasText: 'Default' }).count())) fail('the default group is not listed');
  await expectText('.empty', 'Only the default group', 'the empty state');
  await check('groups');
  await page.fill('#group-name', 'Field team');
  await submit('form[action$="/groups"]');
  await page.waitForURL(/\/groups\/[0-9a-f-]{36}$/);
  await expectText('.flash', 'Security group Field team created', 'group created');
  await check('group-details');
  // A second group of the same name is refused.
  await page.goto(`${base}/console/networks/${network}/groups`);
  await page.fill('#group-name', 'field TEAM');
  await submit('form[action$="/groups"]');
  await expectText('#group-error', 'already has a security group named', 'a duplicate name');
  await page.click('a:has-text("Field team")');
  const groupUrl = page.url().split('?')[0];

  // The tabs by keyboard: focus the first, the arrow moves to the next, Enter opens it.
  await page.focus('nav.tabs a[aria-current=page]');
  await page.keyboard.press('ArrowRight');
  const focused = await page.evaluate(() => document.activeElement?.textContent);
  if (focused?.trim() !== 'Messaging') fail(`ArrowRight moved to "${focused}"`);
  await Promise.all([page.waitForURL(/tab=messaging/), page.keyboard.press('Enter')]);
  await check('group-messaging');

  // Invalid values: the API's messages, next to the fields, the typed values kept.
  await page.fill('#f-messaging-max-ttl-seconds', '10');
  await page.fill('#f-messaging-quick-responses', 'On my way\nCopy that');
  await submit('form.settings');
  await expectText('#f-messaging-max-ttl-seconds-error', 'must be between 60 (1 minute) and 31536000 (365 days) seconds', 'a too short expiration timer');
  if ((await page.inputValue('#f-messaging-max-ttl-seconds')) !== '10') fail('the typed value was not kept');
  await expectText('#problems a[href="#f-messaging-max-ttl-seconds"]', 'Longest expiration timer', 'the summary links to the field');
  await check('group-messaging-refused');
  await page.fill('#f-messaging-max-ttl-seconds', '3600');
  await submit('form.settings');
  await expectText('.flash', 'Messaging settings of Field team saved', 'messaging saved');
  if ((await page.inputValue('#f-messaging-max-ttl-seconds')) !== '3600') fail('the timer was not saved');
  if ((await page.inputValue('#f-messaging-quick-responses')) !== 'On my way\nCopy that') fail('the quick responses were not saved');

  // Rules between settings: video needs audio.
  await page.goto(`${groupUrl}?tab=calling`);
  await page.uncheck('#f-calling-audio');
  await submit('form.settings');
  await expectText('#f-calling-video-error', 'video calls and screen sharing need audio calls', 'video without audio');
  await check('group-calling-refused');
  await page.uncheck('#f-calling-video');
  await submit('form.settings');
  await expectText('.flash', 'Calling settings of Field team saved', 'calling saved');

  // Several problems at once, one of them about the password rules as a whole.
  await page.goto(`${groupUrl}?tab=security`);
  await expectText('#f-security-lockout-threshold-help', 'Default: 10.', 'the default next to a setting');
  await page.fill('#f-security-password-min-length', '8');
  await page.fill('#f-security-password-digits', '5');
  await page.fill('#f-security-password-symbols', '5');
  await page.fill('#f-security-lockout-threshold', '2');
  await submit('form.settings');
  await expectText('#f-security-lockout-threshold-error', 'must be between 3 and 100', 'a lockout threshold of 2');
  await expectText('#problems', 'add up to 10, more than the minimum length 8', 'password counts over the length');
  await expectText('#f-security-password-min-length-error', 'add up to 10', 'the password rule next to the length');
  await check('group-security-refused');

  // The network's file-download default reached the new group.
  await page.goto(`${groupUrl}?tab=media`);
  if (await page.isChecked('#f-media-file-download')) fail('the new group allows file download though the network default is off');

  // ATAK needs a package.
  await page.goto(`${groupUrl}?tab=integrations`);
  await page.check('#f-integrations-atak-enabled');
  await submit('form.settings');
  await expectText('#problems', 'enabling ATAK needs at least one package', 'ATAK without a package');
  await page.check('#f-integrations-atak-packages-com-atakmap-app-civ');
  await submit('form.settings');
  await expectText('.flash', 'Integrations settings of Field team saved', 'ATAK saved');

  // Every other tab: help text on every setting, and the page checks.
  for (const tab of ['media', 'location', 'notifications', 'open-access', 'federation', 'integrations']) {
    await page.goto(`${groupUrl}?tab=${tab}`);
    const fields = await page.locator('.field').count();
    const helps = await page.locator('.field .help').count();
    if (!fields || fields !== helps) fail(`tab ${tab}: ${fields} settings, ${helps} help texts`);
    await check(`group-${tab}`);
  }

  // Renaming: a name another group has is refused; a free one is saved.
  await page.goto(groupUrl);
  await page.fill('#group-name', 'default');
  await submit('form:has(input[name=_tab][value=details])');
  await expectText('#problems', 'already has a security group named', 'renaming to a taken name');
  if ((await page.inputValue('#group-name')) !== 'default') fail('the typed name was not kept');
  await page.fill('#group-name', 'Field unit');
  await submit('form:has(input[name=_tab][value=details])');
  await expectText('.flash', 'Security group renamed to Field unit', 'renamed');

  // Deleting: from the list's row to the group's delete form; the typed word and the
  // password.
  await page.goto(`${base}/console/networks/${network}/groups`);
  await Promise.all([page.waitForURL(/#delete$/), page.click('a[aria-label="Delete Field unit"]')]);
  await page.fill('#confirm', 'confirm');
  await page.fill('#delete-password', 'not my password');
  await submit('form[action*="/delete"]');
  await expectText('#delete-error', 'not yours', 'a wrong password');
  await check('group-delete-refused');
  await page.fill('#confirm', 'yes');
  await page.fill('#delete-password', password);
  await submit('form[action*="/delete"]');
  await expectText('#delete-error', 'confirm', 'deleting without the word');
  await page.fill('#confirm', 'confirm');
  await page.fill('#delete-password', password);
  await submit('form[action*="/delete"]');
  await page.waitForURL(/\/groups#groups-list$/);
  await expectText('.flash', 'Security group Field unit deleted', 'group deleted');
  if (await page.locator('td', { hasText: 'Field unit' }).count()) fail('the deleted group is still listed');
  if (!asked.length) fail('deleting did not ask once more');
  await check('groups-after-delete');

  // The default group cannot be deleted: its page has no delete form.
  await page.click('a:has-text("Default")');
  if (await page.locator('form[action*="/delete"]').count()) fail('the default group offers deletion');
  await expectText('.empty', 'cannot be deleted', 'the default group note');

  // A network admin changes policies, but data retention needs the compliance or owner
  // role: no switch, and a forged form is refused like the API's call.
  const signOut = async () => {
    await page.click('button:has-text("Sign out")');
    await page.waitForURL('**/console/sign-in?signed_out=1');
  };
  await signOut();
  await signIn(adminName, othersPassword);
  await page.goto(policies);
  if (await page.locator('form[action*="/policies/data-retention"]').count()) fail('a network admin is offered the retention switch');
  await expectText('#data-retention', 'needs the compliance or owner role', 'the retention role note');
  if (!(await page.locator(section('consent') + ' button[type=submit]').count())) fail('a network admin cannot save the consent pop-up');
  await check('policies-as-admin');
  const csrf = await page.inputValue('input[name=_csrf] >> nth=0');
  await Promise.all([
    page.waitForLoadState('load'),
    page.evaluate(({ action, csrf }) => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = action;
      for (const [k, v] of [['_csrf', csrf], ['enabled', 'true']]) {
        const i = document.createElement('input');
        i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
      }
      document.body.appendChild(f);
      f.submit();
    }, { action: `/console/networks/${network}/policies/data-retention`, csrf }),
  ]);
  await page.waitForURL(/data-retention/);
  await expectText('main .problem', 'not authorized to perform UpdateDataRetention', 'a forged retention switch');
  await page.goto(policies);
  await expectText('#retention-status', 'off', 'retention after the refused switch');

  // An auditor sees every setting, and can change none.
  await signOut();
  await signIn(auditorName, othersPassword);
  await page.goto(policies);
  if (await page.locator('main button[type=submit]').count()) fail('an auditor is offered to save policies');
  if (!(await page.locator('#f-read-receipts[disabled]').count())) fail('an auditor can edit read receipts');
  await check('policies-as-auditor');
  await page.goto(`${base}/console/networks/${network}/groups`);
  if (await page.locator('#group-name').count()) fail('an auditor is offered to create a group');
  await page.click('a:has-text("Default")');
  await page.click('nav.tabs a:has-text("Security")');
  if (await page.locator('main button[type=submit]').count()) fail('an auditor is offered to save group settings');
  if (!(await page.locator('#f-security-lockout-threshold[disabled]').count())) fail('an auditor can edit the lockout threshold');
  await check('group-as-auditor');

  // A compliance officer switches data retention, and changes no other policy.
  await signOut();
  await signIn(complianceName, othersPassword);
  await page.goto(policies);
  if (await page.locator(section('consent') + ' button[type=submit]').count()) fail('a compliance officer is offered to save the consent pop-up');
  await submit('form[action*="/policies/data-retention"]');
  await expectText('.flash', 'Data retention is on', 'retention switched by compliance');
  await expectText('#retention-status', 'on', 'retention after the compliance officer');
  await check('policies-as-compliance');
  // The network page links only to what a compliance officer may open.
  await page.goto(policies.replace(/\/policies$/, ''));
  if (!(await page.locator('main a:has-text("Network policies")').count())) fail('a compliance officer has no link to the network policies');
  for (const refused of ['Team directory', 'Security groups', 'Bots', 'Invitations', 'Analytics']) {
    if (await page.locator(`main a:has-text("${refused}")`).count()) fail(`a compliance officer is offered the ${refused} link`);
  }
  await check('network-as-compliance');
} catch (e) {
  fail(`the walk stopped: ${e.stack || e}`);
}
await finish('console-policies');
