// Checkpoints: what is saved loads back bit for bit, and every kind of bad file is refused with a
// message that names it.
#include "privaudit/models/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit::models {
namespace {

std::string saved_cnn(const testing::TempDir& dir, const std::string& name = "model.pt") {
  torch::manual_seed(0);
  BuiltinClassifier model(default_config("cnn", {1, 28, 28}, 10));
  save_checkpoint(dir.file(name), model, {{"test_accuracy", 0.5}});
  return dir.file(name);
}

// The message of the Error that loading `path` throws ("" if it loads).
std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

using testing::contains;

// A tiny MLP, the model the hand-written checkpoints below describe.
BuiltinClassifier tiny_mlp(int64_t hidden = 6) {
  torch::manual_seed(0);
  auto config = default_config("mlp", {1, 4, 4}, 3);
  config.widths = {hidden};
  return BuiltinClassifier(config);
}

// What save_checkpoint writes as the description of `model`, for tests to spoil.
nlohmann::json description_of(BuiltinClassifier& model) {
  return {{"format", 1},
          {"model", model.config().to_json()},
          {"checksum", weights_checksum(*model.net())}};
}

// Writes a checkpoint archive by hand: `meta` as its description and the weights of `model`.
std::string write_archive(const testing::TempDir& dir, const c10::IValue& meta,
                          BuiltinClassifier& model) {
  torch::serialize::OutputArchive archive;
  archive.write("privaudit_meta", meta);
  torch::serialize::OutputArchive weights;
  model.net()->save(weights);
  archive.write("weights", weights);
  archive.save_to(dir.file("hand_written.pt"));
  return dir.file("hand_written.pt");
}

std::string write_archive(const testing::TempDir& dir, const nlohmann::json& meta,
                          BuiltinClassifier& model) {
  return write_archive(dir, c10::IValue(meta.dump()), model);
}

TEST(Checkpoint, SavedModelLoadsBackWithIdenticalLogitsAndItsDescription) {
  testing::TempDir dir;
  torch::manual_seed(3);
  auto config = default_config("vit", {3, 32, 32}, 10);
  config.normalization = {{0.4f, 0.5f, 0.6f}, {0.2f, 0.25f, 0.3f}};
  BuiltinClassifier model(config);
  save_checkpoint(dir.file("vit.pt"), model, {{"test_accuracy", 0.75}});
  auto loaded = load_model(dir.file("vit.pt"));
  EXPECT_EQ(loaded.model->kind(), "vit");
  EXPECT_EQ(loaded.meta["test_accuracy"], 0.75);
  EXPECT_EQ(loaded.meta["model"], config.to_json());
  model.set_training(false);
  loaded.model->set_training(false);
  torch::NoGradGuard no_grad;
  const auto images = torch::rand({4, 3, 32, 32});
  EXPECT_TRUE(torch::equal(loaded.model->forward(images), model.forward(images)));
}

TEST(Checkpoint, FlippedByteInTheBodyIsReportedAsCorruptionNamingTheFile) {
  testing::TempDir dir;
  const auto path = saved_cnn(dir);
  auto bytes = read_file(path);
  // The weights are most of the file; its middle lies inside them.
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
  testing::write_bytes(path, bytes);
  const auto message = load_error(path);
  EXPECT_TRUE(contains(message, path + ": ")) << message;
  EXPECT_TRUE(contains(message, "corrupt")) << message;
}

TEST(Checkpoint, TruncatedFileIsReportedNamingTheFile) {
  testing::TempDir dir;
  const auto path = saved_cnn(dir);
  const auto bytes = read_file(path);
  testing::write_bytes(path, bytes.substr(0, bytes.size() * 2 / 3));
  const auto message = load_error(path);
  EXPECT_TRUE(contains(message, path + ": ")) << message;
  EXPECT_TRUE(contains(message, "truncated")) << message;
}

TEST(Checkpoint, CheckpointOfAnotherArchitectureIsRefusedByLoadBuiltin) {
  testing::TempDir dir;
  const auto path = saved_cnn(dir);
  EXPECT_EQ(load_builtin(path, Arch::kCnn)->kind(), "cnn");
  try {
    load_builtin(path, Arch::kVit);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": checkpoint holds a cnn, expected a vit");
  }
}

TEST(Checkpoint, RandomBytesAreNotAModel) {
  testing::TempDir dir;
  std::mt19937 rng(7);
  std::string bytes(4096, '\0');
  for (auto& b : bytes) b = static_cast<char>(rng() & 0xff);
  testing::write_bytes(dir.file("noise.bin"), bytes);
  const auto message = load_error(dir.file("noise.bin"));
  EXPECT_TRUE(contains(message, dir.file("noise.bin") + ": not a model file")) << message;
}

TEST(Checkpoint, TextFileIsNotAModel) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("readme.txt"), "privaudit checkpoint? no, just text\n");
  const auto message = load_error(dir.file("readme.txt"));
  EXPECT_TRUE(contains(message, dir.file("readme.txt") + ": not a model file")) << message;
}

TEST(Checkpoint, MissingFileAndFolderAreNamed) {
  testing::TempDir dir;
  EXPECT_EQ(load_error(dir.file("absent.pt")), dir.file("absent.pt") + ": model file not found");
  EXPECT_EQ(load_error(dir.path().string()),
            dir.path().string() + ": is a folder, not a model file");
}

TEST(Checkpoint, HandWrittenArchiveOfAValidDescriptionLoads) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  const auto path = write_archive(dir, description_of(model), model);
  EXPECT_EQ(load_model(path).model->kind(), "mlp");
}

TEST(Checkpoint, DescriptionThatIsNotTextIsReportedAsCorruption) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  const auto path = write_archive(dir, c10::IValue(int64_t{42}), model);
  EXPECT_EQ(load_error(path), path + ": checkpoint description is not text (file corrupted)");
}

TEST(Checkpoint, DescriptionThatIsJsonButNotAnObjectIsReportedAsCorruption) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  const auto path = write_archive(dir, nlohmann::json::array({1, 2}), model);
  EXPECT_EQ(load_error(path),
            path + ": checkpoint description is not a model description (file corrupted)");
}

TEST(Checkpoint, FormatThatIsNotANumberIsUnsupported) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  auto meta = description_of(model);
  meta["format"] = "1";
  const auto path = write_archive(dir, meta, model);
  EXPECT_EQ(load_error(path), path + ": checkpoint format \"1\" is not supported (expected 1)");
}

TEST(Checkpoint, ChecksumThatIsNotANumberIsReportedAsCorruption) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  auto meta = description_of(model);
  meta["checksum"] = "crc";
  const auto path = write_archive(dir, meta, model);
  EXPECT_EQ(load_error(path),
            path + ": checkpoint description has no valid weights checksum (file corrupted)");
}

TEST(Checkpoint, DescriptionOfAHugeModelIsRefusedBeforeAllocatingIt) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  auto meta = description_of(model);
  meta["model"]["widths"] =
      nlohmann::json::array({int64_t{1} << 40});  // 2^44 weights in the first layer alone
  const auto path = write_archive(dir, meta, model);
  EXPECT_EQ(load_error(path),
            path +
                ": checkpoint describes a model of more than 268435456 parameters (file "
                "corrupted)");
}

TEST(Checkpoint, ViTOfNegativeWidthIsRefusedBeforeBuildingIt) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  auto meta = description_of(model);
  auto vit = default_config("vit", {1, 4, 4}, 3).to_json();
  vit["dim"] = -4;  // a multiple of the 4 heads, so the description itself validates
  meta["model"] = vit;
  const auto path = write_archive(dir, meta, model);
  EXPECT_EQ(load_error(path),
            path + ": checkpoint describes a ViT of width -4 and MLP ratio 2 (file corrupted)");
}

TEST(Checkpoint, DescriptionTheModelCannotBuildNamesTheFile) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  auto meta = description_of(model);
  meta["model"]["cut_noise"] = {{"after", "nowhere"}, {"sigma", 0.1}};
  const auto path = write_archive(dir, meta, model);
  EXPECT_EQ(load_error(path), path +
                                  ": the described model cannot be built: model: cut noise after "
                                  "'nowhere', which is not a cut point");
}

TEST(Checkpoint, WeightsOfAnotherShapeAreRefusedEvenWithAMatchingChecksum) {
  testing::TempDir dir;
  auto narrow = tiny_mlp(6);
  auto wide = tiny_mlp(9);
  auto meta = description_of(narrow);
  meta["checksum"] = weights_checksum(*wide.net());  // so only the shapes can tell
  const auto path = write_archive(dir, meta, wide);
  const auto message = load_error(path);
  EXPECT_EQ(message.rfind(path + ": weights do not match the described model: ", 0), 0u) << message;
  EXPECT_TRUE(contains(message, " is 9x16 Float, expected 6x16 Float")) << message;
}

TEST(Checkpoint, ChecksumCoversEveryWeightAndBuffer) {
  torch::manual_seed(0);
  auto config = default_config("cnn", {1, 28, 28}, 10);
  config.batch_norm = true;
  BuiltinClassifier model(config);
  const auto before = weights_checksum(*model.net());
  EXPECT_EQ(weights_checksum(*model.net()), before);
  torch::NoGradGuard no_grad;
  model.net()->named_buffers()["conv1.1.running_mean"].add_(1e-3);
  EXPECT_NE(weights_checksum(*model.net()), before);
}

}  // namespace
}  // namespace privaudit::models
