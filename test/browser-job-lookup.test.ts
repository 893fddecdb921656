import path from 'node:path';
import type { LocalWarehouse } from 'local-snowflake';
import type { Browser } from 'playwright-core';
import { JOB_LOOKUP_PAGE } from '../src/contracts/batch-log';
import { QUEUES } from '../src/contracts/queues';
import { type RunningApi, startApi } from '../src/http';
import { createProducer } from '../src/producers';
import { describeWithBrowser, launchChromium, SCREENSHOTS } from './helpers/browser';
import { startIndexedEmbeddingWorker } from './helpers/lookup-workers';
import { testRedis, uniquePrefix } from './helpers/redis';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

/**
 * The job lookup page (issue #19) in a real browser: headless Debian Chromium driven by playwright-core
 * logs in with the board's Basic credentials, finds a job by its idempotency key, opens its batch and
 * sees the other jobs that batch served; and from Bull Board's Logs tab of a job follows the link to its
 * batch. The jobs are run by the fleet's embedding worker on the local warehouse. Screenshots go to
 * test-output/.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`; CI installs it). FLEET_SKIP_BROWSER=1 skips.
 */
const TOKEN = 'browser-lookup-token-0123456789';
const ADMIN = { username: 'ops', password: 'admin-password-1' };
const TEXTS = ['renewal is at risk', 'pricing call went well', 'champion left the company', 'legal review stalled'];

describeWithBrowser('job lookup page in headless Chromium', () => {
  let browser: Browser;
  let api: RunningApi;
  let server: LocalWarehouse;
  const jobs: { id: string; batchId: string }[] = [];
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await startTestWarehouse();
    cleanup.push(() => server.close());
    const { pool, warehouse } = pooledClient(server, { max: 2 });
    cleanup.push(() => pool.close());
    const redis = testRedis();
    cleanup.push(() => redis.quit());
    const prefix = uniquePrefix('browser-lookup');
    const producer = createProducer({ connection: redis, prefix });
    cleanup.push(() => producer.close());
    cleanup.push(() => producer.queue(QUEUES.embeddings).obliterate({ force: true }));
    // A batch is cut when it holds the four texts (the wait is far longer): one batch serves all four jobs.
    const worker = startIndexedEmbeddingWorker(warehouse, prefix, { maxBatchSize: TEXTS.length, maxWaitMs: 20_000 });
    cleanup.push(() => worker.close());
    api = await startApi({
      port: 0,
      host: '127.0.0.1',
      producer,
      queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals)],
      tokens: [TOKEN],
      board: { admin: ADMIN },
    });
    cleanup.push(() => api.close());

    const handles = await producer.embed(TEXTS, { idempotencyKey: 'note-batch-42' });
    for (const h of handles) jobs.push({ id: h.id, batchId: (await h.result({ timeoutMs: 30_000 })).batch!.batchId });

    browser = await launchChromium();
    cleanup.push(() => browser.close());
  }, 120_000);

  afterAll(async () => {
    for (const release of cleanup.reverse()) await release().catch(() => undefined);
  });

  it('without credentials the page is refused', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await expect(page.goto(`${api.url}${JOB_LOOKUP_PAGE}`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    } finally {
      await context.close();
    }
  });

  it('finds a job by its idempotency key, opens its batch and sees the other jobs', async () => {
    const context = await browser.newContext({ httpCredentials: ADMIN, viewport: { width: 1400, height: 900 } });
    try {
      const page = await context.newPage();
      expect((await page.goto(`${api.url}${JOB_LOOKUP_PAGE}`))?.status()).toBe(200);
      await page.getByLabel('queue').selectOption('embeddings');
      await page.getByLabel('find by').selectOption('idempotencyKey');
      await page.getByLabel('search').fill('note-batch-42');
      await page.getByRole('button', { name: 'Find' }).click();
      await page.locator('#jobs').waitFor({ timeout: 20_000 });
      // every job of the request, each with its state and batch
      for (const j of jobs) {
        const row = page.locator(`tr[data-job="${j.id}"]`);
        expect(await row.locator('td').nth(2).textContent()).toBe('completed');
        expect(await row.locator('a.batch-link').textContent()).toBe(j.batchId);
      }
      await page.screenshot({ path: path.join(SCREENSHOTS, 'lookup-jobs.png'), fullPage: true });

      const first = jobs[0];
      await page.locator(`tr[data-job="${first.id}"] a.batch-link`).click();
      await page.locator('#batch-id').waitFor({ timeout: 20_000 });
      expect(await page.locator('#batch-id').textContent()).toBe(first.batchId);
      expect(await page.locator('#batch-outcome').textContent()).toBe('ok');
      expect(await page.locator('#batch-tag').textContent()).toContain(`"batchId":"${first.batchId}"`);
      // the other jobs the batch served (its own, and only those)
      const shown = await page.locator('#jobs tr[data-job]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job')));
      const expected = jobs.filter((j) => j.batchId === first.batchId).map((j) => j.id);
      expect(expected).toHaveLength(TEXTS.length);
      expect([...shown].sort()).toEqual([...expected].sort());
      await page.screenshot({ path: path.join(SCREENSHOTS, 'lookup-batch.png'), fullPage: true });

      // each job links to its page in Bull Board
      await page
        .locator(`tr[data-job="${expected[expected.length - 1]}"]`)
        .getByRole('link', { name: 'Bull Board' })
        .click();
      await page.waitForURL(new RegExp(`/admin/queues/queue/embeddings/${expected[expected.length - 1]}`));
    } finally {
      await context.close();
    }
  }, 90_000);

  it("from Bull Board: a job's Logs tab names its batch with the link to the lookup page", async () => {
    const context = await browser.newContext({ httpCredentials: ADMIN, viewport: { width: 1400, height: 900 } });
    try {
      const page = await context.newPage();
      const job = jobs[1];
      await page.goto(`${api.url}/admin/queues/queue/embeddings/${job.id}`);
      await page
        .getByRole('tab', { name: /logs/i })
        .or(page.getByText(/^Logs$/))
        .first()
        .click();
      const link = `${JOB_LOOKUP_PAGE}?batch=${encodeURIComponent(job.batchId)}`;
      await page.getByText(link).first().waitFor({ timeout: 20_000 });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'lookup-board-log.png'), fullPage: true });
      // the link leads to the batch
      await page.goto(`${api.url}${link}`);
      expect(await page.locator('#batch-id').textContent()).toBe(job.batchId);
    } finally {
      await context.close();
    }
  }, 60_000);
});
