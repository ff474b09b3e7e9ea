'use strict';
// Durable end to end through BullMQ on pre-loaded queues: one Worker per
// shard queue `<prefix>-<shard>` at --concurrency, a no-op processor (or
// --work_us of busy work), until --expect jobs completed.
//   node drain.js --port N --expect N [--partitions 8] [--prefix bq]
//       [--concurrency 4] [--remove_on_complete 0|1] [--timeout_s 300]
const { Worker } = require('bullmq');
const lib = require('./lib');

async function main() {
  const f = lib.flags(process.argv, { port: 0, expect: 0, partitions: 8, prefix: 'bq', concurrency: 4, remove_on_complete: 0, work_us: 0, timeout_s: 300 });
  if (!f.port || !f.expect) lib.fail('--port and --expect are required');
  let completed = 0, failed = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const cpu0 = process.cpuUsage();
  const t0 = lib.nowUs();
  const workers = [];
  const processor = async () => {
    if (f.work_us > 0) { const until = lib.nowUs() + f.work_us; while (lib.nowUs() < until) { /* busy */ } }
  };
  for (let s = 0; s < f.partitions; s++) {
    const opts = { connection: lib.connection(f.port), concurrency: f.concurrency };
    if (f.remove_on_complete) opts.removeOnComplete = { count: 0 };
    const w = new Worker(lib.queueName(f.prefix, s), processor, opts);
    w.on('completed', () => { if (++completed + failed >= f.expect) finish(); });
    w.on('failed', () => { if (completed + ++failed >= f.expect) finish(); });
    w.on('error', (e) => process.stderr.write(`bullmq drain: worker ${s}: ${e.message}\n`));
    workers.push(w);
  }
  const timer = setTimeout(() => { process.stderr.write(`bullmq drain: only ${completed} of ${f.expect} completed in ${f.timeout_s} s\n`); process.exit(3); }, f.timeout_s * 1000);
  await finished;
  const duration = (lib.nowUs() - t0) / 1e6;
  const cpu = lib.cpuSeconds(cpu0);
  clearTimeout(timer);
  await Promise.all(workers.map((w) => w.close()));
  process.stdout.write(JSON.stringify({ peer: `bullmq-workers${f.remove_on_complete ? '-roc' : ''}`, messages: f.expect, completed, failed, duration_s: duration, throughput_per_s: f.expect / duration, cpu_s: cpu }) + '\n');
  if (failed) process.exit(3);
}
main().catch((e) => { process.stderr.write(`bullmq drain: ${e.stack || e}\n`); process.exit(3); });
