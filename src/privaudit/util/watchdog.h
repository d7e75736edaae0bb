// A watchdog over calls into code privaudit cannot interrupt: a TorchScript model's forward() is
// user code, and a running TorchScript call cannot be cancelled from another thread. Past its
// limit, the process writes one line naming the model to stderr and ends with kTimeoutExitCode.
// Nothing is left half-written: files are written by the thread that is stuck in the call, through
// temporaries and renames (util/files.h), and the output folder's lock goes with the process
// (util/output_folder.h), as after SIGKILL.
#pragma once

#include <cstdint>
#include <string>

namespace privaudit {

// The exit code of a run stopped by the watchdog (timeout(1)'s).
inline constexpr int kTimeoutExitCode = 124;

// The limit of one model call. Before any call has returned nothing is known of the model's
// speed: `first_call` seconds. Afterwards a call on B images may take `multiple` times the slowest
// time per image measured so far (in this process) times B, and never less than
// min(first_call, floor): small calls vary more than their measured time says (the TorchScript
// executor optimises the graph on its second call), and a first call can be slower than the rest.
struct ModelCallLimits {
  double first_call = 300;  // --model-timeout
  double floor = 60;
  double multiple = 20;
};

// Sets the limits of later calls and how the error line starts ("privaudit invert").
void set_model_call_limits(const ModelCallLimits& limits, const std::string& who);

// The limit, in seconds, that a call on `images` images gets now; `images` 0: a call that is not
// per image (loading a file), which always gets `first_call`.
double model_call_limit(int64_t images);

// Forgets the measured times, as if no call had returned (tests).
void forget_model_call_times();

// Held while a model call runs. Past the call's limit the watchdog thread writes
// "WHO: MODEL: WHAT did not return within S s (...)" to stderr and ends the process with
// kTimeoutExitCode. A guard inside another on the same thread (the probe inside a load) is not
// armed: the outer one covers it. A call that returns adds its time per image to the
// measurements.
class ModelCallGuard {
 public:
  ModelCallGuard(const std::string& model, const std::string& what, int64_t images);
  ~ModelCallGuard();
  ModelCallGuard(const ModelCallGuard&) = delete;
  ModelCallGuard& operator=(const ModelCallGuard&) = delete;

 private:
  uint64_t id_ = 0;  // 0: nested, not armed
};

}  // namespace privaudit
