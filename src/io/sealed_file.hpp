#pragma once
// Sealed files: every file dualnet writes and later reads again (checkpoints, metrics.h5)
// carries in its first 512 bytes (an HDF5 user block, which HDF5 readers skip) a plain-text
// seal: its kind, its length and the SHA-256 of everything after the seal. A reader checks
// the seal with plain POSIX I/O before any HDF5 call, so damaged bytes (a flipped bit, a
// truncation, a foreign file) are refused with one line and never reach the HDF5 parser,
// which can hang or crash on them. Such files are only ever replaced whole: written under a
// temporary name, sealed, fsync'd and renamed, so a reader or a crash sees the old file or
// the new one, never a mixture, and a failed write (a full disk) leaves the old one intact.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace dualnet {

// Size of the seal: the HDF5 user block of a sealed file (HDF5 wants a power of two >= 512).
constexpr std::size_t kSealBytes = 512;

// SHA-256 (FIPS 180-4), fed in pieces: hashing a file never needs it whole in memory.
// Uses the x86 SHA extensions where the CPU has them (several times faster: every metrics
// row hashes the whole file twice), else portable code; both give the same digests.
class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;
  Sha256() { reset(); }
  void reset();
  void update(const void* data, std::size_t n);
  Digest finish();  // the digest of everything fed since the last reset; resets
  static std::string hex(const Digest& d);
  // Whether the SHA extensions are used; tests switch them off to check the portable code.
  static bool accelerated();
  static void set_accelerated(bool on);  // on: only where the CPU has them

 private:
  void compress(const std::uint8_t* blocks, std::size_t count);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;  // bytes fed
};

std::string sha256_hex(const void* data, std::size_t n);

// One failed I/O step. `reason` is the cause alone (strerror's words, or HDF5's), so a
// caller can say what failed in its own terms: "cannot write 'X': <reason>".
struct IoError : RuntimeError {
  IoError(const std::string& what, std::string reason_) : RuntimeError(what), reason(std::move(reason_)) {}
  std::string reason;
};

// Runs `body`, which writes `path`. A UsageError passes through; any other failure (I/O,
// HDF5, memory) runs `cleanup` and becomes the one line "cannot write '<path>': <reason>;
// <advice>" every failed write ends in.
void as_write(const std::string& path, const std::string& advice, const std::function<void()>& body,
              const std::function<void()>& cleanup = {});

// The canonical seal: "dualnet-sealed 1\nkind K\nbytes N\nsha256 H\n", zero bytes to 512.
// Any other user block (one more space, a stray byte in the padding) is not a seal.
std::string seal_block(const std::string& kind, std::uint64_t bytes, const std::string& sha256_hex);

// Writes the seal of the closed file `path` (created with a kSealBytes user block) over
// its user block and fsyncs it. IoError on failure.
void seal(const std::string& path, const std::string& kind);

// Refuses, with one UsageError line "<what> '<path>' <problem>[; <advice>]", a path that is
// not a regular file, is truncated, has no or a damaged seal, is of another kind, or whose
// bytes do not match the seal's hash. POSIX reads only (never HDF5); never blocks on a FIFO;
// memory use is fixed, whatever the file claims.
void verify_sealed(const std::string& path, const std::string& kind, const std::string& what,
                   const std::string& advice = "");

// The same check, returning the whole file (seal included) as read: what HDF5 parses next
// (h5::open_image) is exactly the bytes that were checked. Allocates the file's real size.
std::vector<char> read_sealed(const std::string& path, const std::string& kind, const std::string& what,
                              const std::string& advice = "");

// Replaces `path` whole with a sealed file: the seal, then `body` (an HDF5 image whose
// addresses start after the user block, h5::file_image). Written under temp_path(path),
// fsync'd, renamed over `path`, then the directory fsync'd. On any failure the temporary
// file is removed, `path` is left as it was, and one RuntimeError line
// "cannot write '<path>': <reason>[; <advice>]" is thrown.
void write_sealed(const std::string& path, const std::string& kind, const std::vector<char>& body,
                  const std::string& advice = "");

// The same for a file another writer makes: `write(tmp)` creates and closes the file at
// `tmp` with a kSealBytes user block; it is then sealed, renamed, and so on as above. A
// UsageError from `write` passes through unchanged (after the temporary file is removed).
void replace_sealed(const std::string& path, const std::string& kind,
                    const std::function<void(const std::string& tmp)>& write, const std::string& advice = "");

// Replaces a small unsealed file (config.toml, latest, timing.json) the same way.
void write_file_atomic(const std::string& path, const std::string& data, const std::string& advice = "");

// The temporary name the writers above use: "<path>.tmp", in the same directory (rename is
// atomic only within one file system). A killed writer's leftover is replaced next time.
std::string temp_path(const std::string& path);

// Reads a small regular file whole; a FIFO, a directory or a file over `limit` bytes is
// refused with one UsageError line "<what> '<path>' ..." (never blocks, never reads more).
std::string read_small_regular_file(const std::string& path, const std::string& what, std::size_t limit);

}  // namespace dualnet
