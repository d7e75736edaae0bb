// Small text helpers the flags, dataset specs and the report's texts share.
#pragma once

#include <string>
#include <vector>

namespace privaudit {

// The parts of `text` between `separator`s, empty ones included ("a,,b" -> a, "", b; "" -> none).
std::vector<std::string> split_list(const std::string& text, char separator = ',');

// printf of one number ("%.1f dB"); "&ndash;" when it is not finite, since the audit's texts
// (claims, findings, the report) are shown in HTML.
std::string format_number(double value, const char* format = "%.3f");

}  // namespace privaudit
