#include "io/metrics_file.hpp"

#include <cmath>
#include <numeric>

#include "dualnet_version.hpp"
#include "io/hdf5.hpp"
#include "util/error.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {
namespace {

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

h5::Handle scale(const h5::Handle& group, const std::string& name, std::int64_t n) {
  const auto v = iota(n);
  h5::Handle ds = h5::write_dataset(group, name, {static_cast<hsize_t>(n)}, v.data());
  h5::make_scale(ds, name);
  return ds;
}

// The /metrics datasets after the epoch axis: name -> (dimension names).
struct RowSpec {
  const char* name;
  std::vector<const char*> dims;
  const char* meaning;
};

std::vector<RowSpec> row_specs(bool with_corr_full) {
  std::vector<RowSpec> specs = {
      {"corr", {"latent", "hid"}, "Pearson corr of each node's own neurons (pre-activation) with its latent"},
      {"best_corr", {"latent"}, "max_j |corr| per node"},
      {"level_mean_best_corr", {"level"}, "mean best_corr over the nodes of a level (level 0 = root)"},
      {"covop_norm_ref", {"latent"}, "p0 p1 |Delta^T Delta|_F, Delta rows (input, output dim) x cols (node neurons)"},
      {"covop_norm_paper", {"latent"}, "p0 p1 |Delta^T Delta|_F, Delta rows (input, node neuron) x cols (output dim)"},
      {"covop_eigenvalues", {"latent", "hid"},
       "eigenvalues of p0 p1 Delta^T Delta (paper reshape), descending: the nonzero spectrum of the operator at node mu "
       "(docs/covop.md)"},
      {"covop_alignment", {"latent"},
       "|P vec(W_mu)| / |W_mu|, P the projector on the top eigenspace of the operator at node mu (a simple top "
       "eigenvalue: |<vec(W_mu), u>| / |W_mu|; docs/covop.md)"},
      {"weight_norm", {"latent"}, "Frobenius norm of W_mu (biases excluded)"},
      {"train_loss_mean", {}, "mean loss of the training pass that produced this row's weights (NaN in row 0)"},
      {"train_loss_sem", {}, "standard error of that mean over the pass's steps"},
      {"samples_per_s", {}, "training samples/s of that pass (NaN in row 0)"},
  };
  if (with_corr_full)
    specs.push_back({"corr_full", {"latent", "neuron"}, "Pearson corr of every latent with every neuron"});
  return specs;
}

}  // namespace

bool corr_full_enabled(const std::string& setting, double latents, double neurons) {
  if (setting == "true") return true;
  if (setting == "false") return false;
  return 8.0 * latents * neurons < 64.0 * 1024 * 1024;
}

bool corr_full_enabled(const Config& cfg, const TreeShape& tree) {
  return corr_full_enabled(cfg.corr_full, tree.n_latent, tree.n_neuron());
}

void create_metrics_file(const std::string& path, const Config& cfg, const TreeShape& tree,
                         const std::vector<double>& polarity, const std::vector<double>& rho, int world_size) {
  h5::Handle file = h5::create_file(path);
  h5::write_attr(file, "format", std::string(kMetricsFormat));
  h5::write_attr(file, "format_version", kMetricsFormatVersion);
  h5::write_attr(file, "config_toml", cfg.to_toml());
  h5::write_attr(file, "dualnet_version", std::string(DUALNET_VERSION));
  h5::write_attr(file, "git_commit", std::string(DUALNET_GIT_COMMIT));
  h5::write_attr(file, "world_size", static_cast<std::int64_t>(world_size));
  const int kv = KOKKOS_VERSION;
  h5::write_attr(file, "kokkos_version",
                 std::to_string(kv / 10000) + "." + std::to_string(kv / 100 % 100) + "." + std::to_string(kv % 100));
  h5::write_attr(file, "execution_space", std::string(execution_space_name()));

  const std::int64_t L = tree.n_latent, leaves = tree.n_leaf;
  {
    h5::Handle g = h5::create_group(file, "hltm");
    h5::write_attr(g, "num_children", static_cast<std::int64_t>(tree.k));
    h5::write_attr(g, "depth", static_cast<std::int64_t>(tree.depth));
    h5::Handle latent = scale(g, "latent", L);
    h5::Handle leaf = scale(g, "leaf", leaves);
    std::vector<std::int64_t> level(L), ref_level(L), parent(L), leaf_parent(leaves);
    for (std::int64_t mu = 0; mu < L; ++mu) {
      level[mu] = tree.level_of(static_cast<int>(mu));
      ref_level[mu] = tree.depth - level[mu];
      parent[mu] = mu == 0 ? -1 : tree.parent(static_cast<int>(mu));
    }
    for (std::int64_t l = 0; l < leaves; ++l) leaf_parent[l] = tree.parent(static_cast<int>(L + l));
    const auto attach = [](h5::Handle ds, const h5::Handle& s) { h5::attach_scale(ds, s, 0); };
    attach(h5::write_dataset(g, "level", {hsize_t(L)}, level.data()), latent);
    attach(h5::write_dataset(g, "ref_level", {hsize_t(L)}, ref_level.data()), latent);
    attach(h5::write_dataset(g, "parent", {hsize_t(L)}, parent.data()), latent);
    attach(h5::write_dataset(g, "polarity", {hsize_t(L)}, polarity.data()), latent);
    attach(h5::write_dataset(g, "rho_root", {hsize_t(L)}, rho.data()), latent);
    attach(h5::write_dataset(g, "leaf_parent", {hsize_t(leaves)}, leaf_parent.data()), leaf);
    attach(h5::write_dataset(g, "leaf_polarity", {hsize_t(leaves)}, polarity.data() + L), leaf);
    attach(h5::write_dataset(g, "leaf_rho_root", {hsize_t(leaves)}, rho.data() + L), leaf);
  }
  h5::Handle g = h5::create_group(file, "metrics");
  h5::Handle epoch = h5::create_rows(g, "epoch", {}, H5T_NATIVE_INT64);
  h5::make_scale(epoch, "epoch");
  h5::Handle latent = scale(g, "latent", L);
  h5::Handle hid = scale(g, "hid", tree.hid);
  h5::Handle level = scale(g, "level", tree.depth);
  h5::Handle neuron = scale(g, "neuron", tree.n_neuron());
  const auto scale_of = [&](const std::string& d) -> const h5::Handle& {
    if (d == "latent") return latent;
    if (d == "hid") return hid;
    if (d == "level") return level;
    return neuron;
  };
  const auto size_of = [&](const std::string& d) -> hsize_t {
    return d == "latent" ? L : d == "hid" ? tree.hid : d == "level" ? tree.depth : tree.n_neuron();
  };
  for (const auto& spec : row_specs(corr_full_enabled(cfg, tree))) {
    std::vector<hsize_t> row_dims;
    for (auto d : spec.dims) row_dims.push_back(size_of(d));
    h5::Handle ds = h5::create_rows(g, spec.name, row_dims, H5T_NATIVE_DOUBLE);
    h5::write_attr(ds, "description", std::string(spec.meaning));
    h5::attach_scale(ds, epoch, 0);
    for (size_t a = 0; a < spec.dims.size(); ++a) h5::attach_scale(ds, scale_of(spec.dims[a]), unsigned(a + 1));
  }
}

void append_metrics_row(const std::string& path, const MetricsRow& row) {
  h5::Handle file = h5::open_file(path, true);
  h5::Handle g = h5::open_group(file, "metrics");
  const hsize_t r = static_cast<hsize_t>(row.epoch);
  const auto put = [&](const char* name, const double* data) {
    h5::write_row(h5::open_dataset(g, name), r, data, H5T_NATIVE_DOUBLE);
  };
  h5::write_row(h5::open_dataset(g, "epoch"), r, &row.epoch, H5T_NATIVE_INT64);
  put("corr", row.eval->corr.data());
  put("best_corr", row.eval->best_corr.data());
  put("level_mean_best_corr", row.eval->level_mean_best_corr.data());
  put("covop_norm_ref", row.eval->covop_norm_ref.data());
  put("covop_norm_paper", row.eval->covop_norm_paper.data());
  // Files of runs begun before these datasets existed lack them (a resumed run).
  if (h5::exists(g, "covop_eigenvalues")) put("covop_eigenvalues", row.eval->covop_eigenvalues.data());
  if (h5::exists(g, "covop_alignment")) put("covop_alignment", row.eval->covop_alignment.data());
  put("weight_norm", row.weight_norm.data());
  put("train_loss_mean", &row.train_loss_mean);
  put("train_loss_sem", &row.train_loss_sem);
  put("samples_per_s", &row.samples_per_s);
  if (h5::exists(g, "corr_full")) put("corr_full", row.eval->corr_full.data());
  h5::flush(file);
}

}  // namespace dualnet

namespace dualnet {

void check_metrics_file(const std::string& path, std::int64_t rows, const TreeShape& tree) {
  const auto refuse = [&](const std::string& why) { return UsageError("resume: '" + path + "' " + why); };
  if (!h5::is_hdf5(path)) throw refuse("is missing or not an HDF5 file");
  try {
    h5::Handle file = h5::open_file(path, false);
    if (!h5::has_attr(file, "format") || h5::read_attr_string(file, "format") != kMetricsFormat)
      throw refuse("is not a dualnet metrics file");
    if (h5::read_attr_int(file, "format_version") > kMetricsFormatVersion)
      throw refuse("has a newer format version than this dualnet writes");
    if (!h5::exists(file, "metrics") || !h5::exists(file, "hltm")) throw refuse("lacks the /metrics or /hltm group");
    h5::Handle g = h5::open_group(file, "metrics");
    const auto best = h5::shape(h5::open_dataset(g, "best_corr"));
    if (best.size() != 2 || best[1] != static_cast<hsize_t>(tree.n_latent))
      throw refuse("does not belong to this run (tree size differs)");
    const std::int64_t have = static_cast<std::int64_t>(h5::row_count(h5::open_dataset(g, "epoch")));
    if (have < rows)
      throw refuse("has " + std::to_string(have) + " rows but the checkpoint needs " + std::to_string(rows));
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw refuse(std::string("is damaged: ") + e.what());
  }
}

void reopen_metrics_file(const std::string& path, std::int64_t rows, const Config& cfg, const TreeShape& tree,
                         int world_size) {
  check_metrics_file(path, rows, tree);
  h5::Handle file = h5::open_file(path, true);
  h5::Handle g = h5::open_group(file, "metrics");
  for (const auto& spec : row_specs(true))
    if (h5::exists(g, spec.name)) h5::set_row_count(h5::open_dataset(g, spec.name), static_cast<hsize_t>(rows));
  h5::set_row_count(h5::open_dataset(g, "epoch"), static_cast<hsize_t>(rows));
  h5::write_attr(file, "config_toml", cfg.to_toml());
  h5::write_attr(file, "world_size", static_cast<std::int64_t>(world_size));
  h5::flush(file);
}

}  // namespace dualnet
