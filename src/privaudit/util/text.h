// Small text helpers the flags, dataset specs and the report's texts share.
#pragma once

#include <string>
#include <vector>

namespace privaudit {

// The parts of `text` between `separator`s, empty ones included ("a,,b" -> a, "", b; "" -> none).
std::vector<std::string> split_list(const std::string& text, char separator = ',');

// printf of one number ("%.1f dB"); an en dash (UTF-8 "–") when it is not finite. Plain text:
// the audit's claims and findings go into results.json as they are, and the report escapes them
// (an HTML entity here used to reach results.json and show as "&ndash;" on the page).
std::string format_number(double value, const char* format = "%.3f");

}  // namespace privaudit
