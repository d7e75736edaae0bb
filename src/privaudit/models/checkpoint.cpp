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
constexpr int64_t kMaxParameters = int64_t{1} << 28;

std::string describe(const torch::Tensor& t) {
  std::string shape;
  for (auto s : t.sizes()) shape += (shape.empty() ? "" : "x") + std::to_string(s);
  return (shape.empty() ? std::string("a scalar") : shape) + " " +
         std::string(c10::toString(t.scalar_type()));
}

// Checkpoints and TorchScript files are zip archives: a file that starts like one but does not
// load is damaged, rather than something else entirely.
bool starts_like_zip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

// The checkpoint's description: a JSON object with an integer format and checksum.
nlohmann::json read_description(const c10::IValue& value, const std::string& path) {
  if (!value.isString())
    throw Error(path + ": checkpoint description is not text (file corrupted)");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(value.toStringRef());
  } catch (const nlohmann::json::exception&) {
    throw Error(path + ": checkpoint description is not valid JSON (file corrupted)");
  }
  if (!meta.is_object() || !meta.contains("model")) {
    throw Error(path + ": checkpoint description is not a model description (file corrupted)");
  }
  const auto format = meta.value("format", nlohmann::json());
  if (!format.is_number_integer() || format.get<int64_t>() != kFormat) {
    throw Error(path + ": checkpoint format " + format.dump() + " is not supported (expected " +
                std::to_string(kFormat) + ")");
  }
  const auto checksum = meta.value("checksum", nlohmann::json());
  if (!checksum.is_number_unsigned() || checksum.get<uint64_t>() > UINT32_MAX) {
    throw Error(path + ": checkpoint description has no valid weights checksum (file corrupted)");
  }
  return meta;
}

// An upper bound on the parameter count of `c`, in floating point so that absurd sizes cannot
// overflow. Convolutions are counted without pooling or stride, which only over-estimates.
double parameter_bound(const ModelConfig& c) {
  const double pixels = static_cast<double>(c.input.channels) * c.input.height * c.input.width;
  const double classes = static_cast<double>(c.classes);
  double count = pixels;
  switch (c.arch) {
    case Arch::kMlp: {
      double in = pixels;
      for (auto w : c.widths) {
        count += in * w + w;
        in = static_cast<double>(w);
      }
      return count + in * classes + classes;
    }
    case Arch::kCnn:
    case Arch::kLenet: {
      double channels = static_cast<double>(c.input.channels);
      for (auto w : c.widths) {
        count += channels * w * c.kernel * c.kernel + 4.0 * w;
        channels = static_cast<double>(w);
      }
      const double flat = channels * c.input.height * c.input.width;
      const double fc = static_cast<double>(std::max<int64_t>(c.fc_width, 0));
      return count + (fc > 0 ? flat * fc + 4.0 * fc + fc * classes : flat * classes) + classes;
    }
    case Arch::kVit: {
      const double dim = static_cast<double>(c.dim);
      const double tokens = static_cast<double>(c.input.height) * c.input.width;
      count += pixels * dim + (tokens + 1) * dim;
      count += c.depth * (4.0 * dim * dim + 2.0 * dim * dim * c.mlp_ratio + 10.0 * dim);
      return count + dim * classes + classes;
    }
  }
  return count;
}

// Building the described model allocates its weights before they are read: a damaged or hostile
// description must not ask for gigabytes. ModelConfig::validate() has bounded every size, and the
// count is taken in floating point.
void check_model_size(const ModelConfig& c, const std::string& path) {
  if (!(parameter_bound(c) <= static_cast<double>(kMaxParameters))) {
    throw Error(path + ": checkpoint describes a model of more than " +
                std::to_string(kMaxParameters) + " parameters (file corrupted)");
  }
}

// Reads the weights into `net` and requires each to keep the shape and type the description
// built: LibTorch's reader replaces a tensor with whatever the file holds.
void load_weights(torch::serialize::InputArchive& archive, torch::nn::Module& net,
                  const std::string& path) {
  std::vector<std::pair<std::string, std::string>> expected;  // name, describe() before loading
  for (const auto& p : net.named_parameters()) expected.emplace_back(p.key(), describe(p.value()));
  for (const auto& b : net.named_buffers()) expected.emplace_back(b.key(), describe(b.value()));
  try {
    torch::serialize::InputArchive weights;
    archive.read("weights", weights);
    net.load(weights);
  } catch (const c10::Error& e) {
    throw Error(path + ": weights do not match the described model: " +
                first_line(e.what_without_backtrace()));
  }
  const auto parameters = net.named_parameters();
  const auto buffers = net.named_buffers();
  for (const auto& [name, before] : expected) {
    const auto* found = parameters.find(name);
    if (found == nullptr) found = buffers.find(name);
    const auto after = found == nullptr ? std::string("missing") : describe(*found);
    if (after != before) {
      throw Error(path + ": weights do not match the described model: " + name + " is " + after +
                  ", expected " + before);
    }
    if (!tensor_fits_storage(*found)) {
      throw Error(path + ": damaged model file: weight " + name + " reaches beyond its storage");
    }
  }
}
}  // namespace

uint32_t weights_checksum(torch::nn::Module& module) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto add = [&](const torch::Tensor& t) {
    const auto bytes = t.detach().to(torch::kCPU).contiguous();
    crc =
        crc32(crc, static_cast<const Bytef*>(bytes.data_ptr()), static_cast<uInt>(bytes.nbytes()));
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
  check_archive_pickles(path);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    const auto reason = first_line(e.what_without_backtrace());
    if (starts_like_zip(path)) {
      throw Error(
          path +
          ": damaged model file (a zip archive LibTorch cannot read: corrupt or truncated): " +
          reason);
    }
    throw Error(
        path +
        ": not a model file (neither a privaudit checkpoint nor a TorchScript module): " + reason);
  } catch (const std::exception& e) {
    // LibTorch's unpickler and TorchScript compiler throw types other than c10::Error.
    throw Error(path + ": damaged model file (LibTorch cannot read it): " + first_line(e.what()));
  }
  c10::IValue meta_value;
  if (!archive.try_read(kMetaKey, meta_value)) {
    LoadedModel loaded;
    loaded.model = load_torchscript(path, options.input_shape, options.classes, options.device);
    loaded.meta = dynamic_cast<const TorchScriptClassifier&>(*loaded.model).meta();
    return loaded;
  }
  const auto meta = read_description(meta_value, path);
  ModelConfig config;
  try {
    config = ModelConfig::from_json(meta.at("model"));
  } catch (const std::exception& e) {
    throw Error(path + ": " + first_line(e.what()));
  }
  check_model_size(config, path);
  std::unique_ptr<BuiltinClassifier> model;
  try {
    model = std::make_unique<BuiltinClassifier>(config);
  } catch (const c10::Error& e) {
    throw Error(path +
                ": the described model cannot be built: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error(path + ": the described model cannot be built: " + first_line(e.what()));
  }
  load_weights(archive, *model->net(), path);
  if (meta.at("checksum").get<uint32_t>() != weights_checksum(*model->net())) {
    throw Error(path + ": weights checksum mismatch (file corrupted)");
  }
  model->to(options.device);
  LoadedModel loaded;
  loaded.meta = meta;
  loaded.model = std::move(model);
  return loaded;
}

std::unique_ptr<BuiltinClassifier> load_builtin(const std::string& path, Arch expected) {
  auto loaded = load_model(path);
  auto* builtin = dynamic_cast<BuiltinClassifier*>(loaded.model.get());
  if (builtin == nullptr)
    throw Error(path + ": a TorchScript model, expected a privaudit checkpoint");
  if (builtin->config().arch != expected) {
    throw Error(path + ": checkpoint holds a " + arch_name(builtin->config().arch) +
                ", expected a " + arch_name(expected));
  }
  loaded.model.release();
  return std::unique_ptr<BuiltinClassifier>(builtin);
}

}  // namespace privaudit::models
