// `dualnet covop [RUN|CHECKPOINT|CONFIG.toml] [key=value ...]`: measures the
// covariance-operator theorem (stats/covop_check.hpp) on a checkpoint's weights (a run
// directory or a checkpoint file) or on the fresh initialisation of a config (CONFIG.toml,
// or none: the defaults), prints a table and writes it to HDF5. docs/covop.md explains
// every number.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>

#include "comm/reducer.hpp"
#include "commands/arguments.hpp"
#include "commands/commands.hpp"
#include "config/config.hpp"
#include "hltm/hltm.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5.hpp"
#include "io/provenance.hpp"
#include "loss/loss_names.hpp"
#include "model/config_network.hpp"
#include "stats/covop_check.hpp"
#include "util/error.hpp"
#include "util/regular_file.hpp"
#include "util/text.hpp"

namespace dualnet {
namespace {

constexpr const char* kCovopFormat = "dualnet-covop";
constexpr std::int64_t kCovopFormatVersion = 1;
// The check's items start far from every training and evaluation stream (those begin at 0).
constexpr std::int64_t kStreamBase = std::int64_t(1) << 62;
constexpr std::int64_t kStreamStride = std::int64_t(1) << 44;
constexpr std::int64_t kStreams = std::int64_t(1) << 17;

// The command's own keys; every other key=value is a config key. Defaults: CovopCheckSpec's.
struct CovopKeys {
  std::int64_t batch = CovopCheckSpec().items;
  std::int64_t samples = 0;  // 0: = batch
  std::int64_t chunk = CovopCheckSpec().chunk;
  std::int64_t micro = CovopCheckSpec().micro;
  std::int64_t stream = 0;
  std::string kbar = "fresh";
  std::vector<double> taus = CovopCheckSpec().taus;
  std::vector<std::string> losses = CovopCheckSpec().losses;
  std::string file;  // "": beside the checkpoint, or covop.h5
};

const std::vector<KeySpecOf<CovopKeys>>& covop_keys() {
  // Temperatures as the config's temp allows them.
  const KeySpec& temp = *key_named(config_keys(), "temp");
  static const std::vector<KeySpecOf<CovopKeys>> keys = {
      {"batch",
       &CovopKeys::batch,
       1,
       static_cast<double>(kStreamStride - 1),
       {},
       false,
       "gradient items (anchor, positive, negatives)"},
      {"samples", &CovopKeys::samples, 0, kIntMax, {}, false, "anchors for the class means of K (0: = batch)"},
      {"taus", &CovopKeys::taus, temp.min, temp.max, {}, false, "temperatures of infonce and triplet"},
      {"losses", &CovopKeys::losses, 0, 0, loss_name_list(true), false,
       "the losses to check (triplet with margin=0 and one negative is infonce)"},
      {"kbar",
       &CovopKeys::kbar,
       0,
       0,
       {"fresh", "same"},
       false,
       "the class means of K from fresh anchors, or from the gradient items' own (samples <= batch)"},
      {"chunk", &CovopKeys::chunk, 1, kIntMax, {}, false, "items per kernel launch (divides batch)"},
      {"micro", &CovopKeys::micro, 1, kIntMax, {}, false, "items per rounded gradient sum (divides chunk)"},
      {"stream",
       &CovopKeys::stream,
       0,
       static_cast<double>(kStreams - 1),
       {},
       false,
       "which fresh stretch of the sample stream"},
      {"file",
       &CovopKeys::file,
       0,
       0,
       {},
       false,
       "HDF5 report (default: <run>/covop-e<epoch>-s<step>.h5 for a checkpoint, covop.h5 for a config)"},
  };
  return keys;
}

bool is_config_file(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".toml") == 0;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

void write_report_content(const h5::Handle& file, const Config& cfg, const NetworkShape& net, const std::string& source,
                          std::int64_t epoch, std::int64_t step, const CovopCheckSpec& spec, const CovopCheckResult& r,
                          double seconds, int world_size);

void write_report(const std::string& path, const Config& cfg, const NetworkShape& net, const std::string& source,
                  std::int64_t epoch, std::int64_t step, const CovopCheckSpec& spec, const CovopCheckResult& r,
                  double seconds, int world_size) {
  // Built in memory and written whole (temporary name, seal, rename): a full disk leaves no
  // partial report and ends with one line.
  h5::write_sealed_file(path, "covop", "no report was written", [&](const h5::Handle& file) {
    write_report_content(file, cfg, net, source, epoch, step, spec, r, seconds, world_size);
  });
}

void write_report_content(const h5::Handle& file, const Config& cfg, const NetworkShape& net, const std::string& source,
                          std::int64_t epoch, std::int64_t step, const CovopCheckSpec& spec, const CovopCheckResult& r,
                          double seconds, int world_size) {
  const TreeShape& t = net.tree;
  h5::write_attr(file, "format", std::string(kCovopFormat));
  h5::write_attr(file, "format_version", kCovopFormatVersion);
  h5::write_attr(file, "config_toml", cfg.to_stored_toml());
  h5::write_attr(file, "source", source);
  h5::write_attr(file, "epoch", epoch);
  h5::write_attr(file, "step", step);
  h5::write_attr(file, "batch", spec.items);
  h5::write_attr(file, "samples", spec.anchors);
  h5::write_attr(file, "negatives", static_cast<std::int64_t>(spec.negatives));
  h5::write_attr(file, "first_item", spec.first_item);
  h5::write_attr(file, "kbar", std::string(spec.same_anchors ? "same" : "fresh"));
  h5::write_attr(file, "d2_pos", r.d2_pos);
  h5::write_attr(file, "d2_neg", r.d2_neg);
  h5::write_attr(file, "p0", r.p0);
  h5::write_attr(file, "p1", r.p1);
  h5::write_attr(file, "seconds", seconds);
  h5::write_attr(file, "world_size", static_cast<std::int64_t>(world_size));
  write_provenance(file);

  const auto scale = [](const h5::Handle& g, const std::string& name, std::int64_t n) {
    std::vector<std::int64_t> v(static_cast<size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
    h5::Handle ds = h5::write_dataset(g, name, {static_cast<hsize_t>(n)}, v.data());
    h5::make_scale(ds, name);
    return ds;
  };
  const hsize_t depth = static_cast<hsize_t>(t.depth);
  {
    h5::Handle g = h5::create_group(file, "levels");
    h5::Handle level = scale(g, "level", t.depth);
    h5::attach_scale(h5::write_dataset(g, "weight_norm", {depth}, r.weight_norm.data()), level, 0);
    h5::attach_scale(h5::write_dataset(g, "op_w_norm", {depth}, r.op_norm.data()), level, 0);
  }
  {
    h5::Handle g = h5::create_group(file, "nodes");
    h5::Handle latent = scale(g, "latent", t.n_latent);
    h5::Handle hid = scale(g, "hid", t.hid);
    const hsize_t L = static_cast<hsize_t>(t.n_latent), H = static_cast<hsize_t>(t.hid);
    h5::Handle ev = h5::write_dataset(g, "covop_eigenvalues", {L, H}, r.eval.covop_eigenvalues.data());
    h5::attach_scale(ev, latent, 0);
    h5::attach_scale(ev, hid, 1);
    h5::attach_scale(h5::write_dataset(g, "covop_alignment", {L}, r.eval.covop_alignment.data()), latent, 0);
    h5::attach_scale(h5::write_dataset(g, "covop_norm_paper", {L}, r.eval.covop_norm_paper.data()), latent, 0);
    h5::attach_scale(h5::write_dataset(g, "best_corr", {L}, r.eval.best_corr.data()), latent, 0);
  }
  // One group per loss: [tau, level] tables (simp: [level], no tau axis).
  for (const auto& loss : spec.losses) {
    std::vector<const CovopCheckRow*> rows;
    for (const auto& row : r.rows)
      if (row.loss == loss) rows.push_back(&row);
    if (rows.empty()) continue;
    const bool simp = loss == "simp";
    const hsize_t n_tau = rows.size() / depth;
    h5::Handle g = h5::create_group(file, loss);
    h5::Handle level = scale(g, "level", t.depth);
    h5::Handle tau;
    std::vector<double> taus, alpha, loss_mean, pairs;
    for (hsize_t k = 0; k < n_tau; ++k) {
      const CovopCheckRow& first = *rows[k * depth];
      taus.push_back(first.tau);
      alpha.push_back(first.alpha);
      loss_mean.push_back(first.loss_mean);
      pairs.insert(pairs.end(), first.alpha_pairs, first.alpha_pairs + 4);
    }
    if (!simp) {
      tau = h5::write_dataset(g, "tau", {n_tau}, taus.data());
      h5::make_scale(tau, "tau");
      h5::attach_scale(h5::write_dataset(g, "alpha", {n_tau}, alpha.data()), tau, 0);
      h5::attach_scale(h5::write_dataset(g, "loss_mean", {n_tau}, loss_mean.data()), tau, 0);
      h5::Handle pds = h5::write_dataset(g, "alpha_pairs", {n_tau, 4}, pairs.data());
      h5::attach_scale(pds, tau, 0);
      h5::write_attr(pds, "description",
                     std::string("mean pair weight beta by (anchor root, negative root): 00, 01, 10, 11"));
    } else {
      h5::write_attr(g, "loss_mean", loss_mean[0]);
    }
    const auto table = [&](const char* name, double CovopCheckRow::*field, const char* meaning) {
      std::vector<double> v;
      for (const auto* row : rows) v.push_back(row->*field);
      h5::Handle ds =
          simp ? h5::write_dataset(g, name, {depth}, v.data()) : h5::write_dataset(g, name, {n_tau, depth}, v.data());
      if (simp) {
        h5::attach_scale(ds, level, 0);
      } else {
        h5::attach_scale(ds, tau, 0);
        h5::attach_scale(ds, level, 1);
      }
      h5::write_attr(ds, "description", std::string(meaning));
    };
    table(simp ? "rel_error" : "rel_residue", &CovopCheckRow::rel_residue,
          "|-g_l - 2 s_alpha OP_l w_l| / |g_l| (simp: s_alpha = 1, the theorem's relative error)");
    table("residue_norm", &CovopCheckRow::residue_norm, "|-g_l - 2 s_alpha OP_l w_l|");
    table("grad_norm", &CovopCheckRow::grad_norm, "|g_l|, g_l the mean gradient of the loss w.r.t. W_l");
    table("pred_norm", &CovopCheckRow::pred_norm, "|2 s_alpha OP_l w_l|");
    table("cosine", &CovopCheckRow::cosine, "cos(-g_l, OP_l w_l)");
  }
}

void print_table(const NetworkShape& net, const std::string& source, const CovopCheckSpec& spec,
                 const CovopCheckResult& r, double seconds, const std::string& path) {
  const TreeShape& t = net.tree;
  std::printf("dualnet covop: %s\n", source.c_str());
  std::printf("tree depth %d, k %d, hid %d; bias=%s normalize_output=%s\n", t.depth, t.k, t.hid,
              net.bias ? "true" : "false", net.normalize_output ? "true" : "false");
  if (net.bias || net.normalize_output) {
    // Why the errors below are large, and what checks the theorem instead (docs/covop.md).
    std::string keys = net.bias ? "bias=true" : "";
    if (net.normalize_output) keys += std::string(keys.empty() ? "" : " ") + "normalize_output=true";
    const bool trained = source.rfind("checkpoint", 0) == 0;
    std::printf(
        "note: this network has %s, so -grad E[L_simp] = 2 OP w does not hold for it and the errors below do "
        "not test the theorem; %s (docs/covop.md#why-bias-free)\n",
        keys.c_str(),
        trained ? "check a bias-free run instead: dualnet train configs/covop-bias-free.toml out=DIR, then "
                  "dualnet covop DIR"
                : "add bias=false normalize_output=false to this command");
  }
  std::printf("gradient: %lld items (anchor, positive, %d negative%s); mean d+^2 = %.4e, d-^2 = %.4e\n",
              static_cast<long long>(spec.items), spec.negatives, spec.negatives > 1 ? "s" : "", r.d2_pos, r.d2_neg);
  std::printf("class means of K: %lld %s anchors, p0 = %.5f, p1 = %.5f\n", static_cast<long long>(spec.anchors),
              spec.same_anchors ? "of the gradient's own" : "further", r.p0, r.p1);
  std::printf(
      "theorem: -grad_{W_l} E[L] = 2 s_alpha OP_l vec(W_l) + residue,  OP_l = p0 p1 Delta_l Delta_l^T "
      "(simp: s_alpha = 1, residue -> 0)\n\n");
  std::printf("%-8s %8s %5s %11s %11s %11s %9s %13s %9s\n", "loss", "tau", "level", "|W_l|", "|g_l|", "|2sOPw|",
              "s_alpha", "|res|/|g_l|", "cos");
  for (const auto& row : r.rows) {
    const std::string tau = std::isnan(row.tau) ? "-" : fmt("%g", row.tau);
    std::printf("%-8s %8s %5d %11.4e %11.4e %11.4e %9.4f %13.4e %9.6f\n", row.loss.c_str(), tau.c_str(), row.level,
                r.weight_norm[static_cast<size_t>(row.level)], row.grad_norm, row.pred_norm, row.alpha, row.rel_residue,
                row.cosine);
  }
  std::printf(
      "\nper level (node means): alignment |P_top vec W_mu|/|W_mu| with the top eigenspace of OP_mu, and the "
      "top eigenvalue of OP_mu\n");
  for (int l = 0; l < t.depth; ++l) {
    double a = 0.0, e = 0.0;
    const int n = t.nodes_at(l);
    for (int mu = t.level_start[l]; mu < t.level_start[l + 1]; ++mu) {
      a += r.eval.covop_alignment[static_cast<size_t>(mu)];
      e += r.eval.covop_eigenvalues[static_cast<size_t>(mu) * t.hid];
    }
    std::printf("  level %d (%d node%s): alignment %.4f, top eigenvalue %.4e\n", l, n, n > 1 ? "s" : "", a / n, e / n);
  }
  std::printf("\nwritten: %s (%.1f s)\n", path.c_str(), seconds);
  std::fflush(stdout);
}

}  // namespace

std::string covop_help() {
  return command_help<CovopKeys>(
      "usage: dualnet covop [RUN|CHECKPOINT|CONFIG.toml] [key=value ...]\n\n"
      "Measures the covariance-operator theorem of Tian et al. on one set of weights: a run\n"
      "directory or checkpoint file (its weights), a CONFIG.toml or nothing (the fresh\n"
      "initialisation of that config). For every level l it compares the mean gradient of\n"
      "each loss with 2 s_alpha OP_l vec(W_l), OP_l = p0 p1 Delta_l Delta_l^T, and prints and\n"
      "writes the relative error (simp) or residue (infonce, triplet); docs/covop.md.\n"
      "The exact setting is bias=false normalize_output=false.\n",
      covop_keys(),
      "Every other key=value is a config key ('dualnet train --help'), e.g. bias=false\n"
      "negatives=4 margin=0.5; a checkpoint's network keys (depth, num_children, hid, bias,\n"
      "normalize_output, seed, delta_lower, delta_upper) cannot change. The config's own\n"
      "batch, loss and temp are not used.\n");
}

int covop_command(const std::vector<std::string>& args, const World& world) {
  CovopKeys keys;
  Config cfg;
  std::unique_ptr<Checkpoint> ckpt;
  std::string source, out_path;
  on_all_ranks(world, [&] {
    const Arguments a = read_arguments(args, true, covop_keys(), keys);
    if (a.has_path && a.path.empty())
      throw UsageError(
          "covop: the RUN|CHECKPOINT|CONFIG.toml argument is empty; name one, or leave it out for the "
          "default config");
    const std::string& where = a.path;
    const std::vector<std::string>& overrides = a.config_overrides;
    if (!where.empty() && !is_config_file(where)) {
      ckpt = std::make_unique<Checkpoint>(read_checkpoint(where));
      cfg = parse_config("", overrides, ckpt->config);
      const Config& was = ckpt->config;
      const bool same_network = was.depth == cfg.depth && was.num_children == cfg.num_children && was.hid == cfg.hid &&
                                was.bias == cfg.bias && was.normalize_output == cfg.normalize_output &&
                                was.seed == cfg.seed && was.delta_lower == cfg.delta_lower &&
                                was.delta_upper == cfg.delta_upper;
      if (!same_network)
        throw UsageError(
            "covop: the checkpoint's weights fix depth, num_children, hid, bias, normalize_output, seed, "
            "delta_lower and delta_upper; they cannot be changed on the command line");
      source = "checkpoint " + where + " (epoch " + std::to_string(ckpt->epoch) + ", step " +
               std::to_string(ckpt->step) + ")";
      out_path = keys.file.empty()
                     ? (std::filesystem::path(run_dir_of(where)) /
                        ("covop-e" + std::to_string(ckpt->epoch) + "-s" + std::to_string(ckpt->step) + ".h5"))
                           .string()
                     : keys.file;
    } else {
      cfg = parse_config(where, overrides);
      source = (where.empty() ? std::string("default config") : "config " + where) + ", fresh initialisation (seed " +
               std::to_string(cfg.seed) + ")";
      out_path = keys.file.empty() ? "covop.h5" : keys.file;
    }
    validate(cfg, 1);
    // The report is written after minutes of work: its path is checked now.
    if (world.root()) check_output_file(out_path, "covop: report file");
  });

  const NetworkShape net = network_shape(cfg);
  const TreeShape& t = net.tree;
  View1<real> polarity, params;
  on_all_ranks(world, [&] {
    polarity = draw_polarities(t, static_cast<std::uint64_t>(cfg.seed), cfg.delta_lower, cfg.delta_upper);
    if (ckpt) {
      if (ckpt->params.size() != static_cast<size_t>(t.n_params()))
        throw UsageError("covop: the checkpoint has " + std::to_string(ckpt->params.size()) +
                         " weights, its config needs " + std::to_string(t.n_params()));
      params = View1<real>("covop.params", t.n_params());
      Kokkos::View<const double*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> h(ckpt->params.data(),
                                                                                                ckpt->params.size());
      Kokkos::deep_copy(params, h);
    } else {
      params = init_params(net, static_cast<std::uint64_t>(cfg.seed));
    }
  });

  CovopCheckSpec spec;
  spec.items = keys.batch;
  spec.anchors = keys.samples > 0 ? keys.samples : keys.batch;
  spec.chunk = std::min(keys.chunk, keys.batch);
  spec.micro = std::min(keys.micro, spec.chunk);
  spec.first_item = kStreamBase + keys.stream * kStreamStride;
  spec.same_anchors = keys.kbar == "same";
  spec.losses = keys.losses;
  spec.taus = keys.taus;
  spec.negatives = static_cast<int>(cfg.negatives);
  spec.margin = cfg.margin;
  spec.share_levels = static_cast<int>(cfg.share_levels);
  spec.seed = static_cast<std::uint64_t>(cfg.seed);

  if (world.root() && spec.items >= (std::int64_t(1) << 20)) {
    std::printf(
        "covop: %lld items per gradient take minutes on a workstation (about 3 minutes on 2 cores for the "
        "reference tree); batch=65536 gives a check within a few percent in seconds\n",
        static_cast<long long>(spec.items));
    std::fflush(stdout);
  }
  const auto reducer = make_reducer(world, cfg.reducer);
  const auto t0 = std::chrono::steady_clock::now();
  CovopCheckResult result;
  on_all_ranks(world, [&] { result = covop_check(net, params, polarity, spec, world, *reducer); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  on_all_ranks(world, [&] {
    if (!world.root()) return;
    write_report(out_path, cfg, net, source, ckpt ? ckpt->epoch : -1, ckpt ? ckpt->step : -1, spec, result, seconds,
                 world.size);
    print_table(net, source, spec, result, seconds, out_path);
  });
  return 0;
}

}  // namespace dualnet
