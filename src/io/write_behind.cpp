#include "io/write_behind.hpp"

#include <pthread.h>

#include <csignal>
#include <utility>

#include "util/wall_clock.hpp"

namespace dualnet {

namespace {
// Runs `job`, adding its seconds to *seconds; returns its failure (null if none).
std::exception_ptr run_timed(const std::function<void()>& job, double* seconds) {
  const double t0 = now_s();
  std::exception_ptr failure;
  try {
    job();
  } catch (...) {
    failure = std::current_exception();
  }
  *seconds += now_s() - t0;
  return failure;
}
}  // namespace

WriteBehind::WriteBehind(bool background) {
  if (!background) return;
  // The thread blocks every signal, so that a stop signal's handler runs on the main thread
  // and no write of the thread is interrupted by one. It inherits the mask it starts with.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  thread_ = std::thread([this] { loop(); });
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

WriteBehind::~WriteBehind() {
  if (!thread_.joinable()) return;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !pending_; });
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void WriteBehind::wait_idle(std::unique_lock<std::mutex>& lock) {
  changed_.wait(lock, [&] { return !pending_; });
  if (failure_) std::rethrow_exception(failure_);
}

void WriteBehind::submit(std::function<void()> job) {
  std::unique_lock<std::mutex> lock(mutex_);
  wait_idle(lock);
  if (!thread_.joinable()) {
    failure_ = run_timed(job, &busy_s_);
    if (failure_) std::rethrow_exception(failure_);
    return;
  }
  job_ = std::move(job);
  pending_ = true;
  lock.unlock();
  changed_.notify_all();
}

void WriteBehind::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  wait_idle(lock);
}

double WriteBehind::busy_seconds() {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_s_;
}

void WriteBehind::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return pending_ || stopping_; });
    if (!pending_) return;  // stopping, nothing in hand
    const std::function<void()> job = std::move(job_);
    job_ = nullptr;
    lock.unlock();
    double seconds = 0.0;
    const std::exception_ptr failure = run_timed(job, &seconds);
    lock.lock();
    busy_s_ += seconds;
    if (failure) failure_ = failure;
    pending_ = false;
    changed_.notify_all();
  }
}

}  // namespace dualnet
