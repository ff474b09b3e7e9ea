// SpinLock: a test-and-test-and-set lock for short critical sections on the
// consumer side of a shard (one per chat turn or per batch, never per
// producer call). Falls back to yielding the CPU after a bounded spin so a
// preempted holder on an oversubscribed machine does not burn a core.
#ifndef CHATSHARD_ENGINE_SRC_SPIN_LOCK_H_
#define CHATSHARD_ENGINE_SRC_SPIN_LOCK_H_

#include <atomic>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace chatshard::internal {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

class SpinLock {
 public:
  void lock() {
    for (int spins = 0;; ++spins) {
      // acquire: the holder's writes before unlock() are visible after lock().
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins++ < 128) {
          CpuRelax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  // release: publishes the critical section to the next lock().
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_SPIN_LOCK_H_
