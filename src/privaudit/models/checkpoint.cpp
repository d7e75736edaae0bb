#include "privaudit/models/checkpoint.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "privaudit/models/torchscript.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"

namespace privaudit::models {

namespace {
constexpr const char* kMetaKey = "privaudit_meta";
constexpr int kFormat = 1;

// Checkpoints and TorchScript files are zip archives: a file that starts like one but does not
// load is damaged, rather than something else entirely.
bool starts_like_zip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}
}  // namespace

uint32_t weights_checksum(torch::nn::Module& module) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto add = [&](const torch::Tensor& t) {
    const auto bytes = t.detach().to(torch::kCPU).contiguous();
    crc = crc32(crc, static_cast<const Bytef*>(bytes.data_ptr()), static_cast<uInt>(bytes.nbytes()));
  };
  for (const auto& p : module.named_parameters()) add(p.value());
  for (const auto& b : module.named_buffers()) add(b.value());
  return static_cast<uint32_t>(crc);
}

void save_checkpoint(const std::string& path, BuiltinClassifier& model, nlohmann::json meta) {
  meta["format"] = kFormat;
  meta["model"] = model.config().to_json();
  meta["checksum"] = weights_checksum(*model.net());
  write_atomic_with(path, [&](const std::string& temporary) {
    torch::serialize::OutputArchive archive;
    archive.write(kMetaKey, c10::IValue(meta.dump()));
    torch::serialize::OutputArchive weights;
    model.net()->save(weights);
    archive.write("weights", weights);
    archive.save_to(temporary);
  });
}

LoadedModel load_model(const std::string& path, const ModelFileOptions& options) {
  if (!std::filesystem::exists(path)) throw Error(path + ": model file not found");
  if (std::filesystem::is_directory(path)) throw Error(path + ": is a folder, not a model file");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    const auto reason = first_line(e.what_without_backtrace());
    if (starts_like_zip(path)) {
      throw Error(path + ": damaged model file (a zip archive LibTorch cannot read: corrupt or truncated): " +
                  reason);
    }
    throw Error(path + ": not a model file (neither a privaudit checkpoint nor a TorchScript module): " + reason);
  }
  c10::IValue meta_value;
  if (!archive.try_read(kMetaKey, meta_value)) {
    LoadedModel loaded;
    loaded.model = load_torchscript(path, options.input_shape, options.classes, options.device);
    loaded.meta = dynamic_cast<const TorchScriptClassifier&>(*loaded.model).meta();
    return loaded;
  }
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(meta_value.toStringRef());
  } catch (const nlohmann::json::exception&) {
    throw Error(path + ": checkpoint description is not valid JSON (file corrupted)");
  }
  if (meta.value("format", 0) != kFormat) {
    throw Error(path + ": checkpoint format " + std::to_string(meta.value("format", 0)) +
                " is not supported (expected " + std::to_string(kFormat) + ")");
  }
  ModelConfig config;
  try {
    config = ModelConfig::from_json(meta.at("model"));
  } catch (const std::exception& e) {
    throw Error(path + ": " + first_line(e.what()));
  }
  auto model = std::make_unique<BuiltinClassifier>(config);
  try {
    torch::serialize::InputArchive weights;
    archive.read("weights", weights);
    model->net()->load(weights);
  } catch (const c10::Error& e) {
    throw Error(path + ": weights do not match the described model: " +
                first_line(e.what_without_backtrace()));
  }
  if (meta.value("checksum", uint32_t{0}) != weights_checksum(*model->net())) {
    throw Error(path + ": weights checksum mismatch (file corrupted)");
  }
  model->to(options.device);
  LoadedModel loaded;
  loaded.meta = std::move(meta);
  loaded.model = std::move(model);
  return loaded;
}

std::unique_ptr<BuiltinClassifier> load_builtin(const std::string& path, Arch expected) {
  auto loaded = load_model(path);
  auto* builtin = dynamic_cast<BuiltinClassifier*>(loaded.model.get());
  if (builtin == nullptr) throw Error(path + ": a TorchScript model, expected a privaudit checkpoint");
  if (builtin->config().arch != expected) {
    throw Error(path + ": checkpoint holds a " + arch_name(builtin->config().arch) + ", expected a " +
                arch_name(expected));
  }
  loaded.model.release();
  return std::unique_ptr<BuiltinClassifier>(builtin);
}

}  // namespace privaudit::models
