#include "util/text.hpp"

#include <cstdio>

namespace dualnet {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if it is ill-formed
// (the table of well-formed byte sequences in the Unicode standard, section 3.9).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF)
    n = 2;
  else if (b0 == 0xE0)
    n = 3, lo = 0xA0;
  else if (b0 == 0xED)
    n = 3, hi = 0x9F;  // no UTF-16 surrogates
  else if (b0 >= 0xE1 && b0 <= 0xEF)
    n = 3;
  else if (b0 == 0xF0)
    n = 4, lo = 0x90;
  else if (b0 == 0xF4)
    n = 4, hi = 0x8F;  // nothing above U+10FFFF
  else if (b0 >= 0xF1 && b0 <= 0xF3)
    n = 4;
  else
    return 0;
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7F; }

}  // namespace

std::size_t invalid_utf8_at(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string string_value_problem(std::string_view s) {
  const std::size_t bad = invalid_utf8_at(s);
  if (bad != std::string_view::npos) return "is not valid UTF-8 (byte " + std::to_string(bad + 1) + ")";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n' || c == '\r') return "contains a line break";
    if (is_control(c)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "contains the control character 0x%02X (byte %zu)", c, i + 1);
      return buf;
    }
  }
  return "";
}

std::string echo(std::string_view s, std::size_t max_chars) {
  std::string out;
  std::size_t shown = 0;
  for (std::size_t i = 0; i < s.size();) {
    if (shown == max_chars) return out + "...";
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_sequence_length(s, i);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (n == 0 || is_control(c)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.append(s.substr(i, n));
      i += n;
      ++shown;
      continue;
    }
    ++i;
    ++shown;
  }
  return out;
}

}  // namespace dualnet
