#include "io/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "util/error.hpp"

namespace dualnet {

RunLock::RunLock(RunLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

RunLock& RunLock::operator=(RunLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

RunLock RunLock::acquire(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw UsageError("out: cannot open run directory '" + dir + "': " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      throw UsageError("out: run directory '" + dir +
                       "' is in use by another dualnet process (a run or resume in it is still alive); wait for it "
                       "to end or stop it first");
    std::fprintf(stderr, "dualnet: warning: cannot lock run directory '%s' (%s); nothing stops a second writer\n",
                 dir.c_str(), std::strerror(err));
    return RunLock();
  }
  RunLock lock;
  lock.fd_ = fd;
  return lock;
}

}  // namespace dualnet
