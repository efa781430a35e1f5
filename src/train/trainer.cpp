#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "comm/mpi_check.hpp"
#include "io/metrics_file.hpp"
#include "io/run_dir.hpp"
#include "model/config_network.hpp"
#include "train/memory_estimate.hpp"
#include "train/stop_request.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string duration_text(double s) {
  if (!std::isfinite(s)) return "?";
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

}  // namespace

Trainer::Trainer(const Config& cfg, const World& world, const Checkpoint* resume)
    : cfg_(cfg), world_(world), last_rate_(std::numeric_limits<double>::quiet_NaN()) {
  net_ = network_shape(cfg);
  loss_.kind = loss_kind(cfg.loss);
  loss_.temp = cfg.temp;
  loss_.margin = cfg.margin;
  loss_.negatives = static_cast<int>(cfg.negatives);
  loss_.global_batch = cfg.batch;
  loss_.out_dim = static_cast<int>(cfg.hid);
  sgd_ = SgdParams{cfg.lr, cfg.momentum, cfg.weight_decay};
  reducer_ = make_reducer(world, cfg.reducer);
  views_ = static_cast<int>(cfg.negatives) + 2;
  // The ranks' shares of a step's micro-batches (held at what the buffers below hold) and of
  // an evaluation pass's blocks.
  const std::vector<double> shares = balance_shares(cfg.balance, world.size);
  const std::int64_t units = cfg.batch / cfg.micro_batch;
  const std::int64_t most_units = most_step_units(units, world.size, balance_is_fixed(cfg.balance));
  const std::int64_t most_items = most_units * cfg.micro_batch;
  train_split_ = WorkSplit(units, world.size, 1, most_units, shares);
  const std::int64_t blocks = (cfg.samples_per_pass + kEvalBlock - 1) / kEvalBlock;
  eval_split_ = WorkSplit(blocks, world.size, 0, blocks, shares);
  // balance=auto moves the evaluation's blocks only, and only where the kernels run on the
  // host: there they have ended when the host reads the clock. Not a step's micro-batches: a
  // step takes a quarter of a millisecond and the operating system shares a core in slices of
  // milliseconds, so a rank's last pass predicts its next steps badly (docs/performance.md).
  balance_eval_ =
      cfg.balance == "auto" && world.size > 1 && Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;

  const TreeShape& t = net_.tree;
  polarity_ = draw_polarities(t, static_cast<std::uint64_t>(cfg.seed), cfg.delta_lower, cfg.delta_upper);
  params_ = init_params(net_, static_cast<std::uint64_t>(cfg.seed));
  velocity_ = View1<real>("train.velocity", t.n_params());
  row_params_ = View1<real>("train.row_params", t.n_params());

  const std::int64_t rows = most_items * views_;
  train_samples_.allocate(t, rows);
  next_samples_.allocate(t, rows);
  train_act_.allocate(t, rows);
  dist_ = View2<real>("loss.dist", most_items, views_ - 1);
  coef_ = View2<real>("loss.coef", most_items, views_ - 1);
  item_loss_ = View1<real>("loss.item_loss", most_items);
  grad_out_ = View2<real>("loss.grad_out", rows, t.hid);
  delta_ = View2<real>("model.delta", rows, PaddedLayout(t).delta_columns());
  grad_ = View1<std::int64_t>("train.grad_fixed", t.n_params() + 2);
  batch_sums_ = View1<std::int64_t>("loss.batch_sums", kBatchSums);
  overflows_ = View1<std::int64_t>("train.overflows", 1);
  step_losses_ = View1<real>("train.step_losses", steps_per_pass());

  evaluator_ = std::make_unique<Evaluator>(net_, cfg.eval_chunk, corr_full_enabled(cfg, t));
  eval_samples_.allocate(t, evaluator_->chunk());
  eval_act_.allocate(t, evaluator_->chunk(), &train_act_);  // one copy of the padded weights
  writer_ = std::make_unique<WriteBehind>(world_.root() && world_.threads);

  if (resume) {
    const auto load = [](const std::vector<double>& from, const View1<real>& to, const char* what) {
      if (from.size() != to.extent(0))
        throw UsageError(std::string("resume: the checkpoint's ") + what + " has " + std::to_string(from.size()) +
                         " values, this configuration needs " + std::to_string(to.extent(0)));
      Kokkos::View<const double*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> h(from.data(),
                                                                                                from.size());
      Kokkos::deep_copy(to, h);
    };
    if (host_vector(polarity_) != resume->polarity) {
      // NaN at the root compares unequal: compare the edges only.
      const auto mine = host_vector(polarity_);
      if (!std::equal(mine.begin() + 1, mine.end(), resume->polarity.begin() + 1, resume->polarity.end()))
        throw UsageError("resume: the checkpoint's polarities differ from those its seed gives (damaged file?)");
    }
    load(resume->params, params_, "weights");
    load(resume->velocity, velocity_, "optimiser state");
    load(resume->step_losses, step_losses_, "loss history");
    load(resume->row_params, row_params_, "weights of the last metrics row");
    resumed_ = true;
    epoch_ = resume->epoch;
    step_ = resume->step;
    last_rate_ = resume->last_train_rate;
    resumed_world_size_ = resume->world_size;
  }
  // Once per run: the sampler's bounds (from the polarities) and the padded weights, which
  // the update kernel keeps current from here on (the evaluation's forward shares them).
  keep_bound_ = train_samples_.keep_bound;
  keep_bounds(t, polarity_, keep_bound_);
  pad_weights(net_, params_, train_act_);
}

EvalResult Trainer::evaluate(std::int64_t epoch) {
  const auto t0 = std::chrono::steady_clock::now();
  evaluator_->reset();
  std::int64_t begin, end;  // this rank's blocks of the pass's anchors
  Evaluator::block_range(cfg_.samples_per_pass, eval_split_.first(world_.rank), eval_split_.count(world_.rank), &begin,
                         &end);
  const std::int64_t base = pass_first_item(cfg_, epoch, false);
  // The pass's first anchor is every rank's reference for the shifted moment sums.
  sample_views(net_.tree, keep_bound_, static_cast<std::uint64_t>(cfg_.seed), static_cast<int>(cfg_.share_levels), base,
               1, 1, eval_samples_);
  forward(net_, eval_samples_.leaves, 1, eval_act_);
  evaluator_->set_shift(eval_act_, 0);
  for (std::int64_t start = begin; start < end; start += evaluator_->chunk()) {
    const std::int64_t rows = std::min(evaluator_->chunk(), end - start);
    sample_views(net_.tree, keep_bound_, static_cast<std::uint64_t>(cfg_.seed), static_cast<int>(cfg_.share_levels),
                 base + start, rows, 1, eval_samples_);
    forward(net_, eval_samples_.leaves, rows, eval_act_);
    evaluator_->accumulate(eval_samples_, eval_act_, rows);
  }
  const double busy_s = seconds_since(t0);
  reducer_->sum(evaluator_->totals());
  if (balance_eval_) rebalance(eval_split_, busy_s);
  return evaluator_->finish(params_);
}

// Seven kernels and, on one rank, no host synchronisation (docs/gpu.md#step-budget): the
// phases are timed (fenced) on every profile_every-th step only.
void Trainer::train_step(std::int64_t epoch, std::int64_t step) {
  const TreeShape& t = net_.tree;
  const std::int64_t items = step_items();
  const std::int64_t rows = items * views_;
  const std::int64_t n_params = t.n_params();
  // This rank's items of a step: a pure function of (epoch, step), so a batch sampled ahead
  // is the same batch.
  const auto sample_step = [&](std::int64_t s, const SampleBatch& out) {
    const std::int64_t first = step_first_item(cfg_, epoch, s) + train_split_.first(world_.rank) * cfg_.micro_batch;
    sample_views(t, keep_bound_, static_cast<std::uint64_t>(cfg_.seed), static_cast<int>(cfg_.share_levels), first,
                 items, views_, out);
  };
  const bool timed = cfg_.profile_every > 0 && (steps_taken_ + 1) % cfg_.profile_every == 0;
  ++steps_taken_;
  const auto phase = [&](Phase p) {
    if (timed) timer_.start(p);
  };

  phase(kSample);
  if (next_epoch_ == epoch && next_step_ == step) {
    std::swap(train_samples_, next_samples_);
  } else {
    sample_step(step, train_samples_);
  }
  next_epoch_ = next_step_ = -1;
  phase(kForward);
  forward(net_, train_samples_.leaves, rows, train_act_);
  phase(kLoss);
  // grad_ and batch_sums_ hold 0 here: the previous step's update zeroed them.
  const bool coupled = loss_.batch_coupled();
  pair_distances(train_act_.out, items, views_, cfg_.micro_batch, dist_, coupled ? batch_sums_ : View1<std::int64_t>());
  if (coupled) {
    phase(kAllreduce);
    reducer_->sum(batch_sums_);
    phase(kLoss);
  }
  loss_gradient(loss_, train_act_.out, dist_, items, cfg_.micro_batch, batch_sums_, coef_, item_loss_, grad_out_, grad_,
                n_params);
  phase(kBackward);
  backward(net_, train_act_, grad_out_, rows, delta_);
  weight_gradient(net_, train_act_, train_samples_.leaves, delta_, rows, cfg_.micro_batch * views_, grad_,
                  n_params + 1);
  // The gradient's all-reduce runs while this rank samples the next step's batch (which
  // does not depend on the weights): a rank that is ahead works instead of waiting.
  phase(kAllreduce);
  reducer_->start_sum(grad_);
  if (step + 1 < steps_per_pass()) {
    phase(kSample);
    sample_step(step + 1, next_samples_);
    next_epoch_ = epoch;
    next_step_ = step + 1;
    phase(kAllreduce);
  }
  reducer_->finish_sum();
  phase(kUpdate);
  update_step(net_, sgd_, loss_, params_, velocity_, train_act_, StepSums{grad_, batch_sums_, step_losses_, overflows_},
              step);
  if (timed) {
    timer_.stop();
    ++timed_steps_;
  }
}

std::vector<std::int64_t> Trainer::step_items_by_rank() const {
  std::vector<std::int64_t> items;
  for (std::int64_t units : train_split_.counts()) items.push_back(units * cfg_.micro_batch);
  return items;
}

void Trainer::rebalance(WorkSplit& split, double seconds) {
  std::vector<double> all(static_cast<std::size_t>(world_.size));
  DUALNET_MPI_CHECK(MPI_Gather(&seconds, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, 0, world_.comm));
  std::vector<std::int64_t> counts = split.counts();
  if (world_.root() && split.rebalance(all)) {
    counts = split.counts();
    ++rebalances_;
  }
  DUALNET_MPI_CHECK(MPI_Bcast(counts.data(), world_.size, MPI_INT64_T, 0, world_.comm));
  split.set_counts(counts);
}

void Trainer::check_overflow(std::int64_t epoch) const {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), overflows_);
  if (h(0) != 0)
    throw RuntimeError("epoch " + std::to_string(epoch) +
                           ": a gradient or batch sum left the exact fixed-point range (|x| >= 2^23) — "
                           "the training diverged; lower lr",
                       true);
}

Trainer::Poll Trainer::poll() const {
  int mine = pending_stop_signal() != 0 ? 2 : 0;
  if (world_.root() && cfg_.checkpoint_seconds > 0.0 && seconds_since(last_checkpoint_) >= cfg_.checkpoint_seconds)
    mine = std::max(mine, 1);
  int all = mine;
  if (world_.size > 1) DUALNET_MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MAX, world_.comm));
  return all == 2 ? Poll::stop : all == 1 ? Poll::checkpoint : Poll::go_on;
}

void Trainer::save_checkpoint(std::int64_t epoch, std::int64_t step, bool wait) {
  Checkpoint c;
  c.config = cfg_;
  c.epoch = epoch;
  c.step = step;
  c.world_size = world_.size;
  c.last_train_rate = last_rate_;
  on_all_ranks(world_, [&] {
    if (!world_.root()) return;
    timer_.start(kIo);
    c.params = host_vector(params_);
    c.velocity = host_vector(velocity_);
    c.step_losses = host_vector(step_losses_);
    c.polarity = host_vector(polarity_);
    c.row_params = host_vector(row_params_);
    writer_->submit(
        [c = std::move(c), out = cfg_.out, keep = cfg_.keep_checkpoints] { write_checkpoint(out, c, keep); });
    if (wait) writer_->wait();
    timer_.stop();
  });
  last_checkpoint_ = std::chrono::steady_clock::now();
}

void Trainer::write_row(std::int64_t epoch, EvalResult r, double loss_mean, double loss_sem, double rate,
                        double eval_rate, double eta_s) {
  // Every rank waits for rank 0's hand-over: a failure of this write or of the one before (a
  // full disk) ends every rank together.
  on_all_ranks(world_, [&] {
    if (!world_.root()) return;
    timer_.start(kIo);
    MetricsRow row;
    row.epoch = epoch;
    row.weight_norm = host_vector(weight_norms(net_, params_));
    row.weight_change = epoch == 0
                            ? std::vector<double>(row.weight_norm.size(), std::numeric_limits<double>::quiet_NaN())
                            : host_vector(weight_changes(net_, params_, row_params_));
    row.train_loss_mean = loss_mean;
    row.train_loss_sem = loss_sem;
    row.samples_per_s = rate;
    // The epoch's line once its row is on disk: a reader who sees it finds the row.
    writer_->submit([this, row = std::move(row), r = std::move(r), eval_rate, eta_s]() mutable {
      row.eval = &r;
      append_metrics_row(metrics_path(cfg_), row);
      warn_if_collapsed(row.epoch, row);
      print_epoch(row.epoch, r, row.train_loss_mean, row.train_loss_sem, row.samples_per_s, eval_rate, eta_s);
    });
    timer_.stop();
  });
  Kokkos::deep_copy(row_params_, params_);
}

// One line on rank 0, once per run, when the network has collapsed (is_collapsed()).
void Trainer::warn_if_collapsed(std::int64_t epoch, const MetricsRow& row) {
  if (collapse_reported_ || !is_collapsed(row)) return;
  collapse_reported_ = true;
  std::fprintf(stderr,
               "dualnet: warning: the network collapsed by epoch %lld (%s); its correlations are those of a network "
               "that no longer learns (docs/metrics-format.md#collapse)\n",
               static_cast<long long>(epoch),
               row.eval->output_rank1_gap <= kCollapseGap ? "every output lies on one line" : "no weight moved");
  std::fflush(stderr);
}

bool Trainer::run() {
  const TreeShape& t = net_.tree;
  const std::string path = metrics_path(cfg_);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  on_all_ranks(world_, [&] {
    if (!world_.root()) return;
    timer_.start(kIo);
    if (resumed_)
      reopen_metrics_file(path, epoch_ + 1, cfg_, t, world_.size);
    else
      create_metrics_file(path, cfg_, t, host_vector(polarity_), host_vector(root_correlations(t, polarity_)),
                          world_.size);
    timer_.stop();
    print_header();
  });
  start_ = last_checkpoint_ = std::chrono::steady_clock::now();

  // One evaluation pass and its metrics row; the ETA counts the passes still to come.
  const auto evaluate_and_write = [&](std::int64_t epoch, double loss_mean, double loss_sem, double rate) {
    const auto t0 = std::chrono::steady_clock::now();
    timer_.start(kEval);
    EvalResult r = evaluate(epoch);
    timer_.stop();
    const double eval_s = seconds_since(t0);
    eval_s_ += eval_s;
    ++evals_run_;
    const double per_step = steps_run_ > 0 ? train_s_ / steps_run_ : nan;
    const double left = static_cast<double>(cfg_.epochs - epoch);
    write_row(epoch, std::move(r), loss_mean, loss_sem, rate, cfg_.samples_per_pass / eval_s,
              left * (per_step * steps_per_pass() + eval_s));
  };
  const auto stop_here = [&](std::int64_t epoch, std::int64_t step) {
    save_checkpoint(epoch, step, true);
    if (world_.root()) {
      std::printf(
          "dualnet: stopped by %s at epoch %lld, step %lld; checkpoint written. Continue with:\n"
          "  dualnet train resume=%s\n",
          // Another rank may have caught the signal: SIGTERM is what stops a whole job.
          signal_name(pending_stop_signal() ? pending_stop_signal() : SIGTERM), static_cast<long long>(epoch),
          static_cast<long long>(step), cfg_.out.c_str());
      std::fflush(stdout);
    }
    return false;
  };

  if (resumed_ && world_.root())
    std::printf("resuming at epoch %lld, step %lld (checkpoint written on %lld ranks, now %d)\n",
                static_cast<long long>(epoch_), static_cast<long long>(step_),
                static_cast<long long>(resumed_world_size_), world_.size);
  if (!resumed_) {
    evaluate_and_write(0, nan, nan, nan);
    save_checkpoint(0, 0);  // from here on the run can be resumed, whatever happens
    if (cfg_.epochs > 0 && poll() == Poll::stop) return stop_here(0, 0);
  }
  const std::int64_t steps = steps_per_pass();
  for (std::int64_t epoch = epoch_, first = step_; epoch < cfg_.epochs; ++epoch, first = 0) {
    const auto t0 = std::chrono::steady_clock::now();
    if (first == 0) Kokkos::deep_copy(overflows_, std::int64_t(0));  // once per pass
    for (std::int64_t step = first; step < steps; ++step) {
      train_step(epoch, step);
      ++steps_run_;
      if (cfg_.progress_every > 0 && (step + 1) % cfg_.progress_every == 0 && world_.root()) {
        std::printf("  epoch %lld step %lld/%lld  %.0f samples/s\n", static_cast<long long>(epoch),
                    static_cast<long long>(step + 1), static_cast<long long>(steps),
                    (step + 1 - first) * cfg_.batch / seconds_since(t0));
        std::fflush(stdout);
      }
      const Poll p = poll();
      if (p == Poll::stop && step + 1 < steps) {
        train_s_ += seconds_since(t0);
        return stop_here(epoch, step + 1);
      }
      if (p == Poll::checkpoint) save_checkpoint(epoch, step + 1);
    }
    check_overflow(epoch);
    const double pass_s = seconds_since(t0);
    train_s_ += pass_s;
    if (first < steps) last_rate_ = static_cast<double>((steps - first) * cfg_.batch) / pass_s;
    const auto losses = host_vector(step_losses_);
    double mean = 0.0, var = 0.0;
    for (double l : losses) mean += l;
    mean /= static_cast<double>(losses.size());
    for (double l : losses) var += (l - mean) * (l - mean);
    const double sem =
        losses.size() > 1 ? std::sqrt(var / static_cast<double>(losses.size() - 1) / losses.size()) : nan;
    if ((epoch + 1) % cfg_.checkpoint_every == 0 || epoch + 1 == cfg_.epochs) save_checkpoint(epoch, steps);
    evaluate_and_write(epoch + 1, mean, sem, last_rate_);
    if (epoch + 1 < cfg_.epochs && poll() == Poll::stop) return stop_here(epoch + 1, 0);
  }
  on_all_ranks(world_, [&] {
    if (!world_.root()) return;
    timer_.start(kIo);
    writer_->wait();  // timing.json last, once every row and checkpoint is on disk
    timer_.stop();
    write_timing(seconds_since(start_), train_s_, eval_s_, steps_run_, evals_run_);
  });
  return true;
}

void Trainer::print_header() const {
  const TreeShape& t = net_.tree;
  std::printf("dualnet: twin ReLU networks on a hierarchical latent tree model\n");
  std::printf("%-18s %s\n", "ranks", std::to_string(world_.size).c_str());
  if (world_.min_ranks_per_node == world_.max_ranks_per_node)
    std::printf("%-18s %d x %d ranks per node\n", "nodes", world_.nodes, world_.max_ranks_per_node);
  else
    std::printf("%-18s %d x %d-%d ranks per node\n", "nodes", world_.nodes, world_.min_ranks_per_node,
                world_.max_ranks_per_node);
  std::printf("%-18s %s (Kokkos %d)\n", "execution space", execution_space_name(), KOKKOS_VERSION);
  std::printf("%-18s %s\n", "reducer", reducer_->name().c_str());
  std::printf("%-18s %d latents, %d leaves, %d neurons, %lld parameters\n", "tree", t.n_latent, t.n_leaf, t.n_neuron(),
              static_cast<long long>(t.n_params()));
  std::string split;
  for (std::int64_t items : step_items_by_rank()) split += (split.empty() ? "" : "+") + std::to_string(items);
  std::printf("%-18s %s items x %d views per step (ranks' shares; balance=%s%s)\n", "local batch", split.c_str(),
              views_, cfg_.balance.c_str(), balance_eval_ ? ": the evaluation's blocks follow the ranks' speeds" : "");
  std::printf("%-18s %.1f MB per rank (upper bound)\n", "memory estimate",
              static_cast<double>(estimate_memory_bytes(cfg_, world_.size)) / 1e6);
  std::istringstream keys(cfg_.to_toml());
  for (std::string line; std::getline(keys, line);) std::printf("  %s\n", line.c_str());
  std::printf("level numbering: dualnet level l (root 0) = reference d = %d - l\n", t.depth);
  std::fflush(stdout);
}

void Trainer::print_epoch(std::int64_t epoch, const EvalResult& r, double loss_mean, double loss_sem, double train_rate,
                          double eval_rate, double eta_s) const {
  std::string levels;
  char buf[64];
  for (size_t l = 0; l < r.level_mean_best_corr.size(); ++l) {
    std::snprintf(buf, sizeof buf, " L%zu(d%zu) %.3f", l, net_.tree.depth - l, r.level_mean_best_corr[l]);
    levels += buf;
  }
  std::printf(
      "epoch %3lld/%lld | loss %+.5f ± %.5f | best_corr%s | train %.0f samples/s | eval %.0f samples/s | "
      "ETA %s\n",
      static_cast<long long>(epoch), static_cast<long long>(cfg_.epochs), loss_mean, loss_sem, levels.c_str(),
      train_rate, eval_rate, duration_text(eta_s).c_str());
  std::fflush(stdout);
}

void Trainer::write_timing(double wall_s, double train_s, double eval_s, std::int64_t steps_run,
                           std::int64_t evals_run) const {
  const double steps = steps_run > 0 ? static_cast<double>(steps_run) : std::numeric_limits<double>::quiet_NaN();
  // ordered_json keeps the keys in this order. JSON has no NaN: dump() writes NaN and the
  // infinities (a run without training steps) as null.
  nlohmann::ordered_json j;
  j["ranks"] = world_.size;
  j["nodes"] = world_.nodes;
  // Equal on a regular layout; both recorded so that an uneven one is visible.
  j["ranks_per_node"] = world_.max_ranks_per_node;
  j["min_ranks_per_node"] = world_.min_ranks_per_node;
  j["hosts"] = world_.hosts;              // by rank
  j["local_ranks"] = world_.local_ranks;  // by rank: what GPU selection and the NCCL reducer use
  j["global_batch"] = cfg_.batch;
  j["per_rank_batch"] = cfg_.batch / world_.size;  // the even share
  // The last splits (train/work_split.hpp): items of a step and blocks of an evaluation pass
  // per rank, and how often balancing moved them.
  j["balance"] = cfg_.balance;
  j["step_items_by_rank"] = step_items_by_rank();
  j["eval_blocks_by_rank"] = eval_split_.counts();
  j["rebalances"] = rebalances_;
  j["steps"] = steps_run;
  j["train_samples_per_s"] = static_cast<double>(steps_run * cfg_.batch) / train_s;
  // The evaluation passes this process ran (a resumed run runs fewer than epochs + 1).
  j["eval_samples_per_s"] = static_cast<double>(evals_run * cfg_.samples_per_pass) / eval_s;
  j["step_time_s"] = train_s / steps;
  // The phases of the timed steps (profile_every), per timed step.
  const double timed = timed_steps_ > 0 ? static_cast<double>(timed_steps_) : std::numeric_limits<double>::quiet_NaN();
  j["timed_steps"] = timed_steps_;
  double compute = 0.0;
  nlohmann::ordered_json phases;
  for (int p = kSample; p <= kUpdate; ++p) {
    phases[phase_name(p)] = timer_.seconds(p) / timed;
    if (p != kAllreduce) compute += timer_.seconds(p) / timed;
  }
  j["phases_per_step_s"] = std::move(phases);
  j["compute_per_step_s"] = compute;
  j["allreduce_per_step_s"] = timer_.seconds(kAllreduce) / timed;
  j["eval_s"] = timer_.seconds(kEval);
  // io_s: what rank 0's computing thread spent on its files (host copies, handing writes
  // over, waiting for the one before); io_behind_s: the writes themselves, on the thread.
  j["io_s"] = timer_.seconds(kIo);
  j["io_behind_s"] = writer_->busy_seconds();
  j["wall_s"] = wall_s;
  write_text_atomic((std::filesystem::path(cfg_.out) / "timing.json").string(), j.dump(2) + "\n");
}

}  // namespace dualnet
