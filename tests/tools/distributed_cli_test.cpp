// privaudit gradients across processes (torch.distributed, Gloo on 127.0.0.1 only): two and three
// processes write the figures one process writes; a killed rank stops the run with a line naming
// it and nothing half-written; a WORLD_SIZE mismatch and a port in use give clear errors. Every
// test bounds its own time.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "../test_util.h"
#include "fixtures/trained_models.h"
#include "privaudit/util/distributed.h"

namespace privaudit {
namespace {

using testing::contains;
using testing::run_cli;
using testing::run_shell;
using testing::TempDir;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The figures of a results.json: everything but wall times, memory and the process count.
nlohmann::json figures(nlohmann::json j) {
  static const std::set<std::string> kNotFigures = {
      "seconds",          "probe_seconds",      "processes",
      "peak_memory_mib",  "dof_seconds",        "jacobian_seconds",
      "decoder_seconds",  "samples_per_second", "stationarity_seconds",
      "attack_seconds",   "train_seconds",      "peak_memory_mib_per_rank",
      "training_seconds", "images_per_second"};
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!kNotFigures.count(it.key())) out[it.key()] = figures(it.value());
    }
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(figures(v));
    return out;
  }
  return j;
}

// A TCP port free on 127.0.0.1 right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts `command` in the background (its output to `log`); returns the pid (the shell execs it).
pid_t start_background(const std::string& command, const std::string& log) {
  const auto line = "exec " + command + " > " + log + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// The child of `launcher` whose environment says RANK=`rank`, once it exists (-1 after `deadline`).
pid_t rank_process(pid_t launcher, int rank, std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    std::istringstream children(read_file("/proc/" + std::to_string(launcher) + "/task/" +
                                          std::to_string(launcher) + "/children"));
    for (pid_t child; children >> child;) {
      std::istringstream environ(read_file("/proc/" + std::to_string(child) + "/environ"));
      for (std::string entry; std::getline(environ, entry, '\0');) {
        if (entry == "RANK=" + std::to_string(rank)) return child;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return -1;
}

// Waits until `log` shows `text`; false when `deadline` comes first.
bool wait_for_line(const std::string& log, const std::string& text,
                   std::chrono::steady_clock::time_point deadline) {
  while (!contains(read_file(log), text)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

// The lines of `text` that contain every one of `parts`.
int count_lines(const std::string& text, const std::vector<std::string>& parts) {
  std::istringstream lines(text);
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    bool all = true;
    for (const auto& part : parts) all = all && contains(line, part);
    count += all;
  }
  return count;
}

// Waits for `pid` until `deadline` (then kills it); returns its wait status, -1 when it hung.
int wait_for(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

class DistributedRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::have_fashion_mnist()) model_dir_ = testing::trained_model_dir("cnn");
  }
  static void TearDownTestSuite() {
    delete reference_dir_;
    reference_dir_ = nullptr;
    reference_.clear();
  }
  // The one-process run of gradients(...) the launchers' runs are compared with, made once for the
  // suite (each run is a LibTorch process and a few seconds of attacks); its folder, empty when
  // that run failed (the first test to ask says why).
  static std::string one_process_gradients() {
    if (reference_dir_ == nullptr) {
      reference_dir_ = new TempDir();
      const auto run = run_cli(gradients(reference_dir_->file("one")) + " --quiet");
      EXPECT_EQ(run.exit_code, 0) << run.output;
      if (run.exit_code == 0) reference_ = reference_dir_->file("one");
    }
    return reference_;
  }
  void SetUp() override {
    PRIVAUDIT_REQUIRE_FASHION_MNIST();
    ASSERT_FALSE(model_dir_.empty());
  }
  // A small gradients run (two attacks, two batch sizes, the audit with a probe) into `out`.
  static std::string gradients(const std::string& out, int iterations = 20) {
    return "gradients --model " + model_dir_ +
           "/model.pt --test-size 50 --batch 1,2 --targets 4 --attack dlg,ig --iterations " +
           std::to_string(iterations) +
           " --audit-probes 1 --audit-probe-iterations 20 --threads 1 --out " + out;
  }
  // A gradients run on 2 processes long enough to be interrupted (many DLG iterations), started
  // in the background with its output in `log`; once rank 0 says the world has joined, the
  // launcher's pid and its rank 1's (-1 where not found by `deadline`).
  struct LongRun {
    pid_t launcher = -1, rank1 = -1;
  };
  static LongRun start_long_run(const std::string& out, const std::string& log,
                                std::chrono::steady_clock::time_point deadline) {
    LongRun run;
    run.launcher = start_background(
        std::string(PRIVAUDIT_CLI_PATH) + " " + gradients(out, 3000) + " --processes 2", log);
    EXPECT_TRUE(wait_for_line(log, "on 2 processes", deadline)) << read_file(log);
    if (run.launcher > 0) run.rank1 = rank_process(run.launcher, 1, deadline);
    return run;
  }
  static std::string model_dir_;  // the cnn the `train` command wrote
  static inline TempDir* reference_dir_ = nullptr;
  static inline std::string reference_;
};
std::string DistributedRun::model_dir_;

TEST_F(DistributedRun, TwoAndThreeProcessesWriteTheFiguresOfOne) {
  TempDir out;
  const auto one = one_process_gradients();
  ASSERT_FALSE(one.empty());
  const auto expected = figures(read_json(one + "/results.json"));
  ASSERT_EQ(expected["runs"].size(), 4u);
  // The runs scored something, so that equal figures mean something.
  EXPECT_GT(expected["strongest"][0]["psnr"].get<double>(), 5.0);
  for (int processes : {2, 3}) {
    const auto name = "p" + std::to_string(processes);
    const auto run =
        run_cli(gradients(out.file(name)) + " --processes " + std::to_string(processes));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "on " + std::to_string(processes) + " processes"))
        << run.output;
    // Rank 0 speaks for the world: each run's line once.
    const auto first = run.output.find("ig   batch   1:");
    ASSERT_NE(first, std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("ig   batch   1:", first + 1), std::string::npos) << run.output;
    const auto results = read_json(out.file(name) + "/results.json");
    EXPECT_EQ(results["processes"], processes);
    // Every rank's peak memory, not only rank 0's.
    ASSERT_EQ(results["peak_memory_mib_per_rank"].size(), static_cast<size_t>(processes));
    for (const auto& mib : results["peak_memory_mib_per_rank"]) EXPECT_GT(mib.get<double>(), 10.0);
    EXPECT_EQ(figures(results), expected) << processes << " processes";
    // The same grid, byte for byte.
    EXPECT_EQ(read_file(out.file(name) + "/grid_strongest_batch2.png"),
              read_file(one + "/grid_strongest_batch2.png"));
  }
}

// gradients keeps each attacked batch's outcome under --out/checkpoints: --resume (with another
// process count, too) attacks only the batches without one and writes the same figures. Inverting
// Gradients solves a batch size's batches in one graph, and what one gets depends on the others in
// it, so a group with one batch missing runs again whole.
TEST_F(DistributedRun, GradientsResumeAttacksOnlyTheBatchesWithoutACheckpoint) {
  TempDir out;
  const auto run = out.file("run");
  const auto one = run_cli(gradients(run) + " --quiet");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto expected = figures(read_json(run + "/results.json"));
  const auto checkpoints = std::filesystem::path(run) / "checkpoints";
  // dlg and ig at batch 1 (4 batches) and batch 2 (2 batches).
  ASSERT_TRUE(std::filesystem::exists(checkpoints / "ig-batch1-3.bin"));
  ASSERT_TRUE(std::filesystem::exists(checkpoints / "dlg-batch2-1.bin"));
  // As if a killed run had finished all but two batches.
  std::filesystem::remove(checkpoints / "ig-batch1-3.bin");
  std::filesystem::remove(checkpoints / "dlg-batch2-1.bin");
  std::filesystem::remove(run + "/results.json");
  const auto kept = std::filesystem::last_write_time(checkpoints / "dlg-batch1-0.bin");
  const auto kept_group = std::filesystem::last_write_time(checkpoints / "ig-batch2-0.bin");
  const auto rerun_group = std::filesystem::last_write_time(checkpoints / "ig-batch1-0.bin");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto resumed = run_cli(gradients(run) + " --resume --quiet --processes 2");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(std::filesystem::exists(checkpoints / "ig-batch1-3.bin"));
  EXPECT_TRUE(std::filesystem::exists(checkpoints / "dlg-batch2-1.bin"));
  EXPECT_EQ(std::filesystem::last_write_time(checkpoints / "dlg-batch1-0.bin"), kept)
      << "a finished batch was attacked again";
  EXPECT_EQ(std::filesystem::last_write_time(checkpoints / "ig-batch2-0.bin"), kept_group)
      << "a finished group was attacked again";
  EXPECT_NE(std::filesystem::last_write_time(checkpoints / "ig-batch1-0.bin"), rerun_group)
      << "a group with a batch missing was not run again whole";
  EXPECT_EQ(figures(read_json(run + "/results.json")), expected);
}

TEST_F(DistributedRun, UnderTorchrunTheFiguresAreThoseOfOneProcess) {
  // torchrun's static rendezvous: its agent serves the store and every rank is a client.
  if (!std::filesystem::exists("/usr/bin/torchrun")) {
    testing::announce_skip("torchrun launch", "python3-torch");
    PRIVAUDIT_REQUIRE(false, "python3-torch");
  }
  TempDir out;
  const auto one = one_process_gradients();
  ASSERT_FALSE(one.empty());
  const auto run = run_shell(
      "timeout 300 /usr/bin/torchrun --no_python --nproc_per_node 2 -r 1 -t 1 --master_addr "
      "127.0.0.1 --master_port " +
      std::to_string(free_port()) + " --log_dir " + out.file("logs") + " " + PRIVAUDIT_CLI_PATH +
      " " + gradients(out.file("two")));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(figures(read_json(out.file("two") + "/results.json")),
            figures(read_json(one + "/results.json")));
}

TEST_F(DistributedRun, AKilledRankStopsTheRunNamingItAndLeavesNoResults) {
  TempDir out;
  const auto log = out.file("log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  const auto [launcher, rank1] = start_long_run(out.file("run"), log, deadline);
  ASSERT_GT(launcher, 0);
  ASSERT_GT(rank1, 0) << read_file(log);
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  const int status = wait_for(launcher, deadline + std::chrono::seconds(60));
  ASSERT_NE(status, -1) << "the launcher did not stop after its rank was killed";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  const auto text = read_file(log);
  EXPECT_TRUE(contains(text, "rank 1 of 2 was killed by signal 9")) << text;
  EXPECT_FALSE(std::filesystem::exists(out.file("run") + "/results.json"));
  // Started again, it completes.
  const auto again = run_cli(gradients(out.file("run")) + " --force --quiet --processes 2");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(std::filesystem::exists(out.file("run") + "/results.json"));
}

TEST_F(DistributedRun, AStoppedLauncherSaysSoAndStopsItsRanks) {
  TempDir out;
  const auto log = out.file("log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  const auto [launcher, rank1] = start_long_run(out.file("run"), log, deadline);
  ASSERT_GT(launcher, 0);
  ASSERT_GT(rank1, 0) << read_file(log);
  ASSERT_EQ(::kill(launcher, SIGTERM), 0);  // as Ctrl-C or a scheduler would
  const int status = wait_for(launcher, deadline);
  ASSERT_NE(status, -1) << "the launcher did not stop";
  ASSERT_TRUE(WIFEXITED(status)) << read_file(log);
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << read_file(log);
  const auto text = read_file(log);
  EXPECT_TRUE(contains(text, "privaudit: stopped by signal 15")) << text;
  EXPECT_FALSE(contains(text, "was killed by")) << text;  // no rank is blamed
  EXPECT_NE(::kill(rank1, 0), 0) << "rank 1 outlived its launcher";
}

TEST_F(DistributedRun, AWorldSizeMismatchIsNamed) {
  TempDir out;
  const auto env = "env PRIVAUDIT_DIST_TIMEOUT=20 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                   std::to_string(free_port()) + " ";
  const auto cli = std::string(PRIVAUDIT_CLI_PATH) + " " + gradients(out.file("run"));
  const auto run = run_shell("timeout 120 sh -c '" + env + "WORLD_SIZE=2 RANK=0 " + cli + " & " +
                             env + "WORLD_SIZE=3 RANK=1 " + cli + "; wait'");
  EXPECT_TRUE(contains(run.output, "rank 1 has WORLD_SIZE=3, rank 0 has 2")) << run.output;
  EXPECT_FALSE(std::filesystem::exists(out.file("run") + "/results.json"));
}

// Rank 0 refuses --out after the world started; rank 1, which only lost it, exits with its own
// code (kPeerLostExit), and the launcher reports rank 0's usage error (2) whichever of the two it
// reaps first (before, the first reaped won: 1 or 2 from run to run).
TEST_F(DistributedRun, TheLauncherReportsTheFailureNotTheRankThatLostIt) {
  TempDir out;
  testing::write_bytes(out.file("keep.txt"), "mine\n");
  for (int run = 0; run < 5; ++run) {
    const auto result = run_shell(std::string(PRIVAUDIT_CLI_PATH) +
                                  " audit --profile smoke --processes 2 --threads 1 --out " +
                                  out.path().string() + " --force");
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_TRUE(contains(result.output, "not a privaudit output folder")) << result.output;
  }
  EXPECT_EQ(read_file(out.file("keep.txt")), "mine\n");
}

TEST_F(DistributedRun, APortInUseIsNamed) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  TempDir out;
  const auto run = run_shell("timeout 120 env MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                             std::to_string(ntohs(address.sin_port)) + " WORLD_SIZE=2 RANK=0 " +
                             PRIVAUDIT_CLI_PATH + " " + gradients(out.file("run")));
  ::close(fd);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(contains(run.output, "cannot serve the store on MASTER_PORT")) << run.output;
  // One line: c10d's own logging does not reach the user.
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
}

// federated on 3 processes is a real round: rank 0 the server, ranks 1 and 2 the clients (the
// model by broadcast, the updates by a gather, the secure aggregate by an all-reduce); the server's
// figures are those of the one-process simulation.
TEST_F(DistributedRun, FederatedOnThreeProcessesMatchesTheSimulation) {
  TempDir out;
  for (const std::string secure : {"", " --secure-aggregation"}) {
    const auto federated = "federated --model " + model_dir_ +
                           "/model.pt --test-size 50 --clients 2 --images-per-client 2 "
                           "--attack linear-layer,ig,unrolled-ig --iterations 20 --threads 1 "
                           "--quiet" +
                           secure + " --out ";
    const std::string tag = secure.empty() ? "plain" : "secure";
    const auto one = run_cli(federated + out.file("one-" + tag));
    ASSERT_EQ(one.exit_code, 0) << one.output;
    const auto three = run_cli(federated + out.file("three-" + tag) + " --processes 3");
    ASSERT_EQ(three.exit_code, 0) << three.output;
    const auto expected = figures(read_json(out.file("one-" + tag) + "/results.json"));
    auto got = figures(read_json(out.file("three-" + tag) + "/results.json"));
    const auto round = got["federated"]["round"].get<std::string>();
    EXPECT_TRUE(contains(round, "2 client processes")) << round;
    EXPECT_EQ(contains(round, "all-reduce"), !secure.empty()) << round;
    got["federated"].erase("round");
    // every client's updates, the aggregate, each client's own
    ASSERT_EQ(expected["federated"]["views"].size(), 4u);
    EXPECT_EQ(got, expected) << secure;
  }
}

// Without Gloo (a LibTorch that ships no gloo/*.h, e.g. the one inside a Python CUDA install) the
// ranks exchange their bytes through the TCP store: PRIVAUDIT_DIST_BACKEND=store takes that path
// here. The federated round uses every collective (broadcast, gather, all-reduce, all-gather):
// three processes write the figures of one, plain and under secure aggregation.
TEST_F(DistributedRun, TheStoreBackendWritesTheFiguresOfOneProcess) {
  TempDir out;
  for (const std::string secure : {"", " --secure-aggregation"}) {
    const auto federated = "federated --model " + model_dir_ +
                           "/model.pt --test-size 50 --clients 2 --images-per-client 2 "
                           "--attack linear-layer,ig --iterations 20 --threads 1 --quiet" +
                           secure + " --out ";
    const std::string tag = secure.empty() ? "plain" : "secure";
    const auto one = run_cli(federated + out.file("one-" + tag));
    ASSERT_EQ(one.exit_code, 0) << one.output;
    const auto three =
        run_shell("env PRIVAUDIT_DIST_BACKEND=store " + std::string(PRIVAUDIT_CLI_PATH) + " " +
                  federated + out.file("three-" + tag) + " --processes 3");
    ASSERT_EQ(three.exit_code, 0) << three.output;
    const auto expected = figures(read_json(out.file("one-" + tag) + "/results.json"));
    auto got = figures(read_json(out.file("three-" + tag) + "/results.json"));
    EXPECT_TRUE(contains(got["federated"]["round"].get<std::string>(), "2 client processes"));
    got["federated"].erase("round");
    // every client's updates, the aggregate, each client's own
    ASSERT_EQ(expected["federated"]["views"].size(), 4u);
    EXPECT_EQ(got, expected) << secure;
  }
  const auto bad = run_shell("env PRIVAUDIT_DIST_BACKEND=mpi " + std::string(PRIVAUDIT_CLI_PATH) +
                             " federated --model " + model_dir_ +
                             "/model.pt --test-size 50 --clients 2 --images-per-client 2 "
                             "--attack linear-layer --quiet --processes 2 --out " +
                             out.file("bad"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, "PRIVAUDIT_DIST_BACKEND=mpi is not gloo or store"))
      << bad.output;
  EXPECT_FALSE(std::filesystem::exists(out.file("bad") + "/results.json"));
}

// The audit shares chains of stages (a model's training and the stages attacking it; here the
// MLP's main chain, its main-recipe membership and its memorisation regime's), each process
// claiming the next chain when it is free: two processes write the stage figures of one, each
// stage runs once and each process prints the stages it finished; a rank killed mid-run stops the
// audit naming it, and the same command continues it without redoing the stages that were done.
// The weights surface only (train, invert, membership per chain): the other surfaces' stages are
// planned and shared out the same way.
TEST_F(DistributedRun, AuditOnTwoProcessesMatchesOneAndContinuesAfterAKilledRank) {
  TempDir out;
  const auto plain = std::string(PRIVAUDIT_CLI_PATH) +
                     " audit --profile smoke --archs mlp --memorization-sizes 3 "
                     "--surfaces weights --out ";
  const auto audit = plain.substr(0, plain.size() - 6) + "--threads 1 --out ";
  const auto one = run_shell(audit + out.file("one") + " --quiet");
  ASSERT_EQ(one.exit_code, 0) << one.output;

  // Uninterrupted, with neither --processes nor --threads: one process per core (at most one per
  // chain: 3), each at one thread; every stage once, some on each rank.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int ranks = std::min(cores, 3);
  const auto whole = run_shell(plain + out.file("whole"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  if (ranks > 1) {
    EXPECT_TRUE(
        contains(whole.output, "3 chains of stages on " + std::to_string(ranks) + " processes"))
        << whole.output;
  }
  const char* ids[] = {"mlp/train",
                       "mlp/invert",
                       "mlp/membership",
                       "mlp/memorize-3/train",
                       "mlp/memorize-3/invert",
                       "mlp/memorize-3/membership"};
  std::vector<int> on_rank(static_cast<size_t>(ranks), 0);
  for (const char* id : ids) {
    const std::string stage = std::string("] ") + id + " ";
    EXPECT_EQ(count_lines(whole.output, {stage, " done in "}), 1) << id << "\n" << whole.output;
    for (int r = 0; r < ranks && ranks > 1; ++r)
      on_rank[static_cast<size_t>(r)] +=
          count_lines(whole.output, {"rank " + std::to_string(r) + " [", stage, " done in "});
  }
  for (int r = 0; r < ranks && ranks > 1; ++r)
    EXPECT_GT(on_rank[static_cast<size_t>(r)], 0) << "rank " << r << "\n" << whole.output;

  const auto two = audit + out.file("two") + " --processes 2";
  const auto log = out.file("log");
  const pid_t launcher = start_background(two, log);
  ASSERT_GT(launcher, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  // Kill rank 1 once rank 0 has finished a stage (whichever chain it claimed).
  ASSERT_TRUE(wait_for_line(log, " done in ", deadline)) << read_file(log);
  const pid_t rank1 = rank_process(launcher, 1, deadline);
  ASSERT_GT(rank1, 0) << read_file(log);
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  const int status = wait_for(launcher, deadline);
  ASSERT_NE(status, -1) << "the audit did not stop after its rank was killed";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << read_file(log);
  EXPECT_TRUE(contains(read_file(log), "rank 1 of 2 was killed by signal 9")) << read_file(log);
  EXPECT_FALSE(std::filesystem::exists(out.file("two") + "/results.json"));
  // The stages a rank finished before the kill ("rank R [ i/6] ID   done in S s").
  std::vector<std::string> finished;
  {
    const auto text = read_file(log);
    for (size_t at = text.find(" done in "); at != std::string::npos;
         at = text.find(" done in ", at + 1)) {
      const auto start = text.rfind("] ", at) + 2;
      auto id = text.substr(start, at - start);
      id.erase(id.find_last_not_of(' ') + 1);
      finished.push_back(id);
    }
  }
  ASSERT_FALSE(finished.empty());

  const auto again = run_shell(two);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  for (const auto& id : finished) {
    EXPECT_EQ(count_lines(again.output, {"] " + id + " ", "already done"}), 1) << id << "\n"
                                                                               << again.output;
  }
  const auto expected = read_json(out.file("one") + "/results.json");
  // The stage's figures, less its file paths (other --out) and wall times.
  auto strip = [](nlohmann::json j) {
    j.erase("model");
    j.erase("reconstructions");
    if (j.contains("reference_models")) j["reference_models"].erase("cache");
    return figures(j);
  };
  for (const char* run : {"whole", "two"}) {
    const auto got = read_json(out.file(run) + "/results.json");
    ASSERT_EQ(got["architectures"].size(), 1u) << run;
    const auto& mlp = got["architectures"][0];
    for (const char* stage : {"train", "invert", "membership"}) {
      ASSERT_EQ(mlp[stage]["status"], "done") << run << " " << stage;
      EXPECT_EQ(strip(mlp[stage]["results"]), strip(expected["architectures"][0][stage]["results"]))
          << run << " " << stage;
    }
    ASSERT_EQ(mlp["memorization"].size(), 1u) << mlp.dump();
    EXPECT_FALSE(mlp.contains("gradients")) << mlp.dump();
    for (const char* stage : {"train", "invert", "membership"}) {
      ASSERT_EQ(mlp["memorization"][0][stage]["status"], "done") << run << " " << stage;
      EXPECT_EQ(strip(mlp["memorization"][0][stage]["results"]),
                strip(expected["architectures"][0]["memorization"][0][stage]["results"]))
          << run << " " << stage;
    }
  }
  EXPECT_TRUE(std::filesystem::exists(out.file("two") + "/index.html"));
  // The other rank's state file was merged and removed.
  EXPECT_FALSE(std::filesystem::exists(out.file("two") + "/audit_state.rank-1.json"));

  // A folder started as one process at LibTorch's default threads continues under the default
  // processes (whose ranks run --threads 1): the thread count is no setting of the audit's own.
  const auto single = run_shell(plain + out.file("single") + " --processes 1 --quiet");
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto continued = run_shell(plain + out.file("single"));
  ASSERT_EQ(continued.exit_code, 0) << continued.output;
  EXPECT_EQ(count_lines(continued.output, {"already done"}), 6) << continued.output;
}

// defend shares its points (one defended model each): two processes write the figures of one,
// each rank checkpoints its own points, and --resume then retrains none of them.
TEST_F(DistributedRun, DefendOnTwoProcessesWritesTheFiguresOfOneAndResumes) {
  TempDir out;
  const std::string defend =
      "defend --arch mlp --lambdas 0,3,10 --loss pixel --train-size 300 --test-size 200 "
      "--epochs 1 --attack-epochs 1 --targets 20 --gradient-targets 1 --gradient-iterations 5 "
      "--threads 1 --quiet --out ";
  const auto one = run_cli(defend + out.file("one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = run_cli(defend + out.file("two") + " --processes 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto expected = figures(read_json(out.file("one") + "/results.json"));
  ASSERT_EQ(expected["points"].size(), 3u);
  auto strip_paths = [](nlohmann::json j) {
    for (auto& point : j["points"]) point.erase("model");  // a path under the other --out
    return j;
  };
  EXPECT_EQ(strip_paths(figures(read_json(out.file("two") + "/results.json"))),
            strip_paths(expected));
  for (const char* point : {"none-lambda0", "pixel-lambda3", "pixel-lambda10"}) {
    EXPECT_TRUE(std::filesystem::exists(out.file("two") + "/points/" + point + "/point.json"))
        << point;
  }
  const auto again = run_cli(defend + out.file("two") + " --resume --processes 2");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(strip_paths(figures(read_json(out.file("two") + "/results.json"))),
            strip_paths(expected));
}

// layers shares its cut points: on a Python CNN whose Flatten cut is decoded with the decoder of
// the pooling cut before it (same values), which two and three processes measure on different
// ranks.
TEST_F(DistributedRun, LayersOnTwoAndThreeProcessesWriteTheFiguresOfOne) {
  const bool have_torch = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  PRIVAUDIT_REQUIRE(have_torch, "python3-torch (Debian)");
  TempDir out;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + std::string(PRIVAUDIT_SOURCE_DIR) +
                         "/tests/fixtures/make_closed_form_models.py " + out.file("models"))
                            .c_str()),
            0);
  const auto layers = "layers --model " + out.file("models") +
                      "/sequential_cnn.pt --input-shape 1,28,28 --classes 10 --test-size 200 "
                      "--samples 40 --jacobian-samples 1 --decoder-epochs 1 --attacker-size 80 "
                      "--targets 40 --threads 1 --quiet --out ";
  const auto one = run_cli(layers + out.file("one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto expected = figures(read_json(out.file("one") + "/results.json"));
  ASSERT_EQ(expected["layers"].size(), 4u);
  const auto flat_view = expected["layers"][3]["decoders_tried"][1]["view"].get<std::string>();
  EXPECT_TRUE(contains(flat_view, "as cut '2', same values")) << flat_view;
  for (int processes : {2, 3}) {
    const auto name = "p" + std::to_string(processes);
    const auto run = run_cli(layers + out.file(name) + " --processes " + std::to_string(processes));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(figures(read_json(out.file(name) + "/results.json")), expected) << processes;
    EXPECT_EQ(read_file(out.file(name) + "/decoder_reconstructions.png"),
              read_file(out.file("one") + "/decoder_reconstructions.png"));
  }
}

TEST(AssignItems, LongestFirstOntoTheLeastLoadedRank) {
  // Costs 1,1,1,1,8 on 2 ranks: the 8 alone on rank 0, the four 1s on rank 1.
  EXPECT_EQ(dist::assign_items({1, 1, 1, 1, 8}, 2), (std::vector<int>{1, 1, 1, 1, 0}));
  // Equal costs alternate.
  EXPECT_EQ(dist::assign_items({1, 1, 1, 1}, 2), (std::vector<int>{0, 1, 0, 1}));
  EXPECT_EQ(dist::assign_items({2, 2, 2}, 1), (std::vector<int>{0, 0, 0}));
  // More ranks than items: the extra ranks get nothing.
  EXPECT_EQ(dist::assign_items({3, 1}, 4), (std::vector<int>{0, 1}));
}

// A one-process world's tickets count from 0 per counter, each number given once (the audit's
// two-process run above checks the store's: every chain ran exactly once).
TEST(TakeTicket, EachNumberOnceFromZeroPerCounter) {
  const dist::World world;
  EXPECT_EQ(world.take_ticket("chains"), 0);
  EXPECT_EQ(world.take_ticket("chains"), 1);
  EXPECT_EQ(world.take_ticket("other"), 0);
  std::vector<std::thread> threads;
  std::vector<int64_t> taken(64);
  for (size_t i = 0; i < taken.size(); ++i)
    threads.emplace_back([&, i] { taken[i] = world.take_ticket("many"); });
  for (auto& t : threads) t.join();
  std::sort(taken.begin(), taken.end());
  for (size_t i = 0; i < taken.size(); ++i) EXPECT_EQ(taken[i], static_cast<int64_t>(i));
}

}  // namespace
}  // namespace privaudit
