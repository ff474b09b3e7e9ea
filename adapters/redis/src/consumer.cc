// ConsumerImpl: one I/O thread reads shard streams with XREADGROUP, submits
// entries to the engine, and acks what the handler finished.
//
// Engine payload ("envelope"): the engine's handler API has no field for the
// stream id, so the adapter submits "<flag><stream id>\n<user payload>"
// (flag 'R' = redelivered, 'N' = first delivery) and the wrapped handler
// decodes it into a StreamMessage. Stream ids never contain '\n'.
//
// Thread safety and ownership:
//   - `options`, `handler`, key names: const after construction.
//   - `shards`, `dead`, `connection`, `producer` and the reused buffers
//     (`ack_*`, `envelope`): owned by the I/O thread.
//   - `completions`: moodycamel MPMC queue; producers are engine workers (the
//     wrapped handler on kDone, the failure hook on a final failure), the only
//     consumer is the I/O thread. FIFO per producer thread only, which is
//     enough: acks carry ids and need no order.
//   - flags (`closing`, `engine_drained`, `abort`) are written by Close and
//     read by the I/O thread (release/acquire).
//
// Trimming (delete_acked): every trim_interval, each shard stream that had
// acks since the last pass is trimmed with XTRIM MINID <bound>, where bound is
// computed from Redis' own state, never from this process' memory:
//   for each consumer group of the stream (XINFO GROUPS), the oldest entry it
//   has not acked: its smallest pending id (XPENDING summary) if it has
//   pending entries, else the entry after its last-delivered-id;
//   bound = the smallest of these over all groups.
// Every entry below the bound was delivered to every group (ids below a
// group's last-delivered-id were handed out in id order by XREADGROUP ">")
// and is pending in none, so it was acked -- by whichever consumer of the
// group, in whichever process, after a claim (XAUTOCLAIM/XCLAIM move pending
// entries, they stay pending) or after its dead letter was stored (the ack
// follows the letter). An entry can become pending again only through
// XCLAIM FORCE or XGROUP SETID, which the adapter never sends, so a bound
// read at one moment is still safe when the XTRIM runs a round trip later.
// Three pipelined round trips per pass for all due shards (XINFO GROUPS,
// XPENDING per group, XTRIM), at most every trim_interval (100 ms by
// default), instead of an XDEL per acked entry: per message Redis now does
// only the XACK. What is left between passes: the entries acked within one
// interval, plus the acked entries above a shard's oldest unacked entry (a
// slow or retrying message holds the trim of its shard until it is acked or
// dead-lettered). Close trims once more after its last acks, so a drained
// consumer leaves empty streams. Measured on this machine (Redis 7.0.15,
// 100k messages of 100 bytes over 1000 chats, 8 shards, all acked; test
// DeletingAckedEntriesKeepsRedisMemoryFlat): used_memory grew by 12.7 MB when
// acked entries were kept, by 0.11 MB with the former XDEL after ack, and by
// 0.16 MB with this trim (streams empty). Redis time per end-to-end message
// in the consumer's commands (INFO commandstats, chatshard_redis_bench end
// to end, 2 x 300k messages, same conditions): 5.6 us with XDEL after ack
// (XDEL 3.1 us, XREADGROUP 1.9, XACK 0.5) and 2.0 us with this trim
// (XREADGROUP 1.6, XACK 0.4, XTRIM + XINFO + XPENDING 0.04).
//
// Parking (max_in_flight_per_chat): the shard window is FIFO, so without a
// per-chat bound a hot chat's backlog fills it and every other chat of the
// shard waits behind that backlog in the stream, however fair the engine's
// turns are. So each shard counts, per chat (by its 64-bit FNV-1a hash; two
// chats that collide only share a limit), the entries loaded into the
// engine. Once the shard is crowded (half its window loaded), an entry whose
// chat is at the limit is parked, and so is every entry of a chat that
// already has parked entries: its payload is dropped and only its id is kept, in a
// per-chat list sorted by id. It stays pending in Redis (delivered to this
// consumer, owned, not trimmed: the trim bound is the oldest pending entry)
// and is fetched again with XRANGE once the chat is below its limit or the
// shard is no longer crowded, oldest first, so a chat's entries reach the
// engine in id order. Below half a window nothing is parked: parking costs
// an XRANGE per entry, and only a full window stops the reads. Parked entries
// do not count against max_in_flight_per_shard (reading goes on past them)
// but against max_parked_per_shard. The periodic claim pass re-claims them
// with XCLAIM ... JUSTID (which resets their idle time without counting a
// delivery), so other consumers of the group do not take them over.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chatshard/redis/consumer.h"
#include "chatshard/routing.h"
#include "connection.h"
#include "work_queue.h"

namespace chatshard::redis {
namespace internal {
namespace {

using std::chrono::milliseconds;

// A finished entry. A done one travels as `sid` alone (no allocation on the
// engine worker); a dead letter also carries its id as text and its content.
struct Completion {
  uint32_t shard = 0;
  uint64_t chat_hash = 0;  // Fnv1a64 of the chat id (parking's per-chat count)
  StreamId sid;
  std::string id;
  bool dead = false;
  uint32_t attempts = 0;
  std::string reason;
  std::string chat;
  std::string payload;
};

struct Held {
  StreamId sid;
  std::string id;
  std::string chat;
  std::string envelope;
};

// One chat's share of a shard (parking; see the top).
struct Flow {
  uint32_t loaded = 0;            // submitted to the engine, not yet finished
  std::deque<StreamId> parked;    // ids only, ascending
  bool listed = false;            // in ShardState::parked_flows
};

struct ShardState {
  std::string stream_key;
  std::string dead_key;
  std::deque<Held> held;                 // read, not yet accepted by the engine
  std::vector<Held> recovered;           // claimed during recovery, not yet released
  std::unordered_set<StreamId, StreamIdHash> owned;  // read or claimed, not yet acked
  std::vector<StreamId> acks;            // finished, ack not yet confirmed
  bool trim_due = false;                 // acks confirmed since the last trim pass
  std::unordered_map<uint64_t, Flow> flows;  // chats with loaded or parked entries
  std::vector<uint64_t> parked_flows;    // chats that may have parked entries
  uint64_t parked = 0;                   // parked entries over all flows
  bool recovering = true;
  Clock::time_point next_recovery{};
};

struct Envelope {
  bool redelivered = false;
  std::string_view id;
  std::string_view payload;
};

void EncodeInto(bool redelivered, std::string_view id, std::string_view payload,
                std::string& out) {
  out.clear();
  out += redelivered ? 'R' : 'N';
  out += id;
  out += '\n';
  out += payload;
}

// A stream entry as parsed from a reply: views into the reply.
struct EntryView {
  StreamId sid;
  std::string_view id;
  std::string_view chat;
  std::string_view payload;
};

Held MakeHeld(const EntryView& e, bool redelivered) {
  Held h;
  h.sid = e.sid;
  h.id = std::string(e.id);
  h.chat = std::string(e.chat);
  h.envelope.reserve(e.id.size() + e.payload.size() + 2);
  EncodeInto(redelivered, e.id, e.payload, h.envelope);
  return h;
}

Envelope Decode(std::string_view s) {
  Envelope e;
  if (s.empty()) return e;
  e.redelivered = s[0] == 'R';
  const size_t nl = s.find('\n');
  if (nl == std::string_view::npos) return e;
  e.id = s.substr(1, nl - 1);
  e.payload = s.substr(nl + 1);
  return e;
}

struct ConsumerCore {
  ConsumerCore(const ConsumerOptions& o, StreamHandler h) : options(o), handler(std::move(h)) {
    for (uint32_t s = 0; s < o.connection.partitions; ++s) {
      ShardState st;
      st.stream_key = StreamKey(o.connection.prefix, s);
      st.dead_key = DeadKey(o.connection.prefix, s);
      shard_of_key.emplace(st.stream_key, s);
      shards.push_back(std::move(st));
    }
  }

  Outcome Handle(const MessageView& m);
  void OnFailure(const FailedMessage& f);

  void Run();
  Status EnsureGroups(Connection& conn);
  void Accept(Completion&& c);
  bool CollectCompletions();
  void Flush();
  void FlushDeadLetters();
  size_t AppendAcks();
  void ConfirmAcks(size_t commands);
  void TrimAcked();
  void SubmitHeld();
  void QueueDeadLetter(uint32_t shard, const StreamId& sid, std::string_view id,
                       std::string_view chat, std::string_view payload, uint32_t attempts,
                       std::string reason);
  uint64_t FlowKey(std::string_view chat) const;
  bool SubmitLoaded(ShardState& s, uint64_t chat_hash, std::string_view chat,
                    std::string_view wrapped);
  bool Crowded(const ShardState& s) const;
  bool MustPark(const ShardState& s, uint64_t chat_hash) const;
  void Park(ShardState& s, uint64_t chat_hash, const StreamId& sid);
  void Loaded(ShardState& s, uint64_t chat_hash);
  void Unloaded(ShardState& s, uint64_t chat_hash);
  bool UnparkStep();
  void RefreshParked();
  void RecoverStep(uint32_t shard);
  void PeriodicClaim();
  bool ReadStep();
  bool ParseEntry(const redisReply* entry, uint32_t shard, EntryView& out);
  bool HasUnflushed() const;
  bool SleepFor(milliseconds d);

  const ConsumerOptions options;
  const StreamHandler handler;
  std::vector<ShardState> shards;
  std::unordered_map<std::string, uint32_t> shard_of_key;
  std::vector<Completion> dead;  // finally failed, dead letter not yet written
  // AppendAcks' buffers, reused: a fresh one per batch is a "large" malloc
  // that makes glibc consolidate its fast bins (callgrind: 7% of the run).
  std::string ack_text;
  std::vector<size_t> ack_ends;
  std::vector<std::string_view> ack_args;
  std::string envelope;  // ReadStep's envelope for a direct Submit, reused

  WorkQueue<Completion> completions;
  SocketSlot socket;
  std::unique_ptr<Connection> connection;
  Clock::time_point next_claim{};
  Clock::time_point next_trim{};

  std::atomic<bool> ready{false};
  std::atomic<bool> closing{false};
  std::atomic<bool> engine_drained{false};
  std::atomic<bool> abort{false};
  std::mutex state_mu;
  std::condition_variable state_cv;
  bool finished = false;
  std::atomic<uint64_t> left_unacked{0};

  // Counters: written by the I/O thread, relaxed (Stats reads them).
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> claimed{0};
  std::atomic<uint64_t> dead_lettered{0};
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> parked{0};
  std::atomic<uint64_t> round_trips{0};

  // Last: destroyed first. The producer must die before its engine, and the
  // engine (whose handler points here) before everything above.
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Producer> producer;
};

Outcome ConsumerCore::Handle(const MessageView& m) {
  const Envelope e = Decode(m.payload);
  StreamMessage sm;
  sm.stream_id = e.id;
  sm.chat_id = m.chat_id;
  sm.payload = e.payload;
  sm.shard = m.shard;
  sm.attempt = m.attempt;
  sm.redelivered = e.redelivered;
  const Outcome o = handler(sm);
  if (o == Outcome::kDone) {
    Completion c;
    c.shard = m.shard;
    c.chat_hash = FlowKey(m.chat_id);
    c.sid = ParseStreamId(e.id);
    completions.enqueue(std::move(c));
  }
  return o;
}

void ConsumerCore::OnFailure(const FailedMessage& f) {
  const Envelope e = Decode(f.payload);
  Completion c;
  c.shard = f.shard;
  c.chat_hash = FlowKey(f.chat_id);
  c.sid = ParseStreamId(e.id);
  c.id = std::string(e.id);
  c.dead = true;
  c.attempts = f.attempts;
  c.reason = std::string(f.reason);
  c.chat = std::string(f.chat_id);
  c.payload = std::string(e.payload);
  completions.enqueue(std::move(c));
}

Status ConsumerCore::EnsureGroups(Connection& conn) {
  for (const ShardState& s : shards) {
    conn.Append({"XGROUP", "CREATE", s.stream_key, options.group, "0", "MKSTREAM"});
    conn.Append({"TYPE", s.dead_key});
  }
  for (const ShardState& s : shards) {
    Result<Reply> g = conn.Read();
    if (!g.ok()) return g.status();
    Result<Reply> t = conn.Read();
    if (!t.ok()) return t.status();
    if (IsError(g->get()) && !ReplyString(g->get()).starts_with("BUSYGROUP")) {
      const std::string_view err = ReplyString(g->get());
      if (err.starts_with("WRONGTYPE")) {
        return Status::FailedPrecondition("key \"" + s.stream_key +
                                          "\" is not a stream (WRONGTYPE): remove it or use "
                                          "another connection.prefix");
      }
      return ReplyErrorStatus(g->get(), "XGROUP CREATE " + s.stream_key);
    }
    const std::string_view type = ReplyString(t->get());
    if (type != "none" && type != "stream") {
      return Status::FailedPrecondition("key \"" + s.dead_key + "\" holds a " +
                                        std::string(type) +
                                        ", not a stream (WRONGTYPE): remove it or use another "
                                        "connection.prefix");
    }
  }
  return Status::Ok();
}

void ConsumerCore::Accept(Completion&& c) {
  if (c.shard >= shards.size()) return;
  // Only the engine's completions come here: the entry left the engine.
  Unloaded(shards[c.shard], c.chat_hash);
  if (c.dead) {
    dead.push_back(std::move(c));
  } else {
    shards[c.shard].acks.push_back(c.sid);
  }
}

bool ConsumerCore::CollectCompletions() {
  Completion buf[256];
  bool any = false;
  size_t n;
  while ((n = completions.try_dequeue_bulk(buf, 256)) > 0) {
    for (size_t i = 0; i < n; ++i) Accept(std::move(buf[i]));
    any = true;
  }
  return any;
}

bool ConsumerCore::HasUnflushed() const {
  if (!dead.empty()) return true;
  for (const ShardState& s : shards) {
    if (!s.acks.empty()) return true;
  }
  return false;
}

void ConsumerCore::Flush() {
  FlushDeadLetters();
  if (connection->broken()) return;
  ConfirmAcks(AppendAcks());
}

// An entry is acked only once its dead letter is stored: the letters take a
// round trip of their own, and the stored ones join the acks.
void ConsumerCore::FlushDeadLetters() {
  if (dead.empty()) return;
  const std::string retention = std::to_string(options.dead_letter_retention);
  for (const Completion& d : dead) {
    const std::string attempts = std::to_string(d.attempts);
    const std::string shard = std::to_string(d.shard);
    if (options.dead_letter_retention > 0) {
      connection->Append({"XADD", shards[d.shard].dead_key, "MAXLEN", "~", retention, "*", "id",
                          d.id, "c", d.chat, "p", d.payload, "reason", d.reason, "attempts",
                          attempts, "shard", shard});
    } else {
      connection->Append({"XADD", shards[d.shard].dead_key, "*", "id", d.id, "c", d.chat, "p",
                          d.payload, "reason", d.reason, "attempts", attempts, "shard", shard});
    }
  }
  round_trips.fetch_add(1, std::memory_order_relaxed);
  for (Completion& d : dead) {
    Result<Reply> r = connection->Read();
    if (!r.ok()) return;  // connection broken: keep every letter, resend later
    if (IsError(r->get())) {
      // Not stored (e.g. a key of another type): leave the entry unacked;
      // it stays pending and is claimed again after claim_timeout.
      shards[d.shard].owned.erase(d.sid);
      continue;
    }
    dead_lettered.fetch_add(1, std::memory_order_relaxed);
    shards[d.shard].acks.push_back(d.sid);
  }
  dead.clear();
}

// XACK per shard, in chunks of ack_batch, appended to the
// connection's output without reading: the caller may add its XREADGROUP to
// the same round trip. Returns the commands appended, for ConfirmAcks.
size_t ConsumerCore::AppendAcks() {
  size_t commands = 0;
  for (ShardState& s : shards) {
    for (size_t i = 0; i < s.acks.size(); i += options.ack_batch) {
      const size_t end = std::min(s.acks.size(), i + options.ack_batch);
      ack_text.clear();
      ack_ends.clear();
      for (size_t j = i; j < end; ++j) {
        AppendStreamId(s.acks[j], ack_text);
        ack_ends.push_back(ack_text.size());
      }
      ack_args.assign({"XACK", s.stream_key, options.group});
      size_t from = 0;
      for (const size_t to : ack_ends) {
        ack_args.push_back(std::string_view(ack_text).substr(from, to - from));
        from = to;
      }
      connection->Append(ack_args);
      ++commands;
    }
  }
  return commands;
}

// Reads the replies of AppendAcks' commands (written by the first Read).
// Only when all came are the acks done; else they are sent again after the
// reconnect.
void ConsumerCore::ConfirmAcks(size_t commands) {
  if (commands == 0) return;
  for (size_t i = 0; i < commands; ++i) {
    Result<Reply> r = connection->Read();
    if (!r.ok()) return;
  }
  for (ShardState& s : shards) {
    if (!s.acks.empty()) s.trim_due = options.delete_acked;
    for (const StreamId& id : s.acks) s.owned.erase(id);
    acked.fetch_add(s.acks.size(), std::memory_order_relaxed);
    s.acks.clear();
  }
}

// The id right after `id`: XTRIM MINID keeps the bound itself.
StreamId After(StreamId id) {
  if (id.seq == UINT64_MAX) return StreamId{id.ms + 1, 0};
  return StreamId{id.ms, id.seq + 1};
}

// One trim pass over the shards with acks since the last one; see
// "Trimming" at the top for the bound and why it is safe. A shard whose
// state cannot be read (an error reply, no group) is left untrimmed.
void ConsumerCore::TrimAcked() {
  std::vector<uint32_t> due;
  for (uint32_t shard = 0; shard < shards.size(); ++shard) {
    if (shards[shard].trim_due) due.push_back(shard);
  }
  if (due.empty()) return;
  // Round trip 1: each due stream's groups and their last-delivered-id.
  for (uint32_t shard : due) connection->Append({"XINFO", "GROUPS", shards[shard].stream_key});
  round_trips.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::vector<std::pair<std::string, StreamId>>> groups(due.size());
  for (size_t k = 0; k < due.size(); ++k) {
    Result<Reply> r = connection->Read();
    if (!r.ok()) return;
    const redisReply* x = r->get();
    if (x->type != REDIS_REPLY_ARRAY) continue;
    for (size_t g = 0; g < x->elements; ++g) {
      const redisReply* info = x->element[g];
      if (info->type != REDIS_REPLY_ARRAY) continue;
      std::string_view name;
      std::string_view last;
      for (size_t i = 0; i + 1 < info->elements; i += 2) {
        const std::string_view f = ReplyString(info->element[i]);
        if (f == "name") name = ReplyString(info->element[i + 1]);
        if (f == "last-delivered-id") last = ReplyString(info->element[i + 1]);
      }
      if (name.empty() || last.empty()) {  // unknown layout: trim nothing here
        groups[k].clear();
        break;
      }
      groups[k].emplace_back(std::string(name), ParseStreamId(last));
    }
  }
  // Round trip 2: each group's oldest pending entry (XPENDING summary).
  bool asked = false;
  for (size_t k = 0; k < due.size(); ++k) {
    for (const auto& g : groups[k]) {
      connection->Append({"XPENDING", shards[due[k]].stream_key, g.first});
      asked = true;
    }
  }
  if (asked) round_trips.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::string> bounds(due.size());
  for (size_t k = 0; k < due.size(); ++k) {
    bool known = !groups[k].empty();
    StreamId bound{UINT64_MAX, UINT64_MAX};
    for (const auto& g : groups[k]) {
      Result<Reply> r = connection->Read();
      if (!r.ok()) return;
      const redisReply* x = r->get();
      if (x->type != REDIS_REPLY_ARRAY || x->elements < 2 ||
          x->element[0]->type != REDIS_REPLY_INTEGER) {
        known = false;
        continue;
      }
      const StreamId oldest = x->element[0]->integer > 0
                                  ? ParseStreamId(ReplyString(x->element[1]))
                                  : After(g.second);
      bound = std::min(bound, oldest);
    }
    if (known && bound > StreamId{0, 0}) AppendStreamId(bound, bounds[k]);
  }
  // Round trip 3: the trims.
  size_t trims = 0;
  for (size_t k = 0; k < due.size(); ++k) {
    if (bounds[k].empty()) continue;
    connection->Append({"XTRIM", shards[due[k]].stream_key, "MINID", bounds[k]});
    ++trims;
  }
  if (trims > 0) round_trips.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < trims; ++i) {
    if (!connection->Read().ok()) return;
  }
  for (uint32_t shard : due) shards[shard].trim_due = false;
}

void ConsumerCore::SubmitHeld() {
  for (uint32_t shard = 0; shard < shards.size(); ++shard) {
    ShardState& s = shards[shard];
    if (s.recovering) continue;
    while (!s.held.empty()) {
      Held& h = s.held.front();
      const uint64_t chat_hash = FlowKey(h.chat);
      if (MustPark(s, chat_hash)) {
        Park(s, chat_hash, h.sid);
        s.held.pop_front();
        continue;
      }
      const SubmitResult r = producer->Submit(h.chat, h.envelope);
      if (r == SubmitResult::kAccepted) {
        Loaded(s, chat_hash);
        delivered.fetch_add(1, std::memory_order_relaxed);
        s.held.pop_front();
        continue;
      }
      if (r == SubmitResult::kShardFull || r == SubmitResult::kChatOverQuota ||
          r == SubmitResult::kTooManyChats || r == SubmitResult::kStopping) {
        break;  // hold it and retry later: never drop, never ack unprocessed
      }
      QueueDeadLetter(shard, h.sid, h.id, h.chat, Decode(h.envelope).payload, 0,
                      "rejected by the engine: " + std::string(SubmitResultName(r)));
      s.held.pop_front();
    }
  }
}

void ConsumerCore::QueueDeadLetter(uint32_t shard, const StreamId& sid, std::string_view id,
                                   std::string_view chat, std::string_view payload,
                                   uint32_t attempts, std::string reason) {
  Completion c;
  c.shard = shard;
  c.sid = sid;
  c.id = std::string(id);
  c.dead = true;
  c.attempts = attempts;
  c.reason = std::move(reason);
  c.chat = std::string(chat);
  c.payload = std::string(payload);
  dead.push_back(std::move(c));
}

// The chat's key in ShardState::flows; 0 (never looked up) with parking off.
uint64_t ConsumerCore::FlowKey(std::string_view chat) const {
  return options.max_in_flight_per_chat > 0 ? Fnv1a64(chat) : 0;
}

// Submits an entry read from Redis; counts it loaded and delivered when the
// engine took it.
bool ConsumerCore::SubmitLoaded(ShardState& s, uint64_t chat_hash, std::string_view chat,
                                std::string_view wrapped) {
  if (producer->Submit(chat, wrapped) != SubmitResult::kAccepted) return false;
  Loaded(s, chat_hash);
  delivered.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool ConsumerCore::Crowded(const ShardState& s) const {
  return s.owned.size() - s.parked >= std::max<uint64_t>(1, options.max_in_flight_per_shard / 2);
}

bool ConsumerCore::MustPark(const ShardState& s, uint64_t chat_hash) const {
  if (options.max_in_flight_per_chat == 0) return false;
  const auto it = s.flows.find(chat_hash);
  if (it == s.flows.end()) return false;
  if (!it->second.parked.empty()) return true;  // behind its own parked entries
  return it->second.loaded >= options.max_in_flight_per_chat && Crowded(s);
}

void ConsumerCore::Park(ShardState& s, uint64_t chat_hash, const StreamId& sid) {
  Flow& f = s.flows[chat_hash];
  // Reads come in id order, so this is nearly always an append; entries
  // claimed from the pending list (after a reconnect) may be older.
  if (f.parked.empty() || f.parked.back() < sid) {
    f.parked.push_back(sid);
  } else {
    f.parked.insert(std::upper_bound(f.parked.begin(), f.parked.end(), sid), sid);
  }
  ++s.parked;
  if (!f.listed) {
    f.listed = true;
    s.parked_flows.push_back(chat_hash);
  }
}

void ConsumerCore::Loaded(ShardState& s, uint64_t chat_hash) {
  if (options.max_in_flight_per_chat == 0) return;
  ++s.flows[chat_hash].loaded;
}

void ConsumerCore::Unloaded(ShardState& s, uint64_t chat_hash) {
  if (options.max_in_flight_per_chat == 0) return;
  const auto it = s.flows.find(chat_hash);
  if (it == s.flows.end() || it->second.loaded == 0) return;
  Flow& f = it->second;
  if (--f.loaded == 0 && f.parked.empty() && !f.listed) s.flows.erase(it);
}

// Fetches parked entries of chats below their limit, or of any chat once its
// shard is no longer crowded (XRANGE by id, one
// pipelined round trip for all shards) and submits them in id order. A
// shard with held entries waits: they are older than anything parked
// after them. True when it fetched something.
bool ConsumerCore::UnparkStep() {
  if (options.max_in_flight_per_chat == 0) return false;
  struct Want {
    uint32_t shard;
    uint64_t chat_hash;
    StreamId sid;
  };
  std::vector<Want> wants;
  constexpr size_t kMaxFetch = 1024;  // entries per round trip
  for (uint32_t shard = 0; shard < shards.size() && wants.size() < kMaxFetch; ++shard) {
    ShardState& s = shards[shard];
    if (s.parked == 0 || s.recovering || !s.held.empty()) continue;
    for (size_t i = 0; i < s.parked_flows.size() && wants.size() < kMaxFetch;) {
      const uint64_t h = s.parked_flows[i];
      const auto it = s.flows.find(h);
      if (it == s.flows.end() || it->second.parked.empty()) {
        if (it != s.flows.end()) {
          it->second.listed = false;
          if (it->second.loaded == 0) s.flows.erase(it);
        }
        s.parked_flows[i] = s.parked_flows.back();
        s.parked_flows.pop_back();
        continue;
      }
      Flow& f = it->second;
      while ((f.loaded < options.max_in_flight_per_chat || !Crowded(s)) && !f.parked.empty() &&
             wants.size() < kMaxFetch) {
        wants.push_back({shard, h, f.parked.front()});
        f.parked.pop_front();
        --s.parked;
        ++f.loaded;  // reserved now, so one chat's fetches never exceed its limit
      }
      ++i;
    }
  }
  if (wants.empty()) return false;
  std::string id;
  for (const Want& w : wants) {
    id.clear();
    AppendStreamId(w.sid, id);
    connection->Append({"XRANGE", shards[w.shard].stream_key, id, id});
  }
  round_trips.fetch_add(1, std::memory_order_relaxed);
  size_t k = 0;
  for (; k < wants.size(); ++k) {
    const Want& w = wants[k];
    ShardState& s = shards[w.shard];
    Result<Reply> r = connection->Read();
    if (!r.ok()) break;
    --s.flows[w.chat_hash].loaded;  // the reservation; Loaded() below if accepted
    const redisReply* x = r->get();
    if (x->type != REDIS_REPLY_ARRAY || x->elements == 0) {
      // Deleted meanwhile (XDEL, a MAXLEN trim by someone else): only its
      // pending record is left. An error reply leaves it owned and pending:
      // it is claimed again after a restart.
      if (x->type == REDIS_REPLY_ARRAY) s.acks.push_back(w.sid);
      continue;
    }
    EntryView e;
    if (!ParseEntry(x->element[0], w.shard, e)) continue;
    if (s.held.empty()) {
      EncodeInto(false, e.id, e.payload, envelope);
      if (SubmitLoaded(s, w.chat_hash, e.chat, envelope)) continue;
    }
    s.held.push_back(MakeHeld(e, false));
  }
  // A broken connection: what was not read goes back to its chat's list.
  for (; k < wants.size(); ++k) {
    ShardState& s = shards[wants[k].shard];
    --s.flows[wants[k].chat_hash].loaded;
    Park(s, wants[k].chat_hash, wants[k].sid);
  }
  return true;
}

// Resets the idle time of parked entries (XCLAIM <ids> JUSTID: no delivery
// is counted), so another consumer's claim pass does not take them over
// while they wait for their turn.
void ConsumerCore::RefreshParked() {
  size_t commands = 0;
  std::vector<std::string> ids;
  std::vector<std::string_view> args;
  for (ShardState& s : shards) {
    if (s.parked == 0) continue;
    ids.clear();
    for (const uint64_t h : s.parked_flows) {
      const auto it = s.flows.find(h);
      if (it == s.flows.end()) continue;
      for (const StreamId& sid : it->second.parked) {
        ids.emplace_back();
        AppendStreamId(sid, ids.back());
      }
    }
    for (size_t i = 0; i < ids.size(); i += 1000) {
      args.assign({"XCLAIM", s.stream_key, options.group, options.consumer, "0"});
      for (size_t j = i; j < std::min(ids.size(), i + 1000); ++j) args.push_back(ids[j]);
      args.push_back("JUSTID");
      connection->Append(args);
      ++commands;
    }
  }
  if (commands == 0) return;
  round_trips.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < commands; ++i) {
    if (!connection->Read().ok()) return;
  }
}

// Records the entry as owned; false (and its ack or dead letter queued) when
// it has no content to run.
bool ConsumerCore::ParseEntry(const redisReply* entry, uint32_t shard, EntryView& out) {
  if (entry == nullptr || entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) return false;
  out.id = ReplyString(entry->element[0]);
  out.sid = ParseStreamId(out.id);
  const redisReply* fields = entry->element[1];
  std::string_view chat;
  std::string_view payload;
  bool has_chat = false;
  bool has_payload = false;
  if (fields != nullptr && fields->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
      const std::string_view f = ReplyString(fields->element[i]);
      if (f == "c") {
        chat = ReplyString(fields->element[i + 1]);
        has_chat = true;
      } else if (f == "p") {
        payload = ReplyString(fields->element[i + 1]);
        has_payload = true;
      }
    }
  }
  ShardState& s = shards[shard];
  s.owned.insert(out.sid);
  if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY) {
    s.acks.push_back(out.sid);  // deleted meanwhile: only its pending record is left
    return false;
  }
  if (!has_chat || !has_payload) {
    QueueDeadLetter(shard, out.sid, out.id, chat, payload, 0,
                    "malformed entry: needs fields 'c' (chat id) and 'p' (payload)");
    return false;
  }
  out.chat = chat;
  out.payload = payload;
  return true;
}

void ConsumerCore::RecoverStep(uint32_t shard) {
  ShardState& s = shards[shard];
  std::vector<std::string> to_claim;
  // Deliveries so far (XPENDING's counter) of the entries in to_claim.
  std::unordered_map<std::string, long long> deliveries;
  bool waiting = false;
  std::string start = "-";
  constexpr int kPage = 1000;
  while (true) {
    Result<Reply> r = connection->Run(
        {"XPENDING", s.stream_key, options.group, start, "+", std::to_string(kPage)});
    round_trips.fetch_add(1, std::memory_order_relaxed);
    if (!r.ok()) return;
    const redisReply* x = r->get();
    if (x->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < x->elements; ++i) {
      const redisReply* e = x->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 4) continue;
      std::string id(ReplyString(e->element[0]));
      if (s.owned.count(ParseStreamId(id)) > 0) continue;
      const bool mine = ReplyString(e->element[1]) == options.consumer;
      const bool idle = e->element[2]->integer >= options.claim_timeout.count();
      if (mine || idle) {
        deliveries[id] = e->element[3]->integer;
        to_claim.push_back(std::move(id));
      } else {
        waiting = true;  // a previous owner's young entry: wait for it
      }
    }
    if (x->elements < static_cast<size_t>(kPage)) break;
    start = "(" + std::string(ReplyString(x->element[x->elements - 1]->element[0]));
  }
  for (size_t i = 0; i < to_claim.size(); i += kPage) {
    std::vector<std::string_view> args = {"XCLAIM", s.stream_key, options.group,
                                          options.consumer, "0"};
    for (size_t j = i; j < std::min(to_claim.size(), i + kPage); ++j) args.push_back(to_claim[j]);
    Result<Reply> r = connection->Run(args);
    round_trips.fetch_add(1, std::memory_order_relaxed);
    if (!r.ok()) return;
    const redisReply* x = r->get();
    if (x->type != REDIS_REPLY_ARRAY) continue;
    for (size_t k = 0; k < x->elements; ++k) {
      EntryView e;
      if (!ParseEntry(x->element[k], shard, e)) continue;
      claimed.fetch_add(1, std::memory_order_relaxed);
      const auto it = deliveries.find(std::string(e.id));
      const long long times = it == deliveries.end() ? 0 : it->second;
      if (options.max_deliveries > 0 && times >= options.max_deliveries) {
        // A poison message: every delivery so far ended without an ack.
        QueueDeadLetter(shard, e.sid, e.id, e.chat, e.payload, static_cast<uint32_t>(times),
                        "delivered " + std::to_string(times) +
                            " times without an ack (max_deliveries): the process handling it "
                            "died or lost Redis each time");
        continue;
      }
      s.recovered.push_back(MakeHeld(e, true));
    }
  }
  if (waiting) {
    s.next_recovery = Clock::now() + std::min(options.claim_timeout / 4, milliseconds(100));
    return;
  }
  for (Held& h : s.recovered) s.held.push_back(std::move(h));
  s.recovered.clear();
  std::stable_sort(s.held.begin(), s.held.end(),
                   [](const Held& a, const Held& b) { return a.sid < b.sid; });
  s.recovering = false;
}

void ConsumerCore::PeriodicClaim() {
  const std::string min_idle = std::to_string(options.claim_timeout.count());
  for (uint32_t shard = 0; shard < shards.size(); ++shard) {
    ShardState& s = shards[shard];
    if (s.recovering) continue;
    std::string cursor = "0-0";
    bool added = false;
    for (int page = 0; page < 64; ++page) {
      Result<Reply> r = connection->Run({"XAUTOCLAIM", s.stream_key, options.group,
                                         options.consumer, min_idle, cursor, "COUNT", "256"});
      round_trips.fetch_add(1, std::memory_order_relaxed);
      if (!r.ok()) return;
      const redisReply* x = r->get();
      if (x->type != REDIS_REPLY_ARRAY || x->elements < 2) break;
      cursor = std::string(ReplyString(x->element[0]));
      const redisReply* entries = x->element[1];
      for (size_t k = 0; k < entries->elements; ++k) {
        const redisReply* e = entries->element[k];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
        if (s.owned.count(ParseStreamId(ReplyString(e->element[0]))) > 0) continue;  // ours
        EntryView v;
        if (ParseEntry(e, shard, v)) {
          claimed.fetch_add(1, std::memory_order_relaxed);
          s.held.push_back(MakeHeld(v, true));
          added = true;
        }
      }
      if (cursor == "0-0") break;
    }
    if (added) {
      std::stable_sort(s.held.begin(), s.held.end(),
                       [](const Held& a, const Held& b) { return a.sid < b.sid; });
    }
  }
}

bool ConsumerCore::ReadStep() {
  std::vector<uint32_t> eligible;
  uint64_t room = options.read_batch;
  bool busy = HasUnflushed();
  for (uint32_t shard = 0; shard < shards.size(); ++shard) {
    const ShardState& s = shards[shard];
    if (!s.owned.empty()) busy = true;
    if (s.recovering || !s.held.empty()) continue;
    // Parked entries are owned but hold no memory beyond their id.
    const uint64_t loaded = s.owned.size() - s.parked;
    if (loaded >= options.max_in_flight_per_shard) continue;
    if (s.parked >= options.max_parked_per_shard) continue;
    eligible.push_back(shard);
    room = std::min<uint64_t>(room, options.max_in_flight_per_shard - loaded);
    room = std::min<uint64_t>(room, options.max_parked_per_shard - s.parked);
  }
  // The finished entries' acks ride in the same round trip as the read.
  const size_t ack_commands = AppendAcks();
  if (eligible.empty()) {
    if (ack_commands > 0) round_trips.fetch_add(1, std::memory_order_relaxed);
    ConfirmAcks(ack_commands);
    return false;
  }
  const std::string count = std::to_string(room);
  const std::string block = std::to_string(options.read_block.count());
  std::vector<std::string_view> args = {"XREADGROUP", "GROUP", options.group, options.consumer,
                                        "COUNT",      count};
  if (!busy) {
    args.push_back("BLOCK");
    args.push_back(block);
  }
  args.push_back("STREAMS");
  for (uint32_t shard : eligible) args.push_back(shards[shard].stream_key);
  for (size_t i = 0; i < eligible.size(); ++i) args.push_back(">");
  connection->Append(args);
  round_trips.fetch_add(1, std::memory_order_relaxed);
  ConfirmAcks(ack_commands);
  Result<Reply> r = connection->Read();
  if (!r.ok()) return false;
  const redisReply* x = r->get();
  if (x->type != REDIS_REPLY_ARRAY) return false;  // nil: nothing new within BLOCK
  bool any = false;
  for (size_t i = 0; i < x->elements; ++i) {
    const redisReply* stream = x->element[i];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
    auto it = shard_of_key.find(std::string(ReplyString(stream->element[0])));
    if (it == shard_of_key.end()) continue;
    const redisReply* entries = stream->element[1];
    ShardState& s = shards[it->second];
    for (size_t k = 0; k < entries->elements; ++k) {
      any = true;
      EntryView e;
      if (!ParseEntry(entries->element[k], it->second, e)) continue;
      // The common case copies nothing here: the engine copies what it
      // accepts. Behind a held entry, or refused, the entry is held (in order).
      if (s.held.empty()) {
        const uint64_t chat_hash = FlowKey(e.chat);
        if (MustPark(s, chat_hash)) {
          Park(s, chat_hash, e.sid);
          continue;
        }
        EncodeInto(false, e.id, e.payload, envelope);
        if (SubmitLoaded(s, chat_hash, e.chat, envelope)) continue;
      }
      s.held.push_back(MakeHeld(e, false));
    }
  }
  return any;
}

bool ConsumerCore::SleepFor(milliseconds d) {
  std::unique_lock<std::mutex> l(state_mu);
  return !state_cv.wait_for(l, d, [&] { return abort.load(std::memory_order_acquire); });
}

void ConsumerCore::Run() {
  constexpr std::chrono::microseconds kMinIdleWait{100};
  constexpr std::chrono::microseconds kMaxIdleWait{2000};
  std::chrono::microseconds idle_wait = kMinIdleWait;
  ReconnectBackoff backoff(options.connection);
  std::vector<Completion> buf(256);
  while (!abort.load(std::memory_order_acquire)) {
    if (connection == nullptr || connection->broken()) {
      if (connection != nullptr) {
        connection.reset();
        ready.store(false, std::memory_order_release);
      }
      CollectCompletions();
      Result<std::unique_ptr<Connection>> c =
          Connection::Open(options.connection, options.connection.connect_timeout, &socket);
      if (c.ok() && EnsureGroups(**c).ok()) {
        connection = std::move(c).value();
        reconnects.fetch_add(1, std::memory_order_relaxed);
        backoff.Reset();
        // Entries delivered in a reply that was lost are pending under this
        // consumer's name but unknown here: recover before reading again.
        for (ShardState& s : shards) {
          s.recovering = true;
          s.next_recovery = Clock::now();
        }
      } else {
        SleepFor(backoff.Next());
      }
      continue;
    }
    const bool drained = engine_drained.load(std::memory_order_acquire);
    const bool stopping = closing.load(std::memory_order_acquire);
    bool progress = CollectCompletions();
    if (stopping) {
      Flush();
    } else {
      FlushDeadLetters();  // the acks go with ReadStep's XREADGROUP
    }
    if (connection->broken()) continue;
    if (drained) {
      CollectCompletions();
      if (!HasUnflushed()) {
        TrimAcked();
        break;
      }
      continue;
    }
    if (!stopping) {
      const auto now = Clock::now();
      bool any_recovering = false;
      for (uint32_t shard = 0; shard < shards.size(); ++shard) {
        if (shards[shard].recovering && shards[shard].next_recovery <= now) RecoverStep(shard);
        any_recovering = any_recovering || shards[shard].recovering;
      }
      if (connection->broken()) continue;
      ready.store(!any_recovering, std::memory_order_release);
      SubmitHeld();
      progress = UnparkStep() || progress;
      if (connection->broken()) continue;
      if (now >= next_claim) {
        PeriodicClaim();
        if (!connection->broken()) RefreshParked();
        next_claim = now + options.claim_interval;
        if (connection->broken()) continue;
      }
      progress = ReadStep() || progress;
      if (connection->broken()) continue;
      if (now >= next_trim) {
        TrimAcked();
        next_trim = now + options.trim_interval;
        if (connection->broken()) continue;
      }
    }
    uint64_t owned = 0;
    uint64_t parked_now = 0;
    for (const ShardState& s : shards) {
      owned += s.owned.size();
      parked_now += s.parked;
    }
    in_flight.store(owned, std::memory_order_relaxed);
    parked.store(parked_now, std::memory_order_relaxed);
    if (progress) {
      idle_wait = kMinIdleWait;
    } else {
      // Nothing new. With entries in flight the last read did not block in
      // Redis (it must come back for the acks), so new entries are only
      // seen at the next read: wait for completions briefly, then twice as
      // long each quiet round up to 2 ms. A steady trickle (2,000/s) is
      // read within about a gap, while an idle in-flight period costs a
      // handful of round trips, not one per 100 us.
      const size_t n = completions.wait_dequeue_bulk_timed(buf.begin(), buf.size(), idle_wait);
      for (size_t i = 0; i < n; ++i) Accept(std::move(buf[i]));
      idle_wait = n > 0 ? kMinIdleWait : std::min(idle_wait * 2, kMaxIdleWait);
    }
  }
  uint64_t left = dead.size();
  for (const ShardState& s : shards) left += s.acks.size();
  left_unacked.store(left, std::memory_order_relaxed);
  connection.reset();
  ready.store(false, std::memory_order_release);
  std::lock_guard<std::mutex> l(state_mu);
  finished = true;
  state_cv.notify_all();
}

class ConsumerImpl final : public Consumer {
 public:
  explicit ConsumerImpl(std::shared_ptr<ConsumerCore> core) : core_(std::move(core)) {
    io_ = std::thread([core = core_] { core->Run(); });
  }
  ~ConsumerImpl() override { (void)Close(milliseconds(1000)); }

  Status Close(milliseconds deadline) override;
  bool Ready() const override {
    return core_->ready.load(std::memory_order_acquire) &&
           !core_->closing.load(std::memory_order_acquire);
  }
  RedisStats Stats() const override;
  const Engine& engine() const override { return *core_->engine; }

 private:
  std::shared_ptr<ConsumerCore> core_;
  std::thread io_;
  std::mutex close_mu_;
};

Status ConsumerImpl::Close(milliseconds deadline) {
  std::lock_guard<std::mutex> close_lock(close_mu_);
  if (!io_.joinable()) return Status::Ok();
  ConsumerCore& c = *core_;
  const auto start = Clock::now();
  c.closing.store(true, std::memory_order_release);
  // Most of the budget drains the engine; the rest sends the last acks.
  // Engine::Shutdown gives handler runs still going at its deadline up to
  // 100 ms more (engine.h), so that grace comes out of the engine's share:
  // otherwise a stuck handler made the drain use the whole deadline, and the
  // I/O thread, left no time for its last acks, was abandoned (detached).
  constexpr Clock::duration kEngineGrace = milliseconds(100);
  const auto margin = std::min<Clock::duration>(milliseconds(50), deadline / 5);
  const auto engine_budget = std::max<Clock::duration>(Clock::duration::zero(),
                                                       deadline - 2 * margin - kEngineGrace);
  const ShutdownReport report = c.engine->Shutdown(ShutdownMode::kDrain, engine_budget);
  c.engine_drained.store(true, std::memory_order_release);
  std::unique_lock<std::mutex> l(c.state_mu);
  bool done = c.state_cv.wait_until(l, start + deadline - margin, [&] { return c.finished; });
  if (!done) {
    c.abort.store(true, std::memory_order_release);
    c.state_cv.notify_all();
    l.unlock();
    c.socket.Interrupt();
    l.lock();
    done = c.state_cv.wait_until(l, start + deadline, [&] { return c.finished; });
  }
  l.unlock();
  const uint64_t unprocessed = report.unprocessed.size() + report.still_running;
  if (done) {
    io_.join();
    const uint64_t left = c.left_unacked.load(std::memory_order_relaxed);
    if (left == 0 && unprocessed == 0) return Status::Ok();
    return Status::Unavailable(
        "consumer closed with " + std::to_string(unprocessed) + " messages unprocessed and " +
        std::to_string(left) +
        " finished but unacked; they stay pending in Redis and are claimed again");
  }
  io_.detach();
  return Status::Unavailable("consumer Close reached its deadline of " +
                             std::to_string(deadline.count()) +
                             " ms with Redis unreachable; unacked entries stay pending in "
                             "Redis and are claimed again");
}

RedisStats ConsumerImpl::Stats() const {
  RedisStats s;
  s.delivered = core_->delivered.load(std::memory_order_relaxed);
  s.acked = core_->acked.load(std::memory_order_relaxed);
  s.claimed = core_->claimed.load(std::memory_order_relaxed);
  s.dead_lettered = core_->dead_lettered.load(std::memory_order_relaxed);
  const uint64_t connects = core_->reconnects.load(std::memory_order_relaxed);
  s.reconnects = connects > 0 ? connects - 1 : 0;
  s.in_flight = core_->in_flight.load(std::memory_order_relaxed);
  s.parked = core_->parked.load(std::memory_order_relaxed);
  s.round_trips = core_->round_trips.load(std::memory_order_relaxed);
  s.ready = Ready();
  return s;
}

}  // namespace
}  // namespace internal

std::string Consumer::StatsJson() const {
  std::string out = "{\"engine\":";
  out += engine().Stats().ToJson();
  out += ",\"redis\":";
  out += Stats().ToJson();
  out += '}';
  return out;
}

Result<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerOptions& options,
                                                   const Options& engine_options,
                                                   StreamHandler handler) {
  {
    std::string problems;
    if (Status s = options.Validate(); !s.ok()) problems += s.message();
    if (Status s = engine_options.Validate(); !s.ok()) {
      if (!problems.empty()) problems += '\n';
      problems += "engine_options: ";
      problems += s.message();
    }
    if (engine_options.partitions != options.connection.partitions) {
      if (!problems.empty()) problems += '\n';
      problems += "engine_options.partitions = " + std::to_string(engine_options.partitions) +
                  ": must equal connection.partitions (" +
                  std::to_string(options.connection.partitions) + ")";
    }
    if (engine_options.routing != options.connection.routing) {
      if (!problems.empty()) problems += '\n';
      problems += "engine_options.routing = " + std::string(RoutingName(engine_options.routing)) +
                  ": must equal connection.routing (" +
                  std::string(RoutingName(options.connection.routing)) + ")";
    }
    if (!handler) {
      if (!problems.empty()) problems += '\n';
      problems += "handler: must not be empty";
    }
    if (!problems.empty()) return Status::InvalidArgument(problems);
  }
  auto core = std::make_shared<internal::ConsumerCore>(options, std::move(handler));
  Result<std::unique_ptr<internal::Connection>> conn = internal::Connection::Open(
      options.connection, options.connection.connect_timeout, &core->socket);
  if (!conn.ok()) return conn.status();
  if (Status s = internal::CheckServerAndMeta(**conn, options.connection); !s.ok()) return s;
  if (Status s = core->EnsureGroups(**conn); !s.ok()) return s;
  internal::ConsumerCore* raw = core.get();
  Result<std::unique_ptr<Engine>> engine = Engine::Create(
      engine_options, [raw](const MessageView& m) { return raw->Handle(m); },
      [raw](const FailedMessage& f) { raw->OnFailure(f); });
  if (!engine.ok()) return engine.status();
  core->engine = std::move(engine).value();
  core->producer = core->engine->CreateProducer();
  core->connection = std::move(conn).value();
  core->reconnects.store(1, std::memory_order_relaxed);
  return std::unique_ptr<Consumer>(new internal::ConsumerImpl(std::move(core)));
}

}  // namespace chatshard::redis
