#include "privaudit/train/reference_models.h"

#include <zlib.h>

#include <cstdio>
#include <filesystem>

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
  return {{"format", 1},
          {"model", config.to_json()},
          {"recipe", recipe.to_json()},
          {"seed", options.seed},
          {"pool", {{"size", pool.size()}, {"checksum", crc}}}};
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
  } else {
    {
      ScopedGlobalSeed initialisation(mixed_seed(options.seed, static_cast<uint64_t>(k), 2));
      one.model = std::make_unique<models::BuiltinClassifier>(config);
    }
    auto recipe = options.recipe;
    recipe.seed = mixed_seed(options.seed, static_cast<uint64_t>(k), 4);
    recipe.state_path.clear();
    const Stopwatch watch;
    train_classifier(*one.model, one.splits, recipe, progress);
    one.seconds = watch.seconds();
    one.images = one.splits.train.size() * recipe.epochs;
    if (!path.empty())
      models::save_checkpoint(path, *one.model, {{"reference", key}, {"index", k}});
  }
  one.model->set_training(false);
  return one;
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
    const auto& s = one.splits;
    refs.train_accuracy.push_back(models::accuracy(*one.model, s.train.images, s.train.labels));
    refs.held_out_accuracy.push_back(models::accuracy(*one.model, s.test.images, s.test.labels));
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

}  // namespace privaudit::train
