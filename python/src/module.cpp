// privaudit._privaudit: the experiments of the command line over tensors a Python caller holds.
// The pure-Python package (python/privaudit/__init__.py) scripts the user's nn.Module, writes it to
// a temporary TorchScript file and calls these functions with that path, so a model is loaded by
// the same code as `--model FILE.pt`. Tensors cross as torch.Tensor (Debian's python3-torch and
// libtorch-dev are one build). Every call releases the GIL, polls Ctrl-C through
// util/interrupt.h, and raises the command line's one-line messages as Python exceptions.
#include <torch/extension.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include "privaudit/audit/plan.h"
#include "privaudit/audit/pooling.h"
#include "privaudit/data/dataset.h"
#include "privaudit/data/spec.h"
#include "privaudit/data/tensor_file.h"
#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/experiments/layer_experiment.h"
#include "privaudit/experiments/membership_experiment.h"
#include "privaudit/metrics/bootstrap.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/error.h"
#include "privaudit/util/interrupt.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/text.h"
#include "privaudit/util/time_budget.h"
#include "privaudit/util/watchdog.h"

namespace py = pybind11;

namespace privaudit::python {
void bind_verdict(py::module_& m);  // verdict_bindings.cpp
namespace {

// What every call shares with the command line's common flags.
struct CallSettings {
  uint64_t seed = 0;
  int threads = 0;             // 0: leave torch's thread count as it is
  bool progress = true;        // bars on a terminal, status lines on stderr
  double time_budget = 0;      // --time-budget
  double model_timeout = 300;  // --model-timeout (past it the process ends, as the CLI's does)
  std::string who = "privaudit";
};

// Runs `work` as a command would (threads, seed, budget, model-call limits), with the GIL
// released and Ctrl-C polled from the calling thread every 50 ms. The global generator is seeded as
// `--seed` seeds it and given back afterwards, so the caller's torch.manual_seed stream goes on.
template <typename Work>
auto run_call(const CallSettings& settings, Work&& work) -> decltype(work()) {
  const int previous_threads = torch::get_num_threads();
  std::atomic<bool> interrupted{false};
  const auto caller = std::this_thread::get_id();
  auto last_poll = std::chrono::steady_clock::now();
  std::optional<decltype(work())> result;
  try {
    py::gil_scoped_release release;
    ScopedInterruptCheck check([&] {
      if (std::this_thread::get_id() != caller) return false;  // worker threads never stop
      const auto now = std::chrono::steady_clock::now();
      if (now - last_poll < std::chrono::milliseconds(50)) return interrupted.load();
      last_poll = now;
      py::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0) {
        PyErr_Clear();  // raised again, as KeyboardInterrupt, once the work has unwound
        interrupted = true;
      }
      return interrupted.load();
    });
    set_threads(settings.threads);
    set_time_budget(settings.time_budget);
    ModelCallLimits limits;
    limits.first_call = settings.model_timeout;
    set_model_call_limits(limits, settings.who);
    ScopedGlobalSeed seed(settings.seed);
    result.emplace(work());
  } catch (...) {
    if (settings.threads > 0) set_threads(previous_threads);
    set_time_budget(0);
    if (interrupted) {
      PyErr_SetNone(PyExc_KeyboardInterrupt);
      throw py::error_already_set();
    }
    throw;
  }
  if (settings.threads > 0) set_threads(previous_threads);
  set_time_budget(0);
  return std::move(*result);
}

experiments::Reporter reporter(const CallSettings& settings) {
  if (!settings.progress) return {};
  return experiments::Reporter(stderr_is_terminal(), [who = settings.who](const std::string& line) {
    std::cerr << who << ": " << line << std::endl;
  });
}

// A dataset from the caller's tensors, checked as the command line checks a loaded one.
data::Dataset make_dataset(const torch::Tensor& images, const torch::Tensor& labels,
                           const std::vector<std::string>& class_names, const std::string& where) {
  require_usage(images.defined() && labels.defined(), where + ": images and labels are needed");
  require_usage(images.dim() == 4, where + ": images must be N x C x H x W, got " +
                                       std::to_string(images.dim()) + " dimensions");
  require_usage(images.is_floating_point(), where + ": images must be float in [0,1]");
  require_usage(labels.dim() == 1 && labels.scalar_type() == torch::kLong,
                where + ": labels must be a 1-D int64 tensor");
  require_usage(images.size(0) == labels.size(0), where + ": " + std::to_string(images.size(0)) +
                                                      " images but " +
                                                      std::to_string(labels.size(0)) + " labels");
  data::Dataset dataset;
  dataset.images = images.detach().to(torch::kCPU, torch::kFloat).contiguous().clone();
  dataset.labels = labels.detach().to(torch::kCPU).contiguous().clone();
  dataset.class_names = class_names;
  dataset.source = where;
  data::validate(dataset, where);
  return dataset;
}

models::LoadedModel load(const std::string& path, std::optional<std::vector<int64_t>> input_shape,
                         std::optional<int64_t> classes) {
  models::ModelFileOptions options;
  if (input_shape) {
    require_usage(input_shape->size() == 3, "input_shape: expected (C, H, W)");
    options.input_shape =
        models::InputShape{(*input_shape)[0], (*input_shape)[1], (*input_shape)[2]};
  }
  options.classes = classes;
  return models::load_model(path, options);
}

// The strongest attack's reconstruction per target: the matched image of the attack that won it.
torch::Tensor strongest_images(const experiments::GradientExperimentResult& result,
                               const experiments::StrongestAttack& strongest) {
  std::vector<torch::Tensor> rows;
  for (size_t t = 0; t < strongest.attack.size(); ++t) {
    torch::Tensor row;
    for (const auto& run : result.runs) {
      if (run.batch_size != strongest.batch_size || run.attack != strongest.attack[t]) continue;
      if (run.matched.defined() && static_cast<int64_t>(t) < run.matched.size(0))
        row = run.matched[static_cast<int64_t>(t)];
    }
    if (!row.defined()) return {};
    rows.push_back(row);
  }
  return rows.empty() ? torch::Tensor() : torch::stack(rows);
}

struct GradientsOutcome {
  experiments::GradientExperimentResult result;
  std::vector<torch::Tensor> strongest_images;  // one per batch size
  std::string json;                             // results.json's fields, as the CLI writes them
};

GradientsOutcome gradients(const models::LoadedModel& loaded, const data::Dataset& test,
                           experiments::GradientExperimentOptions options,
                           const std::string& attack, bool labels_known,
                           const CallSettings& settings) {
  options.attacks = attacks::parse_gradient_attacks(attack);
  options.knowledge.labels = labels_known;
  options.seed = settings.seed;
  options.validate();
  experiments::MemorySink sink;
  GradientsOutcome out;
  out.result =
      experiments::run_gradient_experiment(*loaded.model, test, options, reporter(settings), sink);
  for (const auto& strongest : out.result.strongest)
    out.strongest_images.push_back(strongest_images(out.result, strongest));
  out.json = experiments::to_json(out.result, options).dump();
  return out;
}

struct LayersOutcome {
  std::vector<torch::Tensor> reconstructions;  // per layer: the decoder's (empty without it)
  torch::Tensor targets;                       // the images the decoder was scored on
  std::string json;
};

LayersOutcome layers(const models::LoadedModel& loaded, const data::Dataset& test,
                     experiments::LayerExperimentOptions options, const CallSettings& settings) {
  options.seed = settings.seed;
  options.validate();
  if (loaded.model->cut_points().empty()) throw Error("the model has no cut points to measure");
  experiments::resolve_cuts(*loaded.model, options);
  experiments::MemorySink sink;
  const auto result =
      experiments::run_layer_experiment(*loaded.model, test, options, reporter(settings), sink);
  LayersOutcome out;
  for (const auto& layer : result.layers)
    out.reconstructions.push_back(layer.decoded ? layer.decoder.reconstructions : torch::Tensor());
  const auto grid = sink.grids.find("decoder_reconstructions.png");
  if (grid != sink.grids.end() && !grid->second.empty()) out.targets = grid->second.front();
  out.json = experiments::to_json(result, options).dump();
  return out;
}

std::string membership(const std::string& path, const std::vector<int64_t>& input_shape,
                       const data::Dataset& pool, const data::Dataset& population, int models,
                       int epochs, int64_t batch_size, const std::string& optimizer,
                       double learning_rate, const std::string& schedule,
                       const std::string& attack_list, const CallSettings& settings) {
  experiments::MembershipExperimentOptions options;
  if (attack_list != "all") {
    options.attacks.clear();
    for (const auto& name : split_list(attack_list))
      options.attacks.push_back(attacks::parse_membership_attack(name));
  }
  options.epsilon.seed = settings.seed;
  options.null_seed = settings.seed + 1;
  auto& recipe = options.references.recipe;
  recipe.epochs = epochs;
  recipe.batch_size = batch_size;
  recipe.optimizer = train::parse_optimizer(optimizer);
  recipe.learning_rate = learning_rate > 0
                             ? learning_rate
                             : (recipe.optimizer == train::OptimizerKind::kAdam ? 1e-3 : 0.05);
  recipe.schedule = train::parse_schedule(schedule);
  options.references.models = models;
  options.references.seed = settings.seed;
  require_usage(epochs >= 1, "epochs: must be at least 1");
  require_usage(models >= 2, "models " + std::to_string(models) +
                                 ": membership needs at least 2 models (a target and a reference)");
  options.attack.validate(models);
  const auto probe = load(path, input_shape, std::nullopt);
  models::ModelFileOptions file_options;
  file_options.input_shape = probe.model->input_shape();
  file_options.classes = probe.model->num_classes();
  experiments::MemorySink sink;
  const auto result = experiments::run_membership_on_copies(path, file_options, pool, population,
                                                            options, reporter(settings), sink);
  return experiments::to_json(result, options).dump();
}

void bind_results(py::module_& m) {
  using experiments::GradientRun;
  py::class_<GradientRun>(m, "GradientRun",
                          "One gradient attack at one batch size (results.json's `runs` entry).")
      .def_readonly("attack", &GradientRun::attack)
      .def_readonly("batch_size", &GradientRun::batch_size)
      .def_readonly("batches", &GradientRun::batches)
      .def_readonly("applicable_batches", &GradientRun::applicable_batches)
      .def_readonly("not_applicable", &GradientRun::not_applicable)
      .def_readonly("skipped_batches", &GradientRun::skipped_batches)
      .def_readonly("psnr", &GradientRun::psnr)
      .def_readonly("ssim", &GradientRun::ssim)
      .def_readonly("mse", &GradientRun::mse)
      .def_readonly("exact", &GradientRun::exact)
      .def_readonly("label_accuracy", &GradientRun::label_accuracy)
      .def_readonly("iterations", &GradientRun::iterations)
      .def_readonly("seconds", &GradientRun::seconds)
      .def_readonly("target_psnr", &GradientRun::target_psnr)
      .def_readonly("target_ssim", &GradientRun::target_ssim)
      .def_readonly("target_certified", &GradientRun::target_certified)
      .def_readonly("images", &GradientRun::matched, "Reconstructions matched to the targets")
      .def("__repr__", [](const GradientRun& r) {
        return "<GradientRun " + r.attack + " batch " + std::to_string(r.batch_size) + " psnr " +
               std::to_string(r.psnr) + ">";
      });
  using experiments::StrongestAttack;
  py::class_<StrongestAttack>(m, "StrongestAttack",
                              "Per target, the attack with the highest PSNR at one batch size.")
      .def_readonly("batch_size", &StrongestAttack::batch_size)
      .def_readonly("attack", &StrongestAttack::attack)
      .def_readonly("psnr", &StrongestAttack::psnr)
      .def_readonly("ssim", &StrongestAttack::ssim)
      .def_readonly("certified", &StrongestAttack::certified)
      .def_readonly("mean_psnr", &StrongestAttack::mean_psnr)
      .def_readonly("median_psnr", &StrongestAttack::median_psnr)
      .def_readonly("mean_ssim", &StrongestAttack::mean_ssim)
      .def_readonly("exact", &StrongestAttack::exact);
  py::class_<GradientsOutcome>(m, "GradientsOutcome")
      .def_property_readonly("runs", [](const GradientsOutcome& o) { return o.result.runs; })
      .def_property_readonly("strongest",
                             [](const GradientsOutcome& o) { return o.result.strongest; })
      .def_property_readonly("target_indices",
                             [](const GradientsOutcome& o) { return o.result.target_indices; })
      .def_property_readonly("risk", [](const GradientsOutcome& o) { return o.result.risk; })
      .def_readonly("strongest_images", &GradientsOutcome::strongest_images)
      .def_readonly("json", &GradientsOutcome::json);
  py::class_<LayersOutcome>(m, "LayersOutcome")
      .def_readonly("reconstructions", &LayersOutcome::reconstructions)
      .def_readonly("targets", &LayersOutcome::targets)
      .def_readonly("json", &LayersOutcome::json);
  py::class_<metrics::Interval>(m, "Interval", "An estimate with its interval.")
      .def_readonly("estimate", &metrics::Interval::estimate)
      .def_readonly("low", &metrics::Interval::low)
      .def_readonly("high", &metrics::Interval::high)
      .def_readonly("n", &metrics::Interval::n);
}

CallSettings settings_from(uint64_t seed, int threads, bool progress, double time_budget,
                           double model_timeout, const std::string& who) {
  CallSettings s;
  s.seed = seed;
  s.threads = threads;
  s.progress = progress;
  s.time_budget = time_budget;
  s.model_timeout = model_timeout;
  s.who = who;
  return s;
}

}  // namespace
}  // namespace privaudit::python

PYBIND11_MODULE(_privaudit, m) {
  using namespace privaudit;
  using namespace privaudit::python;
  m.doc() = "privaudit's experiments over tensors (see the privaudit package and docs/python.md)";
  m.attr("__version__") = PRIVAUDIT_VERSION;

  static py::exception<Error> error(m, "Error", PyExc_RuntimeError);
  static py::exception<UsageError> usage_error(m, "UsageError", error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UsageError& e) {
      usage_error(e.what());
    } catch (const Error& e) {
      error(e.what());
    } catch (const c10::Error& e) {
      error(("LibTorch error: " + first_line(e.what_without_backtrace())).c_str());
    }
  });

  bind_results(m);
  bind_verdict(m);

  m.def(
      "save_data",
      [](const std::string& path, const torch::Tensor& train_images,
         const torch::Tensor& train_labels, const torch::Tensor& test_images,
         const torch::Tensor& test_labels, const std::vector<std::string>& class_names) {
        const auto train = make_dataset(train_images, train_labels, class_names, "train");
        const auto test = make_dataset(test_images, test_labels, class_names, "test");
        py::gil_scoped_release release;
        data::save_tensor_file(path, train, test);
      },
      "Writes both splits as the file `--data tensors:FILE` reads (data/tensor_file.h).",
      py::arg("path"), py::arg("train_images"), py::arg("train_labels"), py::arg("test_images"),
      py::arg("test_labels"), py::arg("class_names"));
  m.def(
      "executable", [] { return std::string(PRIVAUDIT_EXECUTABLE); },
      "The privaudit command line this module was built beside ($PRIVAUDIT_CLI overrides it in "
      "privaudit.audit).");

  py::class_<models::LoadedModel>(m, "Model", "A model file loaded as `--model FILE` loads it.")
      .def(py::init([](const std::string& path, std::optional<std::vector<int64_t>> input_shape,
                       std::optional<int64_t> classes) {
             py::gil_scoped_release release;
             return load(path, input_shape, classes);
           }),
           py::arg("path"), py::arg("input_shape") = py::none(), py::arg("classes") = py::none())
      .def_property_readonly("summary",
                             [](const models::LoadedModel& l) { return l.model->summary(); })
      .def_property_readonly("kind", [](const models::LoadedModel& l) { return l.model->kind(); })
      .def_property_readonly("cut_points",
                             [](const models::LoadedModel& l) { return l.model->cut_points(); })
      .def_property_readonly("num_classes",
                             [](const models::LoadedModel& l) { return l.model->num_classes(); })
      .def_property_readonly("input_shape",
                             [](const models::LoadedModel& l) {
                               const auto s = l.model->input_shape();
                               return std::vector<int64_t>{s.channels, s.height, s.width};
                             })
      .def_property_readonly("meta", [](const models::LoadedModel& l) { return l.meta.dump(); });

  m.def(
      "gradients",
      [](const std::string& path, std::optional<std::vector<int64_t>> input_shape,
         std::optional<int64_t> classes, const torch::Tensor& images, const torch::Tensor& labels,
         const std::vector<std::string>& class_names, const std::string& attack,
         const std::vector<int64_t>& batch_sizes, int64_t targets,
         const std::vector<int64_t>& indices, int iterations, int restarts, double tv,
         bool labels_known, bool train_mode, bool audit, int audit_probes,
         int audit_probe_iterations, bool skip_certified, uint64_t seed, int threads, bool progress,
         double time_budget, double model_timeout) {
        const auto settings = settings_from(seed, threads, progress, time_budget, model_timeout,
                                            "privaudit gradients");
        const auto test = make_dataset(images, labels, class_names, "images");
        experiments::GradientExperimentOptions options;
        options.batch_sizes = batch_sizes;
        options.targets = targets;
        options.indices = indices;
        options.budget.iterations = iterations;
        options.budget.restarts = restarts;
        if (tv >= 0) options.budget.total_variation = tv;
        options.train_mode = train_mode;
        options.audit = audit;
        if (audit_probes >= 0) options.audit_probes = audit_probes;  // else the flag's default
        if (audit_probe_iterations >= 0) options.audit_probe_iterations = audit_probe_iterations;
        options.skip_certified = skip_certified;
        // Seeded, then loaded, then run: the command line's order.
        return run_call(settings, [&] {
          return gradients(load(path, input_shape, classes), test, options, attack, labels_known,
                           settings);
        });
      },
      "`privaudit gradients` on the model and these test images; see privaudit.attack_gradients.",
      py::arg("path"), py::arg("input_shape"), py::arg("classes"), py::arg("images"),
      py::arg("labels"), py::arg("class_names"), py::arg("attack"), py::arg("batch_sizes"),
      py::arg("targets"), py::arg("indices"), py::arg("iterations"), py::arg("restarts"),
      py::arg("tv"), py::arg("labels_known"), py::arg("train_mode"), py::arg("audit"),
      py::arg("audit_probes"), py::arg("audit_probe_iterations"), py::arg("skip_certified"),
      py::arg("seed"), py::arg("threads"), py::arg("progress"), py::arg("time_budget"),
      py::arg("model_timeout"));

  m.def(
      "layers",
      [](const std::string& path, std::optional<std::vector<int64_t>> input_shape,
         std::optional<int64_t> classes, const torch::Tensor& images, const torch::Tensor& labels,
         const std::vector<std::string>& class_names, const std::vector<std::string>& cuts,
         int64_t samples, int64_t jacobian_samples, bool decoder, int decoder_epochs,
         int64_t attacker_size, int64_t targets, uint64_t seed, int threads, bool progress,
         double time_budget, double model_timeout) {
        const auto settings =
            settings_from(seed, threads, progress, time_budget, model_timeout, "privaudit layers");
        const auto test = make_dataset(images, labels, class_names, "images");
        experiments::LayerExperimentOptions options;
        options.cuts = cuts;
        options.samples = samples;
        options.jacobian_samples = jacobian_samples;
        options.decoder = decoder;
        options.decoder_epochs = decoder_epochs;
        options.attacker_size = attacker_size;
        options.targets = targets;
        return run_call(settings, [&] {
          return layers(load(path, input_shape, classes), test, options, settings);
        });
      },
      "`privaudit layers` on the model and these test images; see privaudit.layers.",
      py::arg("path"), py::arg("input_shape"), py::arg("classes"), py::arg("images"),
      py::arg("labels"), py::arg("class_names"), py::arg("cuts"), py::arg("samples"),
      py::arg("jacobian_samples"), py::arg("decoder"), py::arg("decoder_epochs"),
      py::arg("attacker_size"), py::arg("targets"), py::arg("seed"), py::arg("threads"),
      py::arg("progress"), py::arg("time_budget"), py::arg("model_timeout"));

  m.def(
      "membership",
      [](const std::string& path, const std::vector<int64_t>& input_shape,
         const torch::Tensor& pool_images, const torch::Tensor& pool_labels,
         const torch::Tensor& population_images, const torch::Tensor& population_labels,
         const std::vector<std::string>& class_names, int models, int epochs, int64_t batch_size,
         const std::string& optimizer, double learning_rate, const std::string& schedule,
         const std::string& attacks, uint64_t seed, int threads, bool progress,
         double model_timeout) {
        const auto settings =
            settings_from(seed, threads, progress, 0, model_timeout, "privaudit membership");
        const auto pool = make_dataset(pool_images, pool_labels, class_names, "train");
        const auto population =
            make_dataset(population_images, population_labels, class_names, "test");
        return run_call(settings, [&] {
          return membership(path, input_shape, pool, population, models, epochs, batch_size,
                            optimizer, learning_rate, schedule, attacks, settings);
        });
      },
      "`privaudit membership --model FILE` on this pool and population; see privaudit.membership.",
      py::arg("path"), py::arg("input_shape"), py::arg("pool_images"), py::arg("pool_labels"),
      py::arg("population_images"), py::arg("population_labels"), py::arg("class_names"),
      py::arg("models"), py::arg("epochs"), py::arg("batch_size"), py::arg("optimizer"),
      py::arg("learning_rate"), py::arg("schedule"), py::arg("attacks"), py::arg("seed"),
      py::arg("threads"), py::arg("progress"), py::arg("model_timeout"));

  m.def(
      "load_data",
      [](const std::string& spec, int64_t train_size, int64_t test_size, int64_t train_per_class,
         uint64_t seed) {
        data::LoadOptions options;
        options.train_size = train_size;
        options.test_size = test_size;
        options.train_per_class = train_per_class;
        options.seed = seed;
        data::Splits splits;
        {
          py::gil_scoped_release release;
          splits = data::load_splits(spec, options);
        }
        return py::make_tuple(splits.train.images, splits.train.labels, splits.test.images,
                              splits.test.labels, splits.train.class_names);
      },
      "`--data SPEC` with `--train-size`, `--test-size`, `--train-per-class` and `--seed`: "
      "(train images, train labels, test images, test labels, class names).",
      py::arg("spec"), py::arg("train_size") = 0, py::arg("test_size") = 0,
      py::arg("train_per_class") = 0, py::arg("seed") = 0);

  m.def(
      "profile",
      [](const std::string& name) {
        const auto p = audit::audit_profile(name);
        py::dict gradients, layers, membership, train;
        gradients["attacks"] = p.gradients.attacks;
        gradients["batches"] = p.gradients.batches;
        gradients["targets"] = p.gradients.targets;
        gradients["iterations"] = p.gradients.iterations;
        gradients["probe_iterations"] = p.gradients.probe_iterations;
        layers["samples"] = p.layers.samples;
        layers["jacobian_samples"] = p.layers.jacobian_samples;
        layers["decoder_epochs"] = p.layers.decoder_epochs;
        layers["attacker_size"] = p.layers.attacker_size;
        layers["targets"] = p.layers.targets;
        membership["models"] = p.membership.models;
        membership["pool"] = p.membership.pool;
        membership["test_size"] = p.membership.test_size;
        train["train_size"] = p.train.train_size;
        train["test_size"] = p.train.test_size;
        train["epochs"] = p.train.epochs;
        py::dict out;
        out["gradients"] = gradients;
        out["layers"] = layers;
        out["membership"] = membership;
        out["train"] = train;
        return out;
      },
      "The work `privaudit audit --profile NAME` gives each stage (audit/plan.cpp), as dicts.",
      py::arg("name"));

  m.def(
      "membership_leak",
      [](int64_t detected, int64_t members, int64_t attacks, double level) {
        audit::MembershipEvidence evidence;
        evidence.detected = detected;
        evidence.members = members;
        evidence.attacks = attacks;
        return audit::membership_leak(evidence, level);
      },
      "The audit's rule (audit/pooling.h): the strongest attack's TPR at 1 % FPR, `detected` of "
      "`members`, has its Clopper-Pearson lower bound above 0.01 with Bonferroni's correction for "
      "picking it from `attacks` attacks.",
      py::arg("detected"), py::arg("members"), py::arg("attacks"), py::arg("level") = 0.95);

  m.def(
      "interval",
      [](const std::string& statistic, const std::vector<double>& values, double level) {
        metrics::BootstrapOptions options;
        options.level = level;
        const auto kind =
            statistic == "median"  ? metrics::Statistic::kMedian
            : statistic == "share" ? metrics::Statistic::kShare
            : statistic == "mean"
                ? metrics::Statistic::kMean
                : throw UsageError("statistic " + statistic + ": expected median, share or mean");
        return metrics::interval_of(kind, values, options);
      },
      "The audit's interval of a sample (metrics/bootstrap.h): median, share or mean.",
      py::arg("statistic"), py::arg("values"), py::arg("level") = 0.95);
}
