'use strict';
// Durable ingest through BullMQ: adds every message of a traffic file to its
// shard's queue `<prefix>-<shard>` and reports confirmed adds per second.
//   node ingest.js --file F --port N [--mode add|addBulk] [--partitions 8]
//       [--prefix bq] [--window 256] [--bulk 1000] [--remove_on_complete 0|1]
// add: Queue.add with at most --window adds awaiting Redis (a service that
// awaits each add but serves many requests at once); addBulk: batches of
// --bulk per shard queue, one awaited at a time.
const { Queue } = require('bullmq');
const lib = require('./lib');

async function main() {
  const f = lib.flags(process.argv, { file: '', port: 0, mode: 'add', partitions: 8, prefix: 'bq', window: 256, bulk: 1000, remove_on_complete: 0, max_payload: 4096 });
  if (!f.file || !f.port) lib.fail('--file and --port are required');
  if (f.mode !== 'add' && f.mode !== 'addBulk') lib.fail(`--mode must be add or addBulk, got ${f.mode}`);
  const traffic = lib.loadTraffic(f.file);
  const queues = [];
  for (let s = 0; s < f.partitions; s++) queues.push(new Queue(lib.queueName(f.prefix, s), { connection: lib.connection(f.port) }));
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  const opts = f.remove_on_complete ? { removeOnComplete: true } : {};
  const jobs = traffic.map((m, i) => ({ shard: lib.shardFor(m.chat, f.partitions), data: { c: m.chat, p: lib.payload(i, m.bytes, f.max_payload) } }));
  const cpu0 = process.cpuUsage();
  const t0 = lib.nowUs();
  if (f.mode === 'add') {
    let next = 0;
    async function lane() {
      while (next < jobs.length) {
        const j = jobs[next++];
        await queues[j.shard].add('message', j.data, opts);
      }
    }
    await Promise.all(Array.from({ length: f.window }, lane));
  } else {
    const perShard = queues.map(() => []);
    for (const j of jobs) perShard[j.shard].push({ name: 'message', data: j.data, opts });
    // One batch in flight per shard queue, the shards side by side.
    await Promise.all(perShard.map(async (list, s) => {
      for (let i = 0; i < list.length; i += f.bulk) await queues[s].addBulk(list.slice(i, i + f.bulk));
    }));
  }
  const duration = (lib.nowUs() - t0) / 1e6;
  const cpu = lib.cpuSeconds(cpu0);
  await Promise.all(queues.map((q) => q.close()));
  process.stdout.write(JSON.stringify({ peer: `bullmq-${f.mode}${f.remove_on_complete ? '-roc' : ''}`, messages: jobs.length, duration_s: duration, throughput_per_s: jobs.length / duration, cpu_s: cpu }) + '\n');
}
main().catch((e) => { process.stderr.write(`bullmq ingest: ${e.stack || e}\n`); process.exit(3); });
