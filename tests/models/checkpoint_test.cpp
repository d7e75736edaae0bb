// Checkpoints: what is saved loads back bit for bit, and every kind of bad file is refused with a
// message that names it.
#include "privaudit/models/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <tuple>

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
  // Each width within its bound, 2^32 weights between the two layers.
  meta["model"]["widths"] = nlohmann::json::array({kMaxWidth, kMaxWidth});
  const auto path = write_archive(dir, meta, model);
  EXPECT_EQ(load_error(path),
            path +
                ": checkpoint describes a model of more than 268435456 parameters (file "
                "corrupted)");
}

// Every size a description states has an upper bound (model_config.h), refused on one line that
// names the file and the field, before anything is built.
TEST(Checkpoint, EverySizeOfTheDescriptionHasABoundNamedInTheError) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  const auto vit = default_config("vit", {1, 28, 28}, 3).to_json();
  const std::vector<std::tuple<std::string, nlohmann::json, std::string>> cases = {
      {"widths", nlohmann::json::array({int64_t{1} << 40}),
       "widths[0] is 1099511627776, outside 1..65536"},
      {"widths", nlohmann::json(std::vector<int64_t>(33, 4)), "widths has 33 layers, more than 32"},
      {"classes", int64_t{1} << 31, "classes is 2147483648, outside 2..100000"},
      {"input_shape", {1, 100000, 4}, "input_shape height is 100000, outside 1..4096"},
      {"input_shape", {1000, 4, 4}, "input_shape channels is 1000, outside 1..64"},
      {"kernel", 99, "kernel is 99, outside 1..31"},
      {"fc_width", -1, "fc_width is -1, outside 0..65536"},
      {"dim", -4, "dim is -4, outside 1..8192"},
      {"depth", 1000, "depth is 1000, outside 1..64"},
      {"heads", 1024, "heads is 1024, outside 1..256"},
      {"mlp_ratio", 0, "mlp_ratio is 0, outside 1..32"},
      {"patch", 4096, "patch is 4096, outside 1..1024"},
      {"dropout", 1.5, "dropout must be in [0,1)"},
  };
  for (const auto& [field, value, expected] : cases) {
    auto meta = description_of(model);
    meta["model"][field] = value;
    const auto path = write_archive(dir, meta, model);
    EXPECT_EQ(load_error(path), path + ": model: " + expected) << field;
  }
  auto meta = description_of(model);
  meta["model"] = vit;
  meta["model"]["patch"] = 1;
  meta["model"]["input_shape"] = {1, 128, 128};
  meta["model"]["normalization"] = {{"mean", {0.0}}, {"std", {1.0}}};
  const auto path = write_archive(dir, meta, model);
  EXPECT_EQ(load_error(path), path + ": model: ViT patch count is 16384, outside 1..4096");
}

// A description with a field missing or of the wrong type is named on one line, never with the
// JSON library's own message ("[json.exception.type_error.302] ...").
TEST(Checkpoint, MissingOrMistypedFieldIsNamedWithoutAJsonLibraryMessage) {
  testing::TempDir dir;
  auto model = tiny_mlp();
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
      {[](nlohmann::json& m) { m.erase("kernel"); }, "'kernel' is missing"},
      {[](nlohmann::json& m) { m["widths"] = "wide"; },
       "'widths' is a string, expected a list of integers"},
      {[](nlohmann::json& m) {
         m["widths"] = {6, 2.5};
       },
       "'widths[1]' is a number, expected an integer"},
      {[](nlohmann::json& m) { m["classes"] = nullptr; }, "'classes' is null, expected an integer"},
      {[](nlohmann::json& m) {
         m["normalization"] = {{"mean", {0.0}}};
       },
       "'normalization.std' is missing"},
      {[](nlohmann::json& m) { m["batch_norm"] = "yes"; },
       "'batch_norm' is a string, expected true or false"},
      {[](nlohmann::json& m) { m["arch"] = "resnet"; },
       "'arch' is 'resnet', not an architecture (mlp, cnn, vit, lenet)"},
      {[](nlohmann::json& m) { m = nlohmann::json::array(); }, "is not an object"},
  };
  for (const auto& [spoil, expected] : cases) {
    auto meta = description_of(model);
    spoil(meta["model"]);
    const auto path = write_archive(dir, meta, model);
    const auto message = load_error(path);
    EXPECT_EQ(message.rfind(path + ": model description", 0), 0u) << message;
    EXPECT_TRUE(contains(message, expected)) << message;
    EXPECT_FALSE(contains(message, "json.exception")) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
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

// Copies the archive at `path` onto itself with the record `shortened` cut to half its length, a
// valid zip archive whose weights record is shorter than its pickle declares.
void shorten_record(const std::string& path, const std::string& shortened) {
  std::vector<std::pair<std::string, std::string>> records;
  {
    caffe2::serialize::PyTorchStreamReader reader(path);
    for (const auto& name : reader.getAllRecords()) {
      auto [data, size] = reader.getRecord(name);
      if (name == shortened) size /= 2;
      records.emplace_back(name, std::string(static_cast<const char*>(data.get()), size));
    }
  }
  caffe2::serialize::PyTorchStreamWriter writer(path);
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

// LibTorch sizes a storage by the element count its pickle states and reads past a shorter
// record: the records are checked against the declared sizes before LibTorch reads the file.
TEST(Checkpoint, WeightsRecordShorterThanItsDeclaredSizeIsRefusedBeforeLibTorchReadsIt) {
  testing::TempDir dir;
  const auto path = saved_cnn(dir);
  std::string largest;
  size_t largest_size = 0;
  {
    caffe2::serialize::PyTorchStreamReader reader(path);
    for (const auto& name : reader.getAllRecords()) {
      if (name.rfind("data/", 0) != 0) continue;
      const auto size = std::get<1>(reader.getRecord(name));
      if (size > largest_size) {
        largest = name;
        largest_size = size;
      }
    }
  }
  ASSERT_FALSE(largest.empty());
  shorten_record(path, largest);
  const auto key = largest.substr(5);
  EXPECT_EQ(load_error(path), path + ": damaged model file: data.pkl declares storage " + key +
                                  " of " + std::to_string(largest_size / 4) + " Float values (" +
                                  std::to_string(largest_size) + " bytes) but " + largest +
                                  " holds " + std::to_string(largest_size / 2) +
                                  " bytes (truncated)");
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
