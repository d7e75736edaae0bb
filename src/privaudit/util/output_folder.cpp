#include "privaudit/util/output_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <regex>
#include <thread>

#include "privaudit/util/error.h"
#include "privaudit/util/files.h"

namespace privaudit {
namespace fs = std::filesystem;

namespace {

std::string value_text(const nlohmann::json& value) {
  if (value.is_null()) return "unset";
  if (value.is_string())
    return value.get<std::string>().empty() ? "\"\"" : value.get<std::string>();
  return value.dump();
}

nlohmann::json read_marker(const fs::path& dir) {
  const fs::path path = dir / kMarkerFile;
  std::error_code error;
  if (!fs::exists(path, error)) return nullptr;
  try {
    auto marker = nlohmann::json::parse(read_file(path));
    if (marker.is_object() && marker.value("tool", "") == "privaudit") return marker;
  } catch (const nlohmann::json::exception&) {
  }
  throw Error(path.string() +
              ": unreadable marker (not written by privaudit, or damaged); remove the folder "
              "yourself or choose another --out");
}

// A killed run may leave its lock file, the marker and temporaries behind: none of them is output.
bool holds_output(const fs::path& dir) {
  static const std::regex temporary(R"(.*\.tmp-[0-9]+|\.privaudit-write-test-[0-9]+)");
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (name == kLockFile || name == kMarkerFile || std::regex_match(name, temporary)) continue;
    return true;
  }
  return false;
}

// flock() is released by the kernel when its holder dies, however it dies; the pid in the file is
// only there to name the holder in the error. Re-checks the inode after locking, since a holder
// that finishes unlinks the file and a waiter could otherwise lock an orphan.
int take_lock(const fs::path& dir) {
  const fs::path path = dir / kLockFile;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (true) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw Error(dir.string() + ": output folder is not writable: " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      struct stat held {
      }, named{};
      if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
          held.st_ino == named.st_ino) {
        const std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
          ::close(fd);
          throw Error(dir.string() + ": output folder is not writable: " + std::strerror(errno));
        }
        return fd;
      }
      ::close(fd);
      continue;
    }
    const int lock_error = errno;
    char buffer[32] = {};
    const ssize_t read_bytes = ::pread(fd, buffer, sizeof buffer - 1, 0);
    ::close(fd);
    if (lock_error != EWOULDBLOCK) {
      throw Error(dir.string() + ": cannot lock the output folder: " + std::strerror(lock_error));
    }
    // A run that was just killed (an audit's stage dies with its parent) releases within moments.
    if (std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    std::string holder = read_bytes > 0 ? std::string(buffer, static_cast<size_t>(read_bytes)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw Error(dir.string() + ": another privaudit run is writing to this folder" +
                (holder.empty() ? std::string() : " (pid " + holder + ")") +
                "; wait for it to finish or stop it");
  }
}

}  // namespace

std::string first_difference(const nlohmann::json& recorded, const nlohmann::json& current) {
  const nlohmann::json empty = nlohmann::json::object();
  const auto& a = recorded.is_object() ? recorded : empty;
  const auto& b = current.is_object() ? current : empty;
  for (const auto& [key, value] : b.items()) {
    const auto there = a.contains(key) ? a.at(key) : nlohmann::json();
    if (there != value)
      return key + " " + value_text(there) + " there, " + value_text(value) + " now";
  }
  for (const auto& [key, value] : a.items()) {
    if (!b.contains(key)) return key + " " + value_text(value) + " there, unset now";
  }
  return "";
}

void remove_stale_temporaries(const fs::path& dir) {
  static const std::regex temporary(R"(.*\.tmp-[0-9]+|\.privaudit-write-test-[0-9]+)");
  std::error_code error;
  std::vector<fs::path> stale;
  for (auto it = fs::recursive_directory_iterator(dir, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error) && std::regex_match(it->path().filename().string(), temporary)) {
      stale.push_back(it->path());
    }
  }
  for (const auto& path : stale) fs::remove(path, error);
}

OutputFolder::OutputFolder(const fs::path& dir, const std::string& command,
                           const nlohmann::json& settings, ExistingOutput existing)
    : dir_(dir) {
  std::error_code error;
  if (fs::exists(dir, error) && !fs::is_directory(dir, error)) {
    throw Error(dir.string() + ": exists and is not a folder");
  }
  fs::create_directories(dir, error);
  if (error) throw Error(dir.string() + ": cannot create output folder: " + error.message());
  lock_fd_ = take_lock(dir);
  try {
    const auto marker = read_marker(dir);
    if (holds_output(dir)) {
      const std::string name = dir.string();
      switch (existing) {
        case ExistingOutput::kRefuse:
          throw UsageError(name +
                           ": output folder is not empty (use --resume to continue it or --force "
                           "to start over)");
        case ExistingOutput::kOverwrite:
          if (marker.is_null()) {
            throw UsageError(
                name + ": not a privaudit output folder (no " + kMarkerFile +
                "); --force only empties folders privaudit wrote: choose another --out");
          }
          for (const auto& entry : fs::directory_iterator(dir)) {
            if (entry.path().filename() != kLockFile) fs::remove_all(entry.path());
          }
          break;
        case ExistingOutput::kResume:
        case ExistingOutput::kContinue: {
          if (marker.is_null()) {
            throw UsageError(
                name + ": output folder is not empty and holds no privaudit run to continue (no " +
                kMarkerFile + "); choose another --out");
          }
          const auto recorded = marker.value("command", "");
          if (recorded != command) {
            throw UsageError(name + ": holds the output of `privaudit " + recorded +
                             "`, not `privaudit " + command + "`; choose another --out");
          }
          const auto difference =
              first_difference(marker.value("settings", nlohmann::json::object()), settings);
          if (!difference.empty()) {
            throw UsageError(name + ": was written with other settings (" + difference +
                             "); rerun with the same flags, or use --force to start over");
          }
          resumed_ = true;
          break;
        }
      }
    }
    remove_stale_temporaries(dir);
    nlohmann::json marker_out = {{"tool", "privaudit"},
                                 {"command", command},
                                 {"version", PRIVAUDIT_VERSION},
                                 {"settings", settings}};
    write_file_atomic(dir / kMarkerFile, marker_out.dump(2) + "\n");
  } catch (...) {
    ::unlink((dir / kLockFile).c_str());
    ::close(lock_fd_);
    throw;
  }
}

OutputFolder::~OutputFolder() {
  if (lock_fd_ < 0) return;
  ::unlink((dir_ / kLockFile).c_str());
  ::close(lock_fd_);
}

}  // namespace privaudit
