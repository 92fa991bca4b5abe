// The one timer that wakes the job engine: the engine reports the next time
// it has work (backoff expiry, rate slot, attempt deadline) and this arms an
// Asio steady_timer for it; at expiry it calls JobEngine::Tick(). No polling.
//
// Thread-safety: Arm() and Stop() are thread-safe and never block (they post
// to a strand that owns the timer).
#ifndef ATBRIDGE_SERVER_SERVICE_ENGINE_TIMER_H_
#define ATBRIDGE_SERVER_SERVICE_ENGINE_TIMER_H_

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "absl/time/time.h"
#include "common/clock.h"
#include "server/jobs/engine.h"
#include "server/service/worker_pool.h"

namespace atbridge::server::service {

class EngineTimer {
 public:
  // `engine`, `pool` and `clock` are not owned and must outlive the timer.
  EngineTimer(jobs::JobEngine* engine, WorkerPool* pool, const Clock* clock);

  // Wakes the engine at `at` (InfiniteFuture: not at all). Replaces any
  // earlier time.
  void Arm(absl::Time at);
  // Cancels the timer for good (before the pool stops).
  void Stop();

 private:
  jobs::JobEngine* const engine_;
  const Clock* const clock_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  // Owned by strand_.
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_ENGINE_TIMER_H_
