#include "privaudit/util/distributed.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// Gloo carries the collectives where this LibTorch has it and ships its headers (Debian's does; the
// LibTorch inside a Python CUDA install ships ProcessGroupGloo.hpp without gloo/*.h). Without it
// the ranks exchange their bytes through the TCP store alone (StoreWorld), which also serves
// PRIVAUDIT_DIST_BACKEND=store.
#if defined(USE_C10D_GLOO) && __has_include(<gloo/algorithm.h>) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define PRIVAUDIT_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#else
#define PRIVAUDIT_HAVE_GLOO 0
#endif

#include "privaudit/util/error.h"

namespace privaudit::dist {
namespace {

using Milliseconds = std::chrono::milliseconds;

Milliseconds to_ms(double seconds) { return Milliseconds(static_cast<int64_t>(seconds * 1000)); }

// The environment variable `name`, or `fallback` when unset or empty.
std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

int env_int(const char* name, int low, int high) {
  const auto text = env_or(name, "");
  if (text.empty()) throw Error(std::string("distributed: ") + name + " is not set");
  try {
    size_t used = 0;
    const long value = std::stol(text, &used);
    if (used == text.size() && value >= low && value <= high) return static_cast<int>(value);
  } catch (const std::exception&) {
  }
  throw Error(std::string("distributed: ") + name + "=" + text + " is not a whole number in " +
              std::to_string(low) + ".." + std::to_string(high));
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// Where a rank runs, as it said when it joined.
struct Peer {
  std::string host;
  int64_t pid = 0;
};

std::string this_host() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

// A rank of a world of several processes: who the others are, and the one-line error when one of
// them is lost mid-step.
class RankWorld : public World {
 public:
  RankWorld(int rank, int size, c10::intrusive_ptr<c10d::Store> store, std::vector<Peer> peers)
      : rank_(rank), size_(size), store_(std::move(store)), peers_(std::move(peers)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // The store's atomic add: every rank's store client sees one counter.
  int64_t take_ticket(const std::string& counter) const override {
    return guarded("taking a ticket of " + counter,
                   [&] { return store_->add("ticket/" + counter, 1) - 1; });
  }

 protected:
  template <typename F>
  auto guarded(const std::string& what, F&& step) const -> decltype(step()) {
    try {
      return step();
    } catch (const std::exception& e) {
      // Name the ranks on this machine that are gone; others can only be guessed at.
      std::string gone;
      const auto host = this_host();
      for (int r = 0; r < size_; ++r) {
        const auto& peer = peers_[static_cast<size_t>(r)];
        if (r == rank_ || peer.host != host || peer.pid <= 0) continue;
        if (::kill(static_cast<pid_t>(peer.pid), 0) != 0 && errno == ESRCH) {
          gone += (gone.empty() ? "" : ", ") + std::to_string(r) + " (pid " +
                  std::to_string(peer.pid) + ")";
        }
      }
      throw PeerLost(
          "distributed: rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
          (gone.empty() ? " lost the other ranks" : " lost rank " + gone + ", which stopped,") +
          " while " + what + ": " + first_line(e.what()));
    }
  }

  int rank_, size_;
  c10::intrusive_ptr<c10d::Store> store_;
  std::vector<Peer> peers_;
};

// The collectives through the TCP store alone: each step's every rank writes its bytes under the
// step's key and reads the others'. Reductions add in rank order, so every rank holds the same
// sum. The keys stay (the runs exchange results, not training traffic: kilobytes to megabytes).
class StoreWorld : public RankWorld {
 public:
  using RankWorld::RankWorld;

  std::vector<std::string> all_gather(const std::string& bytes,
                                      const std::string& what) const override {
    return guarded(what, [&] {
      const auto step = next_step();
      put(step, bytes);
      std::vector<std::string> out;
      for (int r = 0; r < size_; ++r) out.push_back(r == rank_ ? bytes : take(step, r));
      return out;
    });
  }

  std::vector<std::string> gather(const std::string& bytes, int root,
                                  const std::string& what) const override {
    return guarded(what, [&] {
      const auto step = next_step();
      std::vector<std::string> out;
      if (rank_ != root) {
        put(step, bytes);
        return out;
      }
      for (int r = 0; r < size_; ++r) out.push_back(r == rank_ ? bytes : take(step, r));
      return out;
    });
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root,
                 const std::string& what) const override {
    guarded(what, [&] {
      const auto step = next_step();
      for (size_t i = 0; i < tensors.size(); ++i) {
        const auto key = step + "/" + std::to_string(i);
        if (rank_ == root) {
          put(key, raw_bytes(tensors[i]));
        } else {
          fill(tensors[i], take(key, root));
        }
      }
      return 0;
    });
  }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) const override {
    guarded(what, [&] {
      const auto step = next_step();
      for (size_t i = 0; i < tensors.size(); ++i) {
        const auto key = step + "/" + std::to_string(i);
        put(key, raw_bytes(tensors[i]));
        auto sum = torch::zeros_like(tensors[i], torch::kCPU);
        for (int r = 0; r < size_; ++r) {
          auto part = torch::empty_like(sum);
          fill(part, r == rank_ ? raw_bytes(tensors[i]) : take(key, r));
          sum += part;
        }
        tensors[i].copy_(sum);
      }
      return 0;
    });
  }

  void barrier(const std::string& what) const override { all_gather("", what); }

 private:
  std::string next_step() const { return "step/" + std::to_string(step_++); }

  void put(const std::string& key, const std::string& bytes) const {
    store_->set(key + "/" + std::to_string(rank_),
                std::vector<uint8_t>(bytes.begin(), bytes.end()));
  }
  // Rank r's bytes of step `key`: waits (up to the collective timeout) until it wrote them.
  std::string take(const std::string& key, int r) const {
    const auto value = store_->get(key + "/" + std::to_string(r));
    return std::string(value.begin(), value.end());
  }

  static std::string raw_bytes(const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kCPU).contiguous();
    return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  }
  // Rank `root`'s bytes into `t` (same shape and type on every rank).
  static void fill(torch::Tensor& t, const std::string& bytes) {
    auto c = torch::empty(t.sizes(), t.options().device(torch::kCPU));
    if (static_cast<size_t>(c.numel() * c.element_size()) != bytes.size())
      throw Error("a rank sent a tensor of another size");
    std::memcpy(c.data_ptr(), bytes.data(), bytes.size());
    t.copy_(c);
  }

  mutable int64_t step_ = 0;
};

#if PRIVAUDIT_HAVE_GLOO
class GlooWorld : public RankWorld {
 public:
  GlooWorld(int rank, int size, c10::intrusive_ptr<c10d::Store> store,
            c10::intrusive_ptr<c10d::ProcessGroupGloo> group, std::vector<Peer> peers)
      : RankWorld(rank, size, std::move(store), std::move(peers)), group_(std::move(group)) {}

  std::vector<std::string> all_gather(const std::string& bytes,
                                      const std::string& what) const override {
    return guarded(what, [&] {
      const auto message = padded(bytes);
      return trimmed(gather_tensor(message.bytes), message.lengths);
    });
  }

  std::vector<std::string> gather(const std::string& bytes, int root,
                                  const std::string& what) const override {
    return guarded(what, [&] {
      // Every rank learns the lengths; the root alone receives the padded bytes.
      const auto message = padded(bytes);
      std::vector<std::vector<torch::Tensor>> out(rank_ == root ? 1 : 0);
      if (rank_ == root) {
        for (int r = 0; r < size_; ++r) out[0].push_back(torch::empty_like(message.bytes));
      }
      std::vector<torch::Tensor> in = {message.bytes};
      c10d::GatherOptions options;
      options.rootRank = root;
      group_->gather(out, in, options)->wait();
      return rank_ == root ? trimmed(out[0], message.lengths) : std::vector<std::string>();
    });
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root,
                 const std::string& what) const override {
    guarded(what, [&] {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      for (auto& t : tensors) {
        std::vector<torch::Tensor> one = {t};
        group_->broadcast(one, options)->wait();
      }
      return 0;
    });
  }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) const override {
    guarded(what, [&] {
      for (auto& t : tensors) {
        std::vector<torch::Tensor> one = {t};
        group_->allreduce(one)->wait();
      }
      return 0;
    });
  }

  void barrier(const std::string& what) const override {
    guarded(what, [&] {
      group_->barrier()->wait();
      return 0;
    });
  }

 private:
  // Messages of different sizes travel as every rank's lengths first, then bytes padded to the
  // longest, trimmed on arrival.
  struct Padded {
    std::vector<torch::Tensor> lengths;  // every rank's, in rank order
    torch::Tensor bytes;                 // this rank's, padded to the longest
  };

  Padded padded(const std::string& bytes) const {
    Padded message;
    message.lengths =
        gather_tensor(torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong));
    int64_t longest = 1;
    for (const auto& l : message.lengths) longest = std::max(longest, l.item<int64_t>());
    message.bytes = torch::zeros({longest}, torch::kUInt8);
    std::memcpy(message.bytes.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    return message;
  }

  static std::vector<std::string> trimmed(const std::vector<torch::Tensor>& received,
                                          const std::vector<torch::Tensor>& lengths) {
    std::vector<std::string> out;
    for (size_t r = 0; r < received.size(); ++r) {
      out.emplace_back(reinterpret_cast<const char*>(received[r].data_ptr()),
                       static_cast<size_t>(lengths[r].item<int64_t>()));
    }
    return out;
  }

  std::vector<torch::Tensor> gather_tensor(const torch::Tensor& mine) const {
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < size_; ++r) out[0].push_back(torch::empty_like(mine));
    std::vector<torch::Tensor> in = {mine};
    group_->allgather(out, in)->wait();
    return out[0];
  }

  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};
#endif

// c10d logs a connection's every failed try to stderr through glog; its exceptions carry the
// reason, which our one-line errors quote. Silences stderr while in scope (only this thread
// writes at the points it is used).
class QuietStderr {
 public:
  QuietStderr() {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null_fd >= 0) ::dup2(null_fd, STDERR_FILENO);
    if (null_fd >= 0) ::close(null_fd);
  }
  ~QuietStderr() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

 private:
  int saved_ = -1;
};

// The variables that make a process a rank (torchrun's, which --processes sets the same way).
constexpr const char* kWorldVariables[] = {"RANK",
                                           "LOCAL_RANK",
                                           "WORLD_SIZE",
                                           "LOCAL_WORLD_SIZE",
                                           "GROUP_RANK",
                                           "MASTER_ADDR",
                                           "MASTER_PORT",
                                           "TORCHELASTIC_USE_AGENT_STORE",
                                           "TORCHELASTIC_RESTART_COUNT"};

std::unique_ptr<World>& joined() {
  static std::unique_ptr<World> world;
  return world;
}

std::string signal_name(int signal) {
  const char* name = ::strsignal(signal);
  return "signal " + std::to_string(signal) +
         (name != nullptr ? " (" + std::string(name) + ")" : "");
}

}  // namespace

int64_t World::take_ticket(const std::string& counter) const {
  std::lock_guard<std::mutex> lock(tickets_mutex_);
  return tickets_[counter]++;
}

const World& single() {
  static const World one;
  return one;
}

const World& world() { return joined() ? *joined() : single(); }

double collective_timeout_seconds(double fallback) {
  const auto text = env_or("PRIVAUDIT_DIST_TIMEOUT", std::to_string(fallback));
  try {
    const double seconds = std::stod(text);
    if (seconds > 0) return seconds;
  } catch (const std::exception&) {
  }
  throw Error("distributed: PRIVAUDIT_DIST_TIMEOUT=" + text + " is not a positive number");
}

void leave_world_environment() {
  for (const char* name : kWorldVariables) ::unsetenv(name);
}

bool environment_has_world() { return env_or("WORLD_SIZE", "1") != "1"; }

void join_from_environment(const std::string& command_line, double default_timeout) {
  if (!environment_has_world()) return;
  const int size = env_int("WORLD_SIZE", 1, 4096);
  const int rank = env_int("RANK", 0, size - 1);
  const auto host = env_or("MASTER_ADDR", "");
  if (host.empty()) throw Error("distributed: MASTER_ADDR is not set");
  const int port = env_int("MASTER_PORT", 1, 65535);
  const double timeout = collective_timeout_seconds(default_timeout);
  const double join_timeout = std::min(timeout, 60.0);
  const bool agent_store = env_or("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  const auto where = host + ":" + std::to_string(port);

  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(port);
  options.isServer = !agent_store && rank == 0;
  options.waitWorkers = false;  // the join below says which rank is missing
  options.timeout = to_ms(join_timeout);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    QuietStderr quiet;
    store = c10::make_intrusive<c10d::TCPStore>(host, options);
  } catch (const std::exception& e) {
    const std::string why = first_line(e.what());
    if (options.isServer) {
      throw Error("distributed: rank 0 cannot serve the store on MASTER_PORT " + where +
                  " (in use, or not an address of this machine?): " + why);
    }
    throw Error("distributed: rank " + std::to_string(rank) + " found no store at " + where +
                " within " + std::to_string(static_cast<int>(join_timeout)) +
                " s (wrong MASTER_ADDR/MASTER_PORT, or rank 0 not started?): " + why);
  }
  if (agent_store) {
    store = c10::make_intrusive<c10d::PrefixStore>(
        "/worker/attempt_" + env_or("TORCHELASTIC_RESTART_COUNT", "0"), store);
  }
  store = c10::make_intrusive<c10d::PrefixStore>("privaudit", store);

  // Join: every rank says what it runs; all wait for all, then compare.
  const nlohmann::json me = {{"world_size", size},
                             {"command", command_line},
                             {"host", this_host()},
                             {"pid", static_cast<int64_t>(::getpid())}};
  const auto text = me.dump();
  store->set("rank/" + std::to_string(rank), std::vector<uint8_t>(text.begin(), text.end()));
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back("rank/" + std::to_string(r));
  try {
    QuietStderr quiet;
    store->wait(keys, to_ms(join_timeout));
  } catch (const std::exception&) {
    std::string missing;
    try {
      for (const auto& key : keys) {
        if (!store->check({key})) missing += (missing.empty() ? "" : ", ") + key.substr(5);
      }
    } catch (const std::exception&) {
      throw Error("distributed: rank " + std::to_string(rank) + ": the store at " + where +
                  " closed while the ranks joined (its server stopped: see rank 0's error)");
    }
    throw Error("distributed: rank " + std::to_string(rank) + ": rank(s) " + missing +
                " of WORLD_SIZE=" + std::to_string(size) + " did not join at " + where +
                " within " + std::to_string(static_cast<int>(join_timeout)) +
                " s (does every process have the same WORLD_SIZE?)");
  }
  std::vector<Peer> peers;
  for (int r = 0; r < size; ++r) {
    const auto value = store->get(keys[static_cast<size_t>(r)]);
    const auto other = nlohmann::json::parse(std::string(value.begin(), value.end()));
    peers.push_back({other.value("host", ""), other.value("pid", int64_t{0})});
    if (other.value("world_size", 0) != size) {
      throw Error("distributed: rank " + std::to_string(r) +
                  " has WORLD_SIZE=" + std::to_string(other.value("world_size", 0)) + ", rank " +
                  std::to_string(rank) + " has " + std::to_string(size));
    }
    if (other.value("command", "") != command_line) {
      throw Error("distributed: rank " + std::to_string(r) +
                  " runs a different command line than"
                  " rank " +
                  std::to_string(rank) + "; every rank must run the same command");
    }
  }

  const auto backend = env_or("PRIVAUDIT_DIST_BACKEND", PRIVAUDIT_HAVE_GLOO ? "gloo" : "store");
  if (backend != "gloo" && backend != "store") {
    throw Error("distributed: PRIVAUDIT_DIST_BACKEND=" + backend + " is not gloo or store");
  }
  if (backend == "gloo" && !PRIVAUDIT_HAVE_GLOO) {
    throw Error(
        "distributed: PRIVAUDIT_DIST_BACKEND=gloo, but this build's LibTorch has no Gloo "
        "headers (leave the variable unset: the store carries the collectives)");
  }
  if (backend == "store") {
    store->setTimeout(to_ms(timeout));  // a collective waits this long for the other ranks
    joined() = std::make_unique<StoreWorld>(rank, size, store, std::move(peers));
    return;
  }
#if PRIVAUDIT_HAVE_GLOO
  // Gloo binds to the loopback address for a world on this machine; across machines, to the
  // interface GLOO_SOCKET_IFNAME names, else to this machine's hostname (as Python does).
  auto group_options = c10d::ProcessGroupGloo::Options::create(to_ms(timeout));
  const auto interface = env_or("GLOO_SOCKET_IFNAME", "");
  try {
    QuietStderr quiet;
    if (is_loopback(host)) {
      group_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
    } else if (!interface.empty()) {
      group_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else {
      group_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", store), rank, size, group_options);
    joined() = std::make_unique<GlooWorld>(rank, size, store, group, std::move(peers));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("distributed: rank " + std::to_string(rank) +
                " cannot connect to the others: " + first_line(e.what()));
  }
#endif
}

std::string pack(const nlohmann::json& header, const std::vector<torch::Tensor>& tensors) {
  c10::List<at::Tensor> list;
  for (const auto& t : tensors) list.push_back(t.to(torch::kCPU).contiguous());
  const auto bytes = torch::pickle_save(c10::ivalue::Tuple::create({header.dump(), list}));
  return std::string(bytes.begin(), bytes.end());
}

std::pair<nlohmann::json, std::vector<torch::Tensor>> unpack(const std::string& bytes) {
  const auto value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  const auto& elements = value.toTupleRef().elements();
  std::vector<torch::Tensor> tensors;
  for (const auto& t : elements.at(1).toTensorList()) tensors.push_back(t);
  return {nlohmann::json::parse(elements.at(0).toStringRef()), std::move(tensors)};
}

std::vector<int> assign_items(const std::vector<double>& costs, int ranks) {
  std::vector<int> owner(costs.size(), 0);
  if (ranks <= 1) return owner;
  std::vector<size_t> order(costs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(static_cast<size_t>(ranks), 0.0);
  for (size_t i : order) {
    const auto least = std::min_element(load.begin(), load.end()) - load.begin();
    owner[i] = static_cast<int>(least);
    load[static_cast<size_t>(least)] += costs[i];
  }
  return owner;
}

namespace {

std::vector<pid_t>* g_children = nullptr;
volatile sig_atomic_t g_stopped_by = 0;  // the signal that stopped the launcher itself

void forward_signal(int signal) {
  if (g_children == nullptr) return;
  for (pid_t pid : *g_children) {
    if (pid > 0) ::kill(pid, signal);
  }
}

// SIGINT / SIGTERM to the launcher: passed on to the ranks, and remembered.
void on_stop_signal(int signal) {
  g_stopped_by = signal;
  forward_signal(signal);
}

}  // namespace

int launch_local(int processes, const std::vector<std::string>& args) {
  if (processes < 1) throw UsageError("--processes must be at least 1");
  // This process serves the store, as torchrun's agent does; the ranks connect as its clients.
  c10d::TCPStoreOptions options;
  options.port = 0;  // any free port
  options.isServer = true;
  options.waitWorkers = false;
  options.timeout = to_ms(60);
  c10::intrusive_ptr<c10d::TCPStore> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
  } catch (const std::exception& e) {
    throw Error("--processes: cannot serve a store on 127.0.0.1: " + first_line(e.what()));
  }
  const auto port = std::to_string(store->getPort());

  std::vector<std::string> argv_storage = {"privaudit"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<pid_t> children;
  g_children = &children;
  g_stopped_by = 0;
  struct sigaction forward = {}, old_int = {}, old_term = {};
  forward.sa_handler = on_stop_signal;
  ::sigaction(SIGINT, &forward, &old_int);
  ::sigaction(SIGTERM, &forward, &old_term);
  for (int rank = 0; rank < processes; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      forward_signal(SIGKILL);
      throw Error(std::string("--processes: cannot start a process: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed launcher takes its ranks with it
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(processes).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(processes).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
      ::setenv("TORCHELASTIC_RESTART_COUNT", "0", 1);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "privaudit: cannot run /proc/self/exe: %s\n", std::strerror(errno));
      ::_exit(127);
    }
    children.push_back(pid);
  }

  int failures = 0, code = 0;
  size_t running = children.size();
  std::chrono::steady_clock::time_point kill_at{};
  while (running > 0) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done < 0 && errno != EINTR) break;
    if (done <= 0) {
      // After a failure the other ranks get 10 s to stop cleanly, then are killed.
      if (failures > 0 && std::chrono::steady_clock::now() > kill_at) forward_signal(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const auto it = std::find(children.begin(), children.end(), done);
    if (it == children.end()) continue;
    const int rank = static_cast<int>(it - children.begin());
    *it = -1;
    --running;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) continue;
    if (failures > 0) {
      // The first rank reaped may only have lost the one that failed (a rank 0 refusing --out
      // after the world started): that one's exit code is the run's.
      if (code == kPeerLostExit && WIFEXITED(status) && WEXITSTATUS(status) != kPeerLostExit) {
        code = WEXITSTATUS(status);
        std::cerr << "privaudit: rank " << rank << " of " << processes << " exited with code "
                  << code << " first" << std::endl;
      }
      continue;
    }
    ++failures;
    if (g_stopped_by != 0) {  // the ranks stop because the launcher was told to (Ctrl-C, kill)
      code = 128 + g_stopped_by;
      std::cerr << "privaudit: stopped by " << signal_name(g_stopped_by) << "; stopping the ranks"
                << std::endl;
      forward_signal(SIGTERM);
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      continue;
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    std::cerr << "privaudit: rank " << rank << " of " << processes
              << (WIFSIGNALED(status) ? " was killed by " + signal_name(WTERMSIG(status))
                                      : " exited with code " + std::to_string(WEXITSTATUS(status)))
              << "; stopping the other ranks" << std::endl;
    // A rank that only lost another leaves the one that failed to finish its own exit (a SIGTERM
    // now would hide its exit code); the 10 s before SIGKILL still bound the wait.
    if (code != kPeerLostExit) forward_signal(SIGTERM);
    kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  g_children = nullptr;
  return code;
}

}  // namespace privaudit::dist
