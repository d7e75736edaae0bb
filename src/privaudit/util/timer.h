// Wall time of a piece of work: the "seconds" figures of results.json. A steady clock, so a
// change of the system time never makes a run look shorter or longer than it was.
#pragma once

#include <chrono>

namespace privaudit {

class Stopwatch {
 public:
  Stopwatch() : started_(Clock::now()) {}

  // Seconds since the stopwatch was made or last restarted.
  double seconds() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }
  void restart() { started_ = Clock::now(); }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point started_;
};

}  // namespace privaudit
