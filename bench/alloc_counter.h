// Counts heap allocations made by any thread of this process while counting
// is on. alloc_counter.cc replaces the global operator new family and
// interposes glibc's allocation functions (malloc, calloc, realloc,
// posix_memalign, aligned_alloc, memalign) with forwarding versions (not
// under ASan or TSan, which replace malloc themselves).
//
// Thread safety: all functions may be called from any thread. Counting is
// process-wide, so only one measurement may be running at a time. While
// counting is off the hooks cost one relaxed load of a flag that is rarely
// written, so other benchmarks in the binary are not perturbed.
//
// Not seen: memory that TBB takes from libtbbmalloc (scalable_malloc, which
// TBB loads with dlopen and calls directly) and anything mmap'd directly.
#ifndef CHATSHARD_BENCH_ALLOC_COUNTER_H_
#define CHATSHARD_BENCH_ALLOC_COUNTER_H_

#include <cstdint>

namespace chatshard::bench {

struct AllocCounts {
  uint64_t operator_new_calls = 0;  // every global operator new / new[] variant
  uint64_t operator_new_bytes = 0;
  // Every glibc heap allocation (malloc family), including those that operator
  // new makes: libstdc++'s and ours both end in malloc.
  uint64_t malloc_calls = 0;
};

// False in ASan/TSan builds, which own malloc: then malloc_calls stays 0.
bool MallocFamilyCounted();
// Resets the counts and turns counting on.
void StartCountingAllocations();
// Turns counting off and returns what was counted since the start.
AllocCounts StopCountingAllocations();

}  // namespace chatshard::bench

#endif  // CHATSHARD_BENCH_ALLOC_COUNTER_H_
