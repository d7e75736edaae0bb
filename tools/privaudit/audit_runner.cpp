#include "audit_runner.h"

#include <algorithm>
#include <filesystem>

#include "privaudit/util/files.h"
#include "stage_runner.h"

namespace privaudit::cli {
namespace {
namespace fs = std::filesystem;

// A rank's own state file in a distributed audit: the records of the stages it ran, merged into
// audit_state.json by rank 0 (at the end, or when a killed run is continued).
fs::path rank_state_path(const fs::path& out, int rank) {
  return out / ("audit_state.rank-" + std::to_string(rank) + ".json");
}

// Merges the rank state files in `out` into `state`, saves it to `state_path`, then removes them.
// A rank's file holds the records it started with besides those of the stages it ran, so a record
// there never replaces a "done" one with another status (a stage done is never run again; one that
// failed before may have been done since by another rank).
void absorb_rank_states(const fs::path& out, const fs::path& state_path, nlohmann::json& state) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(out)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("audit_state.rank-", 0) == 0) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    const auto theirs = load_json_or_null(file);
    if (!theirs.is_object() || !theirs["stages"].is_object()) continue;
    for (const auto& [id, record] : theirs["stages"].items()) {
      auto& ours = state["stages"][id];
      const auto done = [](const nlohmann::json& r) {
        return r.is_object() && r.value("status", "") == "done";
      };
      if (!done(ours) || done(record)) ours = record;
    }
  }
  write_file_atomic(state_path, state.dump(2) + "\n");
  for (const auto& file : files) fs::remove(file);
}

// Rank 0 opens the folder: the audit continues its own folder without --resume (same settings
// only); --force starts over in a folder privaudit wrote; any other non-empty folder is refused.
// Every rank gets the state rank 0 read.
nlohmann::json open_audit_folder(Context& ctx, const fs::path& state_path) {
  const fs::path out(ctx.flags.out);
  nlohmann::json state;
  if (ctx.world().lead()) {
    ctx.output = std::make_unique<OutputFolder>(
        out, "audit", audit_settings(ctx.app),
        ctx.flags.force ? ExistingOutput::kOverwrite : ExistingOutput::kContinue);
    state = ctx.output->resumed() ? load_json_or_null(state_path) : nullptr;
    if (!state.is_object() || !state["stages"].is_object())
      state = {{"stages", nlohmann::json::object()}};
    absorb_rank_states(out, state_path, state);  // what a killed distributed run's ranks left
    fs::create_directories(out / "logs");
  }
  return nlohmann::json::parse(
      ctx.world().all_gather(state.dump(), "sharing the audit's state")[0]);
}

// Runs the audit's stages on this rank: all of them, in plan order, in a one-process world; else
// chain after chain (a model's training and the stages attacking it stay on one rank), each rank
// claiming the next unclaimed chain of audit::chain_order when it is free. Returns the stages
// this rank ran (in plan order) and adds their failures to `failures`.
std::vector<size_t> run_rank_stages(const std::vector<audit::AuditStage>& stages,
                                    const std::vector<std::vector<size_t>>& chains,
                                    nlohmann::json& state, const fs::path& state_path,
                                    const fs::path& out, const StageOutput& output,
                                    const dist::World& world, int& failures) {
  std::vector<size_t> mine;
  if (world.size() == 1) {
    for (size_t i = 0; i < stages.size(); ++i) mine.push_back(i);
    failures += run_audit_stages(stages, mine, state, state_path, out, output);
    return mine;
  }
  const auto order = audit::chain_order(stages, chains);
  for (;;) {
    const auto ticket = world.take_ticket("audit-chains");
    if (ticket >= static_cast<int64_t>(order.size())) break;
    const auto& chain = chains[order[static_cast<size_t>(ticket)]];
    failures += run_audit_stages(stages, chain, state, state_path, out, output);
    mine.insert(mine.end(), chain.begin(), chain.end());
  }
  std::sort(mine.begin(), mine.end());
  return mine;
}

// Hands every rank's records to rank 0, which counts the stages not done (a stage another machine
// ran into its own copy of --out counts as failed) and saves the state.
int gather_records(const std::vector<audit::AuditStage>& stages, const std::vector<size_t>& mine,
                   const fs::path& out, nlohmann::json& state, const dist::World& world) {
  nlohmann::json records = nlohmann::json::object();
  for (size_t i : mine) records[stages[i].id] = state["stages"][stages[i].id];
  const auto all = world.all_gather(records.dump(), "handing the stages' records to rank 0");
  if (!world.lead()) return 0;
  int failures = 0;
  for (const auto& text : all) state["stages"].update(nlohmann::json::parse(text));
  for (const auto& stage : stages) {
    auto& record = state["stages"][stage.id];
    if (record.value("status", "") != "done") {
      ++failures;
    } else if (!fs::exists(stage.dir / "results.json")) {
      record["status"] = "failed";
      record["message"] = "ran on another machine: its results are not in " + out.string() +
                          " (put --out on a filesystem every machine shares)";
      ++failures;
    }
  }
  absorb_rank_states(out, out / "audit_state.json", state);
  return failures;
}

}  // namespace

nlohmann::json audit_settings(const CLI::App& app) {
  auto settings = settings_fingerprint(app);
  settings.erase("--threads");
  return settings;
}

AuditRun run_audit_plan(const std::vector<audit::AuditStage>& stages, const std::string& profile,
                        Context& ctx) {
  const auto& world = ctx.world();
  const fs::path out(ctx.flags.out);
  const fs::path state_path = out / "audit_state.json";
  AuditRun run;
  run.state = open_audit_folder(ctx, state_path);
  const auto chains = audit::audit_chains(stages);
  say(ctx.flags,
      "privaudit audit: " + std::to_string(stages.size()) + " stages, profile " + profile +
          ", output in " + out.string() +
          (world.size() > 1 ? "; " + std::to_string(chains.size()) + " chains of stages on " +
                                  std::to_string(world.size()) +
                                  " processes, each taking the next when it is free"
                            : ""));
  // Every rank says which stages it finished (a line each, its rank in front); rank 0 alone
  // draws the running stage's line on a terminal.
  StageOutput output;
  output.lines = world.size() > 1 ? !ctx.flags.asked_quiet : !ctx.flags.quiet;
  output.live = !ctx.flags.quiet;
  if (world.size() > 1) output.prefix = "rank " + std::to_string(world.rank()) + " ";
  const auto mine = run_rank_stages(stages, chains, run.state,
                                    world.lead() ? state_path : rank_state_path(out, world.rank()),
                                    out, output, world, run.failures);
  if (world.size() > 1) run.failures = gather_records(stages, mine, out, run.state, world);
  return run;
}

}  // namespace privaudit::cli
