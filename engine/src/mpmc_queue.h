// The one place that includes moodycamel::ConcurrentQueue. Its include path
// differs between installs (Debian: <concurrentqueue/concurrentqueue.h>;
// upstream's CMake install: <moodycamel/concurrentqueue.h>), and its names
// stay inside engine/src.
#ifndef CHATSHARD_ENGINE_SRC_MPMC_QUEUE_H_
#define CHATSHARD_ENGINE_SRC_MPMC_QUEUE_H_

#if __has_include(<concurrentqueue/concurrentqueue.h>)
#include <concurrentqueue/concurrentqueue.h>
#elif __has_include(<moodycamel/concurrentqueue.h>)
#include <moodycamel/concurrentqueue.h>
#else
#include <concurrentqueue.h>
#endif

#include <cstddef>

namespace chatshard::internal {

struct MpmcQueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
  // Larger blocks than the default 32 mean fewer block hand-overs between
  // producer and consumer. Not yet compared against other sizes in bench/.
  static const size_t BLOCK_SIZE = 128;
};

template <typename T>
using MpmcQueue = moodycamel::ConcurrentQueue<T, MpmcQueueTraits>;
using QueueProducerToken = moodycamel::ProducerToken;
using QueueConsumerToken = moodycamel::ConsumerToken;

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_MPMC_QUEUE_H_
