// Quick look: signs in as two personas, visits the handover pages in Dutch and English,
// screenshots each and runs axe-core. Usage: node web/axe-check.mjs http://127.0.0.1:8090 OUTDIR
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const [base, out] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
let problems = 0;
async function check(page, name) {
  await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  for (const v of result.violations) {
    problems++;
    console.log(`${name}: ${v.id} (${v.impact}) ${v.help} — ${v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(' | ')}`);
  }
}
async function signIn(page, org, role) {
  await page.goto(`${base}/sign-in`);
  await page.locator('section', { hasText: org }).getByRole('button', { name: role, exact: false }).first().click();
}
for (const lang of ['nl', 'en']) {
  const context = await browser.newContext({ locale: lang, extraHTTPHeaders: { 'Accept-Language': lang } });
  const page = await context.newPage();
  await page.goto(`${base}/sign-in`); await check(page, `${lang}-sign-in`);
  await signIn(page, 'Fier', lang === 'nl' ? 'Hulpverlener' : 'Caseworker');
  await page.goto(`${base}/cases/new`); await check(page, `${lang}-case-new`);
  await page.getByRole('button', { name: lang === 'nl' ? 'Casus aanmaken' : 'Create case' }).click();
  await check(page, `${lang}-case-new-errors`);
  await page.locator('input[name=reporter_role][value=victim]').check();
  await page.locator('select[name=contact_channel]').selectOption('chat');
  await page.locator('input[name=exploitation_forms][value=sexual]').check();
  await page.locator('input[name=age_at_contact]').fill('24');
  await page.locator('input[name=pseudonym]').fill(`roos-${lang}`);
  await page.getByRole('button', { name: lang === 'nl' ? 'Casus aanmaken' : 'Create case' }).click();
  await check(page, `${lang}-case`);
  const caseUrl = page.url().split('?')[0];
  await page.goto(`${base}/cases`); await check(page, `${lang}-cases`);
  await page.goto(`${base}/intake-sheet`); await check(page, `${lang}-intake-sheet`);
  await page.goto(`${caseUrl}/referrals/new?to_organisation=csg&services=psychosocial_support`); await check(page, `${lang}-referral-new`);
  await page.getByRole('button', { name: lang === 'nl' ? 'Concept bewaren' : 'Save draft' }).click();
  await check(page, `${lang}-referral`);
  await page.goto(`${base}/no-such-page`); await check(page, `${lang}-not-found`);
  const intake = await context.newPage();
  await signIn(intake, 'Fier', 'Intake');
  await intake.goto(`${base}/inbox`); await check(intake, `${lang}-inbox`);
  await intake.goto(`${base}/capacity`); await check(intake, `${lang}-capacity`);
  await context.close();
}
await browser.close();
console.log(`axe violations: ${problems}`);
