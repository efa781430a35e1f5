#include "io/sealed_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <new>
#include <system_error>
#include <utility>
#include <vector>

namespace dualnet {

// ---------------------------------------------------------------- SHA-256 (FIPS 180-4)
namespace {

constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

}  // namespace

void Sha256::reset() {
  static constexpr std::uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::memcpy(h_, kInit, sizeof h_);
  buffered_ = 0;
  total_ = 0;
}

namespace {

void compress_portable(std::uint32_t* state, const std::uint8_t* p) {
  std::uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = std::uint32_t(p[4 * i]) << 24 | std::uint32_t(p[4 * i + 1]) << 16 | std::uint32_t(p[4 * i + 2]) << 8 |
           std::uint32_t(p[4 * i + 3]);
  for (int i = 16; i < 64; ++i) {
    const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6],
                h = state[7];
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[i] + w[i];
    const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DUALNET_SHA_X86 1

bool cpu_has_sha() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool ssse3 = c & (1u << 9), sse41 = c & (1u << 19);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ssse3 && sse41 && (b & (1u << 29));  // leaf 7 EBX bit 29: SHA extensions
}

// The SHA extensions keep the state as two vectors, ABEF and CDGH; each sha256rnds2 does
// two rounds, sha256msg1/msg2 extend the message schedule four words at a time.
__attribute__((target("sha,sse4.1,ssse3"))) void compress_x86(std::uint32_t* state, const std::uint8_t* p,
                                                              std::size_t count) {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  const __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  const __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
  for (; count > 0; --count, p += 64) {
    const __m128i abef_before = abef, cdgh_before = cdgh;
    __m128i w[4];  // words 4g..4g+3 of the schedule, for the last four groups g
    for (int g = 0; g < 16; ++g) {
      __m128i& x = w[g % 4];
      if (g < 4) {
        x = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)), byte_swap);
      } else {
        // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], for t = 4g..4g+3
        const __m128i prev = w[(g + 3) % 4], prev2 = w[(g + 2) % 4];
        __m128i t = _mm_sha256msg1_epu32(x, w[(g + 1) % 4]);
        t = _mm_add_epi32(t, _mm_alignr_epi8(prev, prev2, 4));
        x = _mm_sha256msg2_epu32(t, prev);
      }
      const __m128i wk = _mm_add_epi32(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRound + 4 * g)));
      // Two rounds per call: sha256rnds2(cdgh, abef, wk) returns the new ABEF, and the old
      // ABEF is the new CDGH; so the variables trade roles and are back after two calls.
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_before);
    cdgh = _mm_add_epi32(cdgh, cdgh_before);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  dcba = _mm_blend_epi16(feba, dchg, 0xF0);
  hgfe = _mm_alignr_epi8(dchg, feba, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), dcba);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), hgfe);
}
#endif

std::atomic<bool> g_accelerated{
#ifdef DUALNET_SHA_X86
    cpu_has_sha()
#else
    false
#endif
};

}  // namespace

bool Sha256::accelerated() { return g_accelerated.load(std::memory_order_relaxed); }

void Sha256::set_accelerated(bool on) {
#ifdef DUALNET_SHA_X86
  g_accelerated.store(on && cpu_has_sha(), std::memory_order_relaxed);
#else
  (void)on;
#endif
}

void Sha256::compress(const std::uint8_t* blocks, std::size_t count) {
#ifdef DUALNET_SHA_X86
  if (accelerated()) return compress_x86(h_, blocks, count);
#endif
  for (; count > 0; --count, blocks += 64) compress_portable(h_, blocks);
}

void Sha256::update(const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  total_ += n;
  if (buffered_ > 0) {
    const std::size_t take = std::min(n, sizeof buf_ - buffered_);
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    n -= take;
    if (buffered_ < sizeof buf_) return;
    compress(buf_, 1);
    buffered_ = 0;
  }
  const std::size_t blocks = n / 64;
  compress(p, blocks);
  p += 64 * blocks;
  n -= 64 * blocks;
  std::memcpy(buf_, p, n);
  buffered_ = n;
}

Sha256::Digest Sha256::finish() {
  // Padding: 0x80, zeros to 56 mod 64, then the message length in bits, big-endian.
  const std::uint64_t bits = total_ * 8;
  const std::uint8_t one = 0x80, zero[64] = {0};
  update(&one, 1);
  update(zero, (buffered_ <= 56 ? 56 : 120) - buffered_);
  std::uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
  update(len, 8);
  Digest d;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j) d[4 * i + j] = static_cast<std::uint8_t>(h_[i] >> (24 - 8 * j));
  reset();
  return d;
}

std::string Sha256::hex(const Digest& d) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (auto b : d) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

std::string sha256_hex(const void* data, std::size_t n) {
  Sha256 h;
  h.update(data, n);
  return Sha256::hex(h.finish());
}

// ---------------------------------------------------------------- POSIX helpers
void as_write(const std::string& path, const std::string& advice, const std::function<void()>& body,
              const std::function<void()>& cleanup) {
  const auto fail = [&](const std::string& reason) {
    if (cleanup) cleanup();
    return RuntimeError("cannot write '" + path + "': " + reason + (advice.empty() ? "" : "; " + advice));
  };
  try {
    body();
  } catch (const UsageError&) {
    if (cleanup) cleanup();
    throw;
  } catch (const IoError& e) {
    throw fail(e.reason);
  } catch (const Error& e) {
    throw fail(e.what());
  } catch (const std::bad_alloc&) {
    throw fail("out of memory");
  } catch (const std::system_error& e) {
    throw fail(e.code().message());
  }
}

namespace {

constexpr const char* kSealMagic = "dualnet-sealed ";
constexpr const char* kSealVersion = "1";
constexpr std::size_t kChunk = 1 << 20;  // I/O buffer: fixed, whatever a file claims

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail_io(const std::string& step, const std::string& path, int err) {
  throw IoError(step + " '" + path + "': " + errno_text(err), errno_text(err));
}

// Owns a file descriptor; close() reports its error (a delayed write error shows up there).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Reads n bytes at `offset` unless the file ends first; returns the count read.
std::size_t pread_full(int fd, void* buf, std::size_t n, std::uint64_t offset, const std::string& path) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_io("cannot read", path, errno);
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return done;
}

void pwrite_full(int fd, const void* buf, std::size_t n, std::uint64_t offset, const std::string& path) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(fd, static_cast<const char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_io("cannot write", path, errno);
    }
    done += static_cast<std::size_t>(w);
  }
}

void fsync_path(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail_io("cannot open", path, errno);
  // EINVAL: a file system without fsync for this kind of file (some do for directories).
  if (::fsync(fd.get()) != 0 && errno != EINVAL) fail_io("cannot fsync", path, errno);
  if (fd.close() != 0) fail_io("cannot close", path, errno);
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Creates (or truncates) `path` and writes the pieces in order, then fsync and close, every
// return value checked.
void write_new_file(const std::string& path, std::initializer_list<std::pair<const void*, std::size_t>> pieces) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (fd.get() < 0) fail_io("cannot create", path, errno);
  std::uint64_t offset = 0;
  for (const auto& [data, n] : pieces) {
    pwrite_full(fd.get(), data, n, offset, path);
    offset += n;
  }
  if (::fsync(fd.get()) != 0) fail_io("cannot write", path, errno);
  if (fd.close() != 0) fail_io("cannot write", path, errno);
}

// The common part of every replacement: stale temp removed, `fill(tmp)` makes the new file,
// rename over `path`, directory fsync'd. Any failure removes the temp and becomes one line.
void replace_via_temp(const std::string& path, const std::string& advice,
                      const std::function<void(const std::string& tmp)>& fill) {
  const std::string tmp = temp_path(path);
  as_write(
      path, advice,
      [&] {
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) fail_io("cannot remove", tmp, errno);  // a killed writer's
    fill(tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail_io("cannot rename", tmp, errno);
    fsync_path(parent_dir(path));
      },
      [&] { ::unlink(tmp.c_str()); });
}

bool valid_kind(const std::string& kind) {
  if (kind.empty() || kind.size() > 32) return false;
  for (char c : kind)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

// The fields of a block that looks like a seal; it counts only if it equals the canonical
// block rebuilt from them, byte for byte.
struct ParsedSeal {
  std::string version, kind, hex;
  std::uint64_t bytes = 0;
};

// Reads "<key> <value>\n" at `pos`: a value of printable ASCII, at most 80 characters.
bool take_line(const std::string& block, std::size_t& pos, const std::string& key, std::string& value) {
  if (block.compare(pos, key.size() + 1, key + " ") != 0) return false;
  const std::size_t start = pos + key.size() + 1, end = block.find('\n', start);
  if (end == std::string::npos || end == start || end - start > 80) return false;
  value = block.substr(start, end - start);
  for (char c : value)
    if (c <= ' ' || c > '~') return false;
  pos = end + 1;
  return true;
}

bool parse_seal(const std::string& block, ParsedSeal& s) {
  std::size_t pos = std::strlen(kSealMagic);
  std::string bytes;
  if (block.compare(0, pos, kSealMagic) != 0) return false;
  const std::size_t nl = block.find('\n', pos);
  if (nl == std::string::npos || nl == pos || nl - pos > 8) return false;
  s.version = block.substr(pos, nl - pos);
  pos = nl + 1;
  if (!take_line(block, pos, "kind", s.kind) || !take_line(block, pos, "bytes", bytes) ||
      !take_line(block, pos, "sha256", s.hex))
    return false;
  if (bytes.size() > 18 || bytes.find_first_not_of("0123456789") != std::string::npos) return false;
  s.bytes = std::stoull(bytes);  // at most 18 digits: fits
  return true;
}

using Refuse = std::function<UsageError(const std::string& problem)>;

// Opens `path` for reading as a regular file: O_NONBLOCK, so opening a FIFO does not wait
// for a writer; fstat then refuses it, like a directory or a device.
int open_regular(const std::string& path, const std::string& kind, const Refuse& refuse, std::uint64_t& size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw refuse("does not exist");
    throw refuse("cannot be opened: " + errno_text(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw refuse("cannot be read: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw refuse(S_ISDIR(st.st_mode) ? "is a directory, not a " + kind + " file" : "is not a regular file");
  }
  size = static_cast<std::uint64_t>(st.st_size);
  return fd;
}

// Checks the first min(size, kSealBytes) bytes (`block`, zero-padded to kSealBytes) of a
// file of `size` bytes: a canonical seal of `kind` whose length matches. Returns the seal.
ParsedSeal check_seal(const std::string& block, std::uint64_t size, const std::string& kind, const Refuse& refuse) {
  const std::size_t magic = std::strlen(kSealMagic);
  if (block.compare(0, magic, kSealMagic) != 0) {
    if (size == 0) throw refuse("is empty");
    if (size < magic) throw refuse("is truncated or damaged (" + std::to_string(size) + " bytes)");
    throw refuse("is not a dualnet " + kind +
                 " file or was written by an older dualnet (it has no dualnet seal; this dualnet reads only sealed "
                 "files)");
  }
  if (size < kSealBytes) throw refuse("is truncated (" + std::to_string(size) + " bytes)");
  ParsedSeal s;
  if (!parse_seal(block, s)) throw refuse("is damaged (its dualnet seal cannot be read)");
  if (s.version != kSealVersion) {
    if (s.version.find_first_not_of("0123456789") == std::string::npos && s.version > kSealVersion &&
        s.version.size() >= 1)
      throw refuse("has seal version " + s.version +
                   ", which this dualnet does not read (written by a newer dualnet, "
                   "or damaged)");
    throw refuse("is damaged (its dualnet seal cannot be read)");
  }
  if (block != seal_block(s.kind, s.bytes, s.hex) || !valid_kind(s.kind) || s.hex.size() != 64 ||
      s.hex.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw refuse("is damaged (its dualnet seal is not intact)");
  if (s.kind != kind) throw refuse("is a dualnet " + s.kind + " file, not a " + kind + " file");
  const std::uint64_t want = kSealBytes + s.bytes;
  if (size < want)
    throw refuse("is truncated (" + std::to_string(size) + " bytes; it was written with " + std::to_string(want) + ")");
  if (size > want)
    throw refuse("is damaged (" + std::to_string(size) + " bytes; it was written with " + std::to_string(want) + ")");
  return s;
}

Refuse refuser(const std::string& path, const std::string& what, const std::string& advice) {
  return [=](const std::string& problem) {
    return UsageError(what + " '" + path + "' " + problem + (advice.empty() ? "" : "; " + advice));
  };
}

constexpr const char* kMismatch = "is damaged (its checksum does not match)";

}  // namespace

std::string seal_block(const std::string& kind, std::uint64_t bytes, const std::string& hex) {
  std::string text = std::string(kSealMagic) + kSealVersion + "\nkind " + kind + "\nbytes " + std::to_string(bytes) +
                     "\nsha256 " + hex + "\n";
  text.resize(kSealBytes, '\0');  // a longer text (only from a damaged parse) is cut: it will not match
  return text;
}

std::string temp_path(const std::string& path) { return path + ".tmp"; }

void seal(const std::string& path, const std::string& kind) {
  if (!valid_kind(kind)) throw RuntimeError("seal: invalid kind '" + kind + "'");
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) fail_io("cannot open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_io("cannot stat", path, errno);
  // The HDF5 superblock must start right after the user block: sealing a file made without
  // one would overwrite its first bytes.
  static const unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  unsigned char sig[8] = {0};
  if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(kSealBytes + 8) ||
      pread_full(fd.get(), sig, 8, kSealBytes, path) != 8 || std::memcmp(sig, kHdf5Signature, 8) != 0)
    throw IoError("cannot seal '" + path + "': it has no 512-byte HDF5 user block", "it has no 512-byte user block");
  std::vector<char> buf(kChunk);
  Sha256 h;
  const std::uint64_t n = static_cast<std::uint64_t>(st.st_size) - kSealBytes;
  for (std::uint64_t done = 0; done < n;) {
    const std::size_t got =
        pread_full(fd.get(), buf.data(), std::min<std::uint64_t>(n - done, kChunk), kSealBytes + done, path);
    if (got == 0) throw IoError("cannot seal '" + path + "': it shrank while being sealed", "the file shrank");
    h.update(buf.data(), got);
    done += got;
  }
  const std::string block = seal_block(kind, n, Sha256::hex(h.finish()));
  pwrite_full(fd.get(), block.data(), block.size(), 0, path);
  if (::fsync(fd.get()) != 0) fail_io("cannot fsync", path, errno);
  if (fd.close() != 0) fail_io("cannot close", path, errno);
}

void verify_sealed(const std::string& path, const std::string& kind, const std::string& what,
                   const std::string& advice) {
  const Refuse refuse = refuser(path, what, advice);
  std::uint64_t size = 0;
  Fd fd(open_regular(path, kind, refuse, size));
  std::string block(kSealBytes, '\0');
  try {
    pread_full(fd.get(), block.data(), kSealBytes, 0, path);
    const ParsedSeal s = check_seal(block, size, kind, refuse);
    std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(s.bytes, kChunk)));
    Sha256 h;
    for (std::uint64_t done = 0; done < s.bytes;) {
      const std::size_t got =
          pread_full(fd.get(), buf.data(), std::min<std::uint64_t>(s.bytes - done, kChunk), kSealBytes + done, path);
      if (got == 0) throw refuse("is truncated (it shrank while being read)");
      h.update(buf.data(), got);
      done += got;
    }
    if (Sha256::hex(h.finish()) != s.hex) throw refuse(kMismatch);
  } catch (const IoError& e) {
    throw refuse("cannot be read: " + e.reason);
  }
}

std::vector<char> read_sealed(const std::string& path, const std::string& kind, const std::string& what,
                              const std::string& advice) {
  const Refuse refuse = refuser(path, what, advice);
  std::uint64_t size = 0;
  Fd fd(open_regular(path, kind, refuse, size));
  try {
    // The seal first: a file without one is refused before the rest is read.
    std::string block(kSealBytes, '\0');
    pread_full(fd.get(), block.data(), kSealBytes, 0, path);
    const ParsedSeal s = check_seal(block, size, kind, refuse);
    std::vector<char> bytes(static_cast<std::size_t>(size));  // the real size, checked against the seal
    if (pread_full(fd.get(), bytes.data(), bytes.size(), 0, path) != bytes.size())
      throw refuse("is truncated (it shrank while being read)");
    if (std::memcmp(bytes.data(), block.data(), kSealBytes) != 0) throw refuse("changed while being read");
    if (sha256_hex(bytes.data() + kSealBytes, bytes.size() - kSealBytes) != s.hex) throw refuse(kMismatch);
    return bytes;
  } catch (const IoError& e) {
    throw refuse("cannot be read: " + e.reason);
  } catch (const std::bad_alloc&) {
    throw refuse("cannot be read: out of memory for its " + std::to_string(size) + " bytes");
  }
}

void write_sealed(const std::string& path, const std::string& kind, const std::vector<char>& body,
                  const std::string& advice) {
  if (!valid_kind(kind)) throw RuntimeError("seal: invalid kind '" + kind + "'");
  const std::string block = seal_block(kind, body.size(), sha256_hex(body.data(), body.size()));
  replace_via_temp(path, advice, [&](const std::string& tmp) {
    write_new_file(tmp, {{block.data(), block.size()}, {body.data(), body.size()}});
  });
}

void replace_sealed(const std::string& path, const std::string& kind,
                    const std::function<void(const std::string& tmp)>& write, const std::string& advice) {
  replace_via_temp(path, advice, [&](const std::string& tmp) {
    write(tmp);
    seal(tmp, kind);
  });
}

void write_file_atomic(const std::string& path, const std::string& data, const std::string& advice) {
  replace_via_temp(path, advice, [&](const std::string& tmp) { write_new_file(tmp, {{data.data(), data.size()}}); });
}

std::string read_small_regular_file(const std::string& path, const std::string& what, std::size_t limit) {
  const Refuse refuse = refuser(path, what, "");
  std::uint64_t size = 0;
  Fd fd(open_regular(path, "regular", refuse, size));
  if (size > limit)
    throw refuse("is too large (" + std::to_string(size) + " bytes, at most " + std::to_string(limit) + ")");
  std::string text(limit + 1, '\0');  // one more: a file that grew since fstat is seen
  try {
    text.resize(pread_full(fd.get(), text.data(), text.size(), 0, path));
  } catch (const IoError& e) {
    throw refuse("cannot be read: " + e.reason);
  }
  if (text.size() > limit) throw refuse("is too large (more than " + std::to_string(limit) + " bytes)");
  return text;
}

}  // namespace dualnet
