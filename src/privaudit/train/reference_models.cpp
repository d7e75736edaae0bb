#include "privaudit/train/reference_models.h"

#include <torch/script.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "privaudit/models/checkpoint.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/output_folder.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/timer.h"

namespace privaudit::train {
namespace {

namespace fs = std::filesystem;

// SplitMix64 (Steele et al. 2014): well-spread seeds for model `index` from one seed.
uint64_t mixed_seed(uint64_t seed, uint64_t index, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1) + 0xBF58476D1CE4E5B9ULL * stream;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint32_t crc_of(uint32_t crc, const torch::Tensor& tensor) {
  const auto bytes = tensor.contiguous().cpu();
  return static_cast<uint32_t>(
      crc32(crc, static_cast<const Bytef*>(bytes.data_ptr()), static_cast<uInt>(bytes.nbytes())));
}

// What decides a reference model's weights, as the cache's key.
nlohmann::json reference_key(const models::ModelConfig& config, const data::Dataset& pool,
                             const ReferenceOptions& options) {
  auto recipe = options.recipe;
  recipe.seed = 0;
  recipe.state_path.clear();
  uint32_t crc = crc_of(crc_of(0, pool.images.to(torch::kFloat)), pool.labels.to(torch::kLong));
  nlohmann::json key = {{"format", 1},
                        {"model", config.to_json()},
                        {"recipe", recipe.to_json()},
                        {"seed", options.seed},
                        {"pool", {{"size", pool.size()}, {"checksum", crc}}}};
  if (!options.trainer_key.is_null())  // absent without a trainer: older caches still fit
    key["trainer"] = options.trainer_key;
  return key;
}

std::string key_folder_name(const models::ModelConfig& config, const nlohmann::json& key) {
  const auto text = key.dump();
  const auto crc =
      crc32(0, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size()));
  char name[64];
  std::snprintf(name, sizeof name, "%s-%08lx", models::arch_name(config.arch).c_str(),
                static_cast<unsigned long>(crc));
  return name;
}

std::string input_text(const models::InputShape& s) {
  return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" +
         std::to_string(s.width);
}

// A cached reference model; throws Error naming the file when it cannot be used.
std::unique_ptr<models::BuiltinClassifier> load_cached_reference(
    const std::string& path, const nlohmann::json& key, const models::ModelConfig& config) {
  auto loaded = models::load_model(path);
  auto* builtin = dynamic_cast<models::BuiltinClassifier*>(loaded.model.get());
  if (builtin == nullptr) throw Error(path + ": a TorchScript model, not a reference model");
  const auto& found = builtin->config();
  if (found.arch != config.arch || found.input.channels != config.input.channels ||
      found.input.height != config.input.height || found.input.width != config.input.width) {
    throw Error(path + ": a reference " + models::arch_name(found.arch) + " for " +
                input_text(found.input) + " images, expected a " + models::arch_name(config.arch) +
                " for " + input_text(config.input));
  }
  const auto recorded = loaded.meta.value("reference", nlohmann::json::object());
  if (recorded != key) {
    const auto difference = first_difference(recorded, key);
    throw Error(path + ": a reference model of other settings (" + difference +
                "); remove it or use another cache folder");
  }
  loaded.model.release();
  return std::unique_ptr<models::BuiltinClassifier>(builtin);
}

}  // namespace

void ReferenceOptions::validate(int64_t pool_size, int64_t classes) const {
  require_usage(models >= 2, "--models " + std::to_string(models) +
                                 ": membership needs at least 2 models (a target and a reference)");
  require_usage(pool_size >= 2 * classes,
                "the pool holds " + std::to_string(pool_size) + " images: reference models on " +
                    "halves of it need at least " + std::to_string(2 * classes) + " (2 per class)");
  require_usage(recipe.epochs > 0, "--epochs must be positive");
}

torch::Tensor reference_half(int64_t pool_size, uint64_t seed, int index) {
  const auto order =
      data::permutation(pool_size, mixed_seed(seed, static_cast<uint64_t>(index), 1));
  auto half = torch::zeros({pool_size}, torch::kBool);
  half.index_fill_(0, order.slice(0, 0, pool_size / 2), true);
  return half;
}

namespace {

// The cache folder of these settings (created, with the key beside the models), or "" without a
// cache.
std::string prepare_cache(const models::ModelConfig& config, const ReferenceOptions& options,
                          const nlohmann::json& key) {
  if (options.cache_dir.empty()) return "";
  const auto folder = fs::path(options.cache_dir) / key_folder_name(config, key);
  fs::create_directories(folder);
  write_file_atomic(folder / "reference.json", key.dump(2) + "\n");
  return folder.string();
}

struct OneReference {
  std::unique_ptr<models::BuiltinClassifier> model;
  data::Splits splits;  // its half (train) and the other half (test)
  bool cached = false;
  double seconds = 0;
  int64_t images = 0;  // images x epochs trained
};

// Model k: loaded from `folder` when it is there, else trained (and written there).
OneReference train_or_load(const models::ModelConfig& config, const data::Dataset& pool,
                           const ReferenceOptions& options, const nlohmann::json& key,
                           const std::string& folder, int k, Progress& progress) {
  OneReference one;
  const auto half = reference_half(pool.size(), options.seed, k);
  one.splits.train = pool.select(half.nonzero().squeeze(1));
  one.splits.test = pool.select(half.logical_not().nonzero().squeeze(1));
  one.splits.normalization = config.normalization;
  const auto path = folder.empty()
                        ? std::string()
                        : (fs::path(folder) / ("reference_" + std::to_string(k) + ".pt")).string();
  one.cached = !path.empty() && fs::exists(path);
  if (one.cached) {
    one.model = load_cached_reference(path, key, config);
    one.model->to(options.device);
  } else {
    {
      ScopedGlobalSeed initialisation(mixed_seed(options.seed, static_cast<uint64_t>(k), 2));
      one.model = std::make_unique<models::BuiltinClassifier>(config);
    }
    one.model->to(options.device);
    auto recipe = options.recipe;
    recipe.seed = mixed_seed(options.seed, static_cast<uint64_t>(k), 4);
    recipe.state_path.clear();
    recipe.evaluate = false;  // measured once on the whole pool (pool_accuracy)
    const Stopwatch watch;
    if (options.trainer) {
      options.trainer(*one.model, one.splits, recipe, progress);
    } else {
      train_classifier(*one.model, one.splits, recipe, progress);
    }
    one.seconds = watch.seconds();
    one.images = one.splits.train.size() * recipe.epochs;
    if (!path.empty())
      models::save_checkpoint(path, *one.model, {{"reference", key}, {"index", k}});
  }
  one.model->set_training(false);
  return one;
}

// The accuracy of a model's pool logits on the images of its half (`half`, N bool) and on the
// others.
std::pair<double, double> pool_accuracy(const torch::Tensor& logits, const data::Dataset& pool,
                                        const torch::Tensor& half) {
  const auto right = logits.argmax(1).eq(pool.labels.cpu()).to(torch::kDouble);
  const auto in = half.to(torch::kBool);
  return {right.masked_select(in).mean().item<double>(),
          right.masked_select(in.logical_not()).mean().item<double>()};
}

}  // namespace

ReferenceModels train_reference_models(const models::ModelConfig& config, const data::Dataset& pool,
                                       const ReferenceOptions& options, Progress& progress,
                                       const std::function<void(int, bool)>& on_model) {
  options.validate(pool.size(), config.classes);
  config.validate();
  ReferenceModels refs;
  const auto key = reference_key(config, pool, options);
  refs.cache_folder = prepare_cache(config, options, key);
  std::vector<torch::Tensor> halves;
  for (int k = 0; k < options.models; ++k) {
    auto one = train_or_load(config, pool, options, key, refs.cache_folder, k, progress);
    halves.push_back(reference_half(pool.size(), options.seed, k));
    (one.cached ? refs.reused : refs.trained) += 1;
    refs.training_seconds += one.seconds;
    refs.training_images += one.images;
    refs.pool_logits.push_back(models::predict_logits(*one.model, pool.images));
    const auto [on_half, off_half] = pool_accuracy(refs.pool_logits.back(), pool, halves.back());
    refs.train_accuracy.push_back(on_half);
    refs.held_out_accuracy.push_back(off_half);
    refs.models.push_back(std::move(one.model));
    if (on_model) on_model(k, one.cached);
  }
  refs.in_mask = torch::stack(halves);
  return refs;
}

ReferenceShare train_reference_share(const models::ModelConfig& config, const data::Dataset& pool,
                                     const ReferenceOptions& options, int rank, int ranks,
                                     Progress& progress) {
  options.validate(pool.size(), config.classes);
  config.validate();
  if (options.cache_dir.empty())
    throw Error("sharing the reference models among processes needs a cache folder");
  const auto key = reference_key(config, pool, options);
  const auto folder = prepare_cache(config, options, key);
  ReferenceShare share;
  for (int k = rank; k < options.models; k += std::max(ranks, 1)) {
    const auto one = train_or_load(config, pool, options, key, folder, k, progress);
    (one.cached ? share.reused : share.trained) += 1;
    share.training_seconds += one.seconds;
    share.training_images += one.images;
  }
  return share;
}

namespace {

constexpr const char* kScriptKeyFile = "privaudit_reference.json";

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// The re-initialisation train_reference_copies states, drawn from `seed`.
void reinitialise(torch::jit::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    auto value = p.value;
    const auto options = torch::TensorOptions().dtype(value.dtype());
    if (ends_with(p.name, "weight") && value.dim() >= 2) {
      const double bound = 1 / std::sqrt(static_cast<double>(value.numel() / value.size(0)));
      value.copy_((torch::rand(value.sizes(), generator, options) * 2 - 1) * bound);
    } else if (ends_with(p.name, "weight")) {
      value.fill_(1);
    } else if (ends_with(p.name, "bias")) {
      value.zero_();
    } else {
      value.copy_(torch::randn(value.sizes(), generator, options) * 0.02);
    }
  }
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    auto value = b.value;
    if (ends_with(b.name, "running_var")) value.fill_(1);
    if (ends_with(b.name, "running_mean") || ends_with(b.name, "num_batches_tracked"))
      value.zero_();
  }
}

// Trains a TorchScript module on splits.train with the recipe (the trainer is typed to built-in
// models; this is its loop without checkpoints or augmentation).
void train_script(torch::jit::Module& module, const data::Splits& splits,
                  const TrainOptions& recipe, Progress& progress) {
  std::vector<torch::Tensor> parameters;
  for (const auto& p : module.parameters()) parameters.push_back(p);
  auto optimizer = make_optimizer(parameters, recipe);
  ScopedGlobalSeed global_seed(recipe.seed);  // dropout draws from the global generator
  module.train(true);
  const int64_t n = splits.train.size();
  for (int epoch = 0; epoch < recipe.epochs; ++epoch) {
    const uint64_t epoch_seed = recipe.seed * 1000003ULL + static_cast<uint64_t>(epoch);
    global_seed.reseed(epoch_seed);
    for (auto& group : optimizer->param_groups())
      group.options().set_lr(learning_rate_at(recipe, epoch));
    const auto batches = data::batches(n, recipe.batch_size, /*shuffle=*/true, epoch_seed);
    progress.start("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(recipe.epochs),
                   static_cast<int64_t>(batches.size()));
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto images = splits.train.images.index_select(0, batches[b]);
      const auto labels = splits.train.labels.index_select(0, batches[b]);
      optimizer->zero_grad();
      const auto logits = module.forward({images}).toTensor();
      const auto loss = torch::nn::functional::cross_entropy(logits, labels);
      if (!std::isfinite(loss.item<double>()))
        throw Error("training a copy of the model diverged at epoch " + std::to_string(epoch + 1) +
                    " (lower --lr)");
      loss.backward();
      optimizer->step();
      progress.update(static_cast<int64_t>(b + 1));
    }
    progress.finish();
  }
  module.train(false);
}

// A cached copy: the key it carries must be `key`; throws Error naming the file otherwise.
std::unique_ptr<models::Classifier> load_cached_copy(const std::string& path,
                                                     const nlohmann::json& key,
                                                     const models::ModelFileOptions& options) {
  auto loaded = models::load_model(path, options);  // names the file when it cannot be read
  torch::jit::ExtraFilesMap extra{{kScriptKeyFile, ""}};
  try {
    torch::jit::load(path, torch::kCPU, extra);
  } catch (const std::exception& e) {
    throw Error(path + ": cannot read it: " + first_line(e.what()));
  }
  const auto recorded = nlohmann::json::parse(extra[kScriptKeyFile], nullptr, false);
  if (recorded != key) {
    throw Error(path + ": a reference copy of other settings (" +
                first_difference(recorded.is_object() ? recorded : nlohmann::json::object(), key) +
                "); remove it or use another cache folder");
  }
  return std::move(loaded.model);
}

}  // namespace

ReferenceModels train_reference_copies(const std::string& model_file,
                                       const models::ModelFileOptions& file_options,
                                       const data::Dataset& pool, const ReferenceOptions& options,
                                       Progress& progress,
                                       const std::function<void(int, bool)>& on_model) {
  auto probe = models::load_model(model_file, file_options);
  const bool builtin_model = dynamic_cast<models::BuiltinClassifier*>(probe.model.get()) != nullptr;
  require_usage(!options.trainer || builtin_model,
                "this training of the reference models needs a built-in architecture (--arch or "
                "a privaudit checkpoint), not TorchScript copies of " +
                    model_file);
  if (auto* builtin = dynamic_cast<models::BuiltinClassifier*>(probe.model.get())) {
    return train_reference_models(builtin->config(), pool, options, progress, on_model);
  }
  const auto shape = probe.model->input_shape();
  if (shape.channels != pool.channels() || shape.height != pool.height() ||
      shape.width != pool.width()) {
    throw Error(model_file + ": a model for " + input_text(shape) + " images, the pool's are " +
                std::to_string(pool.channels()) + "x" + std::to_string(pool.height()) + "x" +
                std::to_string(pool.width()));
  }
  if (probe.model->num_classes() != pool.num_classes()) {
    throw Error(model_file + ": a model of " + std::to_string(probe.model->num_classes()) +
                " classes, the pool has " + std::to_string(pool.num_classes()));
  }
  options.validate(pool.size(), pool.num_classes());
  models::ModelFileOptions copy_options = file_options;
  copy_options.input_shape = shape;
  copy_options.classes = probe.model->num_classes();
  copy_options.device = torch::kCPU;
  const auto bytes = read_file(model_file);
  const auto file_crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  auto recipe_json = options.recipe;
  recipe_json.seed = 0;
  recipe_json.state_path.clear();
  const auto pool_crc =
      crc_of(crc_of(0, pool.images.to(torch::kFloat)), pool.labels.to(torch::kLong));
  const nlohmann::json key = {{"format", 1},
                              {"torchscript", {{"checksum", file_crc}, {"size", bytes.size()}}},
                              {"recipe", recipe_json.to_json()},
                              {"seed", options.seed},
                              {"pool", {{"size", pool.size()}, {"checksum", pool_crc}}}};
  ReferenceModels refs;
  if (!options.cache_dir.empty()) {
    const auto text = key.dump();
    char name[64];
    std::snprintf(name, sizeof name, "torchscript-%08lx",
                  static_cast<unsigned long>(crc32(0, reinterpret_cast<const Bytef*>(text.data()),
                                                   static_cast<uInt>(text.size()))));
    refs.cache_folder = (fs::path(options.cache_dir) / name).string();
    fs::create_directories(refs.cache_folder);
    write_file_atomic(fs::path(refs.cache_folder) / "reference.json", key.dump(2) + "\n");
  }
  std::vector<torch::Tensor> halves;
  for (int k = 0; k < options.models; ++k) {
    const auto half = reference_half(pool.size(), options.seed, k);
    halves.push_back(half);
    data::Splits splits;
    splits.train = pool.select(half.nonzero().squeeze(1));
    splits.test = pool.select(half.logical_not().nonzero().squeeze(1));
    const auto path =
        refs.cache_folder.empty()
            ? std::string()
            : (fs::path(refs.cache_folder) / ("reference_" + std::to_string(k) + ".pt")).string();
    const bool cached = !path.empty() && fs::exists(path);
    std::unique_ptr<models::Classifier> model;
    if (cached) {
      model = load_cached_copy(path, key, copy_options);
      ++refs.reused;
    } else {
      auto module = torch::jit::load(model_file, torch::kCPU);
      reinitialise(module, mixed_seed(options.seed, static_cast<uint64_t>(k), 2));
      auto recipe = options.recipe;
      recipe.seed = mixed_seed(options.seed, static_cast<uint64_t>(k), 4);
      const Stopwatch watch;
      train_script(module, splits, recipe, progress);
      refs.training_seconds += watch.seconds();
      refs.training_images += splits.train.size() * recipe.epochs;
      ++refs.trained;
      // Written, then loaded back as any --model file is, so cached and fresh copies are the same.
      const auto file = path.empty() ? (fs::temp_directory_path() /
                                        ("privaudit-copy-" + std::to_string(::getpid()) + ".pt"))
                                           .string()
                                     : path;
      write_atomic_with(file, [&](const std::string& temporary) {
        module.save(temporary, {{kScriptKeyFile, key.dump()}});
      });
      model = models::load_model(file, copy_options).model;
      if (path.empty()) fs::remove(file);
    }
    model->set_training(false);
    refs.train_accuracy.push_back(
        models::accuracy(*model, splits.train.images, splits.train.labels));
    refs.held_out_accuracy.push_back(
        models::accuracy(*model, splits.test.images, splits.test.labels));
    refs.models.push_back(std::move(model));
    if (on_model) on_model(k, cached);
  }
  refs.in_mask = torch::stack(halves);
  return refs;
}

}  // namespace privaudit::train
