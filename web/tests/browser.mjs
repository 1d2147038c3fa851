// Browser tests of nrm's pages in headless Chromium: the whole handover, a stale form, a
// forged CSRF token, every page in Dutch and English under axe-core, and (with --oidc-login)
// sign-in at an OpenID provider. Labels come from web/i18n/{nl,en}.ftl, so the test follows
// the catalogues instead of hard-coding texts.
// Usage: node web/tests/browser.mjs --base http://127.0.0.1:APP --out DIR [--oidc-login org:role]
//          [--langs nl,en] [--only handover,stale,csrf,pages,info,oidc,sealing]
// `sealing` runs only when asked for: it needs a service whose audit sealer stands still.
// Exit 0 only when every scenario passed and axe found no violation on any page.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const { values: opt } = parseArgs({
  options: { base: { type: 'string' }, out: { type: 'string' }, 'oidc-login': { type: 'string' }, langs: { type: 'string', default: 'nl,en' }, only: { type: 'string' } },
});
if (!opt.base || !opt.out) {
  console.error('usage: browser.mjs --base URL --out DIR [--oidc-login org:role] [--langs nl,en] [--only handover,stale,csrf,pages,info,oidc,sealing]');
  process.exit(2);
}
const base = opt.base.replace(/\/$/, '');
const root = new URL('../..', import.meta.url);
mkdirSync(opt.out, { recursive: true });

// The catalogues, read the way src/web/i18n.rs reads them: `key = text`, indented continuation lines.
function catalogue(lang) {
  const messages = {};
  let current = null;
  for (const line of readFileSync(new URL(`web/i18n/${lang}.ftl`, root), 'utf8').split('\n')) {
    if (!line.trim()) current = null;
    else if (line.startsWith('#')) continue;
    else if (line.startsWith(' ') && current) messages[current] += ` ${line.trim()}`;
    else if (line.includes('=')) {
      current = line.slice(0, line.indexOf('=')).trim();
      messages[current] = line.slice(line.indexOf('=') + 1).trim();
    }
  }
  return messages;
}
const catalogues = { nl: catalogue('nl'), en: catalogue('en') };
const tr = (lang) => (key, vars = {}) => {
  const text = catalogues[lang][key];
  if (text === undefined) throw new Error(`no message ${key} in ${lang}.ftl`);
  return text.replace(/\{ *\$(\w+) *\}/g, (_, name) => vars[name] ?? `{$${name}}`);
};
// Organisation names by slug, from the registry the server reads.
const organisations = Object.fromEntries(
  [...readFileSync(new URL('config/organisations.toml', root), 'utf8').matchAll(/^slug = "([^"]+)"\nname = "([^"]+)"/gm)].map((m) => [m[1], m[2]]),
);

// ---------------------------------------------------------------------------------------
// Bookkeeping: failures, pages checked under axe, screenshots named <lang>-<nn>-<name>.png.
// ---------------------------------------------------------------------------------------
const failures = [];
const shotCount = {};
let pagesChecked = 0;
let current = { scenario: '', step: '' };

function step(name) { current.step = name; }

// Screenshot and axe-core on the page as it is now, in the language expected.
async function check(page, lang, name) {
  await page.waitForLoadState('load');
  shotCount[lang] = (shotCount[lang] ?? 0) + 1;
  const file = `${lang}-${String(shotCount[lang]).padStart(2, '0')}-${name}`;
  await page.screenshot({ path: `${opt.out}/${file}.png`, fullPage: true });
  const htmlLang = await page.getAttribute('html', 'lang');
  if (htmlLang !== lang) fail(`page ${file} (${page.url()}) has lang="${htmlLang}", expected "${lang}"`);
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  pagesChecked++;
  for (const v of result.violations) {
    const nodes = v.nodes.slice(0, 3).map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n')[1]?.trim() ?? ''}`);
    fail(`axe ${v.id} (${v.impact}) on ${file} ${page.url()}: ${v.help}\n      ${nodes.join('\n      ')}`);
  }
}

function fail(message) { failures.push({ ...current, message }); }

// A context per scenario, in its language; CSP violations on our pages are failures too.
async function newContext(browser, lang) {
  const context = await browser.newContext({ locale: lang, extraHTTPHeaders: { 'Accept-Language': lang } });
  context.setDefaultTimeout(10_000);
  context.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text()) && m.page()?.url().startsWith(base)) fail(`CSP: ${m.text()}`);
  });
  return context;
}

async function scenario(browser, name, lang, body) {
  current = { scenario: `${name} [${lang}]`, step: 'start' };
  const started = Date.now();
  const contexts = [];
  const open = async () => { const c = await newContext(browser, lang); contexts.push(c); return c.newPage(); };
  const before = failures.length;
  try {
    await body({ open, t: tr(lang), lang });
  } catch (error) {
    fail(error.message.split('\n').slice(0, 12).join('\n      '));
  } finally {
    for (const c of contexts) await c.close();
  }
  console.log(`${failures.length === before ? 'ok  ' : 'FAIL'} ${current.scenario} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

// Clicks and waits for the next document; returns the status of each main-frame response
// on the way (e.g. [303, 200] after a form that redirects, [409] for a stale form).
async function submit(page, locator) {
  const statuses = [];
  const seen = (r) => { if (r.frame() === page.mainFrame() && r.request().isNavigationRequest()) statuses.push(r.status()); };
  page.on('response', seen);
  try {
    await Promise.all([page.waitForEvent('load'), locator.click()]);
  } finally {
    page.off('response', seen);
  }
  return statuses;
}

async function see(locator, what) {
  try {
    await locator.first().waitFor({ state: 'visible' });
  } catch {
    const heading = await locator.page().locator('h1').first().innerText({ timeout: 1000 }).catch(() => '');
    throw new Error(`expected to see ${what} on ${locator.page().url()} (its heading: "${heading}")`);
  }
}
const within = (promise, what, ms = 10_000) => Promise.race([promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`waited ${ms / 1000} s for ${what}`)), ms).unref())]);
const notice = (page) => page.locator('main [role=status]');
const stateOf = async (page) => (await page.locator('.nrm-status-line strong').innerText()).trim();
const timeline = async (page) => (await page.locator('.nrm-timeline li strong').allInnerTexts()).map((s) => s.trim());
const button = (page, name) => page.getByRole('button', { name, exact: true });

// ---------------------------------------------------------------------------------------
// Steps several scenarios share.
// ---------------------------------------------------------------------------------------
async function signIn(page, t, org, role, { lang, checkPage = false } = {}) {
  step(`sign in as ${org}:${role}`);
  await page.goto(`${base}/sign-in`);
  if (checkPage) await check(page, lang, 'sign-in');
  const name = t('sign-in-as', { role: t(`role-${role}`), organisation: organisations[org] });
  await submit(page, button(page, name));
  await see(page.locator('.nrm-header__user', { hasText: organisations[org] }), `the header naming ${organisations[org]}`);
}

async function signOut(page, t) {
  step('sign out');
  await submit(page, button(page, t('sign-out')));
  assert.equal(new URL(page.url()).pathname, '/sign-in', `after signing out: expected /sign-in, got ${page.url()}`);
}

// A new case from the form. With `lang` every page is checked under axe; scenarios that only
// need a case for their own check leave it out (the same pages are checked in the handover).
async function createCase(page, t, { lang, pseudonym } = {}) {
  step('create a case');
  await page.goto(`${base}/cases/new`);
  if (lang) await check(page, lang, 'case-new');
  await page.getByLabel(t('reporter-victim'), { exact: true }).check();
  await page.getByLabel(t('field-contact_channel'), { exact: true }).selectOption('chat');
  const today = await page.getByLabel(t('field-contact_date'), { exact: true }).inputValue();
  assert.match(today, /^\d{4}-\d{2}-\d{2}$/, 'the contact date is prefilled with today');
  await page.getByLabel(t('form-sexual'), { exact: true }).check();
  await page.getByLabel(t('field-age_at_contact'), { exact: true }).fill('24');
  await page.getByLabel(t('field-pseudonym'), { exact: true }).fill(pseudonym);
  // An incident today makes CSG's acute care a suggestion (routing rule acute-sexual-violence).
  await page.getByText(t('case-new-more'), { exact: true }).click();
  await page.getByLabel(t('field-last_incident_date'), { exact: true }).fill(today);
  const statuses = await submit(page, button(page, t('case-create')));
  assert.equal(await page.getByText(t('duplicate-title')).count(), 0, `pseudonym ${pseudonym} is already known (duplicate warning)`);
  assert.deepEqual(statuses, [303, 200], `creating the case: statuses ${statuses}`);
  await see(notice(page).getByText(t('done-case-created')), 'the case-created notice');
  return page.url().split('?')[0];
}

// Reasonable grounds, consent for CSG, the suggestion's referral form, the draft, submitted.
async function referToCsg(page, t, caseUrl, { lang } = {}) {
  const checked = async (name) => { if (lang) await check(page, lang, name); };
  if (page.url().split('?')[0] !== caseUrl) await page.goto(caseUrl);
  await checked('case');
  step('see routing suggestions');
  const suggestion = page.getByRole('link', { name: t('refer-to', { organisation: organisations.csg }), exact: true });
  await see(page.getByRole('heading', { name: t('case-routing') }), 'the routing section');
  await see(suggestion, `the suggestion to refer to ${organisations.csg}`);

  step('record reasonable grounds');
  await page.getByLabel(t('field-basis'), { exact: true }).fill('Signalen in de chat: werkt onder dwang, geen eigen paspoort.');
  await submit(page, button(page, t('grounds-record')));
  await see(notice(page).getByText(t('done-grounds-recorded')), 'the grounds-recorded notice');
  await see(page.locator('dt', { hasText: t('grounds-on') }), 'the date the grounds were recorded');
  await checked('case-grounds');

  step('record consent for the referral to CSG');
  await page.getByLabel(t('scope-referral'), { exact: true }).check();
  await page.getByLabel(t('field-organisation'), { exact: true }).selectOption('csg');
  await submit(page, button(page, t('consent-record')));
  await see(notice(page).getByText(t('done-consent-recorded')), 'the consent-recorded notice');
  await see(page.locator('.nrm-list li', { hasText: organisations.csg }).getByText(t('scope-referral'), { exact: true }), 'the consent in the list');
  await checked('case-consent');

  step('follow the suggestion to the prefilled referral form');
  await submit(page, suggestion);
  await see(page.getByRole('heading', { name: t('referral-new-title') }), 'the new-referral form');
  assert.equal(await page.getByLabel(t('field-to_organisation'), { exact: true }).inputValue(), 'csg', 'the receiver is prefilled');
  assert.ok(await page.locator('input[name=services]:checked').count() > 0, 'the suggested services are ticked');
  await checked('referral-new');

  step('save the draft');
  await submit(page, button(page, t('referral-draft')));
  await see(notice(page).getByText(t('done-referral-drafted')), 'the draft-saved notice');
  assert.equal(await stateOf(page), t('state-draft'));
  await checked('referral-draft');
  const referralUrl = page.url().split('?')[0];

  step('submit the referral');
  await submit(page, button(page, t('do-submit')));
  await see(notice(page).getByText(t('done-step-done')), 'the step-done notice');
  assert.equal(await stateOf(page), t('state-submitted'), 'state after submitting');
  await see(page.locator('.nrm-status-line .nrm-badge', { hasText: t('step-acknowledge') }), 'the acknowledge deadline badge');
  await checked('referral-submitted');
  return referralUrl;
}

// One step on the referral page; asserts the new state.
async function act(page, t, lang, action, state, fill) {
  step(`${action} -> ${state}`);
  if (fill) await fill();
  const statuses = await submit(page, button(page, t(`do-${action}`)));
  assert.deepEqual(statuses, [303, 200], `${action}: statuses ${statuses}`);
  await see(notice(page).getByText(t('done-step-done')), 'the step-done notice');
  assert.equal(await stateOf(page), t(`state-${state}`), `state after ${action}`);
  if (lang) await check(page, lang, `referral-${state}`);
}

const pseudonym = () => `roos-${randomBytes(4).toString('hex')}`;
const steps = ['submit:submitted', 'acknowledge:acknowledged', 'accept:accepted', 'start_care:in_care', 'complete:completed'];

// ---------------------------------------------------------------------------------------
// The scenarios.
// ---------------------------------------------------------------------------------------
async function wholeHandover({ open, t, lang }) {
  const worker = await open();
  await signIn(worker, t, 'fier', 'caseworker', { lang, checkPage: true });
  await check(worker, lang, 'cases');
  const caseUrl = await createCase(worker, t, { lang, pseudonym: pseudonym() });
  const referralUrl = await referToCsg(worker, t, caseUrl, { lang });
  await signOut(worker, t);

  const intake = await open();
  await signIn(intake, t, 'csg', 'intake');
  step('inbox shows the referral with a deadline badge');
  assert.equal(new URL(intake.url()).pathname, '/inbox', 'intake starts at the inbox');
  const row = intake.locator('tr', { has: intake.locator(`a[href="${new URL(referralUrl).pathname}"]`) });
  await see(row, 'the referral in the inbox');
  await see(row.locator('.nrm-badge', { hasText: t('step-acknowledge') }), 'a deadline badge on the inbox line');
  await check(intake, lang, 'inbox');
  await submit(intake, row.getByRole('link'));
  assert.equal(await stateOf(intake), t('state-submitted'));
  await check(intake, lang, 'referral-received');
  step('take the referral on, then find it under "mine"');
  const taken = await submit(intake, button(intake, t('assign-take-on')));
  assert.deepEqual(taken, [303, 200], `taking it on: statuses ${taken}`);
  await see(notice(intake).getByText(t('done-assigned')), 'the assigned notice');
  await check(intake, lang, 'referral-taken-on');
  await intake.goto(`${base}/inbox?assigned_to=me`);
  await see(intake.locator(`a[href="${new URL(referralUrl).pathname}"]`), 'the referral under "mine"');
  await check(intake, lang, 'inbox-mine');
  await intake.goto(referralUrl);
  await act(intake, t, lang, 'acknowledge', 'acknowledged');
  await act(intake, t, lang, 'accept', 'accepted');
  await act(intake, t, lang, 'start_care', 'in_care');
  const outcomeText = 'Intake gehad, behandeling afgerond.';
  await act(intake, t, lang, 'complete', 'completed', async () => {
    await intake.getByLabel(t('field-outcome_code'), { exact: true }).selectOption('support_provided');
    await intake.getByLabel(t('field-outcome'), { exact: true }).fill(outcomeText);
  });

  step('the caseworker sees the outcome and the whole history');
  await signIn(worker, t, 'fier', 'caseworker');
  await worker.goto(referralUrl);
  assert.equal(await stateOf(worker), t('state-completed'));
  await see(worker.locator('section', { has: worker.getByRole('heading', { name: t('referral-outcome') }) })
    .getByText(`${t('outcome-support_provided')} — ${outcomeText}`), 'the outcome with its text');
  // Each step by its label alone ("Aangenomen", not "Aangenomen: Aangenomen").
  const expected = steps.map((s) => t(`action-${s.split(':')[0]}`));
  assert.deepEqual(await timeline(worker), [...expected].reverse(), 'the timeline, newest first');
  await check(worker, lang, 'referral-outcome-sender');
}

async function staleForm({ open, t, lang }) {
  const worker = await open();
  await signIn(worker, t, 'fier', 'caseworker');
  const referralUrl = await referToCsg(worker, t, await createCase(worker, t, { pseudonym: pseudonym() }));

  const first = await open();
  await signIn(first, t, 'csg', 'intake');
  const second = await first.context().newPage();
  await first.goto(referralUrl);
  await second.goto(referralUrl);
  step('acknowledge in the first tab');
  await submit(first, button(first, t('do-acknowledge')));
  assert.equal(await stateOf(first), t('state-acknowledged'));
  step('press the stale button in the second tab');
  const statuses = await submit(second, button(second, t('do-acknowledge')));
  assert.deepEqual(statuses, [409], `the stale form: statuses ${statuses}`);
  await see(second.getByRole('alert').getByText(t('referral-stale')), 'the stale-form message');
  assert.equal(await stateOf(second), t('state-acknowledged'), 'the conflict page shows the current state');
  await check(second, lang, 'referral-stale');
  step('reload: the step was applied once');
  await second.goto(referralUrl);
  const entry = t('action-acknowledge');
  assert.equal((await timeline(second)).filter((e) => e === entry).length, 1, `one "${entry}" in the timeline`);
}

async function forgedCsrf({ open, t, lang }) {
  const page = await open();
  await signIn(page, t, 'fier', 'caseworker');
  step('post the new-case form with an altered csrf_token');
  const name = pseudonym();
  await page.goto(`${base}/cases/new`);
  await page.getByLabel(t('reporter-victim'), { exact: true }).check();
  await page.getByLabel(t('form-sexual'), { exact: true }).check();
  await page.getByLabel(t('field-pseudonym'), { exact: true }).fill(name);
  await page.evaluate(() => { document.querySelector('form[action="/cases"] input[name=csrf_token]').value = 'forged'; });
  let statuses = await submit(page, button(page, t('case-create')));
  assert.deepEqual(statuses, [403], `forged token: statuses ${statuses}`);
  await see(page.getByRole('heading', { name: t('error-csrf-title') }), 'the CSRF refusal page');
  await check(page, lang, 'csrf-refused');
  step('nothing was created: the same pseudonym is not a duplicate');
  await createCase(page, t, { pseudonym: name });

  step('sign out without a csrf_token');
  await page.evaluate(() => document.querySelector('form[action="/sign-out"] input[name=csrf_token]').remove());
  statuses = await submit(page, button(page, t('sign-out')));
  assert.deepEqual(statuses, [403], `sign-out without token: statuses ${statuses}`);
  const response = await page.goto(`${base}/cases`);
  assert.equal(new URL(page.url()).pathname, '/cases', 'still signed in after the refused sign-out');
  assert.equal(response.status(), 200);
}

// The pages the handover does not pass through, and their error states.
async function everyPage({ open, t, lang }) {
  const page = await open();
  await signIn(page, t, 'fier', 'caseworker');
  step('cases list with filters');
  await page.getByLabel(t('field-status'), { exact: true }).selectOption('signal');
  await page.getByLabel(t('field-exploitation_form'), { exact: true }).selectOption('sexual');
  await page.getByLabel(t('field-minor'), { exact: true }).selectOption('false');
  await submit(page, button(page, t('filter')));
  assert.match(page.url(), /status=signal/, 'the filters are in the address');
  await check(page, lang, 'cases-filtered');
  step('cases list with an invalid filter');
  const bad = await page.goto(`${base}/cases?from=gisteren`);
  assert.equal(bad.status(), 422);
  await see(page.getByRole('heading', { name: t('error-summary-title') }), 'the error summary');
  await check(page, lang, 'cases-filter-error');
  step('new case submitted empty');
  await page.goto(`${base}/cases/new`);
  await page.getByLabel(t('field-contact_channel'), { exact: true }).selectOption('');
  await page.getByLabel(t('field-contact_date'), { exact: true }).fill('');
  const statuses = await submit(page, button(page, t('case-create')));
  assert.deepEqual(statuses, [422], `empty new case: statuses ${statuses}`);
  // The summary links each problem to its field (the wording is the catalogue's to change).
  for (const field of ['reporter_role', 'contact_channel', 'contact_date', 'exploitation_forms']) {
    await see(page.locator(`.nrm-error-summary a[href="#field-${field}"]`), `the summary's link to the ${field} problem`);
  }
  await check(page, lang, 'case-new-errors');
  step('intake sheet');
  await submit(page, page.getByRole('link', { name: t('nav-intake-sheet'), exact: true }));
  await see(page.getByRole('heading', { name: t('sheet-title') }), 'the intake sheet');
  await check(page, lang, 'intake-sheet');
  step('a page that does not exist');
  const missing = await page.goto(`${base}/no-such-page`);
  assert.equal(missing.status(), 404);
  await see(page.getByRole('heading', { name: t('error-not-found-title') }), 'the not-found page');
  await check(page, lang, 'not-found');
  step('the language switch');
  const other = lang === 'nl' ? 'en' : 'nl';
  await page.goto(`${base}/cases`);
  await submit(page, page.getByRole('navigation', { name: t('language-switch') }).getByRole('link'));
  assert.equal(new URL(page.url()).pathname, '/cases', 'the switch comes back to the page');
  await see(page.getByRole('heading', { name: tr(other)('cases-title') }), `the cases page in ${other}`);
  await check(page, other, `switched-from-${lang}`);
  await submit(page, page.getByRole('navigation', { name: tr(other)('language-switch') }).getByRole('link'));
  await see(page.getByRole('heading', { name: t('cases-title') }), `the cases page in ${lang} again`);

  step('a three-way conversation: offered, then scheduling refused without police consent');
  const caseUrl = await createCase(page, t, { pseudonym: pseudonym() });
  await page.goto(caseUrl);
  await submit(page, button(page, t('three-way-offer')));
  await submit(page, page.locator('main a[href^="/three-way-conversations/"]').first());
  await see(page.locator('.nrm-status-line').getByText(t('three-way-offered')), 'the offered conversation');
  await check(page, lang, 'three-way');
  await page.getByLabel(t('field-police_officer'), { exact: true }).fill('rechercheur-hans');
  await page.getByLabel(t('field-scheduled_for'), { exact: true }).fill('2026-12-03T14:00');
  const refused = await submit(page, button(page, t('three-way-do-schedule')));
  assert.deepEqual(refused, [422], `scheduling without police consent: statuses ${refused}`);
  await see(page.getByRole('alert').getByText(t('guard-no_police_contact_consent')), 'why it cannot be scheduled');
  await check(page, lang, 'three-way-refused');

  const coordinator = await open();
  await signIn(coordinator, t, 'comensha', 'coordinator');
  step("the focal point's console");
  assert.equal(new URL(coordinator.url()).pathname, '/console', 'a coordinator starts at the console');
  await see(coordinator.getByRole('heading', { name: t('console-title') }), 'the console');
  await check(coordinator, lang, 'console');
  step('the statistics with their charts and downloads');
  await submit(coordinator, coordinator.getByRole('link', { name: t('nav-statistics'), exact: true }));
  await see(coordinator.getByRole('heading', { name: t('stats-title'), level: 1 }), 'the statistics page');
  await see(coordinator.getByRole('link', { name: t('stats-csv') }), 'the CSV download');
  await check(coordinator, lang, 'statistics');
  step('the three-way conversations per quarter');
  await submit(coordinator, coordinator.getByRole('link', { name: t('nav-three-way-course'), exact: true }));
  await see(coordinator.getByRole('heading', { name: t('three-way-course-title'), level: 1 }), 'the three-way conversations page');
  await check(coordinator, lang, 'three-way-course');
  step("every organisation's capacity");
  await submit(coordinator, coordinator.getByRole('link', { name: t('nav-capacity-overview'), exact: true }));
  await see(coordinator.getByRole('heading', { name: t('capacity-overview-title'), level: 1 }), 'the capacity overview');
  await check(coordinator, lang, 'capacity-overview');
  step('the audit trail and its verification');
  await submit(coordinator, coordinator.getByRole('link', { name: t('nav-audit'), exact: true }));
  await see(coordinator.getByRole('heading', { name: t('audit-title') }), 'the audit trail');
  await submit(coordinator, coordinator.getByRole('link', { name: t('audit-verify'), exact: true }));
  await see(coordinator.locator('.utrecht-alert--ok'), 'the verified chain');
  await check(coordinator, lang, 'audit');

  const admin = await open();
  await signIn(admin, t, 'comensha', 'admin');
  step('the outbox');
  assert.equal(new URL(admin.url()).pathname, '/admin/outbox', 'an admin starts at the outbox');
  await see(admin.getByRole('heading', { name: t('outbox-title'), level: 1 }), 'the outbox');
  await admin.getByLabel(t('field-outbox-status'), { exact: true }).selectOption('pending');
  await submit(admin, button(admin, t('filter')));
  await check(admin, lang, 'outbox');
  step('the webhooks and a delivery log');
  await submit(admin, admin.getByRole('link', { name: t('nav-webhooks'), exact: true }));
  await see(admin.getByRole('heading', { name: t('webhooks-title'), level: 1 }), 'the webhooks');
  await check(admin, lang, 'webhooks');
  await submit(admin, admin.getByRole('link', { name: 'https://localhost:9/nrm-hooks' }));
  await see(admin.getByRole('heading', { name: t('webhook-title'), level: 1 }), 'the delivery log');
  await check(admin, lang, 'webhook-deliveries');

  const intake = await open();
  await signIn(intake, t, 'fier', 'intake');
  step('capacity');
  await submit(intake, intake.getByRole('link', { name: t('nav-capacity'), exact: true }));
  await check(intake, lang, 'capacity');
  await intake.getByLabel(t('field-places_free'), { exact: true }).first().fill('-1');
  // Within the capacity form: "Melden" is also part of the header's "Afmelden".
  const report = intake.locator('form[action="/capacity"]').first().getByRole('button', { name: t('capacity-report') });
  assert.deepEqual(await submit(intake, report), [422], 'negative capacity refused');
  await see(intake.getByRole('heading', { name: t('error-summary-title') }), 'the error summary');
  await check(intake, lang, 'capacity-error');
  await intake.getByLabel(t('field-places_free'), { exact: true }).first().fill('3');
  await submit(intake, report);
  await see(notice(intake).getByText(t('done-capacity-reported')), 'the capacity-reported notice');
  step('a page not for this role');
  const forbidden = await intake.goto(`${base}/cases/new`);
  assert.equal(forbidden.status(), 403);
  await check(intake, lang, 'forbidden');
}

// The public information point: no sign-in, no cookies, nothing from another host, the
// question answered in order, and the way out (button and Escape) leaving no entry behind.
async function informationPoint({ open, t, lang }) {
  const page = await open();
  const elsewhere = [];
  page.on('request', (r) => { if (!r.url().startsWith(base)) elsewhere.push(r.url()); });
  step('the start');
  await page.goto(`${base}/hulp/${lang}`);
  await see(page.getByRole('heading', { name: t('info-home-title'), level: 1 }), 'the information point');
  await see(page.getByRole('link', { name: t('info-contact-chat-anonymous') }), 'anonymous chat first');
  await check(page, lang, 'info-home');
  const leaveUrl = await page.locator('#nrm-leave').getAttribute('href');
  step('a page for the people around a victim');
  await submit(page, page.getByRole('navigation', { name: t('info-nav-label') }).getByRole('link', { name: t('info-nav-naasten'), exact: true }));
  await see(page.getByRole('heading', { name: t('info-for-naasten-title'), level: 1 }), 'the page for family and friends');
  await check(page, lang, 'info-naasten');
  step('16, forced to sell drugs, near Rotterdam, Polish');
  await page.getByLabel(t('info-q-age'), { exact: true }).fill('16');
  await page.getByLabel(t('info-q-form'), { exact: true }).selectOption('criminal');
  await page.getByLabel(t('info-q-region'), { exact: true }).selectOption('rotterdam');
  await page.getByLabel(t('info-q-language'), { exact: true }).selectOption('pl');
  await submit(page, button(page, t('info-q-submit')));
  assert.match(page.url(), /\/zoeken\?age=16&form=criminal&region=rotterdam&language=pl$/, `the question in the address: ${page.url()}`);
  const order = await page.locator('.nrm-results > li h2').allInnerTexts();
  assert.deepEqual(order.slice(0, 2), [organisations.fier, organisations['zorgcoordinatie-rotterdam']], `the order: ${order}`);
  assert.ok(!order.includes(organisations.csg), `CSG does not fit: ${order}`);
  await see(page.getByText(t('info-language-missing', { language: t('language-name-pl') })), 'no one lists Polish');
  await check(page, lang, 'info-results');
  step('Escape leaves, and the visit is not in the back history');
  await Promise.all([page.waitForURL(leaveUrl), page.keyboard.press('Escape')]);
  await page.goBack().catch(() => null);
  assert.ok(!page.url().includes('/hulp'), `back after leaving must not return to the information point: ${page.url()}`);
  assert.deepEqual(elsewhere, [], 'no request to another host');
  assert.deepEqual(await page.context().cookies(), [], 'no cookie');

  const other = await open();
  step('the organisations, what happens, a wrong answer');
  await other.goto(`${base}/hulp/${lang}/organisaties`);
  await see(other.getByRole('heading', { name: t('info-organisations-title'), level: 1 }), 'every organisation');
  await check(other, lang, 'info-organisations');
  await other.goto(`${base}/hulp/${lang}/wat-gebeurt-er`);
  await see(other.getByRole('heading', { name: t('info-wh-reflection-title') }), 'the reflection period');
  await check(other, lang, 'info-what-happens');
  const wrong = await other.goto(`${base}/hulp/${lang}/zoeken?age=zestien`);
  assert.equal(wrong.status(), 422);
  await see(other.getByRole('link', { name: t('info-error-age') }), 'the problem, linked to its field');
  await check(other, lang, 'info-error');
  step('the leave button');
  await Promise.all([other.waitForURL(leaveUrl), other.locator('#nrm-leave').click()]);
  assert.deepEqual(await other.context().cookies(), [], 'no cookie');
}

// Sign-in at the organisation's OpenID provider (devInteractions of web/tests/oidc-provider.mjs).
async function oidcSignIn({ open, t, lang }) {
  const login = opt['oidc-login'];
  const [org, role] = login.split(':');
  const page = await open();
  step('start sign-in at the provider');
  await page.goto(`${base}/sign-in`);
  await check(page, lang, 'sign-in-oidc');
  const start = page.getByRole('link', { name: t('sign-in-provider'), exact: true }).or(button(page, t('sign-in-provider')));
  await see(start, `the "${t('sign-in-provider')}" link`);
  await Promise.all([page.waitForURL((u) => !u.href.startsWith(base)), start.click()]);
  step('log in at the provider');
  await page.locator('input[name=login]').fill(login);
  if (await page.locator('input[name=password]').count()) await page.locator('input[name=password]').fill('test');
  await Promise.all([page.waitForEvent('load'), page.locator('button[type=submit]').click()]);
  if (!page.url().startsWith(base)) {
    step('consent at the provider');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(base)), page.getByRole('button', { name: /continue/i }).click()]);
  }
  step('back at nrm, signed in');
  await page.waitForLoadState('load');
  const orgName = organisations[org] ?? org;
  await see(page.locator('.nrm-header__user', { hasText: orgName }), `the header naming ${orgName}`);
  await see(button(page, t('sign-out')), 'the sign-out button');
  await check(page, lang, 'oidc-signed-in');
  const home = role === 'intake' ? '/inbox' : '/cases';
  const response = await page.goto(`${base}${home}`);
  assert.equal(response.status(), 200, `${home} after OIDC sign-in`);
  step('sign out (RP-initiated logout)');
  // nrm may answer with its own signed-out page that moves on to the provider at once (meta
  // refresh): that first request to the provider is held, and replayed once the page is checked.
  let toProvider;
  const heldAtProvider = new Promise((resolve) => { toProvider = resolve; });
  await page.route((u) => !u.href.startsWith(base), (route) => toProvider(route), { times: 1 });
  const loaded = page.waitForEvent('load');
  await button(page, t('sign-out')).click();
  const first = await Promise.race([heldAtProvider, loaded.then(() => null)]);
  const held = first ?? (new URL(page.url()).pathname === '/sign-in' ? null
    : await within(heldAtProvider, 'the signed-out page to move on to the provider'));
  if (held && new URL(page.url()).pathname === '/sign-out') {
    const url = held.request().url();
    await held.abort('aborted'); // the page stays; a pending navigation would block the screenshot
    await check(page, lang, 'signed-out');
    await page.goto(url);
  } else if (held) {
    await Promise.all([page.waitForEvent('load'), held.continue()]);
  }
  if (!page.url().startsWith(base)) {
    step('confirm sign-out at the provider');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(base)), page.getByRole('button', { name: /yes/i }).click()]);
  }
  await page.waitForLoadState('load');
  assert.equal(new URL(page.url()).pathname, '/sign-in', `after sign-out: ${page.url()}`);
  await page.goto(`${base}/cases`);
  assert.equal(new URL(page.url()).pathname, '/sign-in', `/cases after sign-out must go to sign-in, got ${page.url()}`);
}

// The audit alarm (tests/api/browser.rs stalls the sealer and leaves entries waiting too
// long): the verification names them in a warning, before saying the chain is intact.
async function sealingAlarm({ open, t, lang }) {
  const page = await open();
  await signIn(page, t, 'comensha', 'coordinator');
  step('the verification warns of entries that waited too long for their seal');
  await page.goto(`${base}/console/audit?verify=1`);
  const words = t('audit-sealing-overdue', { count: '#' }).split('#')[1].trim().split(' ').slice(0, 4).join(' ');
  await see(page.locator('main [role=alert]', { hasText: words }), 'the sealing alarm');
  await see(page.locator('main [role=status]', { hasText: t('audit-valid', { entries: '#' }).split('#')[0].trim() }), 'the chain intact');
  await check(page, lang, 'audit-sealing-overdue');
}

// ---------------------------------------------------------------------------------------
const started = Date.now();
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const langs = opt.langs.split(',');
const only = opt.only?.split(',');
const wanted = (key) => !only || only.includes(key);
try {
  for (const lang of langs) {
    if (wanted('handover')) await scenario(browser, 'whole handover', lang, wholeHandover);
    if (wanted('stale')) await scenario(browser, 'stale form', lang, staleForm);
    if (wanted('csrf')) await scenario(browser, 'CSRF', lang, forgedCsrf);
    if (wanted('pages')) await scenario(browser, 'every page', lang, everyPage);
    if (wanted('info')) await scenario(browser, 'information point', lang, informationPoint);
    if (opt['oidc-login'] && wanted('oidc')) await scenario(browser, `OIDC sign-in as ${opt['oidc-login']}`, lang, oidcSignIn);
    if (only?.includes('sealing')) await scenario(browser, 'audit sealing alarm', lang, sealingAlarm);
  }
} finally {
  await browser.close();
}
for (const f of failures) console.log(`\nFAILED ${f.scenario}, step "${f.step}":\n      ${f.message}`);
console.log(`\n${pagesChecked} pages checked with axe, ${failures.length} failure(s), ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${opt.out}`);
process.exit(failures.length ? 1 : 0);
