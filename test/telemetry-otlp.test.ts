import http from 'node:http';
import { startTelemetry, withEnqueueSpan, withWarehouseSpan } from '../src/telemetry';

describe('telemetry: traces exported over OTLP/HTTP', () => {
  it('sends the spans to the configured endpoint, flushed on shutdown', async () => {
    const received: { url?: string; contentType?: string; body: string; authorization?: string }[] = [];
    const collector = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ url: req.url, contentType: req.headers['content-type'], body, authorization: req.headers.authorization });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
    const { port } = collector.address() as { port: number };
    const telemetry = startTelemetry({
      role: 'embeddings',
      otlpTracesUrl: `http://127.0.0.1:${port}/v1/traces`,
      otlpHeaders: { authorization: 'Bearer collector-key' },
    });
    try {
      await withEnqueueSpan('embeddings', () => withWarehouseSpan('embed_texts', async () => 'ok'));
    } finally {
      await telemetry.shutdown();
      await new Promise((r) => collector.close(r));
    }
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(received[0].url).toBe('/v1/traces');
    expect(received[0].authorization).toBe('Bearer collector-key');
    const payload = received.map((r) => r.body).join('\n');
    expect(payload).toContain('publish embeddings');
    expect(payload).toContain('warehouse embed_texts');
    expect(payload).toContain('warehouse-fleet');
  });

  it('refuses a bad endpoint or sample ratio, naming the option', () => {
    expect(() => startTelemetry({ otlpTracesUrl: 'collector:4318' })).toThrow(/option `otlpTracesUrl` must be an http\(s\) URL/);
    expect(() => startTelemetry({ sampleRatio: 2 })).toThrow(/option `sampleRatio` must be a number from 0 to 1, got 2/);
  });
});
