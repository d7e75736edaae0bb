#include "privaudit/util/interrupt.h"

#include <mutex>

namespace privaudit {
namespace {

std::mutex& check_mutex() {
  static std::mutex instance;
  return instance;
}

InterruptCheck& installed_check() {
  static InterruptCheck instance;
  return instance;
}

}  // namespace

ScopedInterruptCheck::ScopedInterruptCheck(InterruptCheck check) {
  std::lock_guard<std::mutex> lock(check_mutex());
  previous_ = std::move(installed_check());
  installed_check() = std::move(check);
}

ScopedInterruptCheck::~ScopedInterruptCheck() {
  std::lock_guard<std::mutex> lock(check_mutex());
  installed_check() = std::move(previous_);
}

void poll_interrupt() {
  InterruptCheck check;
  {
    std::lock_guard<std::mutex> lock(check_mutex());
    check = installed_check();
  }
  if (check && check()) throw Interrupted();
}

}  // namespace privaudit
