// A TCP proxy between the client and sshd that cuts a connection (both directions, abruptly) once the client has
// sent a chosen number of bytes through it: a dropped link at a reproducible point of the SSH stream.
import net from 'node:net';

export interface CutProxy {
  port: number;
  /** Client-to-server bytes of each connection so far, in connection order. */
  readonly sent: number[];
  /** Sets the cut points of the next connections: the first one made gets cuts[0], and so on; later ones run uncut. */
  plan(cuts: number[]): void;
  stop(): Promise<void>;
}

export async function startCutProxy(targetPort: number): Promise<CutProxy> {
  let cuts: number[] = [];
  const sent: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const index = sent.length;
    sent.push(0);
    const budget = cuts.shift();
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (data: Buffer) => {
      if (budget !== undefined && sent[index] + data.length >= budget) {
        const part = data.subarray(0, Math.max(0, budget - sent[index]));
        sent[index] += part.length;
        if (part.length) upstream.write(part);
        cut();
        return;
      }
      sent[index] += data.length;
      if (!upstream.write(data)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (data: Buffer) => {
      if (!client.write(data)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    for (const s of [client, upstream]) {
      s.on('error', cut);
      s.on('close', () => {
        sockets.delete(s);
        cut();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sent,
    plan(next) {
      cuts = [...next];
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
