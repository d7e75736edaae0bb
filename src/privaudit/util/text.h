// Small text helpers the flags and dataset specs share.
#pragma once

#include <string>
#include <vector>

namespace privaudit {

// The parts of `text` between `separator`s, empty ones included ("a,,b" -> a, "", b; "" -> none).
std::vector<std::string> split_list(const std::string& text, char separator = ',');

}  // namespace privaudit
