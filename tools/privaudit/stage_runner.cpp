#include "stage_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "command.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/output_folder.h"
#include "privaudit/util/progress.h"
#include "privaudit/util/timer.h"
#include "privaudit/util/watchdog.h"

namespace privaudit::cli {

namespace {

std::string last_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    // Progress bars end in carriage returns; keep the text after the last one.
    const auto cr = line.find_last_of('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

StageOutcome run_stage_process(const std::vector<std::string>& args, const std::string& log_path,
                               const std::function<void(double)>& on_tick, double time_limit) {
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) throw Error(log_path + ": cannot write stage log: " + std::strerror(errno));
  std::vector<std::string> argv_storage = {"privaudit"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const Stopwatch started;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    throw Error(std::string("cannot start a stage process: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // A group of its own, so that a stage past its limit is killed with anything it started.
    ::setpgid(0, 0);
    // A killed audit takes its running stage with it; the next run redoes that stage.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close(log_fd);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    // A stage is a one-process run even when the audit is one rank of a world.
    dist::leave_world_environment();
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "cannot run /proc/self/exe: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  ::setpgid(pid, pid);  // also here, so that the group exists before the child gets to it
  int status = 0;
  StageOutcome outcome;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR)
      throw Error(std::string("lost a stage process: ") + std::strerror(errno));
    if (time_limit > 0 && !outcome.timed_out && started.seconds() > time_limit) {
      outcome.timed_out = true;
      if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (on_tick) on_tick(started.seconds());
  }
  outcome.seconds = started.seconds();
  outcome.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (outcome.exit_code == kTimeoutExitCode) outcome.timed_out = true;
  if (outcome.exit_code != 0) outcome.last_error_line = last_line_of(log_path);
  if (outcome.timed_out && outcome.exit_code != kTimeoutExitCode) {
    char line[160];
    std::snprintf(line, sizeof line,
                  "no result within %.0f s, the stage's time limit (--stage-timeout); killed",
                  time_limit);
    outcome.last_error_line = line;
    // The log says why it ends there.
    std::ofstream(log_path, std::ios::app) << "\n" << line << "\n";
  }
  return outcome;
}

int run_audit_stages(const std::vector<audit::AuditStage>& stages, const std::vector<size_t>& which,
                     nlohmann::json& state, const std::filesystem::path& state_path,
                     const std::filesystem::path& out, const StageOutput& output) {
  namespace fs = std::filesystem;
  const auto say = [&](const std::string& line) {
    // One write per line: the ranks of a distributed audit share the terminal.
    if (output.lines) std::printf("%s\n", (output.prefix + line).c_str());
    std::fflush(stdout);
  };
  int failures = 0;
  for (size_t i : which) {
    const auto& stage = stages[i];
    auto& record = state["stages"][stage.id];
    if (!record.is_object()) record = nlohmann::json::object();
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "[%2zu/%zu] %-22s", i + 1, stages.size(),
                  stage.id.c_str());
    if (record.value("status", "") == "done" && fs::exists(stage.dir / "results.json")) {
      say(std::string(prefix) + " already done");
      continue;
    }
    auto args = stage.args;
    // A stage that was interrupted continues from its own checkpoints, or starts over when its
    // command keeps none.
    if (fs::exists(stage.dir) && !fs::is_empty(stage.dir)) {
      const auto* command = find_command(stage.command);
      args.push_back(command != nullptr && command->resumable() ? "--resume" : "--force");
    }
    fs::create_directories(stage.dir.parent_path());
    Progress progress(output.prefix + prefix, 0, output.live);
    // One log per stage: its id with '/' as '-' ("cnn-gradients", "mlp-memorize-10-invert").
    std::string log_name = stage.id;
    std::replace(log_name.begin(), log_name.end(), '/', '-');
    const auto log = (out / "logs" / (log_name + ".log")).string();
    const auto outcome = run_stage_process(
        args, log,
        [&](double seconds) {
          progress.update(0, "running " + std::to_string(static_cast<int>(seconds)) + " s");
        },
        stage.time_limit);
    progress.finish();
    record["seconds"] = outcome.seconds + record.value("seconds", 0.0);
    std::string joined = "privaudit";
    for (const auto& arg : stage.args) joined += " " + arg;
    record["command"] = joined;
    if (outcome.exit_code == 0) {
      record["status"] = "done";
      // Recorded before it is said: a run killed after the line continues without redoing it.
      write_file_atomic(state_path, state.dump(2) + "\n");
      say(std::string(prefix) + " done in " + std::to_string(static_cast<int>(outcome.seconds)) +
          " s");
      continue;
    }
    const char* status = outcome.timed_out ? "timed out" : "failed";
    // A killed stage may leave a temporary and its lock file behind (never a half-written
    // result): its process is gone, so its folder's lock is free.
    if (outcome.timed_out && fs::is_directory(stage.dir)) {
      remove_stale_temporaries(stage.dir);
      std::error_code ignored;
      fs::remove(stage.dir / kLockFile, ignored);
    }
    record["status"] = status;
    record["message"] = outcome.last_error_line;
    ++failures;
    write_file_atomic(state_path, state.dump(2) + "\n");
    std::fprintf(stderr, "%s%s %s: %s (log: %s)\n", output.prefix.c_str(), prefix, status,
                 outcome.last_error_line.c_str(), log.c_str());
  }
  return failures;
}

}  // namespace privaudit::cli
