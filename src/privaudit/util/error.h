// The one exception type of privaudit: its message names the file or flag and the problem.
#pragma once

#include <stdexcept>
#include <string>

namespace privaudit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A problem with how the program was called (exit code 2 rather than 1).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// A rank of a distributed run lost another one mid-step: the consequence of that rank's failure,
// not a failure of its own. Its process exits with kPeerLostExit, so that the launcher of the
// ranks (dist::launch_local) reports the failure that caused it when it has one.
class PeerLost : public Error {
 public:
  explicit PeerLost(const std::string& message) : Error(message) {}
};
inline constexpr int kPeerLostExit = 3;

// Throws UsageError(message) unless `ok`: option validation.
inline void require_usage(bool ok, const std::string& message) {
  if (!ok) throw UsageError(message);
}

// First line of a c10::Error's message, without LibTorch's C++ stack trace.
std::string first_line(const std::string& message);

}  // namespace privaudit
