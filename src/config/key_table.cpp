// The shared rules of key tables (config/key_table.hpp): quoting, number tokens, list items,
// command-line values.
#include "config/key_table.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace dualnet {

// A TOML basic string that reads back as exactly `s` (control characters, which the
// setters refuse, are still escaped so that the text stays one valid line).
std::string toml_quote(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string double_text(double x) {
  if (x == 0.0) x = 0.0;  // -0.0 reads back as a different text: store +0.0
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, x);  // shortest text that reads back exactly
  std::string t(buf, res.ptr);
  if (t.find_first_of(".eEin") == std::string::npos) t += ".0";  // keep it a TOML float
  return t;
}

// The text of a scalar value as it stood in the TOML source ("" if unknown). Scalars other
// than multi-line strings sit on one line.
std::string token_of(const toml::value& v) {
  const auto loc = v.location();
  const std::string& line = loc.line_str();
  if (loc.column() < 1 || loc.column() - 1 + loc.region() > line.size()) return "";
  return line.substr(loc.column() - 1, loc.region());
}

// What toml11 hides: it clamps decimal and hexadecimal integers beyond 64 bits to the
// limits and wraps binary ones; it turns float overflow into +-DBL_MAX and underflow into 0
// or a subnormal. The token is read again here. "" when the number is representable.
std::string number_problem(const toml::value& v) {
  std::string tok = token_of(v);
  tok.erase(std::remove(tok.begin(), tok.end(), '_'), tok.end());
  if (tok.empty()) return "";
  if (v.is_integer()) {
    std::size_t i = 0;
    const bool negative = tok[0] == '-';
    if (tok[0] == '-' || tok[0] == '+') ++i;
    unsigned base = 10;
    if (tok.size() > i + 1 && tok[i] == '0' && (tok[i + 1] == 'x' || tok[i + 1] == 'o' || tok[i + 1] == 'b')) {
      base = tok[i + 1] == 'x' ? 16 : tok[i + 1] == 'o' ? 8 : 2;
      i += 2;
    }
    const unsigned long long limit = negative ? 9223372036854775808ull : 9223372036854775807ull;
    unsigned long long x = 0;
    for (; i < tok.size(); ++i) {
      const char ch = static_cast<char>(std::tolower(static_cast<unsigned char>(tok[i])));
      const unsigned d = std::isdigit(static_cast<unsigned char>(ch)) ? static_cast<unsigned>(ch - '0')
                                                                      : static_cast<unsigned>(ch - 'a' + 10);
      if (d >= base) return "";  // not an integer token after all: leave it to toml11
      if (x > (limit - d) / base) return "beyond the 64-bit integer range";
      x = x * base + d;
    }
    return "";
  }
  if (v.is_floating()) {
    if (tok.find_first_of("in") != std::string::npos) return "";  // inf, nan: refused as not finite
    errno = 0;
    const double x = std::strtod(tok.c_str(), nullptr);
    const bool overflow = std::isinf(x) || (errno == ERANGE && std::fabs(x) >= 1.0);
    if (overflow) return "beyond the range of a double, magnitude at most 1.7976931348623157e+308";
    const auto mantissa_end = tok.find_first_of("eE");
    const bool nonzero_text = tok.substr(0, mantissa_end).find_first_of("123456789") != std::string::npos;
    if (nonzero_text && std::fabs(x) < std::numeric_limits<double>::min())
      return "too close to zero for a double: nonzero magnitudes from 2.2250738585072014e-308";
    return "";
  }
  return "";
}

std::string type_name(const toml::value& v) {
  if (v.is_array()) return "an array";
  if (v.is_table()) return "a table";
  if (v.is_local_date() || v.is_local_time() || v.is_local_datetime() || v.is_offset_datetime()) return "a date/time";
  return "";
}

// Deepest nesting of arrays and inline tables (and [[table]] headers) outside strings and
// comments, read without parsing: toml11 would overflow the stack on a deep one.
int nesting_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '#') {
      i = text.find('\n', i);
      if (i == std::string::npos) break;
    } else if (c == '"' || c == '\'') {
      const bool multi = text.compare(i, 3, std::string(3, c)) == 0;
      const std::string close = multi ? std::string(3, c) : std::string(1, c);
      std::size_t j = i + close.size();
      for (; j < text.size(); ++j) {
        if (c == '"' && text[j] == '\\') {
          ++j;
          continue;
        }
        if (!multi && text[j] == '\n') break;
        if (text.compare(j, close.size(), close) == 0) break;
      }
      i = j + close.size() - 1;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

toml::value command_line_value(const std::string& raw) {
  if (nesting_depth(raw) <= kMaxNesting && raw.find('\0') == std::string::npos &&
      invalid_utf8_at(raw) == std::string::npos) {
    try {
      std::istringstream in("v = " + raw);
      return toml::parse(in, "override").at("v");
    } catch (const std::exception&) {
    }
  }
  return toml::value(raw);
}

std::vector<toml::value> list_items(const toml::value& v) {
  if (v.is_array()) return std::vector<toml::value>(v.as_array().begin(), v.as_array().end());
  if (!v.is_string()) return {v};
  std::string text = v.as_string().str;
  for (char& c : text)
    if (c == '[' || c == ']' || c == '"' || c == '\'') c = ' ';
  std::vector<toml::value> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(command_line_value(item.substr(b, e - b + 1)));
  }
  return out;
}

}  // namespace dualnet
