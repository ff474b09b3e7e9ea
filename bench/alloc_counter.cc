// Global allocation hooks for alloc_counter.h. This translation unit replaces
// the global operator new/delete family ([replacement.functions]) and, through
// ELF symbol interposition, glibc's allocation entry points; each forwards to
// glibc's own implementation (__libc_malloc and friends, exported for exactly
// this use), so every pointer is still freed by glibc's free.
#include "alloc_counter.h"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "naive_engine.h"  // kCacheLineBytes

// ASan and TSan replace malloc themselves; a second replacement here would
// hand glibc blocks to their free. Under them only operator new is counted.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CHATSHARD_BENCH_INTERPOSE_MALLOC 0
#else
#define CHATSHARD_BENCH_INTERPOSE_MALLOC 1
#endif

#if CHATSHARD_BENCH_INTERPOSE_MALLOC
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* pointer, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
}
#endif

namespace chatshard::bench {
namespace {

// The flag is read on every allocation of every thread and written twice per
// measurement: on its own line it stays shared in every core's cache. The
// counters are written only while counting.
struct alignas(kCacheLineBytes) CountingFlag {
  std::atomic<bool> on{false};
};
struct alignas(kCacheLineBytes) Counters {
  std::atomic<uint64_t> new_calls{0};
  std::atomic<uint64_t> new_bytes{0};
  std::atomic<uint64_t> malloc_calls{0};
};

CountingFlag counting;
Counters counters;

// Relaxed throughout: the counts are read after the measured work has been
// joined through the benchmark's own synchronisation, and they order nothing.
bool Counting() { return counting.on.load(std::memory_order_relaxed); }

void CountNew(size_t size) {
  if (!Counting()) return;
  counters.new_calls.fetch_add(1, std::memory_order_relaxed);
  counters.new_bytes.fetch_add(size, std::memory_order_relaxed);
}

[[maybe_unused]] void CountMalloc() {
  if (Counting()) counters.malloc_calls.fetch_add(1, std::memory_order_relaxed);
}

void* NewOrNull(size_t size) {
  CountNew(size);
  return std::malloc(size == 0 ? 1 : size);
}

void* AlignedNewOrNull(size_t size, std::align_val_t alignment) {
  CountNew(size);
  const size_t align = static_cast<size_t>(alignment);
  // aligned_alloc wants a size that is a multiple of the alignment.
  const size_t rounded = ((size == 0 ? 1 : size) + align - 1) / align * align;
  return std::aligned_alloc(align, rounded);
}

template <typename Allocate>
void* NewOrThrow(Allocate allocate) {
  for (;;) {
    if (void* pointer = allocate()) return pointer;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

bool MallocFamilyCounted() { return CHATSHARD_BENCH_INTERPOSE_MALLOC != 0; }

void StartCountingAllocations() {
  counters.new_calls.store(0, std::memory_order_relaxed);
  counters.new_bytes.store(0, std::memory_order_relaxed);
  counters.malloc_calls.store(0, std::memory_order_relaxed);
  counting.on.store(true, std::memory_order_relaxed);
}

AllocCounts StopCountingAllocations() {
  counting.on.store(false, std::memory_order_relaxed);
  return AllocCounts{counters.new_calls.load(std::memory_order_relaxed),
                     counters.new_bytes.load(std::memory_order_relaxed),
                     counters.malloc_calls.load(std::memory_order_relaxed)};
}

}  // namespace chatshard::bench

namespace cb = chatshard::bench;

void* operator new(size_t size) {
  return cb::NewOrThrow([size] { return cb::NewOrNull(size); });
}
void* operator new[](size_t size) {
  return cb::NewOrThrow([size] { return cb::NewOrNull(size); });
}
void* operator new(size_t size, const std::nothrow_t&) noexcept { return cb::NewOrNull(size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return cb::NewOrNull(size); }
void* operator new(size_t size, std::align_val_t alignment) {
  return cb::NewOrThrow([=] { return cb::AlignedNewOrNull(size, alignment); });
}
void* operator new[](size_t size, std::align_val_t alignment) {
  return cb::NewOrThrow([=] { return cb::AlignedNewOrNull(size, alignment); });
}
void* operator new(size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return cb::AlignedNewOrNull(size, alignment);
}
void* operator new[](size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return cb::AlignedNewOrNull(size, alignment);
}

void operator delete(void* pointer) noexcept { std::free(pointer); }
void operator delete[](void* pointer) noexcept { std::free(pointer); }
void operator delete(void* pointer, size_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, size_t) noexcept { std::free(pointer); }
void operator delete(void* pointer, const std::nothrow_t&) noexcept { std::free(pointer); }
void operator delete[](void* pointer, const std::nothrow_t&) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::align_val_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, std::align_val_t) noexcept { std::free(pointer); }
void operator delete(void* pointer, size_t, std::align_val_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, size_t, std::align_val_t) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(pointer);
}
void operator delete[](void* pointer, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(pointer);
}

#if CHATSHARD_BENCH_INTERPOSE_MALLOC
// glibc's allocation entry points. free is left alone: every pointer still
// comes from glibc's allocator, so glibc's free is right for all of them.
extern "C" {

void* malloc(size_t size) noexcept {
  cb::CountMalloc();
  return __libc_malloc(size);
}

void* calloc(size_t count, size_t size) noexcept {
  cb::CountMalloc();
  return __libc_calloc(count, size);
}

void* realloc(void* pointer, size_t size) noexcept {
  cb::CountMalloc();
  return __libc_realloc(pointer, size);
}

void* memalign(size_t alignment, size_t size) noexcept {
  cb::CountMalloc();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) noexcept {
  cb::CountMalloc();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** result, size_t alignment, size_t size) noexcept {
  if (alignment == 0 || alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) {
    return EINVAL;
  }
  cb::CountMalloc();
  void* pointer = __libc_memalign(alignment, size);
  if (pointer == nullptr) return ENOMEM;
  *result = pointer;
  return 0;
}

}  // extern "C"
#endif  // CHATSHARD_BENCH_INTERPOSE_MALLOC
