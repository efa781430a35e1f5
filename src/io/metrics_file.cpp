#include "io/metrics_file.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "io/hdf5.hpp"
#include "io/provenance.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

h5::Handle scale(const h5::Handle& group, const std::string& name, std::int64_t n, const char* long_name) {
  const auto v = iota(n);
  h5::Handle ds = h5::write_dataset(group, name, {static_cast<hsize_t>(n)}, v.data());
  h5::make_scale(ds, name);
  h5::write_attr(ds, "long_name", std::string(long_name));
  h5::write_attr(ds, "units", std::string("1"));
  return ds;
}

}  // namespace

const std::vector<MetricsDataset>& metrics_datasets() {
  using R = const MetricsRow&;
  static const std::vector<MetricsDataset> all = {
      {"corr",
       {"latent", "hid"},
       "correlation of a node's neurons with its latent",
       "1",
       "Pearson corr of each node's own neurons (pre-activation) with its latent",
       [](R r) { return r.eval->corr.data(); },
       false,
       false},
      {"best_corr",
       {"latent"},
       "best absolute neuron-latent correlation of a node",
       "1",
       "max_j |corr| per node",
       [](R r) { return r.eval->best_corr.data(); },
       false,
       false},
      {"level_mean_best_corr",
       {"level"},
       "mean best correlation of a level",
       "1",
       "mean best_corr over the nodes of a level (level 0 = root)",
       [](R r) { return r.eval->level_mean_best_corr.data(); },
       false,
       false},
      {"covop_norm_ref",
       {"latent"},
       "covariance-operator norm (reference reshape)",
       "1",
       "p0 p1 |Delta^T Delta|_F, Delta rows (input, output dim) x cols (node neurons)",
       [](R r) { return r.eval->covop_norm_ref.data(); },
       false,
       false},
      {"covop_norm_paper",
       {"latent"},
       "covariance-operator norm (paper reshape)",
       "1",
       "p0 p1 |Delta^T Delta|_F, Delta rows (input, node neuron) x cols (output dim)",
       [](R r) { return r.eval->covop_norm_paper.data(); },
       false,
       false},
      {"covop_eigenvalues",
       {"latent", "hid"},
       "eigenvalues of the covariance operator",
       "1",
       "eigenvalues of p0 p1 Delta^T Delta (paper reshape), descending: the nonzero spectrum of the operator at node "
       "mu "
       "(docs/covop.md)",
       [](R r) { return r.eval->covop_eigenvalues.data(); },
       true,
       false},
      {"covop_alignment",
       {"latent"},
       "alignment of the weights with the operator's top eigenspace",
       "1",
       "|P vec(W_mu)| / |W_mu|, P the projector on the top eigenspace of the operator at node mu (a simple top "
       "eigenvalue: |<vec(W_mu), u>| / |W_mu|; docs/covop.md)",
       [](R r) { return r.eval->covop_alignment.data(); },
       true,
       false},
      {"weight_norm",
       {"latent"},
       "Frobenius norm of a node's weights",
       "1",
       "Frobenius norm of W_mu (biases excluded)",
       [](R r) { return r.weight_norm.data(); },
       false,
       false},
      {"weight_change",
       {"latent"},
       "relative change of a node's weights over the training pass",
       "1",
       "|W_mu(e) - W_mu(e-1)|_F / |W_mu(e-1)|_F, W(e) the weights evaluated in row e (biases excluded; NaN in row 0; "
       "0 means the pass did not move the node)",
       [](R r) { return r.weight_change.data(); },
       false,
       false},
      {"dead_fraction",
       {"latent"},
       "fraction of a node's neurons never active",
       "1",
       "fraction of the node's neurons whose pre-activation is <= 0 on every anchor of the evaluation pass",
       [](R r) { return r.eval->dead_fraction.data(); },
       false,
       false},
      {"active_fraction",
       {"latent", "hid"},
       "fraction of anchors on which a neuron is active",
       "1",
       "share of the evaluation pass's anchors on which each of the node's neurons has pre-activation > 0",
       [](R r) { return r.eval->active_fraction.data(); },
       false,
       false},
      {"output_rank1_gap",
       {},
       "distance of the output from a single direction",
       "1",
       "1 - |M|_F / tr M, M = E[h h^T] over the evaluation anchors of the root's outputs after the ReLU: 0 when every "
       "output lies on one ray (the representation has collapsed to a line; docs/metrics-format.md#collapse)",
       [](R r) { return &r.eval->output_rank1_gap; },
       false,
       false},
      {"train_loss_mean",
       {},
       "mean training loss of the pass",
       "1",
       "mean loss of the training pass that produced this row's weights (NaN in row 0)",
       [](R r) { return &r.train_loss_mean; },
       false,
       false},
      {"train_loss_sem",
       {},
       "standard error of the mean training loss",
       "1",
       "standard error of that mean over the pass's steps",
       [](R r) { return &r.train_loss_sem; },
       false,
       false},
      {"samples_per_s",
       {},
       "training throughput",
       "s-1",
       "training samples/s of that pass (NaN in row 0)",
       [](R r) { return &r.samples_per_s; },
       false,
       true},
      {"corr_full",
       {"latent", "neuron"},
       "correlation of every latent with every neuron",
       "1",
       "Pearson corr of every latent with every neuron",
       [](R r) { return r.eval->corr_full.data(); },
       true,
       false},
  };
  return all;
}

namespace {

// corr_full is written only when the config asks for it (corr_full_enabled).
bool is_corr_full(const MetricsDataset& d) { return std::string(d.name) == "corr_full"; }

void describe(const h5::Handle& ds, const std::string& long_name, const std::string& units) {
  h5::write_attr(ds, "long_name", long_name);
  h5::write_attr(ds, "units", units);
}

}  // namespace

bool corr_full_enabled(const std::string& setting, double latents, double neurons, double rows) {
  if (setting == "true") return true;
  if (setting == "false") return false;
  // auto: while the whole run's corr_full stays within the budget. Every row rewrites the
  // metrics file (a new copy replaces it), so the file must stay small for that to be cheap.
  return 8.0 * latents * neurons * rows <= static_cast<double>(kCorrFullAutoBytes);
}

bool corr_full_enabled(const Config& cfg, const TreeShape& tree) {
  return corr_full_enabled(cfg.corr_full, tree.n_latent, tree.n_neuron(), static_cast<double>(cfg.epochs + 1));
}

namespace {

void fill_new_file(const h5::Handle& file, const Config& cfg, const TreeShape& tree,
                   const std::vector<double>& polarity, const std::vector<double>& rho, int world_size) {
  h5::write_attr(file, "format", std::string(kMetricsFormat));
  h5::write_attr(file, "format_version", kMetricsFormatVersion);
  h5::write_attr(file, "config_toml", cfg.to_stored_toml());
  write_provenance(file);
  h5::write_attr(file, "world_size", static_cast<std::int64_t>(world_size));

  const std::int64_t L = tree.n_latent, leaves = tree.n_leaf;
  {
    h5::Handle g = h5::create_group(file, "hltm");
    h5::write_attr(g, "num_children", static_cast<std::int64_t>(tree.k));
    h5::write_attr(g, "depth", static_cast<std::int64_t>(tree.depth));
    h5::Handle latent = scale(g, "latent", L, "latent node (breadth-first index, root 0)");
    h5::Handle leaf = scale(g, "leaf", leaves, "leaf (input) index");
    std::vector<std::int64_t> level(L), ref_level(L), parent(L), leaf_parent(leaves);
    for (std::int64_t mu = 0; mu < L; ++mu) {
      level[mu] = tree.level_of(static_cast<int>(mu));
      ref_level[mu] = tree.depth - level[mu];
      parent[mu] = mu == 0 ? -1 : tree.parent(static_cast<int>(mu));
    }
    for (std::int64_t l = 0; l < leaves; ++l) leaf_parent[l] = tree.parent(static_cast<int>(L + l));
    // Per-node variables are named latent_* so that /hltm and /metrics (whose `level` is a
    // dimension) merge in xarray.
    const auto put = [&](const char* name, const h5::Handle& axis, const auto* data, hsize_t n, const char* long_name) {
      h5::Handle ds = h5::write_dataset(g, name, {n}, data);
      h5::attach_scale(ds, axis, 0);
      describe(ds, long_name, "1");
    };
    put("latent_level", latent, level.data(), hsize_t(L), "level of the latent node (root 0)");
    put("latent_ref_level", latent, ref_level.data(), hsize_t(L),
        "level as the reference script counts it (depth - level)");
    put("parent", latent, parent.data(), hsize_t(L), "parent latent node (-1 for the root)");
    put("polarity", latent, polarity.data(), hsize_t(L),
        "polarity delta of the edge from the parent (NaN at the root)");
    put("rho_root", latent, rho.data(), hsize_t(L), "correlation of the latent with the root");
    put("leaf_parent", leaf, leaf_parent.data(), hsize_t(leaves), "parent latent node of the leaf");
    put("leaf_polarity", leaf, polarity.data() + L, hsize_t(leaves), "polarity delta of the edge to the leaf");
    put("leaf_rho_root", leaf, rho.data() + L, hsize_t(leaves), "correlation of the leaf with the root");
  }
  h5::Handle g = h5::create_group(file, "metrics");
  h5::Handle epoch = h5::create_rows(g, "epoch", {}, H5T_NATIVE_INT64);
  h5::make_scale(epoch, "epoch");
  describe(epoch, "evaluation pass (row e: the weights after e training passes)", "1");
  h5::Handle latent = scale(g, "latent", L, "latent node (breadth-first index, root 0)");
  h5::Handle hid = scale(g, "hid", tree.hid, "neuron of a node (index within the node)");
  h5::Handle level = scale(g, "level", tree.depth, "tree level (root 0)");
  h5::Handle neuron = scale(g, "neuron", tree.n_neuron(), "neuron (node-major index over all nodes)");
  const auto scale_of = [&](const std::string& d) -> const h5::Handle& {
    if (d == "latent") return latent;
    if (d == "hid") return hid;
    if (d == "level") return level;
    return neuron;
  };
  const auto size_of = [&](const std::string& d) -> hsize_t {
    return d == "latent" ? L : d == "hid" ? tree.hid : d == "level" ? tree.depth : tree.n_neuron();
  };
  const bool with_corr_full = corr_full_enabled(cfg, tree);
  for (const auto& spec : metrics_datasets()) {
    if (is_corr_full(spec) && !with_corr_full) continue;
    std::vector<hsize_t> row_dims;
    for (auto d : spec.dims) row_dims.push_back(size_of(d));
    h5::Handle ds = h5::create_rows(g, spec.name, row_dims, H5T_NATIVE_DOUBLE);
    h5::write_attr(ds, "description", std::string(spec.description));
    describe(ds, spec.long_name, spec.units);
    h5::attach_scale(ds, epoch, 0);
    for (size_t a = 0; a < spec.dims.size(); ++a) h5::attach_scale(ds, scale_of(spec.dims[a]), unsigned(a + 1));
  }
}

void fill_row(const h5::Handle& file, const MetricsRow& row) {
  h5::Handle g = h5::open_group(file, "metrics");
  const hsize_t r = static_cast<hsize_t>(row.epoch);
  const auto put = [&](const char* name, const double* data) {
    h5::write_row(h5::open_dataset(g, name), r, data, H5T_NATIVE_DOUBLE);
  };
  const size_t latents = row.eval->best_corr.size();
  if (row.weight_norm.size() != latents || row.weight_change.size() != latents)
    DUALNET_FAIL("metrics row: weight_norm and weight_change need one value per latent node");
  h5::write_row(h5::open_dataset(g, "epoch"), r, &row.epoch, H5T_NATIVE_INT64);
  for (const auto& spec : metrics_datasets()) {
    // corr_full=false, or a file of a run begun before the dataset existed (a resumed run).
    if (spec.optional && !h5::exists(g, spec.name)) continue;
    put(spec.name, spec.values(row));
  }
}

constexpr const char* kResumeWhat = "resume: metrics file";

// The checks of a resume, on the open file.
MetricsFileInfo inspect_open(const h5::Handle& file, const std::string& path, const TreeShape& tree) {
  const auto refuse = [&](const std::string& why) { return UsageError("resume: '" + path + "' " + why); };
  MetricsFileInfo info;
  try {
    if (!h5::has_attr(file, "format") || h5::read_attr_string(file, "format") != kMetricsFormat)
      throw refuse("is not a dualnet metrics file");
    if (h5::read_attr_int(file, "format_version") > kMetricsFormatVersion)
      throw refuse("has a newer format version than this dualnet writes");
    if (!h5::exists(file, "metrics") || !h5::exists(file, "hltm")) throw refuse("lacks the /metrics or /hltm group");
    h5::Handle g = h5::open_group(file, "metrics");
    const auto best = h5::shape(h5::open_dataset(g, "best_corr"));
    if (best.size() != 2 || best[1] != static_cast<hsize_t>(tree.n_latent))
      throw refuse("does not belong to this run (tree size differs)");
    info.rows = static_cast<std::int64_t>(h5::row_count(h5::open_dataset(g, "epoch")));
    info.run_id = config_from_toml_text(h5::read_attr_string(file, "config_toml"), "'" + path + "'").run_id;
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw refuse(std::string("is damaged: ") + e.what());
  }
  return info;
}

void check_rows(const MetricsFileInfo& info, const std::string& path, std::int64_t rows) {
  if (info.rows < rows)
    throw UsageError("resume: '" + path + "' has " + std::to_string(info.rows) + " rows but the checkpoint needs " +
                     std::to_string(rows));
}

constexpr const char* kRowsIntact = "the rows written before are intact";

}  // namespace

void create_metrics_file(const std::string& path, const Config& cfg, const TreeShape& tree,
                         const std::vector<double>& polarity, const std::vector<double>& rho, int world_size) {
  h5::write_sealed_file(path, kMetricsKind, "",
                        [&](const h5::Handle& file) { fill_new_file(file, cfg, tree, polarity, rho, world_size); });
}

void append_metrics_row(const std::string& path, const MetricsRow& row) {
  try {
    h5::update_sealed_file(path, kMetricsKind, "cannot add a row: metrics file", kRowsIntact,
                           [&](const h5::Handle& file) { fill_row(file, row); });
  } catch (const UsageError& e) {
    throw RuntimeError(e.what());  // the file went bad during the run: not a usage problem
  }
}

bool is_collapsed(const MetricsRow& row) {
  if (row.epoch < 1) return false;
  const bool frozen =
      std::all_of(row.weight_change.begin(), row.weight_change.end(), [](double c) { return c == 0.0; });
  return row.eval->output_rank1_gap <= kCollapseGap || frozen;
}

MetricsFileInfo inspect_metrics_file(const std::string& path, const TreeShape& tree) {
  h5::Handle file = h5::open_sealed_file(path, kMetricsKind, kResumeWhat);
  return inspect_open(file, path, tree);
}

void reopen_metrics_file(const std::string& path, std::int64_t rows, const Config& cfg, const TreeShape& tree,
                         int world_size) {
  h5::update_sealed_file(path, kMetricsKind, kResumeWhat, "", [&](const h5::Handle& file) {
    check_rows(inspect_open(file, path, tree), path, rows);
    h5::Handle g = h5::open_group(file, "metrics");
    for (const auto& spec : metrics_datasets())
      if (h5::exists(g, spec.name)) h5::set_row_count(h5::open_dataset(g, spec.name), static_cast<hsize_t>(rows));
    h5::set_row_count(h5::open_dataset(g, "epoch"), static_cast<hsize_t>(rows));
    h5::write_attr(file, "config_toml", cfg.to_stored_toml());
    h5::write_attr(file, "world_size", static_cast<std::int64_t>(world_size));
  });
}

}  // namespace dualnet
