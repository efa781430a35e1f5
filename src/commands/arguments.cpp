#include "commands/arguments.hpp"

namespace dualnet {

bool is_help(const std::string& arg) { return arg == "--help" || arg == "-h" || arg == "help"; }

bool asks_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (is_help(a)) return true;
  return false;
}

Arguments split_arguments(const std::vector<std::string>& args, bool takes_path) {
  Arguments a;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto eq = args[i].find('=');
    if (i == 0 && takes_path && eq == std::string::npos) {
      a.has_path = true;
      a.path = args[i];
      continue;
    }
    if (eq == std::string::npos || eq == 0)
      throw UsageError("argument '" + echo(args[i]) + "' is not of the form key=value");
    a.config_overrides.push_back(args[i]);
  }
  return a;
}

}  // namespace dualnet
