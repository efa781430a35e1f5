// util/text and util/regular_file: one-line echoes of user input, UTF-8 checks, and the
// checks of files named by users (inputs: regular and readable; outputs: writable, checked
// without writing anything).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "util/error.hpp"
#include "util/regular_file.hpp"
#include "util/text.hpp"

namespace dualnet {
namespace {

namespace fs = std::filesystem;

std::string usage_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UsageError";
  return "";
}

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("dualnet_test_files_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(path_)) v.push_back(e.path().filename().string());
    return v;
  }

 private:
  fs::path path_;
};

TEST(Text, Utf8Validity) {
  // text, offset of the first bad byte (npos: valid)
  const std::vector<std::pair<std::string, std::size_t>> cases = {
      {"", std::string::npos},
      {"abc", std::string::npos},
      {"caf\xc3\xa9", std::string::npos},
      {"\xe4\xb8\xad", std::string::npos},
      {"\xf0\x9f\x98\x80", std::string::npos},
      {"\xef\xbf\xbf", std::string::npos},
      {"a\xff", 1},
      {"\xc3", 0},
      {"\xc0\xaf", 0},
      {"\xe0\x80\xaf", 0},  // overlong
      {"\xed\xa0\x80", 0},
      {"\xf4\x90\x80\x80", 0},  // surrogate, > U+10FFFF
      {"ab\x80", 2},
      {"\xf5\x80\x80\x80", 0},
  };
  for (const auto& [text, bad] : cases) EXPECT_EQ(invalid_utf8_at(text), bad) << echo(text);
}

TEST(Text, EchoIsOneBoundedLine) {
  EXPECT_EQ(echo("plain"), "plain");
  EXPECT_EQ(echo("a\nb\tc\r"), "a\\nb\\tc\\r");
  EXPECT_EQ(echo(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(echo("\xff\x7f"), "\\xFF\\x7F");
  EXPECT_EQ(echo("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(echo(std::string(100, 'x')), std::string(60, 'x') + "...");
  EXPECT_EQ(echo("\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad", 2), "\xe4\xb8\xad\xe4\xb8\xad...");  // cut between characters
  EXPECT_EQ(string_value_problem("ok \xc3\xa9"), "");
  EXPECT_NE(string_value_problem("a\nb"), "");
}

TEST(RegularFile, ReadsOnlyRegularFilesWithinTheLimit) {
  TempDir d;
  std::ofstream(d / "ok.toml") << "depth = 3\n";
  EXPECT_EQ(read_regular_file(d / "ok.toml", "config file", 100), "depth = 3\n");
  fs::create_directories(d / "dir");
  ASSERT_EQ(::mkfifo((d / "fifo").c_str(), 0600), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {d / "dir", "directory"},
      {d / "fifo", "FIFO"},
      {d / "missing", "no such file"},
      {"/dev/null", "device"},
      {d / "ok.toml/x", "not a directory"},
  };
  for (const auto& [path, word] : cases) {
    const std::string m = usage_error_of([&] { read_regular_file(path, "config file", 100); });
    EXPECT_NE(m.find("config file '" + path + "'"), std::string::npos) << m;
    EXPECT_NE(m.find(word), std::string::npos) << m;
  }
  EXPECT_NE(usage_error_of([&] { read_regular_file(d / "ok.toml", "config file", 5); }).find("too large"),
            std::string::npos);
  EXPECT_NE(usage_error_of([&] { read_regular_file("", "config file", 5); }).find("empty"), std::string::npos);
  EXPECT_NE(usage_error_of([&] { read_regular_file("a\nb", "config file", 5); }).find("'a\\nb'"), std::string::npos);
  // procfs reports size 0: the limit holds on what is read.
  EXPECT_NE(usage_error_of([&] { read_regular_file("/proc/self/maps", "config file", 8); }).find("too large"),
            std::string::npos);
}

TEST(RegularFile, OutputsAreCheckedWithoutLeavingAnything) {
  TempDir d;
  fs::create_directories(d / "dir");
  ASSERT_EQ(::mkfifo((d / "fifo").c_str(), 0600), 0);
  std::ofstream(d / "existing.json") << "keep";
  EXPECT_NO_THROW(check_output_file(d / "new.json", "bench: json file"));
  EXPECT_NO_THROW(check_output_file(d / "existing.json", "bench: json file"));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/proc/dualnet-test.json", "cannot create files"},
      {d / "dir", "directory"},
      {d / "dir/", "directory"},
      {d / "fifo", "FIFO"},
      {"/dev/null", "device"},
      {d / "missing/x.json", "does not exist"},
      {d / "existing.json/x", "not a directory"},
      {"", "empty"},
  };
  for (const auto& [path, word] : cases) {
    const std::string m = usage_error_of([&] { check_output_file(path, "bench: json file"); });
    EXPECT_NE(m.find("bench: json file '" + path + "'"), std::string::npos) << m;
    EXPECT_NE(m.find(word), std::string::npos) << m;
  }
  std::vector<std::string> left = d.entries();
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"dir", "existing.json", "fifo"}));
  std::ifstream in(d / "existing.json");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "keep");
  if (::geteuid() != 0) {  // root writes anyway
    ::chmod((d / "existing.json").c_str(), 0444);
    EXPECT_NE(usage_error_of([&] { check_output_file(d / "existing.json", "x"); }).find("Permission"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace dualnet
