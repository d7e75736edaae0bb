#include "privaudit/util/files.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "privaudit/util/error.h"

namespace privaudit {
namespace fs = std::filesystem;

namespace {

std::string temporary_name(const fs::path& path) {
  return path.string() + ".tmp-" + std::to_string(::getpid());
}

}  // namespace

void write_atomic_with(const fs::path& path, const std::function<void(const std::string&)>& write) {
  const std::string temporary = temporary_name(path);
  try {
    write(temporary);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) {
    fs::remove(temporary, error);
    throw Error(path.string() + ": cannot write: " + error.message());
  }
}

void write_file_atomic(const fs::path& path, const std::string& content) {
  write_atomic_with(path, [&](const std::string& temporary) {
    std::ofstream out(temporary, std::ios::binary);
    if (!out) throw Error(path.string() + ": cannot write: " + std::strerror(errno));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) throw Error(path.string() + ": cannot write: disk full or I/O error");
  });
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": read error");
  return buffer.str();
}

nlohmann::json load_json_or_null(const fs::path& path) {
  if (!fs::exists(path)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

}  // namespace privaudit
