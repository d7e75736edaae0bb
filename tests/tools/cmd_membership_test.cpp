// privaudit membership end to end on tiny MLPs: the results file and its figures, the ROC plot,
// the cache a resumed run reuses, and one-line errors for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "fixtures/trained_models.h"
#include "privaudit/attacks/weights/membership.h"
#include "privaudit/data/spec.h"
#include "privaudit/train/reference_models.h"

namespace privaudit {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::run_cli;
using testing::TempDir;

const char* kSmallRun =
    "membership --arch mlp --widths 32 --models 3 --train-size 60 --test-size 40 --epochs 2 "
    "--batch-size 16 --exposed 4 --threads 1 --quiet";

nlohmann::json results_of(const std::string& dir) {
  std::ifstream in(dir + "/results.json");
  return nlohmann::json::parse(in);
}

// The one cached model file under `cache` (any key folder) named `name`.
std::string cached_file(const std::string& cache, const std::string& name) {
  for (const auto& entry : fs::recursive_directory_iterator(cache)) {
    if (entry.path().filename() == name) return entry.path().string();
  }
  return "";
}

class MembershipCommand : public testing::RequiresFashionMnist {};

TEST_F(MembershipCommand, WritesEveryAttacksFiguresThePlotAndResumesFromTheCache) {
  TempDir out;
  const auto dir = out.file("run");
  const auto result = run_cli(std::string(kSmallRun) + " --out " + dir);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto results = results_of(dir);
  EXPECT_EQ(results["command"], "membership");
  EXPECT_EQ(results["pool_size"], 60);
  EXPECT_EQ(results["population_size"], 40);
  EXPECT_EQ(results["decisions"], 180);
  EXPECT_EQ(results["reference_models"]["trained"], 3);
  EXPECT_GT(results["reference_models"]["images_per_second"].get<double>(), 0);
  ASSERT_EQ(results["attacks"].size(), 6u);
  for (const auto& attack : results["attacks"]) {
    for (const char* field :
         {"auc", "auc_low", "auc_high", "tpr_at_0_1_percent_fpr", "tpr_at_0_1_percent_fpr_low",
          "tpr_at_1_percent_fpr", "tpr_at_1_percent_fpr_high", "epsilon_lower_bound"}) {
      EXPECT_TRUE(attack.contains(field)) << attack["attack"] << " " << field;
      EXPECT_TRUE(attack["null"].contains(field)) << attack["attack"] << " null " << field;
    }
    EXPECT_GE(attack["epsilon_lower_bound"].get<double>(), 0);
    EXPECT_EQ(attack["epsilon"]["delta"], 1e-5);
  }
  EXPECT_EQ(results["most_exposed"].size(), 4u);
  std::ifstream svg(dir + "/roc.svg");
  const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(contains(text, "<svg")) << text.substr(0, 200);
  EXPECT_TRUE(contains(text, "rmia_offline"));
  EXPECT_TRUE(fs::exists(dir + "/most_exposed.png"));
  ASSERT_FALSE(cached_file(dir + "/references", "reference_2.pt").empty());

  // A resumed run trains nothing and gives the same figures.
  const auto again = run_cli(std::string(kSmallRun) + " --resume --out " + dir);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto resumed = results_of(dir);
  EXPECT_EQ(resumed["reference_models"]["reused"], 3);
  EXPECT_EQ(resumed["reference_models"]["trained"], 0);
  EXPECT_EQ(resumed["attacks"], results["attacks"]);

  // As if killed after two of the three models: the third is trained again, the figures the same.
  fs::remove(cached_file(dir + "/references", "reference_1.pt"));
  const auto continued = run_cli(std::string(kSmallRun) + " --resume --out " + dir);
  ASSERT_EQ(continued.exit_code, 0) << continued.output;
  const auto after = results_of(dir);
  EXPECT_EQ(after["reference_models"]["reused"], 2);
  EXPECT_EQ(after["reference_models"]["trained"], 1);
  EXPECT_EQ(after["attacks"], results["attacks"]);
}

// Two processes share the training of the models (each into the cache) and write the figures one
// process writes.
// --dp-epsilon trains every reference model with DP-SGD: results.json records what each spent
// (the accountant's epsilon, at most the target), the lower bound is taken at the DP delta, and
// no attack proves more than the guarantee; the DP models are cached under a key of their own.
TEST_F(MembershipCommand, DpReferencesRecordTheirEpsilonAndNoAttackProvesMore) {
  TempDir out;
  const auto dir = out.file("dp");
  const auto result =
      run_cli(std::string(kSmallRun) + " --dp-epsilon 2 --dp-delta 1e-3 --out " + dir);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto results = results_of(dir);
  const auto& privacy = results["reference_models"]["privacy"];
  ASSERT_TRUE(privacy.is_object()) << results["reference_models"].dump();
  const double epsilon = privacy["epsilon"].get<double>();
  EXPECT_LE(epsilon, 2.0);
  EXPECT_GT(epsilon, 1.0);
  EXPECT_EQ(privacy["delta"], 1e-3);
  for (const auto& attack : results["attacks"]) {
    EXPECT_EQ(attack["epsilon"]["delta"], 1e-3) << attack["attack"];
    EXPECT_LE(attack["epsilon_lower_bound"].get<double>(), epsilon) << attack["attack"];
  }
  const auto plain = out.file("plain");
  ASSERT_EQ(
      run_cli(std::string(kSmallRun) + " --cache " + dir + "/references --out " + plain).exit_code,
      0);
  EXPECT_EQ(results_of(plain)["reference_models"]["trained"], 3);  // not the DP models
  EXPECT_FALSE(results_of(plain)["reference_models"].contains("privacy"));
  // The DP recipe of docs/dp.md (GroupNorm, tanh): models of their own, under their own key.
  const auto tanh = out.file("tanh");
  const auto shaped =
      run_cli(std::string(kSmallRun) + " --group-norm --activation tanh " +
              "--dp-epsilon 2 --dp-delta 1e-3 --cache " + dir + "/references --out " + tanh);
  ASSERT_EQ(shaped.exit_code, 0) << shaped.output;
  EXPECT_EQ(results_of(tanh)["reference_models"]["trained"], 3);
  // reference_models.cache: the key's folder, its settings beside the models.
  std::ifstream key(results_of(tanh)["reference_models"]["cache"].get<std::string>() +
                    "/reference.json");
  ASSERT_TRUE(key) << results_of(tanh)["reference_models"].dump();
  const auto model = nlohmann::json::parse(key)["model"];
  EXPECT_EQ(model.value("activation", ""), "tanh");
  EXPECT_EQ(model.value("group_norm", false), true);
}

TEST_F(MembershipCommand, TwoProcessesShareTheReferenceModelsAndGiveTheSameFigures) {
  TempDir out;
  const auto one = run_cli(std::string(kSmallRun) + " --out " + out.file("one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = run_cli(std::string(kSmallRun) + " --processes 2 --out " + out.file("two"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto a = results_of(out.file("one")), b = results_of(out.file("two"));
  EXPECT_EQ(b["processes"], 2);
  EXPECT_EQ(b["reference_models"]["trained"], 3);
  EXPECT_EQ(b["reference_models"]["reused"], 0);
  EXPECT_EQ(b["attacks"], a["attacks"]);
}

TEST_F(MembershipCommand, BadInputGetsAOneLineErrorNamingIt) {
  TempDir out;
  const std::string base = "membership --arch mlp --widths 8 --epochs 1 --threads 1 --quiet ";
  const auto one_model = run_cli(base + "--models 1 --train-size 40 --out " + out.file("a"));
  EXPECT_EQ(one_model.exit_code, 2) << one_model.output;
  EXPECT_TRUE(contains(one_model.output, "--models 1")) << one_model.output;
  EXPECT_FALSE(fs::exists(out.file("a") + "/results.json"));

  const auto small_pool = run_cli(base + "--models 2 --train-size 10 --out " + out.file("b"));
  EXPECT_EQ(small_pool.exit_code, 2) << small_pool.output;
  EXPECT_TRUE(contains(small_pool.output, "pool holds 10 images")) << small_pool.output;
  EXPECT_FALSE(fs::exists(out.file("b") + "/results.json"));

  const auto attack = run_cli(base + "--models 2 --attacks lira --out " + out.file("c"));
  EXPECT_EQ(attack.exit_code, 2) << attack.output;
  EXPECT_TRUE(contains(attack.output, "--attacks lira")) << attack.output;

  const auto arch = run_cli(base + "--arch resnet --out " + out.file("d"));
  EXPECT_EQ(arch.exit_code, 2) << arch.output;

  const auto activation = run_cli(base + "--models 2 --activation swish --out " + out.file("e"));
  EXPECT_EQ(activation.exit_code, 2) << activation.output;
  EXPECT_TRUE(contains(activation.output, "swish")) << activation.output;
}

// --reconstructions: each most exposed image beside the reconstruction nearest to it. The pool's
// own images as "reconstructions" are found exactly (SSIM 1); noise is not near any of them.
TEST_F(MembershipCommand, ShowsTheMostExposedImagesBesideTheirNearestReconstruction) {
  TempDir out;
  const auto pool = data::load_splits("fashion-mnist", {60, 40, 0}).train;
  const auto exact = out.file("exact.pt"), noise = out.file("noise.pt");
  torch::save(std::vector<torch::Tensor>{pool.images, pool.labels}, exact);
  torch::manual_seed(3);
  torch::save(std::vector<torch::Tensor>{torch::rand({20, 1, 28, 28}), pool.labels.slice(0, 0, 20)},
              noise);
  const auto with = [&](const std::string& file, const std::string& dir) {
    return run_cli(std::string(kSmallRun) + " --seed 0 --reconstructions " + file + " --cache " +
                   out.file("cache") + " --out " + out.file(dir));
  };
  const auto found = with(exact, "exact");
  ASSERT_EQ(found.exit_code, 0) << found.output;
  const auto exposed = results_of(out.file("exact"))["most_exposed"];
  ASSERT_EQ(exposed.size(), 4u);
  for (const auto& e : exposed) {
    EXPECT_EQ(e["nearest_reconstruction"], e["pool_index"]) << e;
    EXPECT_NEAR(e["nearest_reconstruction_ssim"].get<double>(), 1.0, 1e-4) << e;
  }
  EXPECT_TRUE(fs::exists(out.file("exact") + "/exposed_vs_reconstructed.png"));
  EXPECT_EQ(results_of(out.file("exact"))["reconstructions"], exact);

  const auto unrelated = with(noise, "noise");
  ASSERT_EQ(unrelated.exit_code, 0) << unrelated.output;
  // The results outlive the loop (a range over a member of a temporary reads freed memory: found
  // by scripts/sanitize.sh).
  const auto noise_results = results_of(out.file("noise"));
  for (const auto& e : noise_results["most_exposed"])
    EXPECT_LT(e["nearest_reconstruction_ssim"].get<double>(), 0.3) << e;

  // A file that is not there (an invert stage that failed): the view is left out, with a warning.
  const auto absent = with(out.file("none.pt"), "absent");
  ASSERT_EQ(absent.exit_code, 0) << absent.output;
  EXPECT_TRUE(contains(absent.output, "none.pt does not exist")) << absent.output;
  EXPECT_FALSE(
      results_of(out.file("absent"))["most_exposed"][0].contains("nearest_reconstruction"));
  EXPECT_FALSE(fs::exists(out.file("absent") + "/exposed_vs_reconstructed.png"));

  // One that is not a reconstructions file, or of another shape: a one-line error naming it.
  const auto text = out.file("text.pt");
  std::ofstream(text) << "not tensors";
  const auto bad = with(text, "bad");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, "text.pt: not a reconstructions file")) << bad.output;
  EXPECT_FALSE(fs::exists(out.file("bad") + "/results.json"));
  const auto small = out.file("small.pt");
  torch::save(std::vector<torch::Tensor>{torch::rand({4, 1, 14, 14}), torch::zeros({4})}, small);
  const auto shape = with(small, "shape");
  EXPECT_NE(shape.exit_code, 0);
  EXPECT_TRUE(contains(shape.output,
                       "small.pt: the reconstructions are not images of the pool's "
                       "shape (1x28x28)"))
      << shape.output;
}

TEST_F(MembershipCommand, AnUnreadableCachedModelIsNamed) {
  TempDir out;
  const std::string run =
      "membership --arch mlp --widths 8 --models 2 --train-size 40 "
      "--test-size 20 --epochs 1 --threads 1 --quiet --cache " +
      out.file("cache");
  ASSERT_EQ(run_cli(run + " --out " + out.file("first")).exit_code, 0);
  const auto file = cached_file(out.file("cache"), "reference_1.pt");
  ASSERT_FALSE(file.empty());
  testing::write_bytes(file, "garbage");
  const auto second = run_cli(run + " --out " + out.file("second"));
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_TRUE(contains(second.output, file)) << second.output;
  EXPECT_FALSE(fs::exists(out.file("second") + "/results.json"));
}

// Models trained elsewhere: here the cached models of a first run, listed in membership.json with
// the halves they trained on, give exactly that run's figures.
TEST_F(MembershipCommand, UserTrainedReferencesGiveTheFiguresOfTheSameModels) {
  TempDir out;
  const auto dir = out.file("trained");
  ASSERT_EQ(run_cli(std::string(kSmallRun) + " --out " + dir).exit_code, 0);
  const auto folder = fs::path(cached_file(dir + "/references", "reference_0.pt")).parent_path();
  nlohmann::json list = {{"models", nlohmann::json::array()}};
  for (int k = 0; k < 3; ++k) {
    const auto half = train::reference_half(60, 0, k);
    std::vector<int64_t> members;
    for (int64_t i = 0; i < 60; ++i)
      if (half[i].item<bool>()) members.push_back(i);
    list["models"].push_back(
        {{"file", "reference_" + std::to_string(k) + ".pt"}, {"members", members}});
  }
  std::ofstream(folder / "membership.json") << list.dump();
  const std::string given =
      "membership --references " + folder.string() +
      " --train-size 60 --test-size 40 --exposed 4 --threads 1 --quiet --out ";
  const auto result = run_cli(given + out.file("given"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto a = results_of(dir), b = results_of(out.file("given"));
  EXPECT_EQ(b["attacks"], a["attacks"]);
  EXPECT_EQ(b["reference_models"]["files"].size(), 3u);

  // A model of another architecture among them is refused by name.
  const auto cnn = testing::trained_model_dir("cnn") + "/model.pt";
  fs::copy_file(cnn, folder / "reference_2.pt", fs::copy_options::overwrite_existing);
  const auto mixed = run_cli(given + out.file("mixed"));
  EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
  EXPECT_TRUE(contains(mixed.output, "reference_2.pt")) << mixed.output;
  EXPECT_TRUE(contains(mixed.output, "another architecture")) << mixed.output;
  // So is a file that cannot be read.
  testing::write_bytes((folder / "reference_1.pt").string(), "garbage");
  const auto broken = run_cli(given + out.file("broken"));
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_TRUE(contains(broken.output, "reference_1.pt")) << broken.output;
  EXPECT_FALSE(fs::exists(out.file("broken") + "/results.json"));
}

// --model FILE: re-initialised copies of a TorchScript CNN (made by the interop fixture script)
// are trained as the models, cached as TorchScript files, and reused by a resumed run.
TEST_F(MembershipCommand, TrainsReinitialisedCopiesOfATorchScriptModel) {
  const std::string python = "/usr/bin/python3";
  PRIVAUDIT_REQUIRE(std::system((python + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0,
                    "python3-torch (Debian)");
  TempDir fixtures;
  ASSERT_EQ(std::system((python + " " + PRIVAUDIT_SOURCE_DIR +
                         "/tests/fixtures/make_torchscript_models.py " + fixtures.path().string() +
                         " >/dev/null")
                            .c_str()),
            0);
  TempDir out;
  const auto dir = out.file("copies");
  const std::string run = "membership --model " + fixtures.file("sequential_cnn.pt") +
                          " --models 3 --train-size 60 --test-size 40 --epochs 2 --batch-size 16 "
                          "--exposed 4 --threads 1 --quiet --out " +
                          dir;
  const auto first = run_cli(run);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto results = results_of(dir);
  EXPECT_EQ(results["reference_models"]["trained"], 3);
  EXPECT_EQ(results["attacks"].size(), 6u);
  EXPECT_TRUE(contains(results["reference_models"]["summary"].get<std::string>(), "torchscript"));
  ASSERT_FALSE(cached_file(dir + "/references", "reference_2.pt").empty());
  const auto again = run_cli(run + " --resume");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto resumed = results_of(dir);
  EXPECT_EQ(resumed["reference_models"]["reused"], 3);
  EXPECT_EQ(resumed["attacks"], results["attacks"]);

  const auto both = run_cli("membership --arch mlp --model " + fixtures.file("sequential_cnn.pt") +
                            " --out " + out.file("both"));
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_TRUE(contains(both.output, "give one of --arch")) << both.output;
}

}  // namespace
}  // namespace privaudit
