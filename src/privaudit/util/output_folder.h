// An output folder a command owns while it runs: a marker that says which command wrote it and
// with which settings, a lock against a second run into the same folder, and the rules for
// --force (start over, only in a folder privaudit made) and --resume (continue, same settings).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace privaudit {

// The marker's file name, in every folder a command writes.
inline constexpr const char* kMarkerFile = "privaudit.json";
// The lock's file name: holds the owner's pid while a run is in progress.
inline constexpr const char* kLockFile = "privaudit.lock";

// How a command treats an existing output folder.
enum class ExistingOutput {
  kRefuse,     // an empty (or never-started) folder only
  kResume,     // continue: same command and settings as the marker records
  kOverwrite,  // start over: empties a folder that carries privaudit's marker
  kContinue,   // the audit's own mode: resume when the marker matches, else behave as kRefuse
};

// Holds the folder's lock for as long as it lives; the lock file goes with it. A run killed with
// SIGKILL leaves the file behind, but not the lock (flock is released by the kernel), so the next
// run takes it over.
class OutputFolder {
 public:
  // Creates `dir` if needed, takes its lock, applies `existing`, removes temporary files a killed
  // run left behind, and writes the marker {"tool","command","version","settings"}. `settings` is
  // the fingerprint --resume compares (flag name -> value). Throws Error / UsageError naming the
  // folder and the problem (and, for --resume, the first setting that differs).
  OutputFolder(const std::filesystem::path& dir, const std::string& command,
               const nlohmann::json& settings, ExistingOutput existing);
  ~OutputFolder();
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;

  const std::filesystem::path& path() const { return dir_; }
  // Whether the folder held a run of the same command and settings that this one continues.
  bool resumed() const { return resumed_; }

 private:
  std::filesystem::path dir_;
  int lock_fd_ = -1;
  bool resumed_ = false;
};

// The first key whose value differs between two settings objects ("" when they are the same).
std::string first_difference(const nlohmann::json& recorded, const nlohmann::json& current);

// Removes files named like write_file_atomic's temporaries (NAME.tmp-PID) and the writability
// probe under `dir`, recursively. Call only while holding the folder's lock.
void remove_stale_temporaries(const std::filesystem::path& dir);

}  // namespace privaudit
