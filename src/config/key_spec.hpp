#pragma once
// One key of a settings table: its name, the field it sets, its range or choices and its
// meaning. The run configuration (config/config.hpp, config_keys()) is one such table; the
// commands' own keys (covop's batch and losses, bench's suite and steps) are tables of the
// same kind over their own structs, so that one parser reads, checks and documents them all
// (config/key_table.hpp).
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace dualnet {

// `field` points into S; min/max bound numbers and list elements (inclusive); `choices`
// restricts strings and string lists (empty: any). `science` keys define the experiment
// (config keys only: a resumed run must agree on them).
template <class S>
struct KeySpecOf {
  const char* name;
  std::variant<std::int64_t S::*, double S::*, bool S::*, std::string S::*, std::vector<double> S::*,
               std::vector<std::string> S::*>
      field;
  double min;
  double max;
  std::vector<std::string> choices;
  bool science;
  const char* help;
};

}  // namespace dualnet
