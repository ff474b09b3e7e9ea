'use strict';
// The worker side of BullMQ's latency and hot-chat runs: one Worker per shard
// queue at --concurrency whose processor waits --work_us (setTimeout, an
// I/O-like handler: sleep) and records enqueue->start (processor entered) and
// enqueue->done ('completed' event: the job is moved to completed in Redis)
// against the producer's CLOCK_MONOTONIC timestamp in job.data.t. Prints
// "ready" once every worker is connected, then one JSON line when --expect
// jobs finished: overall percentiles and the hot-chat isolation (hot chat =
// the chat with most jobs; cold chats on its shard vs chats on other shards).
const { Worker } = require('bullmq');
const lib = require('./lib');

async function main() {
  const f = lib.flags(process.argv, { port: 0, expect: 0, partitions: 8, prefix: 'bq', concurrency: 4, remove_on_complete: 0, work_us: 0, timeout_s: 300 });
  if (!f.port || !f.expect) lib.fail('--port and --expect are required');
  const start = [], done = [], chat = [];
  let finished = 0, failed = 0, finish;
  const all = new Promise((resolve) => { finish = resolve; });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const processor = async (job) => {
    start.push(lib.nowUs() - job.data.t);
    if (f.work_us > 0) await sleep(f.work_us / 1000);
  };
  const workers = [];
  for (let s = 0; s < f.partitions; s++) {
    const opts = { connection: lib.connection(f.port), concurrency: f.concurrency };
    if (f.remove_on_complete) opts.removeOnComplete = { count: 0 };
    const w = new Worker(lib.queueName(f.prefix, s), processor, opts);
    w.on('completed', (job) => { done.push(lib.nowUs() - job.data.t); chat.push(job.data.c); if (++finished >= f.expect) finish(); });
    w.on('failed', () => { ++failed; if (++finished >= f.expect) finish(); });
    w.on('error', (e) => process.stderr.write(`bullmq live worker ${s}: ${e.message}\n`));
    workers.push(w);
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  process.stdout.write('ready\n');
  const cpu0 = process.cpuUsage();
  const t0 = lib.nowUs();
  const timer = setTimeout(() => { process.stderr.write(`bullmq live worker: only ${finished} of ${f.expect} finished in ${f.timeout_s} s\n`); process.exit(3); }, f.timeout_s * 1000);
  await all;
  clearTimeout(timer);
  const duration = (lib.nowUs() - t0) / 1e6;
  const cpu = lib.cpuSeconds(cpu0);
  await Promise.all(workers.map((w) => w.close()));
  const counts = new Map();
  for (const c of chat) counts.set(c, (counts.get(c) || 0) + 1);
  let hot = '', hotCount = -1;
  for (const [c, n] of counts) if (n > hotCount) { hot = c; hotCount = n; }
  const hotShard = lib.shardFor(hot, f.partitions);
  const hotL = [], same = [], other = [];
  for (let i = 0; i < chat.length; i++) {
    if (chat[i] === hot) hotL.push(done[i]);
    else if (lib.shardFor(chat[i], f.partitions) === hotShard) same.push(done[i]);
    else other.push(done[i]);
  }
  process.stdout.write(JSON.stringify({
    peer: `bullmq${f.remove_on_complete ? '-roc' : ''}`, messages: f.expect, completed: finished - failed, failed, duration_s: duration, cpu_s: cpu,
    latency_us: { start: lib.percentiles(start), done: lib.percentiles(done) },
    isolation: { hot_chat_id: hot, hot_shard: hotShard, hot_share: hotCount / chat.length, hot_chat: lib.percentiles(hotL), cold_on_hot_shard: lib.percentiles(same), other_shards: lib.percentiles(other) },
  }) + '\n');
  if (failed) process.exit(3);
}
main().catch((e) => { process.stderr.write(`bullmq live worker: ${e.stack || e}\n`); process.exit(3); });
