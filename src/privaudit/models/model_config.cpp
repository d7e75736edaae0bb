#include "privaudit/models/model_config.h"

#include <cmath>

#include "privaudit/util/error.h"

namespace privaudit::models {

std::string arch_name(Arch arch) {
  switch (arch) {
    case Arch::kMlp: return "mlp";
    case Arch::kCnn: return "cnn";
    case Arch::kVit: return "vit";
    case Arch::kLenet: return "lenet";
  }
  return "?";
}

Arch parse_arch(const std::string& name) {
  if (name == "mlp") return Arch::kMlp;
  if (name == "cnn" || name == "cnn-wide") return Arch::kCnn;
  if (name == "vit") return Arch::kVit;
  if (name == "lenet") return Arch::kLenet;
  throw UsageError("--arch " + name + ": unknown architecture (mlp, cnn, cnn-wide, vit, lenet)");
}

std::string activation_name(Activation activation) {
  switch (activation) {
    case Activation::kRelu: return "relu";
    case Activation::kLeakyRelu: return "leaky_relu";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kTanh: return "tanh";
    case Activation::kGelu: return "gelu";
  }
  return "?";
}

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "leaky_relu") return Activation::kLeakyRelu;
  if (name == "sigmoid") return Activation::kSigmoid;
  if (name == "tanh") return Activation::kTanh;
  if (name == "gelu") return Activation::kGelu;
  throw UsageError("activation " + name + ": unknown (relu, leaky_relu, sigmoid, tanh, gelu)");
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json json = {{"arch", arch_name(arch)},
          {"input_shape", {input.channels, input.height, input.width}},
          {"classes", classes},
          {"normalization", {{"mean", normalization.mean}, {"std", normalization.std}}},
          {"widths", widths},
          {"kernel", kernel},
          {"fc_width", fc_width},
          {"patch", patch},
          {"dim", dim},
          {"depth", depth},
          {"heads", heads},
          {"mlp_ratio", mlp_ratio},
          {"activation", activation_name(activation)},
          {"dropout", dropout},
          {"batch_norm", batch_norm},
          {"init", init == Init::kUniformHalf ? "uniform_half" : "default"}};
  if (group_norm) json["group_norm"] = true;  // absent (false) in models written before it
  if (noise_sigma > 0) json["cut_noise"] = {{"after", noise_cut}, {"sigma", noise_sigma}};
  return json;
}

namespace {

// "model description: 'KEY' is a string, expected WHAT".
Error description_error(const std::string& key, const nlohmann::json& value,
                        const std::string& expected) {
  return Error("model description: '" + key + "' is " +
               (value.is_null() ? std::string("null") : "a " + std::string(value.type_name())) +
               ", expected " + expected);
}

const nlohmann::json& config_field(const nlohmann::json& object, const std::string& key,
                                   const std::string& where = "") {
  const auto name = where.empty() ? key : where + "." + key;
  if (!object.is_object()) {
    if (where.empty()) throw Error("model description is not an object");
    throw description_error(where, object, "an object");
  }
  const auto found = object.find(key);
  if (found == object.end()) throw Error("model description: '" + name + "' is missing");
  return *found;
}

// An integer; one beyond int64 reads as the largest, which validate() refuses.
int64_t config_integer(const nlohmann::json& value, const std::string& key) {
  if (!value.is_number_integer()) throw description_error(key, value, "an integer");
  if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{INT64_MAX}) return INT64_MAX;
  return value.get<int64_t>();
}

std::vector<int64_t> config_integers(const nlohmann::json& value, const std::string& key) {
  if (!value.is_array()) throw description_error(key, value, "a list of integers");
  std::vector<int64_t> out;
  for (size_t i = 0; i < value.size(); ++i)
    out.push_back(config_integer(value[i], key + "[" + std::to_string(i) + "]"));
  return out;
}

std::vector<float> config_numbers(const nlohmann::json& value, const std::string& key) {
  if (!value.is_array()) throw description_error(key, value, "a list of numbers");
  std::vector<float> out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_number())
      throw description_error(key + "[" + std::to_string(i) + "]", value[i], "a number");
    out.push_back(value[i].get<float>());
  }
  return out;
}

double config_number(const nlohmann::json& value, const std::string& key) {
  if (!value.is_number()) throw description_error(key, value, "a number");
  return value.get<double>();
}

std::string config_text(const nlohmann::json& value, const std::string& key) {
  if (!value.is_string()) throw description_error(key, value, "a string");
  return value.get<std::string>();
}

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& json) {
  const auto at = [&json](const std::string& key) -> const nlohmann::json& {
    return config_field(json, key);
  };
  const auto integer = [&](const std::string& key) { return config_integer(at(key), key); };
  ModelConfig c;
  const auto arch = config_text(at("arch"), "arch");
  try {
    c.arch = parse_arch(arch);
  } catch (const UsageError&) {
    throw Error("model description: 'arch' is '" + arch +
                "', not an architecture (mlp, cnn, vit, lenet)");
  }
  const auto shape = config_integers(at("input_shape"), "input_shape");
  if (shape.size() != 3) {
    throw Error("model description: 'input_shape' has " + std::to_string(shape.size()) +
                " entries, expected 3 (C, H, W)");
  }
  c.input = {shape[0], shape[1], shape[2]};
  c.classes = integer("classes");
  const auto& normalization = at("normalization");
  c.normalization.mean =
      config_numbers(config_field(normalization, "mean", "normalization"), "normalization.mean");
  c.normalization.std =
      config_numbers(config_field(normalization, "std", "normalization"), "normalization.std");
  c.widths = config_integers(at("widths"), "widths");
  c.kernel = integer("kernel");
  c.fc_width = integer("fc_width");
  c.patch = integer("patch");
  c.dim = integer("dim");
  c.depth = integer("depth");
  c.heads = integer("heads");
  c.mlp_ratio = integer("mlp_ratio");
  c.activation = parse_activation(config_text(at("activation"), "activation"));
  c.dropout = config_number(at("dropout"), "dropout");
  if (!at("batch_norm").is_boolean())
    throw description_error("batch_norm", at("batch_norm"), "true or false");
  c.batch_norm = at("batch_norm").get<bool>();
  if (json.contains("group_norm")) {
    if (!at("group_norm").is_boolean())
      throw description_error("group_norm", at("group_norm"), "true or false");
    c.group_norm = at("group_norm").get<bool>();
  }
  c.init = config_text(at("init"), "init") == "uniform_half" ? Init::kUniformHalf : Init::kDefault;
  if (json.contains("cut_noise")) {  // absent in models without a noisy cut
    const auto& noise = at("cut_noise");
    c.noise_cut = config_text(config_field(noise, "after", "cut_noise"), "cut_noise.after");
    c.noise_sigma = config_number(config_field(noise, "sigma", "cut_noise"), "cut_noise.sigma");
  }
  c.validate();
  return c;
}

void ModelConfig::validate() const {
  const auto fail = [](const std::string& what) { throw UsageError("model: " + what); };
  const auto bound = [&fail](const std::string& field, int64_t value, int64_t low, int64_t high) {
    if (value < low || value > high) {
      fail(field + " is " + std::to_string(value) + ", outside " + std::to_string(low) + ".." +
           std::to_string(high));
    }
  };
  bound("input_shape channels", input.channels, 1, kMaxInputChannels);
  bound("input_shape height", input.height, 1, kMaxInputSide);
  bound("input_shape width", input.width, 1, kMaxInputSide);
  bound("classes", classes, 2, kMaxClasses);
  if (static_cast<int64_t>(normalization.mean.size()) != input.channels ||
      static_cast<int64_t>(normalization.std.size()) != input.channels) {
    fail("normalisation must have one mean and std per channel");
  }
  for (size_t i = 0; i < normalization.std.size(); ++i) {
    if (!std::isfinite(normalization.mean[i]) || !(normalization.std[i] > 0) ||
        !std::isfinite(normalization.std[i])) {
      fail("normalization of channel " + std::to_string(i) +
           " needs a finite mean and a positive, finite std");
    }
  }
  if (widths.size() > kMaxLayers) {
    fail("widths has " + std::to_string(widths.size()) + " layers, more than " +
         std::to_string(kMaxLayers));
  }
  for (size_t i = 0; i < widths.size(); ++i)
    bound("widths[" + std::to_string(i) + "]", widths[i], 1, kMaxWidth);
  bound("kernel", kernel, 1, kMaxKernel);
  bound("fc_width", fc_width, 0, kMaxWidth);
  bound("patch", patch, 1, kMaxPatch);
  bound("dim", dim, 1, kMaxDim);
  bound("depth", depth, 1, kMaxDepth);
  bound("heads", heads, 1, kMaxHeads);
  bound("mlp_ratio", mlp_ratio, 1, kMaxMlpRatio);
  if (!(dropout >= 0.0 && dropout < 1.0)) fail("dropout must be in [0,1)");
  if (batch_norm && group_norm) fail("batch_norm and group_norm exclude each other");
  if (!(noise_sigma >= 0.0 && noise_sigma <= kMaxNoiseSigma)) {
    fail("cut noise sigma must be in 0.." + std::to_string(static_cast<int>(kMaxNoiseSigma)));
  }
  if (noise_sigma > 0 && noise_cut.empty())
    fail("cut noise needs the name of the stage it follows");
  if (arch == Arch::kVit) {
    if (input.height % patch != 0 || input.width % patch != 0) {
      fail("ViT patch size " + std::to_string(patch) + " must divide the image size " +
           std::to_string(input.height) + "x" + std::to_string(input.width));
    }
    bound("ViT patch count", (input.height / patch) * (input.width / patch), 1, kMaxPatches);
    if (dim % heads != 0) fail("ViT width must be a multiple of the head count");
  }
  if ((arch == Arch::kCnn || arch == Arch::kLenet) && widths.empty()) {
    fail("convolutional models need channels and a kernel size");
  }
  if (arch == Arch::kCnn) {
    const int64_t shrink = int64_t{1} << widths.size();
    if (input.height < shrink || input.width < shrink) fail("too many pooling blocks for the image size");
  }
}

ModelConfig default_config(const std::string& name, const InputShape& input, int64_t classes) {
  ModelConfig c;
  c.arch = parse_arch(name);
  c.input = input;
  c.classes = classes;
  c.normalization = data::Normalization::identity(input.channels);
  switch (c.arch) {
    case Arch::kMlp:
      c.widths = {512, 256};
      break;
    case Arch::kCnn:
      c.widths = name == "cnn-wide" ? std::vector<int64_t>{64, 128} : std::vector<int64_t>{32, 64};
      // 3x3 rather than LeNet's 5x5: a third of the multiply-adds for the same accuracy on
      // 28x28 images, which keeps default training within the README's five minutes.
      c.kernel = 3;
      c.fc_width = name == "cnn-wide" ? 256 : 128;
      break;
    case Arch::kVit:
      c.patch = input.height % 7 == 0 && input.width % 7 == 0 ? 7 : 4;
      c.dim = 64;
      c.depth = 4;
      c.heads = 4;
      c.mlp_ratio = 2;
      c.activation = Activation::kGelu;
      break;
    case Arch::kLenet:
      c.widths = {12, 12, 12};
      c.kernel = 5;
      c.activation = Activation::kSigmoid;
      c.init = Init::kUniformHalf;
      break;
  }
  c.validate();
  return c;
}

}  // namespace privaudit::models
