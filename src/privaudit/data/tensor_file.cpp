#include "privaudit/data/tensor_file.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/text.h"

namespace privaudit::data {
namespace {

constexpr const char* kFormat = "privaudit_tensors";
constexpr int kVersion = 1;

torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& path,
                          const std::string& key) {
  torch::Tensor value;
  if (!archive.try_read(key, value)) throw Error(path + ": no tensor '" + key + "' in this file");
  return value;
}

}  // namespace

void save_tensor_file(const std::string& path, const Dataset& train, const Dataset& test) {
  validate(train, "train");
  validate(test, "test");
  if (train.class_names != test.class_names)
    throw Error("train and test name different classes");
  if (train.images.sizes().slice(1) != test.images.sizes().slice(1))
    throw Error("train and test images differ in shape");
  const nlohmann::json meta = {
      {"format", kFormat}, {"version", kVersion}, {"classes", train.class_names}};
  write_atomic_with(path, [&](const std::string& temporary) {
    torch::serialize::OutputArchive archive;
    archive.write(kFormat, c10::IValue(meta.dump()));
    archive.write("train_images", train.images.to(torch::kCPU).to(torch::kFloat32).contiguous());
    archive.write("train_labels", train.labels.to(torch::kCPU).to(torch::kInt64).contiguous());
    archive.write("test_images", test.images.to(torch::kCPU).to(torch::kFloat32).contiguous());
    archive.write("test_labels", test.labels.to(torch::kCPU).to(torch::kInt64).contiguous());
    archive.save_to(temporary);
  });
}

Splits load_tensor_file(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw Error(path + ": no such file");
  Splits splits;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    c10::IValue meta_value;
    if (!archive.try_read(kFormat, meta_value) || !meta_value.isString())
      throw Error(path + ": not a privaudit tensors file (no '" + kFormat + "' entry)");
    const auto meta = nlohmann::json::parse(meta_value.toStringRef());
    if (meta.value("version", 0) != kVersion)
      throw Error(path + ": tensors file version " + meta.value("version", nlohmann::json()).dump() +
                  " (this privaudit reads " + std::to_string(kVersion) + ")");
    const auto names = meta.at("classes").get<std::vector<std::string>>();
    const auto split = [&](const std::string& name) {
      Dataset d;
      d.images = read_tensor(archive, path, name + "_images");
      d.labels = read_tensor(archive, path, name + "_labels");
      d.class_names = names;
      d.source = path + " (" + name + ")";
      if (d.images.scalar_type() != torch::kFloat32 || d.labels.scalar_type() != torch::kInt64)
        throw Error(path + ": " + name + " images must be float32 and labels int64");
      return d;
    };
    splits.train = split("train");
    splits.test = split("test");
  } catch (const c10::Error& e) {
    throw Error(path + ": not a privaudit tensors file: " + first_line(e.what_without_backtrace()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not a privaudit tensors file: bad header (" + std::string(e.what()) + ")");
  }
  validate(splits.train, splits.train.source);
  validate(splits.test, splits.test.source);
  if (splits.train.images.sizes().slice(1) != splits.test.images.sizes().slice(1))
    throw Error(path + ": train and test images differ in shape");
  return splits;
}

}  // namespace privaudit::data
