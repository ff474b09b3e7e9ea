'use strict';
// The producer side of BullMQ's latency and hot-chat runs: adds each message
// of a traffic file at its recorded time sped up --speed times (message i is
// due (ts_i - ts_0) / speed after the start), without waiting for earlier
// adds, with job.data.t = CLOCK_MONOTONIC µs at the add call. Prints one JSON
// line: offered and achieved rate, adds that failed, and the lag behind the
// schedule (p99 and max), so a producer that could not keep up is visible.
const { Queue } = require('bullmq');
const lib = require('./lib');

async function main() {
  const f = lib.flags(process.argv, { file: '', port: 0, partitions: 8, prefix: 'bq', speed: 1, remove_on_complete: 0, max_payload: 4096 });
  if (!f.file || !f.port) lib.fail('--file and --port are required');
  const traffic = lib.loadTraffic(f.file);
  const queues = [];
  for (let s = 0; s < f.partitions; s++) queues.push(new Queue(lib.queueName(f.prefix, s), { connection: lib.connection(f.port) }));
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  const opts = f.remove_on_complete ? { removeOnComplete: true } : {};
  const shard = traffic.map((m) => lib.shardFor(m.chat, f.partitions));
  const lag = [];
  const pending = [];
  let failedAdds = 0;
  const t0 = lib.nowUs();
  const ts0 = traffic.length ? traffic[0].ts : 0;
  let i = 0;
  await new Promise((resolve) => {
    function tick() {
      const now = lib.nowUs();
      while (i < traffic.length && t0 + (traffic[i].ts - ts0) / f.speed <= now) {
        const m = traffic[i];
        const t = lib.nowUs();
        lag.push(t - (t0 + (m.ts - ts0) / f.speed));
        pending.push(queues[shard[i]].add('message', { c: m.chat, t, p: lib.payload(i, m.bytes, f.max_payload) }, opts).catch(() => { failedAdds++; }));
        i++;
      }
      if (i >= traffic.length) return resolve();
      setImmediate(tick);
    }
    tick();
  });
  const sent = (lib.nowUs() - t0) / 1e6;
  await Promise.all(pending);
  await Promise.all(queues.map((q) => q.close()));
  const span = traffic.length > 1 ? (traffic[traffic.length - 1].ts - ts0) / f.speed / 1e6 : 0;
  process.stdout.write(JSON.stringify({ messages: traffic.length, offered_per_s: span > 0 ? traffic.length / span : 0, achieved_per_s: sent > 0 ? traffic.length / sent : 0, failed_adds: failedAdds, lag_us: lib.percentiles(lag) }) + '\n');
  if (failedAdds) process.exit(3);
}
main().catch((e) => { process.stderr.write(`bullmq live producer: ${e.stack || e}\n`); process.exit(3); });
