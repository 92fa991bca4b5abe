#include "client/rpc/console_stream.h"

#include <utility>
#include <vector>

#include "common/grpc_status.h"

namespace atbridge::client {

ConsoleStream::ConsoleStream(Starter starter, Callbacks callbacks)
    : starter_(std::move(starter)), callbacks_(std::move(callbacks)) {}

void ConsoleStream::Start(v1::ConsoleOpen open) {
  starter_(&ctx_, this);
  std::lock_guard<std::mutex> lock(mu_);
  Pending first;
  *first.message.mutable_open() = std::move(open);
  queue_.push_back(std::move(first));
  StartNextWriteLocked();
  reading_ = true;
  StartRead(&in_);
  AddHold();  // Reads and writes are also started from non-reaction threads.
  StartCall();
}

void ConsoleStream::Write(std::string bytes, std::function<void(bool)> written) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!hold_removed_ && !close_requested_ && !cancelled_) {
      Pending p;
      p.message.set_data(std::move(bytes));
      p.written = std::move(written);
      queue_.push_back(std::move(p));
      StartNextWriteLocked();
      return;
    }
  }
  if (written) written(false);
}

void ConsoleStream::ResumeReading() {
  std::lock_guard<std::mutex> lock(mu_);
  if (reading_ || read_done_) return;
  reading_ = true;
  StartRead(&in_);
}

void ConsoleStream::CloseWrites() {
  std::lock_guard<std::mutex> lock(mu_);
  if (close_requested_) return;
  close_requested_ = true;
  StartNextWriteLocked();
}

void ConsoleStream::Cancel() {
  ctx_.TryCancel();
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (!reading_) {
    // No read will report the end: release the hold ourselves.
    read_done_ = true;
    MaybeRemoveHoldLocked();
  }
}

void ConsoleStream::OnReadDone(bool ok) {
  v1::ConsoleOut out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    if (!ok || cancelled_) {
      read_done_ = true;
      MaybeRemoveHoldLocked();
      return;
    }
    out = std::move(in_);
    in_.Clear();
  }
  if (callbacks_.on_output) callbacks_.on_output(std::move(out));
}

void ConsoleStream::OnWriteDone(bool ok) {
  std::vector<std::function<void(bool)>> failed;
  std::function<void(bool)> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!queue_.empty()) {
      done = std::move(queue_.front().written);
      queue_.pop_front();
    }
    if (!ok) {
      // The stream is broken: nothing queued will be sent.
      for (auto& p : queue_) {
        if (p.written) failed.push_back(std::move(p.written));
      }
      queue_.clear();
      close_requested_ = true;
      writes_done_sent_ = true;
    } else {
      StartNextWriteLocked();
    }
  }
  if (done) done(ok);
  for (auto& f : failed) f(false);
}

void ConsoleStream::OnDone(const grpc::Status& status) {
  std::vector<std::function<void(bool)>> failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : queue_) {
      if (p.written) failed.push_back(std::move(p.written));
    }
    queue_.clear();
  }
  for (auto& f : failed) f(false);
  // Last use of this object: the owner may destroy it once on_done ran.
  auto on_done = std::move(callbacks_.on_done);
  if (on_done) on_done(FromGrpcStatus(status));
}

void ConsoleStream::StartNextWriteLocked() {
  if (writing_) return;
  if (queue_.empty()) {
    if (close_requested_ && !writes_done_sent_ && !hold_removed_) {
      writes_done_sent_ = true;
      StartWritesDone();
    }
    return;
  }
  writing_ = true;
  StartWrite(&queue_.front().message);
}

void ConsoleStream::MaybeRemoveHoldLocked() {
  if (read_done_ && !hold_removed_) {
    hold_removed_ = true;
    RemoveHold();
  }
}

}  // namespace atbridge::client
