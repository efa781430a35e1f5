#include "util/error.hpp"

namespace dualnet {

std::string where(const char* file, int line, const std::string& what) {
  std::string f(file);
  const auto slash = f.rfind("src/");
  if (slash != std::string::npos) f = f.substr(slash);
  return f + ":" + std::to_string(line) + ": " + what;
}

}  // namespace dualnet
