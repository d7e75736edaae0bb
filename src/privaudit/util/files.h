// Files written so that a crash never leaves half of one.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace privaudit {

// Writes `content` to `path` through a temporary file in the same folder and a rename.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

// Calls `write(temporary_path)` and renames the result onto `path`; removes the temporary on
// failure. For writers that insist on a file name (torch::save, stb_image_write).
void write_atomic_with(const std::filesystem::path& path,
                       const std::function<void(const std::string&)>& write);

// Reads a whole file; throws Error naming the file when it cannot.
std::string read_file(const std::filesystem::path& path);

// The JSON in `path`; null when there is no such file or it holds no valid JSON (a stage that
// never finished, a half-written state from an older version). Throws Error naming the file when
// it exists but cannot be read.
nlohmann::json load_json_or_null(const std::filesystem::path& path);

}  // namespace privaudit
