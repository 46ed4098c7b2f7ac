// A TCP proxy between the client and sshd that injects faults at reproducible points of the SSH stream: a cut
// (both sockets destroyed, abruptly) or a stall (nothing more forwarded, the sockets kept open) once a chosen
// number of bytes has passed in one direction: `up` (client to server) or `down` (server to client).
import net from 'node:net';

export interface Fault {
  dir: 'up' | 'down';
  at: number;
  kind?: 'cut' | 'stall';
}

export interface CutProxy {
  port: number;
  /** Client-to-server bytes of each connection so far, in connection order. */
  readonly sent: number[];
  /** Server-to-client bytes of each connection so far. */
  readonly received: number[];
  /** Sets the cut points (client-to-server bytes) of the next connections: the first one made gets cuts[0], and so on. */
  plan(cuts: number[]): void;
  /** Sets the faults of the next connections, one each, in order; later connections run clean. */
  planFaults(faults: Fault[]): void;
  /** Resolves when a planned stall has begun (the connection then hangs until the client gives up). */
  stalled(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCutProxy(targetPort: number): Promise<CutProxy> {
  let faults: Fault[] = [];
  const sent: number[] = [];
  const received: number[] = [];
  const sockets = new Set<net.Socket>();
  let stallWaiters: (() => void)[] = [];
  const server = net.createServer((client) => {
    const index = sent.length;
    sent.push(0);
    received.push(0);
    const fault = faults.shift();
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    // Forwarded as it arrives, like a router: without this the kernel holds small writes for the peer's (delayed) ack.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let stalled = false;
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    const forward = (dir: 'up' | 'down', from: net.Socket, to: net.Socket, counts: number[]) => {
      from.on('data', (data: Buffer) => {
        if (stalled) return;
        if (fault && fault.dir === dir && counts[index] + data.length >= fault.at) {
          const part = data.subarray(0, Math.max(0, fault.at - counts[index]));
          counts[index] += part.length;
          if (part.length) to.write(part);
          if ((fault.kind ?? 'cut') === 'cut') cut();
          else {
            stalled = true;
            for (const w of stallWaiters) w();
            stallWaiters = [];
          }
          return;
        }
        counts[index] += data.length;
        if (!to.write(data)) from.pause();
      });
      to.on('drain', () => from.resume());
    };
    forward('up', client, upstream, sent);
    forward('down', upstream, client, received);
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
    received,
    plan(next) {
      faults = next.map((at) => ({ dir: 'up', at }));
    },
    planFaults(next) {
      faults = [...next];
    },
    stalled: () => new Promise((resolve) => stallWaiters.push(resolve)),
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
