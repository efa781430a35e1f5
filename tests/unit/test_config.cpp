// Config: every bad input is a UsageError whose message names the offending key; the help
// text lists every key; the defaults are the reference configuration (docs/science.md#reference-configuration).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "commands/arguments.hpp"
#include "commands/commands.hpp"
#include "config/config.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

// Runs f, expects a UsageError, returns its message ("" and a test failure otherwise).
template <class F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected UsageError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected UsageError, nothing was thrown";
  return "";
}

std::string override_error(const std::vector<std::string>& overrides, int ranks = 1) {
  return usage_error_of([&] { validate(parse_config("", overrides), ranks); });
}

// The UsageError message for a config file with this text.
std::string file_error(const std::string& toml_text);

// Every override (key=value) is refused with a message that names its key.
void expect_each_names_its_key(const std::vector<std::pair<std::string, std::string>>& cases) {
  for (const auto& [arg, key] : cases) {
    const std::string m = override_error({arg});
    EXPECT_NE(m.find("'" + key + "'"), std::string::npos) << arg << " -> " << m;
  }
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    path_ = (std::filesystem::temp_directory_path() /
             ("dualnet_test_config_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml"))
                .string();
    std::ofstream(path_, std::ios::binary) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string file_error(const std::string& toml_text) {
  TempFile f(toml_text);
  return usage_error_of([&] { parse_config(f.path(), {}); });
}

TEST(Config, DefaultsAreTheReferenceConfiguration) {
  const Config c = parse_config("", {});
  EXPECT_EQ(c.depth, 5);
  EXPECT_EQ(c.num_children, 2);
  EXPECT_EQ(c.hid, 10);
  EXPECT_DOUBLE_EQ(c.delta_lower, 0.8);
  EXPECT_DOUBLE_EQ(c.delta_upper, 1.0);
  EXPECT_EQ(c.share_levels, 1);
  EXPECT_EQ(c.negatives, 1);
  EXPECT_EQ(c.loss, "ref_nce");
  EXPECT_DOUBLE_EQ(c.temp, 0.1);
  EXPECT_DOUBLE_EQ(c.lr, 0.1);
  EXPECT_DOUBLE_EQ(c.momentum, 0.0);
  EXPECT_DOUBLE_EQ(c.weight_decay, 0.0);
  EXPECT_EQ(c.batch, 128);
  EXPECT_EQ(c.samples_per_pass, 64000);
  EXPECT_EQ(c.epochs, 50);
  EXPECT_TRUE(c.bias);
  EXPECT_TRUE(c.normalize_output);
  EXPECT_NO_THROW(validate(c, 1));
  EXPECT_NO_THROW(validate(c, 2));
}

TEST(Config, OverridesAndTomlFileAreApplied) {
  TempFile f("depth = 4\nloss = \"simp\"\nlr = 1\n");
  const Config c = parse_config(f.path(), {"hid=7", "bias=false", "loss=infonce", "temp=0.5"});
  EXPECT_EQ(c.depth, 4);
  EXPECT_EQ(c.hid, 7);
  EXPECT_FALSE(c.bias);
  EXPECT_EQ(c.loss, "infonce");  // the command line wins over the file
  EXPECT_DOUBLE_EQ(c.lr, 1.0);   // an integer is accepted for a float key
  EXPECT_DOUBLE_EQ(c.temp, 0.5);
}

TEST(Config, TomlRoundTrip) {
  const Config c = parse_config("", {"depth=3", "hid=4", "loss=triplet", "margin=0.25", "out=\"a b\""});
  const Config back = config_from_toml_text(c.to_toml(), "round trip");
  EXPECT_EQ(back.to_toml(), c.to_toml());
  EXPECT_EQ(science_difference(c, back), "");
  const Config other = parse_config("", {"depth=4"});
  EXPECT_NE(science_difference(c, other).find("depth"), std::string::npos);
}

TEST(Config, UnknownKeyIsNamed) {
  const std::string m = override_error({"depht=5"});
  EXPECT_NE(m.find("depht"), std::string::npos) << m;
  const std::string mf = file_error("hidden = 3\n");
  EXPECT_NE(mf.find("hidden"), std::string::npos) << mf;
}

TEST(Config, WrongTypeIsNamed) {
  expect_each_names_its_key({{"depth=abc", "depth"},
                             {"depth=2.5", "depth"},
                             {"bias=3", "bias"},
                             {"lr=fast", "lr"},
                             {"loss=mse", "loss"},
                             {"normalize_output=yes", "normalize_output"},
                             {"batch=true", "batch"}});
  const std::string mf = file_error("hid = \"ten\"\n");
  EXPECT_NE(mf.find("hid"), std::string::npos) << mf;
}

TEST(Config, OutOfRangeIsNamed) {
  expect_each_names_its_key({{"depth=0", "depth"},
                             {"depth=21", "depth"},
                             {"hid=0", "hid"},
                             {"hid=-3", "hid"},
                             {"delta_upper=1.5", "delta_upper"},
                             {"delta_lower=-0.1", "delta_lower"},
                             {"temp=0", "temp"},
                             {"lr=-1", "lr"},
                             {"num_children=1", "num_children"},
                             {"batch=0", "batch"},
                             {"negatives=0", "negatives"},
                             {"lr=nan", "lr"}});
}

TEST(Config, HidBelowOneIsRejected) {
  const std::string m = override_error({"hid=0"});
  EXPECT_NE(m.find("hid"), std::string::npos) << m;
}

TEST(Config, DeltaLowerAboveUpperIsNamed) {
  const std::string m = override_error({"delta_lower=0.9", "delta_upper=0.85"});
  EXPECT_NE(m.find("delta_lower"), std::string::npos) << m;
  EXPECT_NE(m.find("delta_upper"), std::string::npos) << m;
  EXPECT_NO_THROW(validate(parse_config("", {"delta_lower=0.9", "delta_upper=0.9"}), 1));
}

TEST(Config, BatchNotDivisibleByRanksIsNamed) {
  const Config c = parse_config("", {"batch=30", "micro_batch=1", "samples_per_pass=300"});
  EXPECT_NO_THROW(validate(c, 1));
  EXPECT_NO_THROW(validate(c, 2));
  const std::string m = usage_error_of([&] { validate(c, 4); });
  EXPECT_NE(m.find("batch"), std::string::npos) << m;
  EXPECT_NE(m.find("4"), std::string::npos) << m;
}

TEST(Config, CrossKeyChecksAreNamed) {
  EXPECT_NE(override_error({"micro_batch=3"}).find("micro_batch"), std::string::npos);
  EXPECT_NE(override_error({"samples_per_pass=1000"}).find("samples_per_pass"), std::string::npos);
  EXPECT_NE(override_error({"share_levels=6"}).find("share_levels"), std::string::npos);
  EXPECT_NE(override_error({"loss=triplet", "negatives=2"}).find("negatives"), std::string::npos);
}

TEST(Config, MalformedTomlIsAUsageError) {
  TempFile f("depth = = 3\n");
  const std::string m = usage_error_of([&] { parse_config(f.path(), {}); });
  EXPECT_NE(m.find(f.path()), std::string::npos) << m;  // names the file
  EXPECT_NE(m.find("malformed"), std::string::npos) << m;
  EXPECT_NE(m.find("line 1"), std::string::npos) << m;
  const std::string mg = file_error("hid = 4\nlr = [1, \n");
  EXPECT_NE(mg.find("malformed"), std::string::npos) << mg;
  const std::string missing = usage_error_of([&] { parse_config("/nonexistent/dualnet.toml", {}); });
  EXPECT_NE(missing.find("/nonexistent/dualnet.toml"), std::string::npos) << missing;
  EXPECT_NE(override_error({"depth"}).find("depth"), std::string::npos);
}

TEST(Config, HelpListsEveryKeyAndItsMeaning) {
  const std::string help = config_help();
  for (const auto& k : config_keys()) {
    EXPECT_NE(help.find("  " + std::string(k.name) + " "), std::string::npos) << k.name;
    EXPECT_NE(help.find(k.help), std::string::npos) << k.name;
  }
  EXPECT_GE(config_keys().size(), 26u);
}

// ---- numbers outside what a double or a 64-bit integer holds (toml11 clamps them) ----

// One case per line: the key, the value (as written after "key = " in a file and "key=" on
// the command line), and a word the message must contain.
struct BadValue {
  std::string key, value, word;
};

const std::vector<BadValue> kUnrepresentableNumbers = {
    {"lr", "1e400", "beyond the range of a double"},
    {"lr", "-1e400", "beyond the range of a double"},
    {"lr", "1.8e308", "beyond the range of a double"},
    {"lr", "1.7976931348623159e308", "beyond the range of a double"},
    {"weight_decay", "1e0400", "beyond the range of a double"},
    {"lr", "1e-400", "too close to zero"},
    {"lr", "-1e-400", "too close to zero"},
    {"lr", "4e-320", "too close to zero"},    // subnormal
    {"lr", "4.9e-324", "too close to zero"},  // the smallest subnormal
    {"lr", "2e-324", "too close to zero"},    // rounds to 0
    {"margin", "1_0e-4_00", "too close to zero"},
    {"depth", "99999999999999999999", "64-bit integer"},
    {"depth", "-99999999999999999999", "64-bit integer"},
    {"seed", "9223372036854775808", "64-bit integer"},
    {"seed", "0x8000000000000000", "64-bit integer"},
    {"seed", "0o2000000000000000000000", "64-bit integer"},
    {"seed", "0b10000000000000000000000000000000000000000000000000000000000000000", "64-bit integer"},
    {"lr", "99999999999999999999", "64-bit integer"},  // an integer for a float key
};

TEST(Config, UnrepresentableNumbersAreRefusedOnTheCommandLine) {
  for (const auto& c : kUnrepresentableNumbers) {
    const std::string m = override_error({c.key + "=" + c.value});
    EXPECT_NE(m.find("'" + c.key + "'"), std::string::npos) << c.value << " -> " << m;
    EXPECT_NE(m.find(c.word), std::string::npos) << c.value << " -> " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(Config, UnrepresentableNumbersAreRefusedInAFile) {
  for (const auto& c : kUnrepresentableNumbers) {
    const std::string m = file_error(c.key + " = " + c.value + "\n");
    EXPECT_NE(m.find("'" + c.key + "'"), std::string::npos) << c.value << " -> " << m;
    EXPECT_NE(m.find(c.word), std::string::npos) << c.value << " -> " << m;
  }
}

TEST(Config, NumbersAtTheLimitsAreAccepted) {
  EXPECT_EQ(parse_config("", {"lr=1.7976931348623157e308"}).lr, DBL_MAX);
  EXPECT_EQ(parse_config("", {"lr=2.2250738585072014e-308"}).lr, DBL_MIN);
  EXPECT_EQ(parse_config("", {"lr=0e999"}).lr, 0.0);  // zero with a large exponent
  EXPECT_EQ(parse_config("", {"lr=0.0e-400"}).lr, 0.0);
  EXPECT_EQ(parse_config("", {"seed=8999999999999999999"}).seed, 8999999999999999999LL);
  EXPECT_EQ(parse_config("", {"lr=9223372036854775807"}).lr, 9223372036854775807.0);
  EXPECT_EQ(parse_config("", {"lr=1_000"}).lr, 1000.0);
}

TEST(Config, NegativeZeroIsStoredAsZero) {
  for (const std::string text : {"-0.0", "-0", "-0e5", "-0.0e-400"}) {
    const Config c = parse_config("", {"delta_lower=" + text, "margin=" + text});
    EXPECT_FALSE(std::signbit(c.delta_lower)) << text;
    EXPECT_FALSE(std::signbit(c.margin)) << text;
    EXPECT_EQ(science_difference(c, parse_config("", {"delta_lower=0", "margin=0"})), "") << text;
    const std::string stored = c.to_toml();
    EXPECT_NE(stored.find("\ndelta_lower = 0.0\n"), std::string::npos) << stored;
    EXPECT_EQ(stored.find("-0"), std::string::npos) << stored;
    EXPECT_EQ(config_from_toml_text(stored, "back").to_toml(), stored) << text;
  }
  Config c;
  c.delta_lower = -0.0;  // set in code: the stored text is still that of 0.0
  EXPECT_NE(c.to_toml().find("delta_lower = 0.0\n"), std::string::npos) << c.to_toml();
  Config zero;
  zero.delta_lower = 0.0;
  EXPECT_EQ(science_difference(c, zero), "");
}

// ---- every key reads back exactly what to_toml() wrote ----

void expect_round_trip(const Config& c, const std::string& what) {
  const std::string text = c.to_toml();
  Config back;
  try {
    back = config_from_toml_text(text, "round trip");
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << e.what();
    return;
  }
  EXPECT_EQ(back.to_toml(), text) << what;
  EXPECT_EQ(science_difference(c, back), "") << what;
  EXPECT_EQ(back.run_id, c.run_id) << what;
}

TEST(Config, EveryKeyRoundTripsThroughToml) {
  const double min_normal = std::numeric_limits<double>::min();
  const std::vector<double> doubles = {-0.0,
                                       0.0,
                                       1e-300,
                                       0.1,
                                       0.2,
                                       1.0 / 3.0,
                                       0.999999,
                                       1.0,
                                       2.5,
                                       1e-6,
                                       1e6,
                                       123456789.123,
                                       min_normal,
                                       std::nextafter(min_normal, 1.0),
                                       3 * min_normal,
                                       1e300,
                                       1e308,
                                       DBL_MAX,
                                       std::nextafter(1.0, 0.0),
                                       std::nextafter(1.0, 2.0),
                                       9007199254740993.0,
                                       0.30000000000000004};
  const std::vector<std::int64_t> ints = {
      0, 1, 2, 3, 5, 16, 20, 64, 4096, 1 << 20, 1 << 24, 1000000000, 8999999999999999999LL};
  const std::vector<std::string> strings = {"a",
                                            "dualnet-run",
                                            "a b",
                                            "with \"quotes\"",
                                            "back\\slash",
                                            "trailing\\",
                                            "\\\"",
                                            "# not a comment",
                                            "key = value",
                                            "[table]",
                                            "'''",
                                            "\"\"\"",
                                            "\\u0041",
                                            "unicode \u00e9\u4e2d\U0001F600",
                                            " spaces ",
                                            "runs/x/../y",
                                            "/abs/path/with=equals",
                                            std::string(4096, 'x'),
                                            std::string(1000, '\\')};
  int checked = 0;
  for (const auto& k : config_keys()) {
    if (auto f = std::get_if<double Config::*>(&k.field)) {
      for (const double x : doubles) {
        if (x < k.min || x > k.max) continue;
        Config c;
        c.*(*f) = x;
        expect_round_trip(c, std::string(k.name) + " = " + std::to_string(x));
        ++checked;
      }
    } else if (auto f = std::get_if<std::int64_t Config::*>(&k.field)) {
      for (const std::int64_t x : ints) {
        if (static_cast<double>(x) < k.min || static_cast<double>(x) > k.max) continue;
        Config c;
        c.*(*f) = x;
        expect_round_trip(c, std::string(k.name) + " = " + std::to_string(x));
        ++checked;
      }
    } else if (auto f = std::get_if<bool Config::*>(&k.field)) {
      for (const bool x : {true, false}) {
        Config c;
        c.*(*f) = x;
        expect_round_trip(c, k.name);
        ++checked;
      }
    } else if (auto f = std::get_if<std::string Config::*>(&k.field)) {
      const std::vector<std::string>& values = k.choices.empty() ? strings : k.choices;
      for (const auto& x : values) {
        Config c;
        c.*(*f) = x;
        expect_round_trip(c, std::string(k.name) + " = " + x.substr(0, 40));
        EXPECT_EQ(config_from_toml_text(c.to_toml(), "round trip").*(*f), x) << k.name << ": " << x.substr(0, 40);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 200);
  for (const std::string id : {"20250101T000000Z-0123456789abcdef", "x", "with \"quote\"", "caf\u00e9"}) {
    Config c;
    c.run_id = id;
    expect_round_trip(c, "run_id " + id);
  }
}

TEST(Config, AcceptedStringsSurviveACommandLineRoundTrip) {
  // What the command line accepts for out, stored and read back, is exactly what was given.
  for (const std::string v : {"plain", "a b", "a#b", "a=b", "x'y", "caf\u00e9", "\u4e2d/\u6587", "dir/sub dir/"}) {
    const Config c = parse_config("", {"out=" + v});
    EXPECT_EQ(c.out, v);
    EXPECT_EQ(config_from_toml_text(c.to_toml(), "round trip").out, v);
  }
  // TOML strings on the command line: the value is the string's content.
  EXPECT_EQ(parse_config("", {"out=\"a \\\"q\\\" \\\\ b\""}).out, "a \"q\" \\ b");
  EXPECT_EQ(parse_config("", {"out='C:\\dir'"}).out, "C:\\dir");
}

// ---- strings that cannot be stored are refused up front ----

TEST(Config, StringsWithControlCharactersOrInvalidUtf8AreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      // value on the command line, word in the message
      {"a\nb", "line break"},
      {"a\rb", "line break"},
      {"a\tb", "control character 0x09"},
      {std::string("a\0b", 3), "0x00"},
      {"a\x1b[31m", "0x1B"},
      {"a\x7f", "0x7F"},
      {"\xff", "UTF-8"},
      {"a\xc3", "UTF-8"},
      {"\xc0\xaf", "UTF-8"},          // overlong '/'
      {"\xed\xa0\x80", "UTF-8"},      // a surrogate
      {"\xf4\x90\x80\x80", "UTF-8"},  // above U+10FFFF
      {"\xe2\x82", "UTF-8"},          // cut short
      {"\"a\\nb\"", "line break"},
      {"\"a\\u0000b\"", "0x00"},
      {"\"\\u007f\"", "0x7F"},
  };
  for (const std::string key : {"out", "resume"}) {
    for (const auto& [value, word] : cases) {
      const std::string m = usage_error_of([&] { parse_config("", {key + "=" + value}); });
      EXPECT_NE(m.find("'" + key + "'"), std::string::npos) << m;
      EXPECT_NE(m.find(word), std::string::npos) << m;
      for (const char ch : m) EXPECT_TRUE(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f) << m;
    }
  }
  // In a file: escapes give the control characters; raw bytes make the file invalid.
  EXPECT_NE(file_error("out = \"a\\nb\"\n").find("line break"), std::string::npos);
  EXPECT_NE(file_error("out = \"\"\"a\nb\"\"\"\n").find("line break"), std::string::npos);
  EXPECT_NE(file_error("resume = \"a\\u0007\"\n").find("0x07"), std::string::npos);
  EXPECT_NE(file_error("out = \"\xff\"\n").find("UTF-8"), std::string::npos);
  // Built in code: validate() refuses them too.
  Config c;
  c.out = "a\nb";
  EXPECT_NE(usage_error_of([&] { validate(c, 1); }).find("out"), std::string::npos);
  c.out = "";
  EXPECT_NE(usage_error_of([&] { validate(c, 1); }).find("out"), std::string::npos);
  c.out = "x";
  c.resume = "\xff";
  EXPECT_NE(usage_error_of([&] { validate(c, 1); }).find("resume"), std::string::npos);
  EXPECT_NE(override_error({"out=" + std::string(4097, 'a')}).find("4097 bytes"), std::string::npos);
}

// ---- arrays and tables for scalar keys: one line naming the key ----

TEST(Config, ArraysAndTablesForScalarKeysGiveOneLine) {
  const std::vector<std::pair<std::string, std::string>> overrides = {
      {"depth=[3]", "depth"},
      {"depth={a=1}", "depth"},
      {"depth=[1,\n2]", "depth"},
      {"lr=[0.1]", "lr"},
      {"bias=[true]", "bias"},
      {"out=[\"a\"]", "out"},
      {"loss={a=\"simp\"}", "loss"},
      {"seed=[[1],[2]]", "seed"},
      {"depth=" + std::string(100000, '['), "depth"},  // deeper than toml11's stack
      {"depth=1979-05-27", "depth"},
  };
  for (const auto& [arg, key] : overrides) {
    const std::string m = override_error({arg});
    EXPECT_NE(m.find("'" + key + "'"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_LT(m.size(), 400u) << m;
  }
  const std::vector<std::pair<std::string, std::string>> files = {
      {"depth = [1,\n2,\n3]\n", "depth"}, {"depth = {a = 1}\n", "depth"},     {"[depth]\nx = 1\n", "depth"},
      {"lr = [\n0.1\n]\n", "lr"},         {"out = [\"a\",\n\"b\"]\n", "out"}, {"seed = 1979-05-27T07:32:00Z\n", "seed"},
  };
  for (const auto& [text, key] : files) {
    const std::string m = file_error(text);
    EXPECT_NE(m.find("'" + key + "'"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  // Deep nesting in a file is refused before toml11 could overflow its stack.
  EXPECT_NE(file_error("depth = " + std::string(100000, '[') + "\n").find("nested"), std::string::npos);
}

TEST(Config, EchoedInputIsOneShortLine) {
  const std::string longv(5000, 'z');
  for (const auto& m :
       {override_error({"lr=" + longv}), override_error({"depth=\n\n\n"}), override_error({"de\npth=3"}),
        override_error({"x\n"}), override_error({"loss=" + longv}), override_error({"loss=a\nb"})}) {
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_LT(m.size(), 300u) << m;
  }
}

// ---- run_id and the stored config ----

TEST(Config, RunIdIsReadFromFilesAndRefusedOnTheCommandLine) {
  const std::string m = override_error({"run_id=abc"});
  EXPECT_NE(m.find("run_id is assigned by dualnet"), std::string::npos) << m;
  TempFile f("run_id = \"20250101T000000Z-00000000000000ff\"\ndepth = 4\n");
  const Config c = parse_config(f.path(), {});
  EXPECT_EQ(c.run_id, "20250101T000000Z-00000000000000ff");
  EXPECT_EQ(c.depth, 4);
  EXPECT_NE(file_error("run_id = 3\n").find("run_id"), std::string::npos);
  EXPECT_NE(file_error("run_id = \"a\\nb\"\n").find("line break"), std::string::npos);
  EXPECT_NE(file_error("run_id = \"" + std::string(300, 'a') + "\"\n").find("300 bytes"), std::string::npos);
  // Not a science key, not a key of the table (nor of --help's list).
  Config a, b;
  a.run_id = "one";
  b.run_id = "two";
  EXPECT_EQ(science_difference(a, b), "");
  for (const auto& k : config_keys()) EXPECT_NE(std::string(k.name), "run_id");
}

TEST(Config, ToTomlWritesRunIdFirstOnlyWhenSet) {
  Config c;
  EXPECT_EQ(c.to_toml().find("run_id"), std::string::npos);
  c.run_id = "r1";
  EXPECT_EQ(c.to_toml().rfind("run_id = \"r1\"\n", 0), 0u) << c.to_toml();
}

TEST(Config, StoredTomlNeverOverwritesOrResumes) {
  Config c = parse_config("", {"overwrite=true", "resume=some/run", "depth=3", "out=\"x y\""});
  c.run_id = "20250101T000000Z-0123456789abcdef";
  const std::string stored = c.to_stored_toml();
  EXPECT_EQ(stored.rfind("# ", 0), 0u) << stored;  // a comment line first
  EXPECT_NE(stored.find("out=NEW"), std::string::npos) << stored;
  EXPECT_EQ(stored.find('\n') + 1, stored.find("run_id = ")) << stored;
  EXPECT_NE(stored.find("\noverwrite = false\n"), std::string::npos) << stored;
  EXPECT_NE(stored.find("\nresume = \"\"\n"), std::string::npos) << stored;
  const Config back = config_from_toml_text(stored, "stored");
  EXPECT_FALSE(back.overwrite);
  EXPECT_EQ(back.resume, "");
  EXPECT_EQ(back.run_id, c.run_id);
  EXPECT_EQ(back.depth, 3);
  EXPECT_EQ(back.out, "x y");
  EXPECT_EQ(science_difference(back, c), "");
  // The saved file is a template: it may hold run_id, overrides apply on top.
  TempFile f(stored);
  const Config t = parse_config(f.path(), {"out=new"});
  EXPECT_EQ(t.out, "new");
  EXPECT_EQ(t.run_id, c.run_id);  // the caller decides what to do with it
  EXPECT_FALSE(t.overwrite);
}

// ---- config files: only a regular, readable file of text ----

TEST(Config, OnlyARegularTextFileIsAConfig) {
  const auto dir = std::filesystem::temp_directory_path() / ("dualnet_test_cfgkinds_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub.toml");
  const std::string fifo = (dir / "fifo.toml").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {(dir / "sub.toml").string(), "directory"},
      {fifo, "FIFO"},  // and no hang waiting for a writer
      {(dir / "missing.toml").string(), "no such file"},
      {(dir / "missing" / "x.toml").string(), "no such file"},
      {"/dev/null", "character device"},
      {"/dev/zero", "character device"},
  };
  for (const auto& [path, word] : cases) {
    const std::string m = usage_error_of([&] { parse_config_file(path, {}); });
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(word), std::string::npos) << m;
  }
  EXPECT_NE(usage_error_of([&] { parse_config_file("", {}); }).find("empty"), std::string::npos);
  EXPECT_NO_THROW(parse_config("", {}));  // parse_config: "" still means no file
  std::filesystem::remove_all(dir);
}

TEST(Config, BinaryOrHugeConfigFilesAreOneLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("depth = 3\0\n", 11), "NUL"},
      {"depth = 3\n\xff\xfe\n", "UTF-8"},
      {"\x89PNG\r\n\x1a\n", "UTF-8"},
      {std::string(kMaxConfigFileBytes + 1, '#'), "too large"},
      {"out = \"\xc0\xaf\"\n", "UTF-8"},
  };
  for (const auto& [text, word] : cases) {
    const std::string m = file_error(text);
    EXPECT_NE(m.find(word), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  std::string random_bytes;
  std::uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) random_bytes += static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  EXPECT_EQ(file_error(random_bytes).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace dualnet

namespace dualnet {
namespace {

// ---- the command line of every command (commands/arguments.hpp) ----

struct ToyKeys {
  std::int64_t steps = 3;
  std::vector<double> taus = {1.0};
  std::vector<std::string> names = {"a"};
};

const std::vector<KeySpecOf<ToyKeys>> kToyKeys = {
    {"steps", &ToyKeys::steps, 1, 100, {}, false, "steps"},
    {"taus", &ToyKeys::taus, 1e-6, 1e6, {}, false, "temperatures"},
    {"names", &ToyKeys::names, 0, 0, {"a", "b"}, false, "names"},
};

TEST(CommandLine, OwnKeysAreReadLikeConfigKeysAndTheRestIsLeftForTheConfig) {
  ToyKeys k;
  const Arguments a =
      read_arguments({"run", "steps=7", "taus=0.01,1", "names=[\"b\", \"a\"]", "depth=3"}, true, kToyKeys, k);
  EXPECT_TRUE(a.has_path);
  EXPECT_EQ(a.path, "run");
  EXPECT_EQ(a.config_overrides, (std::vector<std::string>{"depth=3"}));
  EXPECT_EQ(k.steps, 7);
  EXPECT_EQ(k.taus, (std::vector<double>{0.01, 1.0}));
  EXPECT_EQ(k.names, (std::vector<std::string>{"b", "a"}));
  ToyKeys k2;
  read_arguments({"taus=[0.5, 2]", "names=b"}, false, kToyKeys, k2);
  EXPECT_EQ(k2.taus, (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(k2.names, (std::vector<std::string>{"b"}));
}

TEST(CommandLine, NumbersAreStrictAndEveryRefusalNamesTheKey) {
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"steps=10x"},
                                              {"steps=1e3"},
                                              {"steps=0"},
                                              {"steps=101"},
                                              {"steps="},
                                              {"taus=0"},
                                              {"taus=0.1,x"},
                                              {"names=c"}}) {
    ToyKeys k;
    const std::string m = usage_error_of([&] { read_arguments(bad, false, kToyKeys, k); });
    const std::string key = bad[0].substr(0, bad[0].find('='));
    EXPECT_NE(m.find("key '" + key + "'"), std::string::npos) << bad[0] << ": " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  ToyKeys k;
  EXPECT_NE(usage_error_of([&] { read_arguments({"run"}, false, kToyKeys, k); }).find("not of the form key=value"),
            std::string::npos);
  EXPECT_NE(usage_error_of([&] { read_arguments({"run", "x"}, true, kToyKeys, k); }).find("'x'"), std::string::npos);
}

TEST(CommandLine, HelpIsTheSameWordsForEveryCommandAndListsItsKeys) {
  for (const char* h : {"--help", "-h", "help"}) EXPECT_TRUE(asks_help({"depth=3", h})) << h;
  EXPECT_FALSE(asks_help({"out=help", "--helpful"}));
  for (const char* key : {"batch", "samples", "taus", "losses", "kbar", "chunk", "micro", "stream", "file"})
    EXPECT_NE(covop_help().find("  " + std::string(key) + " "), std::string::npos) << key;
  for (const char* key : {"suite", "steps", "anchors", "json"})
    EXPECT_NE(bench_help().find("  " + std::string(key) + " "), std::string::npos) << key;
  EXPECT_EQ(train_help(), config_help());
}

}  // namespace
}  // namespace dualnet
