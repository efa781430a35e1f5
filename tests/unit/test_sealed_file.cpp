// Sealed files (io/sealed_file.hpp) and the checkpoints built on them: SHA-256 against the
// FIPS 180-4 examples; a sealed file round-trips; every single-bit flip, truncation,
// extension or zeroed seal is refused with one UsageError line and never hangs; a FIFO or a
// directory is refused without blocking; a write that fails (a full file system) leaves the
// original file byte-identical and no temporary file; `latest` cannot point outside a run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "io/hdf5.hpp"
#include "io/sealed_file.hpp"
#include "util/error.hpp"

namespace fs = std::filesystem;

namespace dualnet {
namespace {

std::string sha_of(const std::string& s) { return sha256_hex(s.data(), s.size()); }

// Both implementations: the SHA extensions (where the CPU has them) and the portable code.
class Sha256Both : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && (Sha256::set_accelerated(true), !Sha256::accelerated()))
      GTEST_SKIP() << "this CPU has no SHA extensions";
    Sha256::set_accelerated(GetParam());
  }
  void TearDown() override { Sha256::set_accelerated(true); }
};
INSTANTIATE_TEST_SUITE_P(Sha256, Sha256Both, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Accelerated" : "Portable"; });

TEST_P(Sha256Both, FipsExamples) {
  EXPECT_EQ(sha_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                   "mnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha_of(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Sha256Both, PiecesGiveTheSameDigestAsTheWhole) {
  // Uneven pieces cross the 64-byte block and the 56-byte padding boundaries.
  const std::string a(1000000, 'a');
  Sha256 h;
  size_t pos = 0;
  for (size_t piece = 1; pos < a.size(); piece = piece * 7 % 193 + 1) {
    const size_t n = std::min(piece, a.size() - pos);
    h.update(a.data() + pos, n);
    pos += n;
  }
  EXPECT_EQ(Sha256::hex(h.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  for (size_t n : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 121u}) {
    const std::string s(n, 'x');
    Sha256 whole, bytes;
    whole.update(s.data(), n);
    for (char c : s) bytes.update(&c, 1);
    EXPECT_EQ(Sha256::hex(whole.finish()), Sha256::hex(bytes.finish())) << n;
  }
}

TEST(Sha256, AcceleratedAndPortableAgree) {
  std::string s;
  for (int i = 0; i < 100000; ++i) s += static_cast<char>(i * 2654435761u >> 13);
  Sha256::set_accelerated(false);
  const std::string portable = sha_of(s);
  Sha256::set_accelerated(true);
  EXPECT_EQ(sha_of(s), portable) << (Sha256::accelerated() ? "accelerated" : "portable both times");
}

// A fresh directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "dualnet-sealed-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<char> bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void put_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A small sealed HDF5 file of `kind` with one dataset of n doubles 0, 1, 2, ...
void make_sealed(const std::string& path, const std::string& kind, size_t n = 16) {
  h5::write_sealed_file(path, kind, "", [&](const h5::Handle& file) {
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
    h5::write_attr(file, "note", std::string("a variable-length string attribute"));
    h5::write_dataset(file, "x", {static_cast<hsize_t>(n)}, v.data());
  });
}

// The UsageError message of f ("" and a test failure when f throws nothing or another error).
template <class F>
std::string refusal(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected UsageError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected UsageError, nothing was thrown";
  return "";
}

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

TEST(SealedFile, RoundTrip) {
  TempDir dir;
  const std::string p = dir / "a.h5";
  make_sealed(p, "checkpoint");
  verify_sealed(p, "checkpoint", "test");
  const auto bytes = read_sealed(p, "checkpoint", "test");
  EXPECT_EQ(bytes, bytes_of(p));
  const std::string head(bytes.begin(), bytes.begin() + kSealBytes);
  EXPECT_EQ(head.rfind("dualnet-sealed 1\nkind checkpoint\nbytes " + std::to_string(bytes.size() - kSealBytes) +
                           "\nsha256 " + sha256_hex(bytes.data() + kSealBytes, bytes.size() - kSealBytes) + "\n",
                       0),
            0u);
  EXPECT_EQ(head, seal_block("checkpoint", bytes.size() - kSealBytes,
                             sha256_hex(bytes.data() + kSealBytes, bytes.size() - kSealBytes)));
  h5::Handle file = h5::open_sealed_file(p, "checkpoint", "test");
  const auto x = h5::read_doubles(file, "x");
  ASSERT_EQ(x.size(), 16u);
  EXPECT_EQ(x[15], 15.0);
  EXPECT_EQ(h5::read_attr_string(file, "note"), "a variable-length string attribute");
  EXPECT_FALSE(fs::exists(temp_path(p)));
}

TEST(SealedFile, SealInPlaceMatchesTheWriter) {
  // seal() on a file written with an empty user block gives the same bytes as write_sealed.
  TempDir dir;
  const std::string a = dir / "a.h5", b = dir / "b.h5";
  make_sealed(a, "metrics");
  auto bytes = bytes_of(a);
  std::fill(bytes.begin(), bytes.begin() + kSealBytes, '\0');
  put_bytes(b, bytes);
  seal(b, "metrics");
  EXPECT_EQ(bytes_of(a), bytes_of(b));
  // replace_sealed does the same for a file its callback writes.
  const std::string c = dir / "c.h5";
  replace_sealed(c, "metrics", [&](const std::string& tmp) { put_bytes(tmp, bytes); });
  EXPECT_EQ(bytes_of(a), bytes_of(c));
  // A file without a user block is not sealed (its superblock would be overwritten).
  const std::string d = dir / "d.h5";
  { h5::Handle f = h5::create_file(d); }
  const auto before = bytes_of(d);
  EXPECT_THROW(seal(d, "metrics"), IoError);
  EXPECT_EQ(bytes_of(d), before);
}

TEST(SealedFile, EveryFlippedByteIsRefused) {
  TempDir dir;
  const std::string good = dir / "good.h5", bad = dir / "bad.h5";
  make_sealed(good, "checkpoint");
  const auto bytes = bytes_of(good);
  ASSERT_LT(bytes.size(), 8000u) << "keep the file small: every byte is flipped";
  put_bytes(bad, bytes);
  // One bit per byte, a different one from byte to byte; flipped in place and restored.
  const int fd = ::open(bad.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const auto t0 = std::chrono::steady_clock::now();
  size_t refused = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char flipped = static_cast<char>(bytes[i] ^ (1 << (i % 8)));
    ASSERT_EQ(::pwrite(fd, &flipped, 1, static_cast<off_t>(i)), 1);
    try {
      verify_sealed(bad, "checkpoint", "resume: checkpoint");
      ADD_FAILURE() << "flip of bit " << i % 8 << " at byte " << i << " was accepted";
    } catch (const UsageError& e) {
      ++refused;
      if (!one_line(e.what())) ADD_FAILURE() << "not one line: " << e.what();
    }
    ASSERT_EQ(::pwrite(fd, &bytes[i], 1, static_cast<off_t>(i)), 1);
  }
  ::close(fd);
  EXPECT_EQ(refused, bytes.size());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
  verify_sealed(bad, "checkpoint", "restored");
  // The in-memory reader applies the same rules: spot checks in the seal, padding and body.
  for (size_t i :
       {size_t(3), size_t(30), size_t(200), kSealBytes - 1, kSealBytes, bytes.size() / 2, bytes.size() - 1}) {
    auto damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x10);
    put_bytes(bad, damaged);
    refusal([&] { read_sealed(bad, "checkpoint", "resume: checkpoint"); });
  }
}

TEST(SealedFile, DamageOfEveryKindIsNamed) {
  TempDir dir;
  const std::string good = dir / "good.h5", bad = dir / "bad.h5";
  make_sealed(good, "checkpoint");
  const auto bytes = bytes_of(good);
  const auto message = [&](const std::vector<char>& damaged) {
    put_bytes(bad, damaged);
    const std::string m = refusal([&] { verify_sealed(bad, "checkpoint", "resume: checkpoint"); });
    EXPECT_TRUE(one_line(m)) << m;
    EXPECT_NE(m.find("resume: checkpoint '" + bad + "'"), std::string::npos) << m;
    return m;
  };
  for (size_t n : {size_t(1), size_t(100), kSealBytes - 1, kSealBytes, kSealBytes + 1, bytes.size() - 1})
    EXPECT_NE(message(std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(n))).find("truncated"),
              std::string::npos)
        << n;
  EXPECT_NE(message({}).find("empty"), std::string::npos);
  auto longer = bytes;
  longer.push_back('\0');
  EXPECT_NE(message(longer).find("damaged"), std::string::npos);
  auto zeroed = bytes;
  std::fill(zeroed.begin(), zeroed.begin() + kSealBytes, '\0');
  EXPECT_NE(message(zeroed).find("older dualnet"), std::string::npos);
  auto body = bytes;
  body[kSealBytes + 100] ^= 1;
  EXPECT_NE(message(body).find("checksum does not match"), std::string::npos);
  auto padding = bytes;
  padding[kSealBytes - 1] = ' ';
  EXPECT_NE(message(padding).find("seal is not intact"), std::string::npos);
  auto newer = bytes;
  newer[15] = '2';
  EXPECT_NE(message(newer).find("newer dualnet"), std::string::npos);
  // An HDF5 file without a seal (older dualnet, or another program) and another kind.
  { h5::Handle f = h5::create_file(bad); }
  const std::string unsealed = refusal([&] { verify_sealed(bad, "checkpoint", "resume: checkpoint"); });
  EXPECT_NE(unsealed.find("is not a dualnet checkpoint file or was written by an older dualnet"), std::string::npos)
      << unsealed;
  make_sealed(bad, "metrics");
  EXPECT_NE(refusal([&] { verify_sealed(bad, "checkpoint", "x"); }).find("is a dualnet metrics file, not a checkpoint"),
            std::string::npos);
  EXPECT_NE(refusal([&] { verify_sealed(dir / "missing.h5", "checkpoint", "x"); }).find("does not exist"),
            std::string::npos);
}

// Runs f on another thread; fails (instead of hanging) if it takes longer than 10 s. A FIFO
// reader that did block is then released by opening the FIFO for writing.
template <class F>
std::string refusal_within_seconds(F f, const std::string& fifo = "") {
  auto result = std::async(std::launch::async, [f] { return refusal(f); });
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked for 10 s";
    if (!fifo.empty()) ::close(::open(fifo.c_str(), O_RDWR | O_NONBLOCK));
  }
  return result.get();
}

TEST(SealedFile, FifoAndDirectoryAreRefusedWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir / "fifo.h5";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(refusal_within_seconds([&] { verify_sealed(fifo, "checkpoint", "x"); }, fifo).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(refusal_within_seconds([&] { read_sealed(fifo, "checkpoint", "x"); }, fifo).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(refusal_within_seconds([&] { read_small_regular_file(fifo, "x", 4096); }, fifo).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(refusal_within_seconds([&] { verify_sealed(dir.path().string(), "checkpoint", "x"); }).find("directory"),
            std::string::npos);
}

// A small tmpfs at `dir`, unmounted at the end; mounted() is false where that is not allowed.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, const std::string& size) : dir_(dir) {
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Fills the file system holding `dir` (a pad file written until ENOSPC).
void fill_disk(const std::string& dir) {
  std::FILE* f = std::fopen((fs::path(dir) / "pad").c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::vector<char> block(4096, 'p');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
  }
  std::fclose(f);
}

TEST(SealedFile, FailedReplacementLeavesTheOriginal) {
  TempDir dir;
  const std::string mnt = dir / "disk";
  fs::create_directory(mnt);
  SmallDisk disk(mnt, "256k");
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): " << std::strerror(errno);
  const std::string p = mnt + "/metrics.h5", text = mnt + "/latest";
  make_sealed(p, "metrics", 100);
  write_file_atomic(text, "ckpt-e000001-s000000008.h5\n");
  const auto before = bytes_of(p), text_before = bytes_of(text);
  fill_disk(mnt);
  for (size_t n : {size_t(100), size_t(20000)}) {  // a small and a large file: neither fits
    try {
      make_sealed(p, "metrics", n);
      ADD_FAILURE() << "a file of " << n << " doubles fitted on a full disk";
    } catch (const RuntimeError& e) {
      EXPECT_TRUE(one_line(e.what())) << e.what();
      EXPECT_NE(std::string(e.what()).find("cannot write '" + p + "': No space left on device"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(bytes_of(p), before);
  verify_sealed(p, "metrics", "test");
  try {
    write_file_atomic(text, std::string(100000, 'x'));
    ADD_FAILURE() << "a 100 kB text fitted on a full disk";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
  }
  EXPECT_EQ(bytes_of(text), text_before);
  for (const auto& e : fs::directory_iterator(mnt))
    EXPECT_NE(e.path().extension(), ".tmp") << "temporary file left: " << e.path();
}

TEST(SealedFile, FailedReplacementWithoutMountLeavesTheOriginal) {
  // Where no tmpfs can be mounted: the temporary name is taken by a directory, so the write
  // fails; the original stays, the directory in the way is not removed.
  TempDir dir;
  const std::string p = dir / "metrics.h5";
  make_sealed(p, "metrics");
  const auto before = bytes_of(p);
  fs::create_directory(temp_path(p));
  std::ofstream(temp_path(p) + "/keep") << "x";
  try {
    make_sealed(p, "metrics", 50);
    ADD_FAILURE() << "write over a directory succeeded";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '" + p + "'"), std::string::npos) << e.what();
    EXPECT_TRUE(one_line(e.what()));
  }
  EXPECT_EQ(bytes_of(p), before);
}

// A checkpoint of the default config with small vectors, written into run dir `run`.
std::string small_checkpoint(const std::string& run, std::int64_t epoch) {
  Checkpoint c;
  c.epoch = epoch;
  c.step = 0;
  c.params = {1.0, 2.0, 3.0};
  c.velocity = {0.0, 0.5, 0.0};
  c.row_params = c.params;
  c.step_losses.assign(static_cast<size_t>(c.config.samples_per_pass / c.config.batch), 0.25);
  c.polarity = {1.0, -1.0};
  return write_checkpoint(run, c, 2);
}

TEST(Checkpoint, RoundTripAndLatestIsConfinedToTheRun) {
  TempDir dir;
  const std::string run = dir / "run";
  small_checkpoint(run, 0);
  small_checkpoint(run, 1);
  const std::string path = small_checkpoint(run, 1);  // the same position again: replaced
  Checkpoint c = read_checkpoint(run);
  EXPECT_EQ(c.epoch, 1);
  EXPECT_EQ(c.params, (std::vector<double>{1.0, 2.0, 3.0}));
  EXPECT_EQ(read_checkpoint(path).velocity, (std::vector<double>{0.0, 0.5, 0.0}));
  const std::string latest = checkpoint_dir(run) + "/latest";

  for (const std::string& bad :
       std::vector<std::string>{"../../outside.h5\n", "/etc/passwd\n", "ckpt-e000001-s000000000.h5/..\n",
                                "ckpt-e1-s0.h5\n", std::string(5000, 'c')}) {
    write_file_atomic(latest, bad);
    const std::string m = refusal([&] { read_checkpoint(run); });
    EXPECT_TRUE(one_line(m)) << m;
  }
  // A checkpoint that is a symlink to a sealed checkpoint outside the run.
  const std::string other = dir / "other";
  const std::string outside = small_checkpoint(other, 7);
  const std::string linked = checkpoint_dir(run) + "/ckpt-e000009-s000000000.h5";
  fs::create_symlink(outside, linked);
  write_file_atomic(latest, "ckpt-e000009-s000000000.h5\n");
  EXPECT_NE(refusal([&] { read_checkpoint(run); }).find("is outside the run directory"), std::string::npos);
  // `latest` as a FIFO: refused, not waited on.
  fs::remove(latest);
  ASSERT_EQ(::mkfifo(latest.c_str(), 0600), 0);
  EXPECT_NE(refusal_within_seconds([&] { read_checkpoint(run); }, latest).find("not a regular file"),
            std::string::npos);
  // An unsealed (version 1 style) checkpoint is refused as written by an older dualnet.
  { h5::Handle f = h5::create_file(path); }
  EXPECT_NE(refusal([&] { read_checkpoint(path); }).find("older dualnet"), std::string::npos);
}

}  // namespace
}  // namespace dualnet
