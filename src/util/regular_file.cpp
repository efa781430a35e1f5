#include "util/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "util/error.hpp"
#include "util/text.hpp"

namespace dualnet {
namespace {

std::string named(const std::string& what, const std::string& path) { return what + " '" + echo(path, 200) + "'"; }

// "a directory", "a FIFO (named pipe)", ... for a file that is not regular.
std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

std::string size_text(std::size_t bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  if (bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string read_regular_file(const std::string& path, const std::string& what, std::size_t max_bytes) {
  const std::string who = named(what, path);
  if (path.empty()) throw UsageError(what + " '' cannot be read: the path is empty");
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked right after.
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f.fd < 0) {
    const int e = errno;
    struct stat st {};
    if (e == ENXIO && ::stat(path.c_str(), &st) == 0)  // a socket, or a device without driver
      throw UsageError(who + " cannot be read: it is " + kind_of(st.st_mode) + ", not a regular file");
    if (e == ENOENT) throw UsageError(who + " cannot be read: no such file");
    if (e == ENOTDIR) throw UsageError(who + " cannot be read: a component of the path is not a directory");
    if (e == EACCES || e == EPERM) throw UsageError(who + " cannot be read: permission denied");
    throw UsageError(who + " cannot be read: " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw UsageError(who + " cannot be read: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw UsageError(who + " cannot be read: it is " + kind_of(st.st_mode) + ", not a regular file");
  if (static_cast<unsigned long long>(st.st_size) > max_bytes)
    throw UsageError(who + " is too large: " + std::to_string(st.st_size) + " bytes, at most " + size_text(max_bytes));
  std::string text;
  std::vector<char> buf(65536);
  for (;;) {
    const ssize_t n = ::read(f.fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw UsageError(who + " cannot be read: " + std::strerror(errno));
    }
    if (n == 0) break;
    // st_size can be 0 or stale (procfs, a file still growing): the limit holds on what is read.
    if (text.size() + static_cast<std::size_t>(n) > max_bytes)
      throw UsageError(who + " is too large: more than " + size_text(max_bytes));
    text.append(buf.data(), static_cast<std::size_t>(n));
  }
  return text;
}

void check_output_file(const std::string& path, const std::string& what) {
  const std::string who = named(what, path);
  if (path.empty()) throw UsageError(what + " '': the path is empty; name a file to write");
  if (path.back() == '/') throw UsageError(who + " names a directory; name a file to write");
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode))
    throw UsageError(who + " cannot be written: it is " + kind_of(st.st_mode) + ", not a regular file");
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat dst {};
  if (::stat(dir.c_str(), &dst) != 0)
    throw UsageError(who + " cannot be written: its directory '" + echo(dir, 200) + "' does not exist");
  if (!S_ISDIR(dst.st_mode)) throw UsageError(who + " cannot be written: '" + echo(dir, 200) + "' is not a directory");
  // access(W_OK) says yes to root on read-only or virtual file systems (/proc): create a
  // file there instead, and remove it at once.
  std::string probe = dir + "/.dualnet-write-test-XXXXXX";
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    const int e = errno;
    throw UsageError(who + " cannot be written: cannot create files in '" + echo(dir, 200) + "' (" + std::strerror(e) +
                     ")");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  if (exists) {
    // Opened for writing without O_TRUNC: nothing changes, but a read-only file is refused.
    const int wfd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (wfd < 0) {
      const int e = errno;
      throw UsageError(who + " cannot be written: " + std::strerror(e));
    }
    ::close(wfd);
  }
}

}  // namespace dualnet
