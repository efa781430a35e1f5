#pragma once
// The run: epoch loop of docs/science.md#schedule (evaluation pass, then training pass), data parallel over
// the MPI ranks. Host code only orchestrates kernels; all per-sample work is in kernels.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/reducer.hpp"
#include "comm/world.hpp"
#include "config/config.hpp"
#include "config/schedule.hpp"
#include "hltm/hltm.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_file.hpp"
#include "io/write_behind.hpp"
#include "loss/loss.hpp"
#include "model/network.hpp"
#include "stats/evaluator.hpp"
#include "train/phase_timer.hpp"
#include "train/sgd.hpp"
#include "train/work_split.hpp"

namespace dualnet {

class Trainer {
 public:
  // With `resume`, the run continues from that checkpoint's state.
  Trainer(const Config& cfg, const World& world, const Checkpoint* resume = nullptr);
  // Runs every remaining epoch and the final evaluation; writes <out>/metrics.h5,
  // checkpoints and <out>/timing.json (rank 0). Returns false when a stop signal ended
  // the run early (after writing a checkpoint).
  bool run();

  // Pieces of the run, public for tests.
  EvalResult evaluate(std::int64_t epoch);  // one evaluation pass, reduced over ranks
  void train_step(std::int64_t epoch, std::int64_t step);
  const View1<real>& params() const { return params_; }
  const NetworkShape& network() const { return net_; }
  const View1<real>& polarity() const { return polarity_; }
  const PhaseTimer& timer() const { return timer_; }
  std::int64_t timed_steps() const { return timed_steps_; }  // the steps timer() timed (profile_every)
  std::int64_t steps_per_pass() const { return dualnet::steps_per_pass(cfg_); }

 private:
  void print_header() const;
  void print_epoch(std::int64_t epoch, const EvalResult& r, double loss_mean, double loss_sem, double train_rate,
                   double eval_rate, double eta_s) const;
  void write_timing(double wall_s, double train_s, double eval_s, std::int64_t steps_run, std::int64_t evals_run) const;
  void check_overflow(std::int64_t epoch) const;
  enum class Poll { go_on, checkpoint, stop };
  Poll poll() const;  // agreed by all ranks
  // wait: return once the checkpoint is on disk (else it is written behind).
  void save_checkpoint(std::int64_t epoch, std::int64_t step, bool wait = false);
  // Hands the row over to writer_, which writes it and then prints the epoch's line.
  void write_row(std::int64_t epoch, EvalResult r, double loss_mean, double loss_sem, double rate, double eval_rate,
                 double eta_s);
  void warn_if_collapsed(std::int64_t epoch, const MetricsRow& row);
  bool collapse_reported_ = false;  // read and set by writer_'s jobs only

  Config cfg_;
  World world_;
  NetworkShape net_;
  LossParams loss_;
  SgdParams sgd_;
  std::unique_ptr<Reducer> reducer_;
  int views_;
  // How a step's micro-batches and an evaluation pass's blocks of anchors are shared among
  // ranks (train/work_split.hpp); the blocks rebalanced after each pass where balance_eval_.
  WorkSplit train_split_, eval_split_;
  bool balance_eval_ = false;
  std::int64_t rebalances_ = 0;
  std::int64_t step_items() const { return train_split_.count(world_.rank) * cfg_.micro_batch; }
  std::vector<std::int64_t> step_items_by_rank() const;
  // Every rank's `seconds` for its units of `split` -> rank 0 decides the next split, and every
  // rank takes it (one decision, whatever each rank's arithmetic). Collective.
  void rebalance(WorkSplit& split, double seconds);

  View1<real> polarity_;  // [latents + leaves]
  View1<real> params_;
  View1<real> velocity_;
  View1<real> row_params_;  // the weights of the last metrics row: weight_change is measured from them

  // Training workspace, allocated once.
  SampleBatch train_samples_;
  SampleBatch next_samples_;  // the batch of step (next_epoch_, next_step_), sampled ahead
  std::int64_t next_epoch_ = -1, next_step_ = -1;
  Activations train_act_;
  View2<real> dist_, coef_, grad_out_, delta_;
  View1<real> item_loss_;
  View1<std::int64_t> grad_;         // [n_params + 2]: gradient, loss sum, overflow count
  View1<std::int64_t> batch_sums_;   // [kBatchSums]
  View1<std::int64_t> overflows_;    // [1] overflows seen this pass
  View1<real> step_losses_;          // [steps per pass]
  View1<std::uint64_t> keep_bound_;  // the sampler's bounds (train_samples_'s View, computed once)

  // Evaluation workspace.
  std::unique_ptr<Evaluator> evaluator_;
  SampleBatch eval_samples_;
  Activations eval_act_;

  PhaseTimer timer_;
  std::int64_t steps_taken_ = 0;  // train_step calls, and those of them timed (profile_every)
  std::int64_t timed_steps_ = 0;

  // Where the run stands: the evaluation of epoch_ is written; steps [0, step_) are done.
  bool resumed_ = false;
  std::int64_t epoch_ = 0;
  std::int64_t step_ = 0;
  std::int64_t resumed_world_size_ = 0;
  double last_rate_;  // samples/s of the last finished training pass
  std::chrono::steady_clock::time_point last_checkpoint_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double train_s_ = 0.0, eval_s_ = 0.0;
  std::int64_t steps_run_ = 0;  // training steps and evaluation passes this process ran
  std::int64_t evals_run_ = 0;

  // Rank 0's writes of metrics rows and checkpoints, behind the computation. Last: it is
  // destroyed first, finishing its job while the members that job reads still exist.
  std::unique_ptr<WriteBehind> writer_;
};

}  // namespace dualnet
