#include "server/service/worker_pool.h"

#include <exception>

#include "common/log.h"

namespace atbridge::server::service {

WorkerPool::WorkerPool(int threads) : guard_(boost::asio::make_work_guard(io_)) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      // Handlers do not throw (statuses, not exceptions); a throw here is a
      // bug that must not silently kill a worker.
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          ATB_LOG(ERROR) << "worker: unexpected exception: " << e.what();
        }
      }
    });
  }
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Stop() {
  guard_.reset();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace atbridge::server::service
