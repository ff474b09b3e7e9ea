#!/usr/bin/env python3
"""Makes tools/sample/hot_chat.jsonl.gz, the sample traffic `chatshard replay` ships with.

How: the first 60,000 messages of the shared capture
../shared/data/rust_zulip_traffic.jsonl.gz (real rust-lang Zulip traffic; see its README),
copying only the fields ts_us, chat and bytes (the capture has no content, and this copies
none), plus one added chat, "hot/lobby", that carries 30 % of the result (25,714 of 85,714
messages). The hot chat's messages come in bursts: each burst starts at the timestamp of a
randomly drawn capture message, so bursts follow the capture's own daily and weekly cycles;
it has 3..80 messages (geometric, mean about 20), one every 1..30 s (whole seconds, the
capture's resolution), each of a size drawn from the capture's own sizes. The result is
sorted by ts_us; at equal ts_us capture messages keep their order and come before hot ones.
Everything is drawn from random.Random(SEED), so the output is the same on every run.

Why: the capture's hottest chat holds under 1 % of its messages, too little to show how the
engine isolates a hot chat from its shard neighbours and from other shards. One chat at
30 % is the case chatshard exists for (a lobby or a broadcast channel): its shard is
overloaded while the others are not, and the replay report's isolation section measures what
that costs the other chats. 60,000 capture messages keep the .gz small (about 0.5 MB) and
a replay quick, while keeping hundreds of real chats and their burst structure.

Usage: make_sample.py [--source CAPTURE] [--out FILE] [--check]
  --check  regenerate in memory and compare with FILE's content; exit 1 if they differ.
Python 3 standard library only.
"""

import argparse
import gzip
import io
import json
import pathlib
import random
import sys

BASE_MESSAGES = 60_000
HOT_CHAT = "hot/lobby"
HOT_SHARE = 0.30
SEED = 20240604
BURST_MIN, BURST_MAX, BURST_MEAN = 3, 80, 20
GAP_MIN_S, GAP_MAX_S = 1, 30

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parent.parent.parent / "shared" / "data" / "rust_zulip_traffic.jsonl.gz"
DEFAULT_OUT = HERE / "hot_chat.jsonl.gz"


def read_base(source):
    """The first BASE_MESSAGES capture messages as (ts_us, chat, bytes) tuples."""
    rows = []
    with gzip.open(source, "rt", encoding="utf-8") as f:
        for line in f:
            if len(rows) == BASE_MESSAGES:
                break
            record = json.loads(line)
            rows.append((int(record["ts_us"]), str(record["chat"]), int(record["bytes"])))
    if len(rows) < BASE_MESSAGES:
        sys.exit(f"{source}: only {len(rows)} messages, need {BASE_MESSAGES}")
    return rows


def hot_messages(base, rng):
    """HOT_SHARE of the final total as bursts of HOT_CHAT messages."""
    wanted = round(HOT_SHARE * len(base) / (1 - HOT_SHARE))
    sizes = [row[2] for row in base]
    hot = []
    while len(hot) < wanted:
        ts_us = base[rng.randrange(len(base))][0]
        length = BURST_MIN
        while length < BURST_MAX and rng.random() > 1 / (BURST_MEAN - BURST_MIN + 1):
            length += 1
        for _ in range(min(length, wanted - len(hot))):
            hot.append((ts_us, HOT_CHAT, rng.choice(sizes)))
            ts_us += rng.randint(GAP_MIN_S, GAP_MAX_S) * 1_000_000
    return hot


def make(source):
    """The sample as JSON Lines bytes (uncompressed)."""
    base = read_base(source)
    rng = random.Random(SEED)
    hot = hot_messages(base, rng)
    # Sort key: time, then capture before hot, then original order (stable).
    keyed = [(row[0], 0, i, row) for i, row in enumerate(base)]
    keyed += [(row[0], 1, i, row) for i, row in enumerate(hot)]
    keyed.sort(key=lambda k: k[:3])
    out = io.StringIO()
    for _, _, _, (ts_us, chat, size) in keyed:
        out.write(json.dumps({"ts_us": ts_us, "chat": chat, "bytes": size},
                             separators=(",", ":")))
        out.write("\n")
    return out.getvalue().encode("utf-8"), len(base), len(hot)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=pathlib.Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    data, n_base, n_hot = make(args.source)
    if args.check:
        with gzip.open(args.out, "rb") as f:
            same = f.read() == data
        print(f"{args.out}: {'matches' if same else 'DIFFERS FROM'} a fresh run of make_sample.py")
        return 0 if same else 1

    # mtime=0 and no file name in the header: the same input gives the same bytes.
    with open(args.out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                    compresslevel=9, mtime=0) as gz:
        gz.write(data)
    total = n_base + n_hot
    print(f"{args.out}: {total} messages ({n_base} capture, {n_hot} {HOT_CHAT} = "
          f"{100 * n_hot / total:.1f} %), {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
