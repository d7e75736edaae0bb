// The pipeline's distributed steps: starting or joining a world, rank 0's output folder and
// sink, and what a world adds to results.json.
#include <algorithm>
#include <cstdlib>
#include <thread>

#include "command.h"
#include "privaudit/report/results.h"
#include "privaudit/util/runtime.h"

namespace privaudit::cli {

namespace {
std::vector<std::string>& command_line() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

void set_command_line(std::vector<std::string> args) { command_line() = std::move(args); }

void share_cores(CommonFlags& flags) {
  if (!dist::environment_has_world() || flags.threads != 0) return;
  const char* local = std::getenv("LOCAL_WORLD_SIZE");
  const char* world = std::getenv("WORLD_SIZE");
  const int ranks_here = std::max(1, std::atoi(local != nullptr ? local : world));
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  flags.threads = std::max(1, cores / ranks_here);
  set_threads(flags.threads);
}

std::optional<int> start_world(CommonFlags& flags, double timeout) {
  flags.asked_quiet = flags.quiet;
  if (flags.processes > 1 && !dist::environment_has_world()) {
    std::vector<std::string> args;
    const auto& all = command_line();
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == "--processes") {
        ++i;  // and its value
      } else if (all[i].rfind("--processes=", 0) != 0) {
        args.push_back(all[i]);
      }
    }
    args.insert(args.end(), flags.rank_args.begin(), flags.rank_args.end());
    return dist::launch_local(flags.processes, args);
  }
  if (dist::environment_has_world()) {
    std::string joined;
    for (const auto& arg : command_line()) joined += arg + '\0';
    dist::join_from_environment(joined, timeout);
    if (!dist::world().lead()) flags.quiet = true;  // rank 0 speaks for the world
  }
  return std::nullopt;
}

std::unique_ptr<OutputFolder> open_rank_output(const CommonFlags& flags, const CLI::App& app) {
  const auto& world = dist::world();
  std::unique_ptr<OutputFolder> output;
  if (world.lead()) {
    const auto existing = flags.force
                              ? ExistingOutput::kOverwrite
                              : (flags.resume ? ExistingOutput::kResume : ExistingOutput::kRefuse);
    output = std::make_unique<OutputFolder>(flags.out, app.get_name(), settings_fingerprint(app),
                                            existing);
  }
  world.barrier("waiting for rank 0 to open " + flags.out);
  return output;
}

std::unique_ptr<experiments::OutputSink> rank_sink(const CommonFlags& flags, bool checkpoints) {
  if (!dist::world().lead()) {
    return checkpoints ? std::make_unique<experiments::DiscardSink>(flags.out)
                       : std::make_unique<experiments::DiscardSink>();
  }
  return std::make_unique<experiments::FolderSink>(flags.out);
}

nlohmann::json world_results(const dist::World& world) {
  std::vector<double> peaks;
  for (const auto& text :
       world.all_gather(std::to_string(report::peak_memory_mib()), "gathering peak memory"))
    peaks.push_back(std::stod(text));
  if (world.size() == 1) return nlohmann::json::object();
  return {{"processes", world.size()}, {"peak_memory_mib_per_rank", peaks}};
}

}  // namespace privaudit::cli
