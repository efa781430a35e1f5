#pragma once
// The names of the five losses of docs/science.md#losses, in one table: the config key
// `loss` takes its choices from it, loss_kind() reads a name with it, and `dualnet covop`
// takes the losses the covariance-operator theorem covers (simp, infonce, triplet) from it.
// No Kokkos here: the config layer includes it.
#include <string>
#include <vector>

namespace dualnet {

enum class LossKind { simp, triplet, infonce, ref_nce, ref_subtract };

struct LossName {
  const char* name;
  LossKind kind;
  bool theorem;  // the covariance-operator theorem holds for it (docs/covop.md)
};

// Every loss, in LossKind order.
const std::vector<LossName>& loss_names();

// The names of every loss, or of the theorem's losses only, in table order.
std::vector<std::string> loss_name_list(bool theorem_only = false);

// "a|b|c" of loss_name_list(theorem_only), for messages.
std::string loss_name_text(bool theorem_only = false);

// The kind of a loss name; UsageError naming the allowed names otherwise.
LossKind loss_kind(const std::string& name);

}  // namespace dualnet
