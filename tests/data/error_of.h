// The message of the privaudit::Error an action throws, so tests can assert on it exactly.
#pragma once

#include <functional>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit::testing {

inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace privaudit::testing
