// A host's request to stop (the Python module's Ctrl-C), polled where long loops already stop:
// between an attack's iterations (time_budget_spent) and at every progress update. The command
// line installs nothing (SIGINT ends the process there); `import privaudit` installs a check that
// asks the interpreter for pending signals while the GIL is released.
#pragma once

#include <functional>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit {

// Thrown by poll_interrupt when the installed check asks to stop; the host turns it back into its
// own kind of interruption (KeyboardInterrupt).
class Interrupted : public Error {
 public:
  Interrupted() : Error("interrupted") {}
};

// Returns true to stop. Called from the threads that poll (worker threads included): a check
// decides itself which threads may stop the work.
using InterruptCheck = std::function<bool()>;

// For the scope's life, poll_interrupt() consults `check`; scopes do not nest (the inner one
// replaces the outer until it ends, then the outer is back).
class ScopedInterruptCheck {
 public:
  explicit ScopedInterruptCheck(InterruptCheck check);
  ~ScopedInterruptCheck();
  ScopedInterruptCheck(const ScopedInterruptCheck&) = delete;
  ScopedInterruptCheck& operator=(const ScopedInterruptCheck&) = delete;

 private:
  InterruptCheck previous_;
};

// Throws Interrupted when the installed check says so; nothing without one.
void poll_interrupt();

}  // namespace privaudit
