// The one place the adapter includes moodycamel: its include path differs
// between installs (Debian: <concurrentqueue/...>), and its names stay in src/.
#ifndef CHATSHARD_REDIS_SRC_WORK_QUEUE_H_
#define CHATSHARD_REDIS_SRC_WORK_QUEUE_H_

#if __has_include(<concurrentqueue/blockingconcurrentqueue.h>)
#include <concurrentqueue/blockingconcurrentqueue.h>
#elif __has_include(<moodycamel/blockingconcurrentqueue.h>)
#include <moodycamel/blockingconcurrentqueue.h>
#else
#include <blockingconcurrentqueue.h>
#endif

namespace chatshard::redis::internal {

// Lock-free MPMC queue with a lightweight semaphore so the single consumer
// (the adapter's I/O thread) can sleep until an item or a timeout arrives.
// FIFO per producer thread only.
template <typename T>
using WorkQueue = moodycamel::BlockingConcurrentQueue<T>;

}  // namespace chatshard::redis::internal

#endif  // CHATSHARD_REDIS_SRC_WORK_QUEUE_H_
