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

ReferenceModels train_reference_models(const models::ModelConfig& config, const data::Dataset& pool,
                                       const ReferenceOptions& options, Progress& progress,
                                       const std::function<void(int, bool)>& on_model) {
  options.validate(pool.size(), config.classes);
  config.validate();
  ReferenceModels refs;
  const auto key = reference_key(config, pool, options);
  if (!options.cache_dir.empty()) {
    refs.cache_folder = (fs::path(options.cache_dir) / key_folder_name(config, key)).string();
    fs::create_directories(refs.cache_folder);
    write_file_atomic(fs::path(refs.cache_folder) / "reference.json", key.dump(2) + "\n");
  }
  std::vector<torch::Tensor> halves;
  for (int k = 0; k < options.models; ++k) {
    const auto half = reference_half(pool.size(), options.seed, k);
    halves.push_back(half);
    const auto in_rows = half.nonzero().squeeze(1),
               out_rows = half.logical_not().nonzero().squeeze(1);
    data::Splits splits;
    splits.train = pool.select(in_rows);
    splits.test = pool.select(out_rows);
    splits.normalization = config.normalization;
    const auto path =
        refs.cache_folder.empty()
            ? std::string()
            : (fs::path(refs.cache_folder) / ("reference_" + std::to_string(k) + ".pt")).string();
    std::unique_ptr<models::BuiltinClassifier> model;
    const bool cached = !path.empty() && fs::exists(path);
    if (cached) {
      model = load_cached_reference(path, key, config);
      ++refs.reused;
    } else {
      {
        ScopedGlobalSeed initialisation(mixed_seed(options.seed, static_cast<uint64_t>(k), 2));
        model = std::make_unique<models::BuiltinClassifier>(config);
      }
      auto recipe = options.recipe;
      recipe.seed = mixed_seed(options.seed, static_cast<uint64_t>(k), 4);
      recipe.state_path.clear();
      const Stopwatch watch;
      train::train_classifier(*model, splits, recipe, progress);
      refs.training_seconds += watch.seconds();
      refs.training_images += splits.train.size() * recipe.epochs;
      ++refs.trained;
      if (!path.empty()) {
        models::save_checkpoint(path, *model, {{"reference", key}, {"index", k}});
      }
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
