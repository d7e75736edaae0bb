// Runs one stage of `privaudit audit` as a child process of this same binary, so that every stage
// is exactly the sub-command a user could run by hand, its memory is returned when it ends, and a
// killed audit can be resumed stage by stage.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace privaudit::cli {

struct StageOutcome {
  int exit_code = 0;
  double seconds = 0.0;
  std::string last_error_line;  // last non-empty line of the child's stderr log
};

// Runs `/proc/self/exe args...` with stdout and stderr appended to `log_path`; while it runs,
// `on_tick(seconds_so_far)` is called about twice a second (the caller draws progress).
StageOutcome run_stage_process(const std::vector<std::string>& args, const std::string& log_path,
                               const std::function<void(double)>& on_tick);

}  // namespace privaudit::cli
