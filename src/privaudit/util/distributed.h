// One run across several processes, on torch.distributed's C++ side (c10d, Gloo backend).
//
// A run is started P times, as ranks 0..P-1 of one "world": by torchrun (`torchrun --no_python
// --nproc_per_node P privaudit ...`, which sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or by
// privaudit itself (`--processes P`, launch_local below). Every rank loads the same data and
// model, works on its share of the independent work items (assign_items), and hands its results
// to the others (World::all_gather); rank 0 alone writes the output folder. A work item's random
// stream depends on the item, never on the rank that runs it, so P processes write the same
// figures as one.
//
// The TCPStore that ranks meet at has no authentication and listens on all interfaces: run
// multi-machine worlds on a trusted network only. --processes serves it on 127.0.0.1.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace privaudit::dist {

// The processes of one run. This base class is the world of one process (rank 0 of 1).
class World {
 public:
  virtual ~World() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  bool lead() const { return rank() == 0; }
  // Every rank's `bytes`, in rank order, on every rank (sizes may differ). `what` names the step
  // in the error thrown when another rank is lost (privaudit::Error).
  virtual std::vector<std::string> all_gather(const std::string& bytes,
                                              const std::string& what) const {
    return {bytes};
  }
  // Every rank's `bytes`, in rank order, on rank `root` only (empty elsewhere).
  virtual std::vector<std::string> gather(const std::string& bytes, int root,
                                          const std::string& what) const {
    return {bytes};
  }
  // Waits until every rank got here.
  virtual void barrier(const std::string& what) const {}
  // Rank `root`'s tensors, in place on every rank (same shapes and types everywhere).
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root,
                         const std::string& what) const {}
  // The element-wise sum over the ranks, in place on every rank (same shapes everywhere).
  virtual void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) const {}
  // The next number (0, 1, 2, ...) of the world-wide counter `counter`: each number goes to one
  // caller on one rank, whoever asks first (not a collective step: a rank asks when it is free).
  // How ranks claim work items one by one, where a fixed split by estimated costs would leave one
  // rank idle while another still works. The counters start at 0 for each world.
  virtual int64_t take_ticket(const std::string& counter) const;

 private:
  mutable std::mutex tickets_mutex_;
  mutable std::map<std::string, int64_t> tickets_;  // the one-process world's counters
};

// The world of one process.
const World& single();

// The world this process belongs to: joined by join_from_environment, else single().
const World& world();

// Whether the environment describes a world of more than one process (WORLD_SIZE > 1).
bool environment_has_world();

// Removes the variables that make a process a rank (RANK, WORLD_SIZE, MASTER_ADDR, ...) from
// this process's environment: for a child that must run as a one-process run.
void leave_world_environment();

// Joins the world RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT describe (nothing to do when
// WORLD_SIZE is unset or 1). Under torchrun's agent store (TORCHELASTIC_USE_AGENT_STORE=True)
// every rank connects as a client and prefixes its keys with /worker/attempt_<restart count>, as
// Python's init_process_group does; otherwise rank 0 serves the store. Every rank checks that all
// WORLD_SIZE ranks joined, agree on WORLD_SIZE and run the same `command_line`. Timeouts:
// PRIVAUDIT_DIST_TIMEOUT seconds (default `timeout`) for a collective step, at most 60 s of it
// for joining. Throws Error with one line naming the problem (port in use, no store at MASTER_ADDR,
// WORLD_SIZE mismatch, a rank missing).
// `timeout` is the default of PRIVAUDIT_DIST_TIMEOUT: how long a rank may wait in a collective
// step for the slowest rank's share.
void join_from_environment(const std::string& command_line, double timeout = 1800);

// Work items with estimated `costs`, each given to a rank: the most costly first, each to the
// least loaded rank (the lowest rank on ties). Depends on the costs and `ranks` only.
std::vector<int> assign_items(const std::vector<double>& costs, int ranks);

// Runs this program (`/proc/self/exe args...`) `processes` times on this machine as the ranks of
// one world, meeting at a store this process serves on 127.0.0.1, and waits for them. When one
// fails, says which (exit code or signal) on stderr, stops the others and returns its exit code
// (1 for a signal); else 0.
int launch_local(int processes, const std::vector<std::string>& args);

// A message between ranks: a JSON header (strings, structure) and tensors (moved to the CPU;
// numbers that must survive exactly, NaN included, travel as tensors), as bytes for all_gather.
std::string pack(const nlohmann::json& header, const std::vector<torch::Tensor>& tensors);
std::pair<nlohmann::json, std::vector<torch::Tensor>> unpack(const std::string& bytes);

// Seconds a collective step may wait for another rank (PRIVAUDIT_DIST_TIMEOUT, else `fallback`).
double collective_timeout_seconds(double fallback = 1800);

}  // namespace privaudit::dist
