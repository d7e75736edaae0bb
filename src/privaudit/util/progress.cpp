#include "privaudit/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "privaudit/util/interrupt.h"

namespace privaudit {

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

Progress::Progress() = default;

Progress::Progress(std::string label, int64_t total, bool enabled)
    : enabled_(enabled && stderr_is_terminal()) {
  start(std::move(label), total);
}

Progress::~Progress() { finish(); }

void Progress::start(std::string label, int64_t total) {
  finish();
  label_ = std::move(label);
  total_ = total;
  started_ = std::chrono::steady_clock::now();
  last_draw_ = {};
}

void Progress::update(int64_t done, const std::string& status) {
  poll_interrupt();
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool last = done >= total_;
  if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  const int width = 24;
  const double fraction = total_ > 0 ? static_cast<double>(done) / total_ : 0.0;
  const int filled = static_cast<int>(fraction * width);
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %.0fs %s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), elapsed,
               status.c_str());
  std::fflush(stderr);
  line_open_ = true;
}

void Progress::finish() {
  if (enabled_ && line_open_) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
  }
  line_open_ = false;
}

}  // namespace privaudit
