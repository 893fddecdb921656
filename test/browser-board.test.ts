import { existsSync } from 'node:fs';
import path from 'node:path';
import type { LocalWarehouse } from 'local-snowflake';
import type { Browser } from 'playwright-core';
import { QUEUES } from '../src/contracts/queues';
import { type RunningApi, startApi } from '../src/http';
import { createProducer } from '../src/producers';
import { describeWithBrowser, launchChromium, SCREENSHOTS } from './helpers/browser';
import { testRedis, uniquePrefix } from './helpers/redis';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';
import { startEmbeddingWorker } from './helpers/workers';

/**
 * Bull Board in a real browser: headless Debian Chromium driven by playwright-core logs in with Basic
 * auth, sees the fleet's queues and a job completed by the fleet's own embedding worker (local
 * warehouse), and the batch that served it. Screenshots go to test-output/.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`; CI installs it). FLEET_SKIP_BROWSER=1 skips.
 */
const TOKEN = 'browser-token-0123456789abc';
const ADMIN = { username: 'ops', password: 'admin-password-1' };
const VIEWER = { username: 'viewer', password: 'viewer-password-1' };

describeWithBrowser('Bull Board in headless Chromium', () => {
  let browser: Browser;
  let api: RunningApi;
  let server: LocalWarehouse;
  let completedId: string;
  let batchId: string;
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await startTestWarehouse();
    cleanup.push(() => server.close());
    const { pool, warehouse } = pooledClient(server, { max: 2 });
    cleanup.push(() => pool.close());
    const redis = testRedis();
    cleanup.push(() => redis.quit());
    const prefix = uniquePrefix('browser');
    const producer = createProducer({ connection: redis, prefix });
    cleanup.push(() => producer.close());
    const worker = startEmbeddingWorker(warehouse, prefix, { maxWaitMs: 50 });
    cleanup.push(() => worker.close());
    api = await startApi({
      port: 0,
      host: '127.0.0.1',
      producer,
      queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals)],
      tokens: [TOKEN],
      board: { admin: ADMIN, viewer: VIEWER },
    });
    cleanup.push(() => api.close());

    const handles = await producer.embed(['renewal is at risk', 'pricing call went well', 'champion left the company']);
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    completedId = handles[0].id;
    batchId = results[0].batch!.batchId;

    browser = await launchChromium();
    cleanup.push(() => browser.close());
  }, 120_000);

  afterAll(async () => {
    for (const release of cleanup.reverse()) await release().catch(() => undefined);
  });

  it('without credentials the board is refused', async () => {
    const context = await browser.newContext();
    try {
      // The browser gets a Basic challenge it cannot answer: Chromium abandons the navigation.
      const page = await context.newPage();
      await expect(page.goto(`${api.url}/admin/queues`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      const res = await context.request.get(`${api.url}/admin/queues/api/queues`);
      expect(res.status()).toBe(401);
      expect(res.headers()['www-authenticate']).toMatch(/^Basic/);
    } finally {
      await context.close();
    }
  });

  it('the admin logs in, sees the queues and the completed job with the batch that served it', async () => {
    const context = await browser.newContext({ httpCredentials: ADMIN, viewport: { width: 1400, height: 900 } });
    try {
      const page = await context.newPage();
      const res = await page.goto(`${api.url}/admin/queues`);
      expect(res?.status()).toBe(200);
      await page.getByText('embeddings', { exact: true }).first().waitFor({ timeout: 20_000 });
      await page.getByText('deals', { exact: true }).first().waitFor({ timeout: 20_000 });
      await page.waitForLoadState('networkidle');
      await page
        .getByText(/Loading/)
        .waitFor({ state: 'detached', timeout: 20_000 })
        .catch(() => undefined);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'board-queues.png'), fullPage: true });

      // the queue's completed jobs, with our job among them
      await page.goto(`${api.url}/admin/queues/queue/embeddings?status=completed`);
      await page
        .getByText(/champion left the company/)
        .first()
        .waitFor({ timeout: 20_000 });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'board-completed.png'), fullPage: true });

      await page.goto(`${api.url}/admin/queues/queue/embeddings/${completedId}`);
      await page
        .getByText(/renewal is at risk/)
        .first()
        .waitFor({ timeout: 20_000 });
      // The result shows the batch; the Logs tab shows the worker's line.
      await page
        .getByText(batchId)
        .first()
        .waitFor({ timeout: 20_000 })
        .catch(async () => {
          await page
            .getByRole('tab', { name: /return|result/i })
            .or(page.getByText(/^Return value$/i))
            .first()
            .click();
          await page.getByText(batchId).first().waitFor({ timeout: 20_000 });
        });
      await page
        .getByRole('tab', { name: /logs/i })
        .or(page.getByText(/^Logs$/))
        .first()
        .click();
      await page
        .getByText(new RegExp(`served by batch ${batchId} \\(\\d+ texts\\)`))
        .first()
        .waitFor({ timeout: 20_000 });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'board-job.png'), fullPage: true });
      expect(existsSync(path.join(SCREENSHOTS, 'board-job.png'))).toBe(true);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('a viewer lands on the read-only board', async () => {
    const context = await browser.newContext({ httpCredentials: VIEWER, viewport: { width: 1400, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`${api.url}/admin/queues/queue/embeddings?status=completed`);
      expect(new URL(page.url()).pathname).toBe('/admin/queues-readonly/queue/embeddings');
      await page
        .getByText(/read-only/)
        .first()
        .waitFor({ timeout: 20_000 });
      await page
        .getByText(/renewal is at risk/)
        .first()
        .waitFor({ timeout: 20_000 });
      // no retry or clean buttons on the read-only board
      expect(await page.getByRole('button', { name: /retry|clean|remove|delete/i }).count()).toBe(0);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'board-viewer.png'), fullPage: true });
      const retry = await page.evaluate(
        async (url) => (await fetch(url, { method: 'PUT' })).status,
        `${api.url}/admin/queues-readonly/api/queues/embeddings/${completedId}/retry`,
      );
      expect(retry).toBe(403);
    } finally {
      await context.close();
    }
  }, 60_000);
});
