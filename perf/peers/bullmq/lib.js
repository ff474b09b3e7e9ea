'use strict';
// Shared pieces of the BullMQ peer: the replaced service's routing (FNV-1a-32
// over the UTF-8 bytes of the chat id, modulo P; queues `<prefix>-<shard>`),
// traffic files (JSON Lines, gzip or not), flags, percentiles, CPU time.
const fs = require('fs');
const zlib = require('zlib');

function fnv1a32(text) {
  const bytes = Buffer.from(text, 'utf8');
  let hash = 0x811c9dc5;
  for (const b of bytes) {
    hash ^= b;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
function shardFor(chat, partitions) { return fnv1a32(chat) % partitions; }
function queueName(prefix, shard) { return `${prefix}-${shard}`; }

function loadTraffic(path) {
  let data = fs.readFileSync(path);
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) data = zlib.gunzipSync(data);
  const out = [];
  for (const line of data.toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    out.push({ ts: m.ts_us, chat: m.chat, bytes: m.bytes || 0 });
  }
  return out;
}

function flags(argv, defaults) {
  const f = { ...defaults };
  for (let i = 2; i < argv.length; i += 2) {
    const name = argv[i];
    if (!name.startsWith('--') || i + 1 >= argv.length) fail(`bad flag ${name}`);
    const key = name.slice(2).replace(/-/g, '_');
    if (!(key in defaults)) fail(`unknown flag ${name}`);
    const v = argv[i + 1];
    f[key] = typeof defaults[key] === 'number' ? Number(v) : v;
    if (typeof defaults[key] === 'number' && !Number.isFinite(f[key])) fail(`bad value for ${name}: ${v}`);
  }
  return f;
}

function fail(message) {
  process.stderr.write(`bullmq peer: ${message}\n`);
  process.exit(2);
}

function connection(port) {
  // maxRetriesPerRequest null: what BullMQ requires for Workers.
  return { host: '127.0.0.1', port, maxRetriesPerRequest: null };
}

function percentiles(values) {
  const v = Float64Array.from(values).sort();
  const at = (q) => (v.length ? v[Math.min(v.length, Math.max(1, Math.ceil(q * v.length))) - 1] : 0);
  const r = (x) => Math.round(x * 10) / 10;
  return { count: v.length, p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(v.length ? v[v.length - 1] : 0) };
}

function nowUs() { return Number(process.hrtime.bigint()) / 1000; }  // CLOCK_MONOTONIC, shared by processes

function cpuSeconds(start) {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
}

function payload(i, bytes, max) {
  const size = Math.max(8, Math.min(bytes, max));
  const head = `${i}\n`;
  return head + '.'.repeat(Math.max(0, size - head.length));
}

module.exports = { fnv1a32, shardFor, queueName, loadTraffic, flags, fail, connection, percentiles, nowUs, cpuSeconds, payload };
