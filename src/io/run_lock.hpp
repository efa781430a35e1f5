#pragma once
// One writer per run directory. The process that trains in <out> (a new run, a resume, an
// overwrite) holds an exclusive flock on the directory itself for its whole life; a second
// writer is refused while the first lives. The kernel drops the lock when the holder dies,
// even by SIGKILL, so a killed run never blocks its own resume. Locking the directory's
// descriptor (not a lock file) means a refused command creates nothing in the run.
#include <string>

namespace dualnet {

class RunLock {
 public:
  RunLock() = default;
  RunLock(RunLock&& o) noexcept;
  RunLock& operator=(RunLock&& o) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock();

  // Locks the existing directory `dir`, or throws UsageError (one line) if another process
  // holds it. On file systems without flock support it warns once on stderr and returns an
  // unlocked RunLock rather than refuse every run there.
  static RunLock acquire(const std::string& dir);
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace dualnet
