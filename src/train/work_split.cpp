#include "train/work_split.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "util/error.hpp"
#include "util/text.hpp"

namespace dualnet {

WorkSplit::WorkSplit(std::int64_t units, int ranks, std::int64_t least, std::int64_t most,
                     const std::vector<double>& shares)
    : units_(units), least_(least), most_(most), cost_(static_cast<std::size_t>(ranks), 0.0) {
  if (ranks < 1 || least < 0 || least * ranks > units || most * ranks < units)
    DUALNET_FAIL("work split: " + std::to_string(units) + " units cannot go to " + std::to_string(ranks) +
                 " ranks with " + std::to_string(least) + " to " + std::to_string(most) + " each");
  counts_ = split_of(shares.empty() ? std::vector<double>(static_cast<std::size_t>(ranks), 1.0) : shares);
}

std::int64_t WorkSplit::first(int rank) const {
  std::int64_t f = 0;
  for (int r = 0; r < rank; ++r) f += counts_[static_cast<std::size_t>(r)];
  return f;
}

void WorkSplit::set_counts(const std::vector<std::int64_t>& counts) {
  std::int64_t sum = 0;
  bool bounded = counts.size() == counts_.size();
  for (std::int64_t c : counts) {
    sum += c;
    bounded = bounded && c >= least_ && c <= most_;
  }
  if (!bounded || sum != units_) DUALNET_FAIL("work split: a split of the wrong shape was handed over");
  counts_ = counts;
}

std::vector<std::int64_t> WorkSplit::split_of(const std::vector<double>& weights) const {
  const std::size_t n = weights.size();
  double total = 0.0;
  for (double w : weights) total += w;
  std::vector<double> ideal(n);
  std::vector<std::int64_t> c(n);
  std::int64_t sum = 0;
  for (std::size_t r = 0; r < n; ++r) {
    ideal[r] = static_cast<double>(units_) * weights[r] / total;
    c[r] = std::clamp(static_cast<std::int64_t>(std::floor(ideal[r])), least_, most_);
    sum += c[r];
  }
  // One unit at a time to (or from) the rank furthest below (above) its ideal that may take
  // (give) one: at most `ranks` rounds, as each rank is within one unit of its clamped ideal.
  while (sum != units_) {
    const bool add = sum < units_;
    std::size_t pick = n;
    for (std::size_t r = 0; r < n; ++r) {
      if (add ? c[r] >= most_ : c[r] <= least_) continue;
      const double gap = ideal[r] - static_cast<double>(c[r]);
      if (pick == n || (add ? gap > ideal[pick] - c[pick] : gap < ideal[pick] - c[pick])) pick = r;
    }
    c[pick] += add ? 1 : -1;
    sum += add ? 1 : -1;
  }
  return c;
}

double WorkSplit::slowest(const std::vector<std::int64_t>& counts) const {
  double t = 0.0;
  for (std::size_t r = 0; r < counts.size(); ++r) t = std::max(t, static_cast<double>(counts[r]) * cost_[r]);
  return t;
}

bool WorkSplit::rebalance(const std::vector<double>& seconds) {
  if (seconds.size() != counts_.size()) DUALNET_FAIL("work split: one time per rank expected");
  // Time per unit where a rank measured one (a rank without units keeps its last estimate);
  // the mean of the passes so far, weighting the newest half.
  double known = 0.0;
  int n_known = 0;
  for (std::size_t r = 0; r < counts_.size(); ++r) {
    if (counts_[r] > 0 && seconds[r] > 0.0 && std::isfinite(seconds[r])) {
      const double c = seconds[r] / static_cast<double>(counts_[r]);
      cost_[r] = cost_[r] > 0.0 ? 0.5 * (cost_[r] + c) : c;
    }
    if (cost_[r] > 0.0) {
      known += cost_[r];
      ++n_known;
    }
  }
  if (n_known == 0) return false;
  for (double& c : cost_)
    if (c <= 0.0) c = known / n_known;  // never measured: assume the ranks' mean
  std::vector<double> speed(cost_.size());
  for (std::size_t r = 0; r < cost_.size(); ++r) speed[r] = 1.0 / cost_[r];
  const std::vector<std::int64_t> next = split_of(speed);
  if (next == counts_ || slowest(next) >= (1.0 - kMinGain) * slowest(counts_)) return false;
  counts_ = next;
  return true;
}

std::int64_t most_step_units(std::int64_t units, int ranks, bool movable) {
  const std::int64_t even = units / ranks;
  return movable && ranks > 1 ? std::min(units, even + std::max<std::int64_t>(1, even / 2)) : even;
}

bool balance_is_fixed(const std::string& value) { return value != "auto" && value != "even"; }

std::vector<double> balance_shares(const std::string& value, int ranks) {
  if (!balance_is_fixed(value)) return {};
  const std::string allowed = "balance must be auto, even, or " + std::to_string(ranks) +
                              " comma-separated positive shares of at most 1e9 (one per rank), got '" + echo(value) +
                              "'";
  std::vector<double> shares;
  std::size_t at = 0;
  while (at <= value.size()) {
    const std::size_t comma = std::min(value.find(',', at), value.size());
    const std::string item = value.substr(at, comma - at);
    char* end = nullptr;
    errno = 0;
    const double s = item.empty() ? 0.0 : std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || errno != 0 || !(s > 0.0) || s > 1e9) throw UsageError(allowed);
    shares.push_back(s);
    at = comma + 1;
  }
  if (static_cast<int>(shares.size()) != ranks)
    throw UsageError(allowed + ": " + std::to_string(shares.size()) + " shares for " + std::to_string(ranks) +
                     " ranks");
  return shares;
}

}  // namespace dualnet
