"""Compare two hub snapshots written by ``bench/soak.py --trace DIR`` (bench only).

    python bench/memtrace/compare.py DIR FIRST LAST [--top 15] [--frames 8]

Prints the allocator figures of every sample, then the allocation sites (grouped by
traceback) that grew most between minute FIRST and minute LAST.
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path

_NOISE = (tracemalloc.Filter(False, tracemalloc.__file__),
          tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
          tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("first", type=int)
    parser.add_argument("last", type=int)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--by", default="traceback", choices=("traceback", "lineno", "filename"))
    args = parser.parse_args()
    print("minute  RSS MB  traced MB  malloc in use MB  malloc free MB  arena+mmap MB  "
          "gc objects  threads")
    for line in (args.dir / "stats.jsonl").read_text().splitlines():
        r = json.loads(line)
        m = r.get("malloc", {})
        mb = 1024 * 1024
        print(f"{r['n']:6d}  {r['rss_kb'] / 1024:6.1f}  {r.get('traced', 0) / mb:9.1f}  "
              f"{m.get('in_use', 0) / mb:16.1f}  {m.get('free', 0) / mb:14.1f}  "
              f"{(m.get('arena', 0) + m.get('mmap', 0)) / mb:13.1f}  {r['gc_objects']:10d}  "
              f"{r['threads']:7d}")
    old = tracemalloc.Snapshot.load(str(args.dir / f"snap-{args.first:02d}.pickle"))
    new = tracemalloc.Snapshot.load(str(args.dir / f"snap-{args.last:02d}.pickle"))
    old, new = old.filter_traces(_NOISE), new.filter_traces(_NOISE)
    diff = new.compare_to(old, args.by)
    total = sum(d.size_diff for d in diff)
    print(f"\ntraced Python memory, minute {args.first} -> {args.last}: "
          f"{total / 1024:+.0f} kB\n")
    for d in diff[:args.top]:
        print(f"{d.size_diff / 1024:+8.0f} kB  {d.count_diff:+7d} blocks  "
              f"(now {d.size / 1024:.0f} kB in {d.count})")
        if args.by == "traceback":
            for fr in list(d.traceback)[-args.frames:]:
                print(f"      {fr.filename}:{fr.lineno}")
        else:
            print(f"      {d.traceback[0]}")


if __name__ == "__main__":
    main()
