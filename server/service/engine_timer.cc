#include "server/service/engine_timer.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <chrono>

namespace atbridge::server::service {

EngineTimer::EngineTimer(jobs::JobEngine* engine, WorkerPool* pool, const Clock* clock)
    : engine_(engine),
      clock_(clock),
      strand_(boost::asio::make_strand(pool->io())),
      timer_(strand_) {}

void EngineTimer::Arm(absl::Time at) {
  boost::asio::post(strand_, [this, at] {
    if (stopped_) return;
    if (at == absl::InfiniteFuture()) {
      timer_.cancel();
      return;
    }
    absl::Duration wait = at - clock_->Now();
    if (wait < absl::ZeroDuration()) wait = absl::ZeroDuration();
    timer_.expires_after(std::chrono::nanoseconds(absl::ToInt64Nanoseconds(wait)));
    timer_.async_wait(
        boost::asio::bind_executor(strand_, [this](const boost::system::error_code& ec) {
          if (ec || stopped_) return;
          engine_->Tick();
        }));
  });
}

void EngineTimer::Stop() {
  boost::asio::post(strand_, [this] {
    stopped_ = true;
    timer_.cancel();
  });
}

}  // namespace atbridge::server::service
