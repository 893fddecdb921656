import net from 'node:net';

/**
 * A TCP proxy the test controls, to cut the network between one process and Redis without touching
 * either. `cut()` is a partition, not a reset: bytes stop flowing both ways and pile up (as TCP would
 * retransmit them), connections stay open, new connections are accepted but hear nothing. `heal()` lets
 * everything through again, in order.
 */
export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  cut(): void;
  heal(): void;
  readonly isCut: boolean;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, scheme = 'redis'): Promise<TcpProxy> {
  let cut = false;
  let accepted = 0;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; held: { to: net.Socket; chunk: Buffer }[] }>();

  const server = net.createServer((client) => {
    accepted += 1;
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream, held: [] as { to: net.Socket; chunk: Buffer }[] };
    pairs.add(pair);
    const forward = (to: net.Socket) => (chunk: Buffer) => {
      if (cut) pair.held.push({ to, chunk });
      else to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    get isCut() {
      return cut;
    },
    get connections() {
      return accepted;
    },
    cut() {
      cut = true;
    },
    heal() {
      cut = false;
      for (const pair of pairs) {
        for (const { to, chunk } of pair.held.splice(0)) to.write(chunk);
      }
    },
    close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
