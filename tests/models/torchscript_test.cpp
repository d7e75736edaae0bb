// TorchScript models written by Python load behind the Classifier interface with the logits
// Python computed, and are split only where their children form a chain.
#include "privaudit/models/torchscript.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "data/idx_bytes.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::models {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

// Runs tests/fixtures/make_torchscript_models.py once for the whole suite.
class TorchScriptInterop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string probe = std::string(kPython) + " -c 'import torch' >/dev/null 2>&1";
    if (std::system(probe.c_str()) != 0) {
      skip_reason_ =
          new std::string(std::string(kPython) + " cannot import torch (Debian's python3-torch)");
      return;
    }
    folder_ = new testing::TempDir();
    const std::string command = std::string(kPython) + " " + PRIVAUDIT_SOURCE_DIR +
                                "/tests/fixtures/make_torchscript_models.py " +
                                folder_->path().string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream in(folder_->file("logits.json"));
    expected_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() {
    delete folder_;
    delete expected_;
    delete skip_reason_;
    folder_ = nullptr;
    expected_ = nullptr;
    skip_reason_ = nullptr;
  }
  void SetUp() override { PRIVAUDIT_REQUIRE(skip_reason_ == nullptr, "python3-torch (Debian)"); }

  static std::string file(const std::string& name) { return folder_->file(name + ".pt"); }

  // The input the Python script used: arange(n).reshape(B, C, H, W) / n.
  static torch::Tensor fixed_input() {
    const auto shape = (*expected_)["input_shape"].get<std::vector<int64_t>>();
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return torch::arange(n, torch::kFloat).reshape(shape) / static_cast<double>(n);
  }

  static torch::Tensor python_logits(const std::string& name) {
    const auto rows = (*expected_)["logits"][name].get<std::vector<std::vector<float>>>();
    std::vector<torch::Tensor> parts;
    for (const auto& row : rows) parts.push_back(torch::tensor(row));
    return torch::stack(parts);
  }

  static void expect_cuts_reproduce_forward(Classifier& model) {
    torch::NoGradGuard no_grad;
    TrainingModeGuard eval(model, false);
    const auto x = fixed_input();
    const auto logits = model.forward(x);
    for (const auto& cut : model.cut_points()) {
      const auto rebuilt = model.forward_from(model.features(x, cut), cut);
      EXPECT_TRUE(torch::allclose(rebuilt, logits, 1e-5, 1e-6)) << "cut " << cut;
    }
  }

  static testing::TempDir* folder_;
  static nlohmann::json* expected_;
  static std::string* skip_reason_;
};

testing::TempDir* TorchScriptInterop::folder_ = nullptr;
nlohmann::json* TorchScriptInterop::expected_ = nullptr;
std::string* TorchScriptInterop::skip_reason_ = nullptr;

TEST_F(TorchScriptInterop, ScriptedCnnGivesPythonsLogitsAndCutsAtEveryNestedChild) {
  auto model = load_torchscript(file("sequential_cnn"), std::nullopt, std::nullopt, torch::kCPU);
  EXPECT_EQ(model->kind(), "torchscript");
  EXPECT_EQ(model->input_shape().channels, 1);
  EXPECT_EQ(model->input_shape().height, 28);
  EXPECT_EQ(model->num_classes(), 10);
  EXPECT_TRUE(model->has_batch_norm());
  torch::NoGradGuard no_grad;
  TrainingModeGuard eval(*model, false);
  const auto logits = model->forward(fixed_input());
  EXPECT_TRUE(torch::allclose(logits, python_logits("sequential_cnn"), 1e-5, 1e-5))
      << (logits - python_logits("sequential_cnn")).abs().max().item<float>();
  const std::vector<std::string> cuts = {
      "features.0.0", "features.0.1", "features.0.2", "features.1.0", "features.1.1",
      "features.1.2", "features.1.3", "classifier.0", "classifier.1", "classifier.2"};
  EXPECT_EQ(model->cut_points(), cuts);
  EXPECT_EQ(model->features(fixed_input(), "features.1.3").sizes(),
            (std::vector<int64_t>{3, 8, 7, 7}));
  expect_cuts_reproduce_forward(*model);
}

TEST_F(TorchScriptInterop, TracedMlpTakesItsShapeFromArgumentsAndGivesPythonsLogits) {
  auto model = load_torchscript(file("traced_mlp"), InputShape{1, 28, 28}, 10, torch::kCPU);
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(fixed_input());
  EXPECT_TRUE(torch::allclose(logits, python_logits("traced_mlp"), 1e-5, 1e-5));
  EXPECT_EQ(model->cut_points(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_FALSE(model->has_batch_norm());
  expect_cuts_reproduce_forward(*model);
}

TEST_F(TorchScriptInterop, SkipConnectionModelGivesPythonsLogitsButNoCutPoints) {
  auto loaded = load_model(file("skip_mlp"));
  auto& model = *loaded.model;
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(model.forward(fixed_input()), python_logits("skip_mlp"), 1e-5, 1e-5));
  EXPECT_TRUE(model.cut_points().empty());
  EXPECT_NE(loaded.meta["cut_note"].get<std::string>().find("skip connections"), std::string::npos);
  EXPECT_THROW(model.features(fixed_input(), "body.0"), Error);
}

TEST_F(TorchScriptInterop, LoadModelRecordsWhatItAssumesAboutTheInput) {
  const auto loaded = load_model(file("sequential_cnn"));
  EXPECT_EQ(loaded.meta["kind"], "torchscript");
  EXPECT_EQ(loaded.meta["assumed"],
            "the model is fed [0,1] pixels; any normalisation must be inside it");
  EXPECT_EQ(loaded.meta["cut_points"].size(), 10u);
  EXPECT_FALSE(loaded.meta.contains("cut_note"));
}

TEST_F(TorchScriptInterop, ParametersComeInAFixedOrderAndRequireGradients) {
  auto model = load_torchscript(file("sequential_cnn"), std::nullopt, std::nullopt, torch::kCPU);
  const auto params = model->parameters();
  ASSERT_EQ(params.size(), 10u);  // weight and bias of 2 convs, the batch norm and 2 linears
  for (const auto& p : params) EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(params.front().sizes(), (std::vector<int64_t>{4, 1, 3, 3}));
  EXPECT_EQ(params.back().sizes(), (std::vector<int64_t>{10}));
  const auto loss = model->forward(fixed_input()).sum();
  const auto grads = torch::autograd::grad({loss}, params);
  EXPECT_GT(grads.front().abs().sum().item<float>(), 0.0f);
}

TEST_F(TorchScriptInterop, ModelWithoutShapeAttributesAsksForTheInputShapeAndInfersTheClassCount) {
  try {
    load_torchscript(file("traced_mlp"), std::nullopt, 10, torch::kCPU);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--input-shape"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("traced_mlp.pt"), std::string::npos) << e.what();
  }
  // The class count, when neither given nor an attribute, is read off the probe's logits.
  const auto model =
      load_torchscript(file("traced_mlp"), InputShape{1, 28, 28}, std::nullopt, torch::kCPU);
  EXPECT_EQ(model->num_classes(), 10);
}

TEST_F(TorchScriptInterop, WrongShapeOrClassCountIsCaughtOnTheProbeInput) {
  try {
    load_torchscript(file("traced_mlp"), InputShape{3, 32, 32}, 10, torch::kCPU);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("forward() failed on a probe batch of shape 2x3x32x32"),
              std::string::npos)
        << e.what();
  }
  try {
    load_torchscript(file("traced_mlp"), InputShape{1, 28, 28}, 5, torch::kCPU);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 2x5 logits"), std::string::npos) << e.what();
  }
}

// The message of the Error that load_model throws for the fixture `name`, checked to be one line.
std::string broken_model_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << path << " loaded";
  return "";
}

TEST_F(TorchScriptInterop, ForwardThatRaisesIsReportedOnOneLineWithTheModelsOwnMessage) {
  EXPECT_EQ(broken_model_error(file("raises")),
            file("raises") +
                ": forward() failed on a probe batch of shape 2x1x28x28 (check --input-shape): "
                "RuntimeError: deliberately broken model");
}

TEST_F(TorchScriptInterop, ForwardReturningAThreeDimensionalTensorIsReportedWithItsShape) {
  EXPECT_EQ(broken_model_error(file("returns_3d")),
            file("returns_3d") +
                ": forward() returned a 2x5x7 tensor on a probe batch of shape 2x1x28x28, "
                "expected 2 x K logits (check --input-shape)");
}

TEST_F(TorchScriptInterop, ForwardReturningATupleIsReportedAsNotATensor) {
  EXPECT_EQ(broken_model_error(file("returns_tuple")),
            file("returns_tuple") +
                ": forward() returned a Tuple, not a tensor of logits, on a probe batch of shape "
                "2x1x28x28");
}

TEST_F(TorchScriptInterop, ForwardReturningNanIsReported) {
  EXPECT_EQ(
      broken_model_error(file("returns_nan")),
      file("returns_nan") + ": forward() returned NaN or inf on a probe batch of shape 2x1x28x28");
}

TEST_F(TorchScriptInterop, ForwardReturningIntegersIsNotLogits) {
  EXPECT_EQ(broken_model_error(file("returns_integers")),
            file("returns_integers") +
                ": forward() returned a tensor of Long, not floating-point logits, on a probe "
                "batch of shape 2x1x28x28");
}

TEST_F(TorchScriptInterop, IntegerParameterIsRefusedSinceItCannotTakeGradients) {
  EXPECT_EQ(broken_model_error(file("integer_parameter")),
            file("integer_parameter") +
                ": parameter steps is a tensor of Long; privaudit needs floating-point parameters "
                "to take gradients");
}

TEST_F(TorchScriptInterop, HugeDeclaredInputShapeIsRefusedBeforeAllocatingAProbe) {
  EXPECT_EQ(broken_model_error(file("huge_input")),
            file("huge_input") +
                ": input shape 3x100000x100000 is too large (over 16777216 values per image)");
}

// A forward() that never returns cannot be cancelled: the watchdog stops the run with one line
// naming the model and exit code 124 (util/watchdog.h), within the --model-timeout.
TEST_F(TorchScriptInterop, ModelWhoseForwardNeverReturnsStopsTheRunNamingItWithinTheTimeout) {
  const auto started = std::chrono::steady_clock::now();
  const auto result =
      testing::run_cli("info --model " + file("never_returns") + " --model-timeout 2");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(result.exit_code, 124) << result.output;
  EXPECT_EQ(result.output, "privaudit info: " + file("never_returns") +
                               ": forward() on 2 image(s) did not return within 2.0 s "
                               "(--model-timeout 2.0); stopped, exit code 124\n");
  EXPECT_LT(seconds, 30) << "LibTorch starts in a few seconds; the limit is 2";
}

// The audit records a stage stopped by its model's watchdog, or killed past its own wall-clock
// limit, as "timed out", and goes on with the next stages (those of the weights and the features:
// the gradients' stages call the model the same way).
TEST_F(TorchScriptInterop, AuditRecordsStagesOfAModelThatNeverReturnsAsTimedOutAndGoesOn) {
  testing::TempDir dir;
  std::string images = testing::idx_images_header(70, 28, 28),
              labels = testing::idx_labels_header(70);
  for (int i = 0; i < 70; ++i) {
    images += std::string(28 * 28, static_cast<char>(i * 3));
    labels += static_cast<char>(i % 10);
  }
  testing::write_bytes(dir.file("images"), images);
  testing::write_bytes(dir.file("labels"), labels);
  const std::string common = "audit --model " + file("never_returns") +
                             " --profile smoke --surfaces weights,features --data idx:" +
                             dir.file("images") + "," + dir.file("labels");
  for (const auto& [limit, out, message] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--model-timeout 1", dir.file("watchdog"), "did not return within 1.0 s"},
           {"--stage-timeout 3", dir.file("killed"),
            "no result within 3 s, the stage's time limit (--stage-timeout); killed"}}) {
    const auto result = testing::run_cli(common + " " + limit + " --out " + out);
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_TRUE(testing::contains(result.output, "privaudit audit: 3 stage(s) failed or timed out"))
        << result.output;
    std::ifstream in(out + "/audit_state.json");
    const auto state = nlohmann::json::parse(in);
    for (const auto* stage :
         {"model/invert", "model/layers", "model/membership"}) {
      const auto& record = state["stages"][stage];
      EXPECT_EQ(record.value("status", ""), "timed out") << stage << " " << record.dump();
      EXPECT_TRUE(testing::contains(record.value("message", ""), message))
          << stage << " " << record.dump();
    }
    // The killed stage's folder holds its marker, no temporary and no stale lock file.
    for (const auto& entry : std::filesystem::directory_iterator(out + "/model/invert"))
      EXPECT_EQ(entry.path().filename(), "privaudit.json") << limit;
    std::ifstream results_in(out + "/results.json");
    const auto results = nlohmann::json::parse(results_in);
    EXPECT_TRUE(testing::contains(results.dump(), "\"status\":\"timed out\"")) << limit;
  }
}

TEST_F(TorchScriptInterop, ArchiveWhoseTorchScriptSourceDoesNotCompileIsNotAModel) {
  const auto message = broken_model_error(file("bad_code"));
  EXPECT_EQ(message.rfind(file("bad_code") + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("expected ) but found 'ident' here"), std::string::npos) << message;
}

// Found by fuzz/model_fuzz: LibTorch 1.13 grows its memo table to any index a pickle names, so
// four bytes of a 3 kB file asked for 28 GB.
TEST_F(TorchScriptInterop, PickleWithAHugeMemoIndexIsRefusedBeforeLibTorchReadsIt) {
  const auto message = broken_model_error(file("huge_memo"));
  EXPECT_EQ(message.rfind(file("huge_memo") +
                              ": damaged model file: data.pkl has memo index 1768843617 at byte "
                              "2, beyond its ",
                          0),
            0u)
      << message;
}

TEST_F(TorchScriptInterop, PickleStringLongerThanThePickleIsRefusedBeforeLibTorchReadsIt) {
  const auto message = broken_model_error(file("long_string"));
  EXPECT_EQ(message.rfind(file("long_string") +
                              ": damaged model file: data.pkl declares 2147483647 bytes at byte 2 "
                              "but has ",
                          0),
            0u)
      << message;
}

// LibTorch 1.13 pops across the MARK and frees an invalid pointer.
TEST_F(TorchScriptInterop, PickleTakingMoreFromTheStackThanItPushedIsRefused) {
  EXPECT_EQ(broken_model_error(file("stack_underflow")),
            file("stack_underflow") +
                ": damaged model file: data.pkl takes more from the stack than it holds at byte 4");
}

TEST_F(TorchScriptInterop, InfoCommandListsCutPointsOrSaysWhyThereAreNone) {
  const auto cnn = testing::run_cli("info --model " + file("sequential_cnn"));
  ASSERT_EQ(cnn.exit_code, 0) << cnn.output;
  EXPECT_NE(cnn.output.find("cut points:   features.0.0, features.0.1,"), std::string::npos)
      << cnn.output;
  EXPECT_NE(cnn.output.find("assumed:      the model is fed [0,1] pixels"), std::string::npos)
      << cnn.output;
  const auto skip = testing::run_cli("info --model " + file("skip_mlp"));
  ASSERT_EQ(skip.exit_code, 0) << skip.output;
  EXPECT_NE(skip.output.find(
                "cut points:   none (only the whole model can be attacked; running the children"),
            std::string::npos)
      << skip.output;
}

TEST_F(TorchScriptInterop, InfoCommandTakesTheShapeFlagsAModelCannotSay) {
  const auto without = testing::run_cli("info --model " + file("traced_mlp"));
  EXPECT_EQ(without.exit_code, 1) << without.output;
  EXPECT_NE(without.output.find("pass --input-shape C,H,W"), std::string::npos) << without.output;
  const auto with = testing::run_cli("info --model " + file("traced_mlp") +
                                     " --input-shape 1,28,28 --classes 10");
  ASSERT_EQ(with.exit_code, 0) << with.output;
  EXPECT_NE(with.output.find("cut points:   0, 1, 2"), std::string::npos) << with.output;
}

TEST(TorchScript, FileThatIsNotAModelIsRejectedNamingTheFile) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("notes.txt"), "these are not weights\n");
  try {
    load_torchscript(dir.file("notes.txt"), InputShape{1, 28, 28}, 10, torch::kCPU);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("notes.txt: not a TorchScript module"), std::string::npos)
        << e.what();
  }
}

// The walk on bare bytes (what fuzz/pickle_fuzz.cpp feeds it): a pickle that builds a dict and
// stops passes; one that stops short, pops what it never pushed, or claims bytes it lacks does not.
TEST(PickleWalk, PassesAWellFormedPickleAndNamesWhatIsWrongWithBrokenOnes) {
  const uint8_t dict[] = {0x80, 0x02, '}', '.'};  // PROTO 2, EMPTY_DICT, STOP
  EXPECT_EQ(pickle_problem(dict, sizeof dict), "");
  EXPECT_EQ(pickle_problem(dict, 3), "ends without a STOP opcode");
  EXPECT_EQ(pickle_problem(dict, 0), "ends without a STOP opcode");
  const uint8_t underflow[] = {0x80, 0x02, 0x85, '.'};  // TUPLE1 on an empty stack
  EXPECT_EQ(pickle_problem(underflow, sizeof underflow),
            "takes more from the stack than it holds at byte 2");
  const uint8_t long_text[] = {0x80, 0x02, 'X', 0xff, 0xff, 0, 0, 'a', '.'};  // 65,535 bytes?
  EXPECT_EQ(pickle_problem(long_text, sizeof long_text),
            "declares 65535 bytes at byte 2 but has 2 left");
}

}  // namespace
}  // namespace privaudit::models
