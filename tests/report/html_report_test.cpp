#include "privaudit/report/html_report.h"

#include <gtest/gtest.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "privaudit/report/image_grid.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit::report {
namespace {
namespace fs = std::filesystem;

nlohmann::json fake_audit() {
  nlohmann::json mlp = {
      {"name", "mlp"},
      {"train", {{"status", "done"}, {"dir", "mlp/train"}, {"results", {{"test_accuracy", 0.88}}}}},
      {"invert",
       {{"status", "done"},
        {"dir", "mlp/invert"},
        {"results", {{"summary", {{"nearest_train_ssim", 0.41}, {"training_likeness", 0.7}}}}}}},
      {"gradients", {{"status", "failed"}, {"message", "out of memory"}}}};
  nlohmann::json cnn = {{"name", "cnn <b>&"}};
  cnn["invert"] = {{"status", "done"}, {"dir", "cnn/invert"}};
  cnn["invert"]["results"]["summary"] = {{"nearest_train_ssim", 0.29}, {"training_likeness", 0.55}};
  cnn["layers"] = {{"status", "done"}, {"dir", "cnn/layers"}};
  cnn["layers"]["results"]["layers"] = nlohmann::json::array(
      {{{"name", "conv1"}, {"decoder_psnr", 24.0}}, {{"name", "fc1"}, {"decoder_psnr", 15.0}}});
  nlohmann::json audit = {{"version", "0"}, {"seed", 0}, {"settings", {{"data", "fashion-mnist"}}}};
  audit["architectures"] = nlohmann::json::array({mlp, cnn});
  audit["ranking"] = rank_architectures(audit["architectures"]);
  return audit;
}

TEST(HtmlReport, RanksByNearestTrainSsimMostReconstructableFirst) {
  const auto audit = fake_audit();
  ASSERT_EQ(audit["ranking"]["figure"], "nearest_train_ssim");
  ASSERT_EQ(audit["ranking"]["order"].size(), 2u);
  EXPECT_EQ(audit["ranking"]["order"][0]["arch"], "mlp");
  EXPECT_DOUBLE_EQ(audit["ranking"]["order"][1]["value"].get<double>(), 0.29);
}

// Per-target leak figures of two architectures, on each surface.
nlohmann::json surface_archs(double likeness_a, double likeness_b, double psnr_a, double psnr_b) {
  nlohmann::json archs = nlohmann::json::array();
  const std::pair<std::string, std::pair<double, double>> specs[] = {{"a", {likeness_a, psnr_a}},
                                                                     {"b", {likeness_b, psnr_b}}};
  for (const auto& [name, figures] : specs) {
    nlohmann::json reconstructions = nlohmann::json::array(), targets = nlohmann::json::array();
    for (int i = 0; i < 40; ++i) {
      // A share `likeness` of the reconstructions nearer to training images.
      reconstructions.push_back({{"nearer_to_train", i < figures.first * 40 ? 1.0 : 0.0}});
      targets.push_back({{"psnr", figures.second + (i % 5) - 2.0}, {"attack", "x"}});
    }
    nlohmann::json arch = {{"name", name}};
    arch["invert"]["results"]["reconstructions"] = reconstructions;
    nlohmann::json strongest = {{"batch_size", 1},
                                {"psnr", figures.second},
                                {"exact", figures.second >= 60 ? 40 : 0},
                                {"targets_scored", 40}};
    strongest["targets"] = targets;
    arch["gradients"]["results"]["strongest"] = nlohmann::json::array({strongest});
    // Features: the better of two cuts counts.
    std::vector<double> good(40, figures.second), poor(40, 5.0);
    arch["layers"]["results"]["layers"] = nlohmann::json::array(
        {{{"name", "c1"}, {"decoder_psnr", 5.0}, {"decoder_psnr_per_image", poor}},
         {{"name", "c2"}, {"decoder_psnr", figures.second}, {"decoder_psnr_per_image", good}}});
    archs.push_back(arch);
  }
  return archs;
}

TEST(HtmlReport, RanksEachSurfaceOnlyWhereTheIntervalOfTheDifferenceExcludesZero) {
  // Weights: 0.55 vs 0.50 of 40 images each is noise; gradients: 60 vs 12 dB is not.
  const auto ranking = rank_architectures(surface_archs(0.55, 0.5, 12.0, 60.0));
  const auto& weights = ranking["surfaces"]["weights"];
  ASSERT_EQ(weights["order"].size(), 2u);
  EXPECT_EQ(weights["order"][0]["arch"], "a");
  EXPECT_LT(weights["order"][0]["low"].get<double>(), 0.55);
  EXPECT_GT(weights["order"][0]["high"].get<double>(), 0.55);
  EXPECT_EQ(weights["steps"][0]["decision"], "indistinguishable");
  EXPECT_GT(weights["steps"][0]["more_targets"].get<int64_t>(), 0);
  const auto& gradients = ranking["surfaces"]["gradients"];
  EXPECT_EQ(gradients["order"][0]["arch"], "b");
  EXPECT_EQ(gradients["steps"][0]["decision"], "ranked");
  const auto& features = ranking["surfaces"]["features"];
  ASSERT_EQ(features["order"].size(), 2u);
  EXPECT_EQ(features["order"][0]["arch"], "b");
  EXPECT_DOUBLE_EQ(features["order"][0]["value"].get<double>(), 60.0);
  EXPECT_EQ(features["steps"][0]["decision"], "ranked");

  testing::TempDir dir;
  nlohmann::json audit = {{"version", "0"}, {"seed", 0}, {"settings", {{"data", "x"}}}};
  audit["architectures"] = surface_archs(0.55, 0.5, 12.0, 60.0);
  audit["ranking"] = rank_architectures(audit["architectures"]);
  write_html_report(dir.path().string(), audit);
  const std::string html = read_file(dir.path() / "index.html");
  EXPECT_NE(html.find("no architecture leaks measurably more"), std::string::npos);
  EXPECT_NE(html.find("a 0.55 ["), std::string::npos);
  EXPECT_NE(html.find("&asymp;"), std::string::npos);
  EXPECT_NE(html.find("b 60.0 ["), std::string::npos);
  EXPECT_NE(html.find("From intermediate features"), std::string::npos);
  // One plain finding and one recommendation per surface, following from the figures.
  ASSERT_EQ(audit["ranking"]["recommendations"].size(), 3u);
  EXPECT_NE(html.find("rebuilt exactly from the gradient of b (40/40)"), std::string::npos);
  EXPECT_NE(html.find("Do not share per-example gradients"), std::string::npos);
  EXPECT_NE(html.find("does not prove the weights safe"), std::string::npos);
  EXPECT_NE(html.find("cut &#39;c2&#39; at 60.0 dB"), std::string::npos);
  EXPECT_EQ(html.find("Most reconstructable"), std::string::npos);

  // A clear weights leak names the architecture.
  audit["architectures"] = surface_archs(0.95, 0.5, 12.0, 60.0);
  audit["ranking"] = rank_architectures(audit["architectures"]);
  write_html_report(dir.path().string(), audit);
  const std::string leaky = read_file(dir.path() / "index.html");
  EXPECT_NE(leaky.find("Most reconstructable from its weights: a"), std::string::npos);
  EXPECT_NE(leaky.find("Treat these weights as training data"), std::string::npos);
}

TEST(HtmlReport, FallsBackToGradientPsnrWithoutInversion) {
  nlohmann::json archs = nlohmann::json::array(
      {{{"name", "a"},
        {"gradients", {{"results", {{"runs", {{{"batch_size", 1}, {"psnr", 20.0}}}}}}}}},
       {{"name", "b"},
        {"gradients",
         {{"results",
           {{"runs",
             {{{"batch_size", 1}, {"psnr", 35.0}}, {{"batch_size", 8}, {"psnr", 50.0}}}}}}}}}});
  const auto ranking = rank_architectures(archs);
  EXPECT_EQ(ranking["figure"], "gradient_psnr_batch1");
  EXPECT_EQ(ranking["order"][0]["arch"], "b");
  EXPECT_DOUBLE_EQ(ranking["order"][0]["value"].get<double>(), 35.0);
}

// `n` reconstructions of which a share `likeness` is nearer to a training image.
nlohmann::json likeness_results(double likeness, int n = 40) {
  nlohmann::json reconstructions = nlohmann::json::array();
  for (int i = 0; i < n; ++i)
    reconstructions.push_back({{"nearer_to_train", i < likeness * n ? 1.0 : 0.0},
                               {"nearest_train_ssim", 0.3},
                               {"nearest_test_ssim", 0.3}});
  return {{"reconstructions", reconstructions}};
}

// Strongest-attack entries with per-target PSNR around `at1` (batch 1) and `at8` (batch 8).
nlohmann::json strongest_results(double at1, double at8) {
  nlohmann::json strongest = nlohmann::json::array();
  for (const auto& [batch, psnr] : {std::pair<int, double>{1, at1}, {8, at8}}) {
    nlohmann::json targets = nlohmann::json::array();
    for (int i = 0; i < 16; ++i) targets.push_back({{"psnr", psnr + (i % 4) - 1.5}});
    strongest.push_back({{"batch_size", batch}, {"psnr", psnr}, {"targets", targets}});
  }
  return {{"strongest", strongest}};
}

// An architecture with a main model (likeness 0.5, 1,000 images per class) and one memorisation
// model at 10 per class of the given likeness.
nlohmann::json memorizing_arch(const std::string& name, double likeness, double at1, double at8) {
  nlohmann::json arch = {{"name", name}};
  arch["train"]["results"] = {
      {"test_accuracy", 0.85},
      {"dataset", {{"train_size", 10000}, {"classes", std::vector<std::string>(10, "c")}}}};
  arch["invert"]["results"] = likeness_results(0.5);
  arch["gradients"]["results"] = strongest_results(at1, at8);
  nlohmann::json m = {{"per_class", 10}};
  m["train"] = {{"status", "done"}, {"results", {{"train_accuracy", 1.0}}}};
  m["invert"] = {{"status", "done"}, {"results", likeness_results(likeness)}};
  arch["memorization"] = nlohmann::json::array({m});
  return arch;
}

TEST(HtmlReport, MemorisationRegimeSaysWhichArchitectureLeaksAndPlotsIt) {
  testing::TempDir dir;
  nlohmann::json audit = {{"version", "0"}, {"seed", 0}, {"dataset", {{"spec", "fashion-mnist"}}}};
  audit["architectures"] = nlohmann::json::array(
      {memorizing_arch("mlp", 0.95, 60, 20), memorizing_arch("cnn", 0.5, 60, 20)});
  audit["baselines"] = {{"unrelated_ssim", 0.06},
                        {"unrelated_psnr", 7.6},
                        {"class_mean_ssim", 0.37},
                        {"class_mean_psnr", 13.7},
                        {"unseen_nearest_train_ssim", 0.70}};
  audit["ranking"] = rank_architectures(audit["architectures"]);
  const auto& memorization = audit["ranking"]["memorization"];
  ASSERT_EQ(memorization.size(), 1u);
  EXPECT_EQ(memorization[0]["per_class"], 10);
  EXPECT_EQ(memorization[0]["surface"]["order"][0]["arch"], "mlp");
  EXPECT_EQ(memorization[0]["surface"]["steps"][0]["decision"], "ranked");
  for (const auto& a : memorization[0]["architectures"]) {
    EXPECT_EQ(a["leak"], a["arch"] == "mlp") << a.dump();
    EXPECT_DOUBLE_EQ(a["train_accuracy"].get<double>(), 1.0);
  }
  write_html_report(dir.path().string(), audit);
  const std::string html = read_file(dir.path() / "index.html");
  EXPECT_NE(html.find("<h2>The memorisation regime"), std::string::npos);
  EXPECT_NE(html.find("Trained on 10 images per class, most reconstructable from its weights: mlp"),
            std::string::npos);
  EXPECT_NE(html.find("src=\"./memorization.svg\""), std::string::npos);
  EXPECT_NE(html.find("Trained on 10 images per class, these weights give back training images: "
                      "mlp 0.95"),
            std::string::npos);
  EXPECT_NE(html.find("not measurably: cnn 0.50"), std::string::npos);
  // The measured baselines stand beside the figures.
  EXPECT_NE(html.find("the class-mean image scores 13.7 dB"), std::string::npos);
  EXPECT_EQ(html.find("around 0.1 = unrelated"), std::string::npos);
  // The plot: one series per architecture over 10 and 1,000 images per class, with intervals.
  const std::string svg = read_file(dir.path() / "memorization.svg");
  EXPECT_NE(svg.find(">10<"), std::string::npos);
  EXPECT_NE(svg.find(">1000<"), std::string::npos);
  EXPECT_NE(svg.find("0.5: no leak"), std::string::npos);
}

// The seeds' claims: reproduced when every comparison is ranked the claimed way, not reproduced
// when one is ranked the other way, indistinguishable otherwise.
TEST(HtmlReport, ClaimsTableMarksEachClaimFromTheIntervals) {
  const auto verdict = [](const nlohmann::json& archs, const std::string& source) {
    const auto ranking = rank_architectures(archs);
    for (const auto& c : ranking["claims"]) {
      if (c["source"].get<std::string>().rfind(source, 0) == 0)
        return c["verdict"].get<std::string>();
    }
    return std::string("missing");
  };
  // MLP > ViT > CNN from the weights at 10 per class, batch 1 far above batch 8.
  const auto as_claimed = nlohmann::json::array({memorizing_arch("mlp", 0.95, 60, 20),
                                                 memorizing_arch("vit", 0.5, 60, 20),
                                                 memorizing_arch("cnn", 0.05, 60, 20)});
  EXPECT_EQ(verdict(as_claimed, "000"), "reproduced");
  EXPECT_EQ(verdict(as_claimed, "003"), "reproduced");
  EXPECT_EQ(verdict(as_claimed, "004"), "not measured");  // no layers stage
  EXPECT_EQ(verdict(as_claimed, "002"), "not measured");  // no defense
  // The CNN leaking most contradicts the claim; batch 8 above batch 1 contradicts the other.
  const auto against = nlohmann::json::array({memorizing_arch("mlp", 0.05, 20, 60),
                                              memorizing_arch("vit", 0.5, 20, 60),
                                              memorizing_arch("cnn", 0.95, 20, 60)});
  EXPECT_EQ(verdict(against, "000"), "not reproduced");
  EXPECT_EQ(verdict(against, "003"), "not reproduced");
  // Within the noise.
  const auto close = nlohmann::json::array({memorizing_arch("mlp", 0.55, 30, 29.5),
                                            memorizing_arch("vit", 0.5, 30, 29.5),
                                            memorizing_arch("cnn", 0.5, 30, 29.5)});
  EXPECT_EQ(verdict(close, "000"), "indistinguishable");
  EXPECT_EQ(verdict(close, "003"), "indistinguishable");
  // The page shows the table.
  testing::TempDir dir;
  nlohmann::json audit = {{"version", "0"}, {"seed", 0}};
  audit["architectures"] = as_claimed;
  audit["ranking"] = rank_architectures(as_claimed);
  write_html_report(dir.path().string(), audit);
  const std::string html = read_file(dir.path() / "index.html");
  EXPECT_NE(html.find("The papers' claims against this run"), std::string::npos);
  EXPECT_NE(html.find("<td><b>reproduced</b></td>"), std::string::npos);
}

// --repeats: every seed's targets count in the interval.
TEST(HtmlReport, RepeatsArePooledIntoTheIntervals) {
  auto arch = memorizing_arch("mlp", 0.9, 60, 20);
  arch["repeats"] = nlohmann::json::array({memorizing_arch("mlp", 0.9, 60, 20)});
  const auto one = rank_architectures(nlohmann::json::array({memorizing_arch("mlp", 0.9, 60, 20)}));
  const auto two = rank_architectures(nlohmann::json::array({arch}));
  EXPECT_EQ(one["surfaces"]["weights"]["order"][0]["n"], 40);
  EXPECT_EQ(two["surfaces"]["weights"]["order"][0]["n"], 80);
  EXPECT_EQ(two["surfaces"]["gradients"]["order"][0]["n"], 32);
  EXPECT_EQ(two["memorization"][0]["surface"]["order"][0]["n"], 80);
  const auto width = [](const nlohmann::json& r) {
    const auto& e = r["memorization"][0]["surface"]["order"][0];
    return e["high"].get<double>() - e["low"].get<double>();
  };
  EXPECT_LT(width(two), width(one));
}

TEST(HtmlReport, EscapesNamesAndSaysWhichStageFailed) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "mlp" / "invert");
  write_image_grid((dir.path() / "mlp" / "invert" / "reconstructions.png").string(),
                   {torch::rand({2, 1, 8, 8})});
  write_html_report(dir.path().string(), fake_audit());
  const std::string html = read_file(dir.path() / "index.html");
  EXPECT_NE(html.find("cnn &lt;b&gt;&amp;"), std::string::npos);
  EXPECT_EQ(html.find("cnn <b>&"), std::string::npos);
  EXPECT_NE(html.find("The gradient attacks: failed (out of memory)."), std::string::npos);
  EXPECT_NE(html.find("src=\"mlp/invert/reconstructions.png\""), std::string::npos);
  EXPECT_NE(html.find("Similarity to the nearest training image"), std::string::npos);
  EXPECT_NE(html.find("mlp (0.410) &gt; cnn"), std::string::npos);
  EXPECT_NE(html.find("conv1 (24.0 dB)"), std::string::npos);
  // Images that do not exist are not referenced.
  EXPECT_EQ(html.find("cnn/invert/reconstructions.png"), std::string::npos);
}

// The file names that index.html references (src="...").
std::set<std::string> referenced_files(const std::string& html) {
  std::set<std::string> files;
  const std::regex source("src=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), source);
       it != std::sregex_iterator(); ++it) {
    files.insert((*it)[1].str());
  }
  return files;
}

TEST(AuditReportSlow, SmokeAuditPageLoadsCleanlyInHeadlessChromium) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  const auto out = dir.file("audit");
  const auto run = testing::run_cli(
      "audit --profile smoke --archs mlp,cnn --memorization-sizes 3 --quiet --out " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string html = read_file(fs::path(out) / "index.html");
  // One table row per architecture in the comparison table.
  const auto table_start = html.find("<h2>Comparison</h2>");
  const auto table_end = html.find("</table>", table_start);
  const std::string table = html.substr(table_start, table_end - table_start);
  EXPECT_NE(table.find("<tr><td>mlp</td>"), std::string::npos);
  EXPECT_NE(table.find("<tr><td>cnn</td>"), std::string::npos);
  size_t rows = 0;
  for (size_t at = table.find("<tr><td>"); at != std::string::npos;
       at = table.find("<tr><td>", at + 1))
    ++rows;
  EXPECT_EQ(rows, 2u);
  // The federated stage's table: one row per FedAvg setting, a column per architecture.
  const auto federated = html.find("<h2>From federated updates (FedAvg)</h2>");
  ASSERT_NE(federated, std::string::npos);
  const std::string fed_table =
      html.substr(federated, html.find("</table>", federated) - federated);
  EXPECT_NE(fed_table.find("<th>mlp</th><th>cnn</th>"), std::string::npos) << fed_table;
  EXPECT_NE(fed_table.find("clients8: 8 clients &times; 1 image, 1 local step of 1, secure "
                           "aggregation"),
            std::string::npos)
      << fed_table;
  EXPECT_NE(fed_table.find(" dB <small>(median "), std::string::npos) << fed_table;
  // The stage table shows each stage's peak memory.
  EXPECT_NE(html.find("<th>Peak memory (MiB)</th>"), std::string::npos);
  // Every referenced image exists and decodes; SVGs parse as SVG documents.
  for (const auto& file : referenced_files(html)) {
    EXPECT_EQ(file.find("://"), std::string::npos) << "network reference " << file;
    const auto path = fs::path(out) / file;
    ASSERT_TRUE(fs::exists(path)) << file;
    if (path.extension() == ".png") {
      int w = 0, h = 0, c = 0;
      unsigned char* pixels = stbi_load(path.c_str(), &w, &h, &c, 0);
      EXPECT_NE(pixels, nullptr) << file;
      stbi_image_free(pixels);
    } else {
      const auto svg = read_file(path);
      EXPECT_EQ(svg.rfind("<svg", 0), 0u) << file;
      EXPECT_NE(svg.find("</svg>"), std::string::npos) << file;
    }
  }
  // Headless Chromium: no console errors, no failed requests.
  PRIVAUDIT_REQUIRE(std::system("command -v chromium >/dev/null 2>&1") == 0, "chromium (Debian)");
  const std::string log = dir.file("chromium.log");
  const std::string screenshot = dir.file("page.png");
  const std::string command =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
      dir.file("profile") +
      " --enable-logging=stderr --v=0 --window-size=1200,2400 --screenshot=" + screenshot +
      " file://" + out + "/index.html > " + log + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(log);
  const std::string chromium_log = read_file(log);
  EXPECT_EQ(chromium_log.find("CONSOLE"), std::string::npos) << chromium_log;
  EXPECT_EQ(chromium_log.find("ERR_FILE_NOT_FOUND"), std::string::npos) << chromium_log;
  EXPECT_EQ(chromium_log.find("Failed to load resource"), std::string::npos) << chromium_log;
  EXPECT_TRUE(fs::exists(screenshot));
  // The page as Chromium renders it: per-threat verdicts, the recommendations, the claims table
  // and the memorisation regime.
  const std::string dom_file = dir.file("dom.html");
  const std::string dump =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
      dir.file("profile") + " --dump-dom file://" + out + "/index.html > " + dom_file +
      " 2>/dev/null";
  ASSERT_EQ(std::system(dump.c_str()), 0);
  const std::string dom = read_file(dom_file);
  for (const char* text :
       {"<b>From the weights</b>", "<b>From shared gradients</b>",
        "<b>From intermediate features</b>", "From the weights, trained on 3 images per class",
        "<i>What to do:</i>", "The papers' claims against this run", "Gradient leakage falls",
        "The memorisation regime", "Baselines on this dataset"}) {
    EXPECT_NE(dom.find(text), std::string::npos) << text;
  }
  if (const char* keep = std::getenv("PRIVAUDIT_KEEP_SCREENSHOT"))
    fs::copy_file(screenshot, keep, fs::copy_options::overwrite_existing);
}

}  // namespace
}  // namespace privaudit::report

namespace privaudit::report {
namespace {

TEST(AuditSlow, RerunContinuesAndOtherSettingsAreRefused) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  const auto out = dir.file("audit");
  ASSERT_EQ(testing::run_cli("audit --profile smoke --archs mlp --out " + out).exit_code, 0);
  // Simulate a kill during the last stages: their results vanish, the training stage stays.
  std::filesystem::remove_all(std::filesystem::path(out) / "mlp" / "layers");
  const auto again = testing::run_cli("audit --profile smoke --archs mlp --out " + out);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("mlp/train              already done"), std::string::npos)
      << again.output;
  EXPECT_EQ(again.output.find("mlp/train              done in"), std::string::npos) << again.output;
  // `info` describes every model file the audit wrote, and refuses every other file in one line
  // naming it (never a crash, never a JSON error).
  int models = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(out)) {
    const auto extension = entry.path().extension();
    if (!entry.is_regular_file() || (extension != ".pt" && extension != ".json")) continue;
    const auto info = testing::run_cli("info --model " + entry.path().string());
    EXPECT_TRUE(info.exit_code == 0 || info.exit_code == 1) << entry.path() << ": " << info.output;
    if (info.exit_code == 0) {
      ++models;
      EXPECT_NE(info.output.find("parameters:"), std::string::npos)
          << entry.path() << ": " << info.output;
    } else {
      EXPECT_EQ(info.output.rfind("privaudit info: " + entry.path().string() + ": ", 0), 0u)
          << entry.path() << ": " << info.output;
      EXPECT_EQ(std::count(info.output.begin(), info.output.end(), '\n'), 1)
          << entry.path() << ": " << info.output;
      EXPECT_EQ(info.output.find("json.exception"), std::string::npos)
          << entry.path() << ": " << info.output;
    }
  }
  EXPECT_GE(models, 1);
  const auto other = testing::run_cli("audit --profile smoke --archs cnn --out " + out);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.output.find("was written with other settings (--archs mlp there, cnn now)"),
            std::string::npos)
      << other.output;
}

}  // namespace
}  // namespace privaudit::report
