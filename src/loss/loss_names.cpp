#include "loss/loss_names.hpp"

#include "util/error.hpp"

namespace dualnet {

const std::vector<LossName>& loss_names() {
  static const std::vector<LossName> names = {
      {"simp", LossKind::simp, true},
      {"triplet", LossKind::triplet, true},
      {"infonce", LossKind::infonce, true},
      {"ref_nce", LossKind::ref_nce, false},
      {"ref_subtract", LossKind::ref_subtract, false},
  };
  return names;
}

std::vector<std::string> loss_name_list(bool theorem_only) {
  std::vector<std::string> out;
  for (const auto& l : loss_names())
    if (l.theorem || !theorem_only) out.emplace_back(l.name);
  return out;
}

std::string loss_name_text(bool theorem_only) {
  std::string s;
  for (const auto& n : loss_name_list(theorem_only)) s += (s.empty() ? "" : "|") + n;
  return s;
}

LossKind loss_kind(const std::string& name) {
  for (const auto& l : loss_names())
    if (name == l.name) return l.kind;
  throw UsageError("loss must be one of " + loss_name_text() + ", got '" + name + "'");
}

}  // namespace dualnet
