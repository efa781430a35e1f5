#include "util/error.hpp"

namespace dualnet {

std::string where(const char* file, int line, const std::string& what) {
  std::string f(file);
  const auto slash = f.rfind("src/");
  if (slash != std::string::npos) f = f.substr(slash);
  return f + ":" + std::to_string(line) + ": " + what;
}

std::string one_line(const std::string& text) {
  std::string out;
  bool space = false;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

}  // namespace dualnet
