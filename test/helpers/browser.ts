import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';

/**
 * Headless Debian Chromium for the browser tests, driven by playwright-core. Needs /usr/bin/chromium
 * (`apt-get install -y chromium`; CI installs it); FLEET_SKIP_BROWSER=1 skips the tests that use it
 * (`describeWithBrowser`). Screenshots go to `SCREENSHOTS` (test-output/).
 */
const CHROMIUM = '/usr/bin/chromium';

export const SCREENSHOTS = path.join(__dirname, '..', '..', 'test-output');

/** `describe`, or `describe.skip` when FLEET_SKIP_BROWSER=1. */
export const describeWithBrowser = process.env.FLEET_SKIP_BROWSER === '1' ? describe.skip : describe;

/** Launches Chromium (the caller closes it); a missing binary is an error that says how to install or skip it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: install Debian's Chromium with \`apt-get install -y chromium\` (CI does), or set FLEET_SKIP_BROWSER=1 to skip the browser test`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
