// A TCP proxy that makes loopback look like a long, fat link: each direction is delayed by half the round trip, and
// with a rate the proxy paces what it forwards as a link of that many Mbit/s would (a byte leaves once the bytes
// before it have, at the rate, then travels for the delay). No root or kernel module needed (`tc netem` is not
// available on the machines this runs on). Hand-written: it is a few dozen lines and no package does just this.
//   import { startLatencyProxy } from './latency-proxy.mjs';
//   const proxy = await startLatencyProxy({ targetPort, rttMs: 100, rateMbit: 400 }); ... await proxy.stop();
// Or run it: node scripts/latency-proxy.mjs TARGET_PORT RTT_MS [RATE_MBIT]  (prints the port it listens on)
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/** Bytes queued in one direction before the sender is paused (well above any window a test uses). */
const QUEUE_LIMIT = 64 * 1024 * 1024;

function pipeDelayed(from, to, delayMs, bytesPerMs) {
  const queue = [];
  let queued = 0;
  let linkFreeAt = 0;
  let timer;
  const drain = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && queue[0].at <= now) {
      const { data } = queue.shift();
      queued -= data.length;
      to.write(data);
    }
    if (queued < QUEUE_LIMIT / 2 && from.isPaused()) from.resume();
    if (queue.length) timer = setTimeout(drain, Math.max(0, queue[0].at - performance.now()));
  };
  from.on('data', (data) => {
    const now = performance.now();
    let leaves = now;
    if (bytesPerMs) {
      leaves = Math.max(now, linkFreeAt) + data.length / bytesPerMs;
      linkFreeAt = leaves;
    }
    queue.push({ data, at: leaves + delayMs });
    queued += data.length;
    if (queued > QUEUE_LIMIT) from.pause();
    if (!timer) timer = setTimeout(drain, Math.max(0, queue[0].at - now));
  });
  from.on('end', () => {
    const finish = () => (queue.length ? setTimeout(finish, delayMs) : to.end());
    finish();
  });
}

export async function startLatencyProxy({ targetPort, targetHost = '127.0.0.1', rttMs = 0, rateMbit = 0 }) {
  const sockets = new Set();
  const bytesPerMs = rateMbit > 0 ? (rateMbit * 1e6) / 8 / 1000 : 0;
  // Half-open allowed: an end travels through the delay like the data before it.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: targetPort, host: targetHost, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    pipeDelayed(client, upstream, rttMs / 2, bytesPerMs);
    pipeDelayed(upstream, client, rttMs / 2, bytesPerMs);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [targetPort, rttMs = '100', rateMbit = '0'] = process.argv.slice(2);
  const proxy = await startLatencyProxy({ targetPort: Number(targetPort), rttMs: Number(rttMs), rateMbit: Number(rateMbit) });
  console.log(proxy.port);
}
