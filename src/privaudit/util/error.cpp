#include "privaudit/util/error.h"

namespace privaudit {

std::string first_line(const std::string& message) {
  const auto end = message.find('\n');
  std::string line = end == std::string::npos ? message : message.substr(0, end);
  // LibTorch appends " (Exception raised from ...)" to some messages.
  const auto raised = line.find(" (Exception raised from");
  if (raised != std::string::npos) line = line.substr(0, raised);
  return line;
}

}  // namespace privaudit
