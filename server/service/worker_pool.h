// The server's worker threads: one Asio io_context run by N threads. gRPC
// reactions never block; they post work here (store access, inventory
// updates, job engine calls) and the work finishes the reactor. Timers
// (request deadlines, the job engine's wake-up) run here too.
//
// Thread-safety: thread-safe. Shutdown: Stop() lets queued work and live
// timers complete (callers must cancel their timers first), then joins.
#ifndef ATBRIDGE_SERVER_SERVICE_WORKER_POOL_H_
#define ATBRIDGE_SERVER_SERVICE_WORKER_POOL_H_

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace atbridge::server::service {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // Stop().
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  boost::asio::io_context& io() { return io_; }

  // Runs `fn` on a worker thread, never inline.
  template <typename Fn>
  void Post(Fn&& fn) {
    boost::asio::post(io_, std::forward<Fn>(fn));
  }

  // Waits for queued work and timers to finish and joins the threads.
  // Idempotent. Must not be called from a worker thread.
  void Stop();

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::vector<std::thread> threads_;
};

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_WORKER_POOL_H_
