// dispatch: what one iteration of Inverting Gradients asks of a device, counted on the CPU. A GPU
// runs each ATen operator that does arithmetic as at least one kernel launch, and each `.item()`
// (aten::_local_scalar_dense) as a wait for everything queued before it; at batch 1 the kernels
// are tiny, so a step costs about (operators x launch-and-dispatch time), whatever the GPU. This
// counts, per iteration and per target, the leaf operators (those that call no other operator,
// less views and other metadata-only ones) and the host reads, one target at a time and K targets
// in one graph (attacks/multi_target.h), and times LibTorch's own CPU cost of a tiny operator.
// Counts are per iteration: the difference between a run of 2N iterations and one of N.
//
// usage: privaudit_bench dispatch [K=16] [ITERATIONS=20] [ARCHS=lenet,cnn,mlp]
#include <ATen/record_function.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"
#include "privaudit/attacks/gradients/multi_target.h"
#include "privaudit/models/builtin.h"
#include "privaudit/util/runtime.h"

namespace privaudit::bench {
namespace {

std::atomic<int64_t> g_leaf_ops{0}, g_outer_ops{0}, g_host_reads{0};
thread_local std::vector<char> t_had_child;

// Operators that only make a new view or read metadata: no kernel on any device.
bool metadata_only(const char* name) {
  static const char* const kNames[] = {
      "aten::view",        "aten::reshape",      "aten::_reshape_alias", "aten::t",
      "aten::transpose",   "aten::permute",      "aten::expand",         "aten::as_strided",
      "aten::select",      "aten::slice",        "aten::unsqueeze",      "aten::squeeze",
      "aten::detach",      "aten::alias",        "aten::empty",          "aten::empty_strided",
      "aten::empty_like",  "aten::resize_",      "aten::unbind",         "aten::split",
      "aten::chunk",       "aten::narrow",       "aten::lift_fresh",     "aten::flatten",
      "aten::numpy_T",     "aten::size",         "aten::stride",         "aten::is_nonzero",
      "aten::result_type", "aten::_unsafe_view", "aten::view_as",        "aten::expand_as",
      "aten::contiguous",  "aten::to",           "aten::set_",           "aten::requires_grad_",
      "aten::squeeze_",    "aten::unsqueeze_",   "aten::as_strided_",    "aten::zeros"};
  for (const char* n : kNames)
    if (std::strcmp(name, n) == 0) return true;
  return false;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (!t_had_child.empty()) t_had_child.back() = 1;
  if (t_had_child.empty() && !metadata_only(fn.name())) ++g_outer_ops;
  t_had_child.push_back(0);
  if (std::strcmp(fn.name(), "aten::_local_scalar_dense") == 0) ++g_host_reads;
  return nullptr;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext*) {
  if (t_had_child.empty()) return;
  const bool leaf = !t_had_child.back();
  t_had_child.pop_back();
  if (leaf && !metadata_only(fn.name())) ++g_leaf_ops;
}

struct Counts {
  int64_t leaf = 0, outer = 0, reads = 0;
  double seconds = 0;
};

Counts count(const std::function<void()>& work) {
  g_leaf_ops = g_outer_ops = g_host_reads = 0;
  t_had_child.clear();
  const auto handle = at::addGlobalCallback(
      at::RecordFunctionCallback(on_start, on_end).scopes({at::RecordScope::FUNCTION}));
  Counts c;
  c.seconds = time_seconds(work);
  at::removeCallback(handle);
  c.leaf = g_leaf_ops;
  c.outer = g_outer_ops;
  c.reads = g_host_reads;
  return c;
}

int run_dispatch_bench(const std::vector<std::string>& args) {
  const int64_t k = args.size() > 0 ? std::stoll(args[0]) : 16;
  const int iterations = args.size() > 1 ? std::stoi(args[1]) : 20;
  const auto archs = list_argument(args, 2, "lenet,cnn,mlp");
  privaudit::set_threads(1);
  // LibTorch's own CPU cost of one tiny operator (no callback installed): in place, with a new
  // result, and recorded for autograd.
  {
    auto a = torch::zeros({1}), b = torch::ones({1});
    auto w = torch::ones({1}, torch::requires_grad());
    const int n = 200000;
    torch::Tensor sink;
    const auto per_op = [&](const std::function<void()>& op) {
      for (int i = 0; i < 1000; ++i) op();
      return 1e6 * time_seconds([&] {
               for (int i = 0; i < n; ++i) op();
             }) /
             n;
    };
    const double in_place = per_op([&] { a.add_(b); });
    const double fresh = per_op([&] { sink = a + b; });
    const double recorded = per_op([&] { sink = a * w; });
    std::printf(
        "LibTorch CPU time of a 1-element operator: %.2f us in place, %.2f us with a new result, "
        "%.2f us recorded for autograd\n",
        in_place, fresh, recorded);
  }
  std::printf(
      "Inverting Gradients, batch 1, per iteration (patience off), one target alone and K = %lld "
      "in one graph. outer: operators called from outside any operator, leaf: operators that call "
      "none (LibTorch's CPU code splits some, e.g. a batched product, into several), both without "
      "views; reads: .item() (each a device sync)\n",
      static_cast<long long>(k));
  std::printf("%-6s %22s %8s %10s %22s %10s\n", "arch", "one: outer / leaf", "reads", "ms",
              "K: outer / leaf per t.", "ms per t.");
  for (const auto& arch : archs) {
    torch::manual_seed(0);
    models::BuiltinClassifier model(models::default_config(arch, {1, 28, 28}, 10));
    model.set_training(false);
    const auto problems =
        one_image_problems(model, torch::rand({k, 1, 28, 28}), torch::arange(k) % 10);
    // Per iteration: the difference between runs of 2N and N iterations (the set-up and the
    // hand-over of each problem's images are paid once, not per iteration).
    const auto per_iteration = [&](const std::vector<attacks::InversionProblem>& batch,
                                   int64_t stack) {
      attacks::InvertingGradientsOptions options;
      options.patience = 0;
      Progress quiet;
      Counts at[2];
      for (int twice = 0; twice < 2; ++twice) {
        options.iterations = iterations * (twice + 1);
        at[twice] = count(
            [&] { attacks::run_inverting_gradients_many(model, batch, 1, options, stack, quiet); });
      }
      Counts d;
      d.leaf = at[1].leaf - at[0].leaf;
      d.outer = at[1].outer - at[0].outer;
      d.reads = at[1].reads - at[0].reads;
      d.seconds = at[1].seconds - at[0].seconds;
      return d;
    };
    const std::vector<attacks::InversionProblem> first(problems.begin(), problems.begin() + 1);
    const auto one = per_iteration(first, 1);
    const auto many = per_iteration(problems, k);
    const double per = static_cast<double>(iterations), kk = static_cast<double>(k);
    std::printf("%-6s %10.1f / %9.1f %8.2f %10.3f %10.1f / %9.1f %10.3f\n", arch.c_str(),
                one.outer / per, one.leaf / per, one.reads / per, 1e3 * one.seconds / per,
                many.outer / per / kk, many.leaf / per / kk, 1e3 * many.seconds / per / kk);
    std::fflush(stdout);
  }
  return 0;
}

const bool dispatch_bench_registered = register_benchmark(
    {"dispatch",
     "operators and host reads per Inverting Gradients iteration, one target and K in one graph "
     "(what a GPU launches per step) [K] [iterations] [archs]",
     run_dispatch_bench});

}  // namespace
}  // namespace privaudit::bench
