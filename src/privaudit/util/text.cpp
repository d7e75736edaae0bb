#include "privaudit/util/text.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace privaudit {

std::vector<std::string> split_list(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  return parts;
}

std::string format_number(double value, const char* format) {
  if (!std::isfinite(value)) return "\u2013";
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

}  // namespace privaudit
