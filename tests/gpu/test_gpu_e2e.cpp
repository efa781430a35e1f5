// GPU end-to-end test: the reference configuration on the GPU gives the CPU build's
// metrics, within stated tolerances.
//
//   test_gpu_e2e --dualnet GPU_DUALNET --workdir DIR (--cpu-dualnet CPU_DUALNET | --reference-dir REF)
//   [--allow-cpu]   check this comparator on a machine without a GPU: no skip, and the
//                   "GPU" binary may be another CPU build
//
// Two runs of the reference configuration (all defaults, one rank), each on the CPU build
// and on the GPU build:
//   short      samples_per_pass=1280 epochs=2 (10 SGD steps per epoch)
//   reference  epochs=2 (500 steps per epoch)
// With --cpu-dualnet the CPU runs happen here; with --reference-dir they come from
// REF/<run>/metrics.h5 (the GPU bundle carries them, tests/gpu/make-bundle.sh). The GPU run
// takes the config the CPU run recorded in its metrics.h5, so both use the same keys.
//
// Tolerances, |gpu - cpu| <= atol + rtol * |cpu| (NaN only against NaN), from what two CPU
// builds that differ only in fused multiply-adds give (docs/gpu.md, "GPU end-to-end test"):
//   /hltm (the tree):                           atol 1e-12              (seen: 2e-16)
//   short run, every dataset and row:           atol 1e-8, rtol 1e-6    (seen: 9e-12)
//   reference run, row 0 (initial weights):     atol 1e-8, rtol 1e-6    (seen: 8e-12)
//   reference run, rows after training:         SGD amplifies roundoff over 500 steps, so
//       single neurons differ (corr up to 0.6) and only aggregates are compared:
//       level_mean_best_corr atol 0.03 (seen 5e-3), best_corr atol 0.08 (seen 1e-2),
//       train_loss_mean atol 0.02 (seen 2e-3), weight_norm rtol 0.1 (seen 2e-2).
// samples_per_s is a timing and is not compared.
//
// Exit: 0 all within tolerance, 1 a difference or a failed run, 2 bad arguments,
// 77 no CUDA device (ctest: skipped).
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gpu_available.hpp"
#include "io/hdf5.hpp"

namespace fs = std::filesystem;
namespace h5 = dualnet::h5;

namespace {

bool g_allow_cpu = false;

struct Tol {
  double atol, rtol;
};
constexpr Tol kTree{1e-12, 0.0};
constexpr Tol kTight{1e-8, 1e-6};
const std::map<std::string, Tol> kTrained = {{"epoch", {0.0, 0.0}},
                                             {"level_mean_best_corr", {0.03, 0.0}},
                                             {"best_corr", {0.08, 0.0}},
                                             {"train_loss_mean", {0.02, 0.0}},
                                             {"weight_norm", {0.0, 0.1}}};

struct Run {
  const char* name;
  std::vector<std::string> keys;
  bool trained_rows_loose;  // rows >= 1 compared as aggregates only
};
const std::vector<Run> kRuns = {{"short", {"samples_per_pass=1280", "epochs=2"}, false},
                                {"reference", {"epochs=2"}, true}};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs argv with output to log; returns the exit code.
int run(const std::vector<std::string>& argv, const fs::path& log) {
  std::string cmd;
  for (const auto& a : argv) cmd += quote(a) + " ";
  cmd += "> " + quote(log.string()) + " 2>&1";
  std::printf("$ %s\n", cmd.c_str());
  std::fflush(stdout);
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void print_tail(const fs::path& log, size_t n) {
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    std::printf("  | %s\n", lines[i].c_str());
}

std::vector<std::string> datasets(const h5::Handle& group) {
  std::vector<std::string> names;
  auto cb = [](hid_t g, const char* name, const H5L_info_t*, void* out) -> herr_t {
    const hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) return -1;
    if (H5Iget_type(o) == H5I_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
    H5Oclose(o);
    return 0;
  };
  hsize_t idx = 0;
  if (H5Literate(group.id(), H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &names) < 0)
    throw std::runtime_error("cannot list the datasets of a group");
  return names;
}

// A dataset that grows one row per evaluation pass (unlimited first axis).
bool is_rows(const h5::Handle& ds) {
  h5::Handle space(H5Dget_space(ds.id()));
  const int rank = H5Sget_simple_extent_ndims(space.id());
  if (rank < 1) return false;
  std::vector<hsize_t> dims(static_cast<size_t>(rank)), maxdims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id(), dims.data(), maxdims.data());
  return maxdims[0] == H5S_UNLIMITED;
}

struct Stat {
  size_t values = 0, bad = 0, worst = 0;
  double max_abs = 0.0, worst_excess = -1.0;
};

void accumulate(Stat& s, const std::vector<double>& c, const std::vector<double>& g, size_t from, size_t to, Tol tol) {
  for (size_t i = from; i < to; ++i) {
    ++s.values;
    if (std::isnan(c[i]) || std::isnan(g[i])) {
      if (std::isnan(c[i]) != std::isnan(g[i]) && s.bad++ == 0) s.worst = i;
      continue;
    }
    const double d = std::fabs(g[i] - c[i]);
    s.max_abs = std::max(s.max_abs, d);
    const double excess = d - (tol.atol + tol.rtol * std::fabs(c[i]));
    if (excess > 0) {
      if (excess > s.worst_excess) {
        s.worst_excess = excess;
        s.worst = i;
      }
      ++s.bad;
    }
  }
}

std::string tol_text(Tol t) {
  char b[64];
  if (t.rtol == 0 && t.atol == 0)
    std::snprintf(b, sizeof b, "identical");
  else if (t.rtol == 0)
    std::snprintf(b, sizeof b, "atol %.0e", t.atol);
  else if (t.atol == 0)
    std::snprintf(b, sizeof b, "rtol %.0e", t.rtol);
  else
    std::snprintf(b, sizeof b, "atol %.0e rtol %.0e", t.atol, t.rtol);
  return b;
}

// One table row; returns whether it passed (informational rows always pass).
bool report(const std::string& run, const std::string& what, const std::string& rows, const std::string& tol,
            const Stat& s, const std::vector<double>& c, const std::vector<double>& g, bool informational) {
  const char* verdict = informational ? "info" : (s.bad ? "DIFFERS" : "ok");
  std::printf("%-10s %-34s %-6s %-20s %9zu %11.2e  %s", run.c_str(), what.c_str(), rows.c_str(), tol.c_str(), s.values,
              s.max_abs, verdict);
  if (s.bad && !informational)
    std::printf(" (%zu values; worst at %zu: cpu %.17g gpu %.17g)", s.bad, s.worst, c[s.worst], g[s.worst]);
  std::printf("\n");
  return informational || s.bad == 0;
}

bool compare_files(const std::string& run_name, const std::string& cpu_path, const std::string& gpu_path,
                   bool trained_rows_loose) {
  h5::Handle cf = h5::open_file(cpu_path, false), gf = h5::open_file(gpu_path, false);
  bool ok = true;
  const std::string space = h5::read_attr_string(gf, "execution_space");
  if (space != "Cuda" && !g_allow_cpu) {
    std::printf("%-10s the GPU run's execution space is %s, not Cuda: DIFFERS\n", run_name.c_str(), space.c_str());
    ok = false;
  }
  {
    h5::Handle cm = h5::open_group(cf, "metrics"), gm = h5::open_group(gf, "metrics");
    const auto cr = h5::shape(h5::open_dataset(cm, "epoch"))[0], gr = h5::shape(h5::open_dataset(gm, "epoch"))[0];
    if (cr != gr) {
      std::printf(
          "%-10s the CPU run has %llu evaluation rows and the GPU run %llu: one stopped early (see its log): "
          "DIFFERS\n",
          run_name.c_str(), static_cast<unsigned long long>(cr), static_cast<unsigned long long>(gr));
      return false;
    }
  }
  for (const char* group : {"hltm", "metrics"}) {
    h5::Handle cg = h5::open_group(cf, group), gg = h5::open_group(gf, group);
    for (const auto& name : datasets(cg)) {
      const std::string what = "/" + std::string(group) + "/" + name;
      if (name == "samples_per_s") continue;  // a timing
      if (!h5::exists(gg, name)) {
        std::printf("%-10s %-34s missing in the GPU run: DIFFERS\n", run_name.c_str(), what.c_str());
        ok = false;
        continue;
      }
      h5::Handle cd = h5::open_dataset(cg, name), gd = h5::open_dataset(gg, name);
      if (h5::shape(cd) != h5::shape(gd)) {
        std::printf("%-10s %-34s shapes differ: DIFFERS\n", run_name.c_str(), what.c_str());
        ok = false;
        continue;
      }
      const auto c = h5::read_doubles(cg, name);
      const auto g = h5::read_doubles(gg, name);
      if (std::string(group) == "hltm" || !is_rows(cd)) {
        Stat s;
        accumulate(s, c, g, 0, c.size(), kTree);
        ok = report(run_name, what, "all", tol_text(kTree), s, c, g, false) && ok;
        continue;
      }
      const size_t rows = h5::shape(cd)[0], per_row = rows ? c.size() / rows : 0;
      if (!trained_rows_loose) {
        Stat s;
        accumulate(s, c, g, 0, c.size(), kTight);
        ok = report(run_name, what, "all", tol_text(kTight), s, c, g, false) && ok;
        continue;
      }
      Stat s0;
      accumulate(s0, c, g, 0, per_row, kTight);
      ok = report(run_name, what, "0", tol_text(kTight), s0, c, g, false) && ok;
      if (rows < 2) continue;
      const auto loose = kTrained.find(name);
      Stat s1;
      accumulate(s1, c, g, per_row, c.size(), loose == kTrained.end() ? Tol{0, 0} : loose->second);
      ok = report(run_name, what, "1-" + std::to_string(rows - 1),
                  loose == kTrained.end() ? "(not compared)" : tol_text(loose->second), s1, c, g,
                  loose == kTrained.end()) &&
           ok;
    }
  }
  return ok;
}

int usage(const char* msg) {
  std::fprintf(stderr,
               "test_gpu_e2e: %s\nusage: test_gpu_e2e --dualnet GPU_DUALNET --workdir DIR "
               "(--cpu-dualnet CPU_DUALNET | --reference-dir REF) [--allow-cpu]\n",
               msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string gpu_bin, cpu_bin, ref_dir, workdir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--allow-cpu") {
      g_allow_cpu = true;
      continue;
    }
    if (i + 1 >= argc) return usage(("missing value after " + a).c_str());
    if (a == "--dualnet")
      gpu_bin = argv[++i];
    else if (a == "--cpu-dualnet")
      cpu_bin = argv[++i];
    else if (a == "--reference-dir")
      ref_dir = argv[++i];
    else if (a == "--workdir")
      workdir = argv[++i];
    else
      return usage(("unknown argument " + a).c_str());
  }
  if (gpu_bin.empty() || workdir.empty() || cpu_bin.empty() == ref_dir.empty())
    return usage("give --dualnet, --workdir and one of --cpu-dualnet / --reference-dir");

  const std::string why = dualnet::gpu_test::why_no_gpu();
  if (!why.empty() && !g_allow_cpu) {
    std::printf("SKIPPED: %s\n", why.c_str());
    return dualnet::gpu_test::kSkip;
  }
  h5::quiet_errors();
  bool ok = true;
  try {
    for (const Run& r : kRuns) {
      const fs::path dir = fs::path(workdir) / r.name;
      fs::create_directories(dir);
      fs::path cpu_metrics = fs::path(ref_dir) / r.name / "metrics.h5";
      if (!cpu_bin.empty()) {
        std::vector<std::string> cmd = {cpu_bin, "train"};
        cmd.insert(cmd.end(), r.keys.begin(), r.keys.end());
        cmd.insert(cmd.end(), {"out=" + (dir / "cpu").string(), "overwrite=true"});
        if (const int rc = run(cmd, dir / "cpu.log"); rc != 0) {
          std::printf("FAILED: the CPU run '%s' exited with %d\n", r.name, rc);
          print_tail(dir / "cpu.log", 30);
          return 1;
        }
        cpu_metrics = dir / "cpu" / "metrics.h5";
      }
      {
        h5::Handle f = h5::open_file(cpu_metrics.string(), false);
        std::ofstream(dir / "config.toml") << h5::read_attr_string(f, "config_toml");
      }
      const std::vector<std::string> cmd = {
          gpu_bin,          "train",       (dir / "config.toml").string(), "out=" + (dir / "gpu").string(),
          "overwrite=true", "reducer=auto"};
      if (const int rc = run(cmd, dir / "gpu.log"); rc != 0) {
        std::printf("FAILED: the GPU run '%s' exited with %d\n", r.name, rc);
        print_tail(dir / "gpu.log", 30);
        return 1;
      }
      print_tail(dir / "gpu.log", 4);
    }
    std::printf("\n%-10s %-34s %-6s %-20s %9s %11s  %s\n", "run", "dataset", "rows", "tolerance", "values", "max|diff|",
                "verdict");
    for (const Run& r : kRuns) {
      const fs::path dir = fs::path(workdir) / r.name;
      const fs::path cpu_metrics =
          cpu_bin.empty() ? fs::path(ref_dir) / r.name / "metrics.h5" : dir / "cpu" / "metrics.h5";
      ok = compare_files(r.name, cpu_metrics.string(), (dir / "gpu" / "metrics.h5").string(), r.trained_rows_loose) &&
           ok;
    }
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("%s\n", ok ? "PASSED: the GPU runs match the CPU runs within tolerance"
                         : "FAILED: the GPU runs differ from the CPU runs");
  return ok ? 0 : 1;
}
