// Config: every bad input is a UsageError whose message names the offending key; the help
// text lists every key; the defaults are the reference configuration of SPEC §7.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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
    std::ofstream(path_) << text;
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
  expect_each_names_its_key({{"depth=abc", "depth"}, {"depth=2.5", "depth"}, {"bias=3", "bias"}, {"lr=fast", "lr"},
                             {"loss=mse", "loss"}, {"normalize_output=yes", "normalize_output"},
                             {"batch=true", "batch"}});
  const std::string mf = file_error("hid = \"ten\"\n");
  EXPECT_NE(mf.find("hid"), std::string::npos) << mf;
}

TEST(Config, OutOfRangeIsNamed) {
  expect_each_names_its_key({{"depth=0", "depth"}, {"depth=21", "depth"}, {"hid=0", "hid"}, {"hid=-3", "hid"},
                             {"delta_upper=1.5", "delta_upper"}, {"delta_lower=-0.1", "delta_lower"},
                             {"temp=0", "temp"}, {"lr=-1", "lr"}, {"num_children=1", "num_children"},
                             {"batch=0", "batch"}, {"negatives=0", "negatives"}, {"lr=nan", "lr"}});
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

}  // namespace
}  // namespace dualnet
