#include "asio_strand_engine.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <utility>

namespace chatshard::bench {

using StrandType = boost::asio::strand<boost::asio::thread_pool::executor_type>;

struct AsioStrandEngine::Impl {
  explicit Impl(unsigned threads, Handler h) : pool(threads == 0 ? 1 : threads), handler(std::move(h)) {}
  boost::asio::thread_pool pool;
  const Handler handler;
  // Guarded by mu: the strand of each chat seen so far. A map lookup under a
  // mutex per Submit is what a straightforward Asio service does.
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<StrandType>> strands;
  std::atomic<uint64_t> next_id{0};
};

AsioStrandEngine::AsioStrandEngine(unsigned threads, Handler handler)
    : impl_(std::make_unique<Impl>(threads, std::move(handler))) {}

AsioStrandEngine::~AsioStrandEngine() { impl_->pool.join(); }

void AsioStrandEngine::Submit(std::string_view chat_id, std::string_view payload) {
  std::shared_ptr<StrandType> strand;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto [it, inserted] = impl_->strands.try_emplace(std::string(chat_id));
    if (inserted) it->second = std::make_shared<StrandType>(impl_->pool.get_executor());
    strand = it->second;
  }
  const uint64_t id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  boost::asio::post(*strand, [this, chat = std::string(chat_id), body = std::string(payload), id,
                              enqueued = Clock::now()] {
    MessageView view;
    view.chat_id = chat;
    view.payload = body;
    view.id = id;
    view.enqueued = enqueued;
    try {
      (void)impl_->handler(view);
    } catch (...) {
    }
    completed_.fetch_add(1, std::memory_order_relaxed);
  });
}

}  // namespace chatshard::bench
