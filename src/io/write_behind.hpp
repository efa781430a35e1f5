#pragma once
// Rank 0's writes during a run (metrics rows, checkpoints) done by one background thread
// while the next epoch computes. A sealed write waits on the disk (fsync) far longer than it
// uses the CPU, and every rank used to wait for it: about 1 s of a 13 s reference run.
//
// The files are no different. The jobs run one at a time, in the order they were handed
// over, each the same sealed write as before (a temporary file, fsync, rename), so at any
// moment the run directory holds what the synchronous run held at some earlier moment, and
// a kill leaves every write that completed. A job owns copies of what it writes; it touches
// no Kokkos View and calls no MPI. A failed write is reported on the caller's thread by the
// next submit() or by wait(), where on_all_ranks ends every rank with its one line; a job
// handed over after a failure is not run.
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace dualnet {

class WriteBehind {
 public:
  // background false: each job runs inside submit(), as a plain call (no thread).
  explicit WriteBehind(bool background);
  // Finishes the job in hand, then ends the thread. A failure of that job is dropped: the
  // caller is already unwinding from its own error (a finished run has called wait()).
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // Waits for the job before (rethrowing its failure), then hands `job` to the thread.
  void submit(std::function<void()> job);
  // Waits for the job in hand and rethrows its failure: afterwards every write handed over
  // is on disk.
  void wait();
  // Seconds spent in jobs so far (on the thread, or inside submit() without one).
  double busy_seconds();

 private:
  void loop();
  void wait_idle(std::unique_lock<std::mutex>& lock);  // until no job is in hand; rethrows its failure

  std::mutex mutex_;
  std::condition_variable changed_;
  std::function<void()> job_;   // handed over, not yet taken by the thread
  bool pending_ = false;        // from submit() until that job has run
  std::exception_ptr failure_;  // sticky: once a job failed, every later submit() and wait() throws it
  bool stopping_ = false;
  double busy_s_ = 0.0;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace dualnet
