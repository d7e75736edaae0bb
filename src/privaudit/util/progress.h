// Progress of a long loop: a one-line bar on a terminal, silence otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace privaudit {

class Progress {
 public:
  // A Progress that prints nothing (tests, library callers that do not care).
  Progress();
  // Prints to stderr only when `enabled` and stderr is a terminal.
  Progress(std::string label, int64_t total, bool enabled);
  ~Progress();

  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Starts a new phase with its own label and total.
  void start(std::string label, int64_t total);
  // Sets the position (0..total) and an optional status text, e.g. "loss 0.31".
  void update(int64_t done, const std::string& status = "");
  // Ends the current line on a terminal.
  void finish();
  bool active() const { return enabled_; }

 private:
  std::string label_;
  int64_t total_ = 0;
  bool enabled_ = false;
  bool line_open_ = false;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_draw_;
};

// Whether standard error is an interactive terminal.
bool stderr_is_terminal();

}  // namespace privaudit
