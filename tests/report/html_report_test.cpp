#include "privaudit/report/html_report.h"

#include <gtest/gtest.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "audit/audit_fixtures.h"
#include "privaudit/report/image_grid.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit::report {
namespace {
namespace fs = std::filesystem;
using testing::memorizing_arch;
using testing::surface_archs;

// The audit's page from its results.json object, as `privaudit audit` writes it; returns the
// verdict it shows.
audit::Verdict render(const std::string& dir, const nlohmann::json& audit_json) {
  const auto records = audit::records_from_json(audit_json);
  const auto verdict = audit::analyse(records);
  write_html_report(dir, records, verdict);
  return verdict;
}

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
  return audit;
}

TEST(HtmlReport, SaysPerSurfaceWhichArchitecturesTheDataSeparate) {
  // Weights: 0.55 vs 0.50 of 40 images each is noise; gradients: 60 vs 12 dB is not.
  testing::TempDir dir;
  nlohmann::json audit = {{"version", "0"}, {"seed", 0}, {"settings", {{"data", "x"}}}};
  audit["architectures"] = surface_archs(0.55, 0.5, 12.0, 60.0);
  const auto verdict = render(dir.path().string(), audit);
  const std::string html = read_file(dir.path() / "index.html");
  EXPECT_NE(html.find("no architecture leaks measurably more"), std::string::npos);
  EXPECT_NE(html.find("a 0.55 ["), std::string::npos);
  EXPECT_NE(html.find("&asymp;"), std::string::npos);
  EXPECT_NE(html.find("b 60.0 ["), std::string::npos);
  EXPECT_NE(html.find("From intermediate features"), std::string::npos);
  // One plain finding and one recommendation per surface, following from the figures.
  ASSERT_EQ(verdict.recommendations.size(), 3u);
  EXPECT_NE(html.find("rebuilt exactly from the gradient of b (40/40)"), std::string::npos);
  EXPECT_NE(html.find("Do not share per-example gradients"), std::string::npos);
  EXPECT_NE(html.find("does not prove the weights safe"), std::string::npos);
  EXPECT_NE(html.find("cut &#39;c2&#39; at 60.0 dB"), std::string::npos);
  EXPECT_EQ(html.find("Most reconstructable"), std::string::npos);

  // A clear weights leak names the architecture.
  audit["architectures"] = surface_archs(0.95, 0.5, 12.0, 60.0);
  render(dir.path().string(), audit);
  const std::string leaky = read_file(dir.path() / "index.html");
  EXPECT_NE(leaky.find("Most reconstructable from its weights: a"), std::string::npos);
  EXPECT_NE(leaky.find("Treat these weights as training data"), std::string::npos);
}

// The attributes of every scorecard cell in `html`: {surface, arch} -> {attribute -> value}.
std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> scorecard_cells(
    const std::string& html) {
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> cells;
  const std::regex cell("<td [^>]*data-surface=[^>]*>");
  const std::regex attribute("(data-[a-z]+)=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), cell); it != std::sregex_iterator();
       ++it) {
    const std::string tag = it->str();
    std::map<std::string, std::string> values;
    for (auto a = std::sregex_iterator(tag.begin(), tag.end(), attribute);
         a != std::sregex_iterator(); ++a)
      values[(*a)[1].str()] = (*a)[2].str();
    cells[{values["data-surface"], values["data-arch"]}] = values;
  }
  return cells;
}

// Every scorecard cell of results.json's ranking is on the page with the same figures.
void expect_scorecard_matches(const std::string& html, const nlohmann::json& ranking) {
  const auto cells = scorecard_cells(html);
  size_t expected = 0;
  for (const auto& row : ranking.at("scorecard")) {
    for (const auto& c : row.at("cells")) {
      ++expected;
      const auto found =
          cells.find({row["surface"].get<std::string>(), c["arch"].get<std::string>()});
      ASSERT_NE(found, cells.end()) << row["surface"] << " x " << c["arch"];
      const auto& at = found->second;
      EXPECT_EQ(at.at("data-severity"), c["severity"].get<std::string>());
      for (const char* key : {"value", "low", "high"}) {
        const auto text = at.at(std::string("data-") + key);
        if (c[key].is_null()) {
          EXPECT_EQ(text, "") << key;
        } else {
          EXPECT_NEAR(std::stod(text), c[key].get<double>(), 1e-12) << key;
        }
      }
    }
  }
  EXPECT_EQ(cells.size(), expected);
}

TEST(HtmlReport, ScorecardLeadsThePageWithACellPerSurfaceAndArchitecture) {
  testing::TempDir dir;
  nlohmann::json audit = {{"version", "0"}, {"seed", 0}, {"settings", {{"data", "x"}}}};
  audit["architectures"] = surface_archs(0.95, 0.5, 12.0, 60.0);
  const auto verdict = render(dir.path().string(), audit);
  const std::string html = read_file(dir.path() / "index.html");
  const auto scorecard = html.find("<table class=\"scorecard\">");
  ASSERT_NE(scorecard, std::string::npos);
  EXPECT_LT(scorecard, html.find("<h2>What to do</h2>"));
  EXPECT_LT(scorecard, html.find("<h2>Comparison</h2>"));
  const auto cells = scorecard_cells(html);
  EXPECT_EQ(cells.at({"gradients", "b"}).at("data-severity"), "exact");
  EXPECT_EQ(cells.at({"weights", "a"}).at("data-severity"), "leak");
  EXPECT_EQ(cells.at({"weights", "b"}).at("data-severity"), "nothing");
  EXPECT_NE(html.find("exact recovery (40/40)"), std::string::npos);
  // One interval plot per surface.
  size_t plots = 0;
  for (size_t at = html.find("<svg xmlns"); at != std::string::npos;
       at = html.find("<svg xmlns", at + 1))
    ++plots;
  EXPECT_EQ(plots, verdict.scorecard.size());
  expect_scorecard_matches(html, audit::to_json(verdict));
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
  render(dir.path().string(), audit);
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

TEST(HtmlReport, ShowsTheClaimsTable) {
  const auto as_claimed = nlohmann::json::array({memorizing_arch("mlp", 0.95, 60, 20),
                                                 memorizing_arch("vit", 0.5, 60, 20),
                                                 memorizing_arch("cnn", 0.05, 60, 20)});
  // The page shows the table.
  testing::TempDir dir;
  nlohmann::json audit = {{"version", "0"}, {"seed", 0}};
  audit["architectures"] = as_claimed;
  render(dir.path().string(), audit);
  const std::string html = read_file(dir.path() / "index.html");
  EXPECT_NE(html.find("The papers' claims against this run"), std::string::npos);
  EXPECT_NE(html.find("<td><b>reproduced</b></td>"), std::string::npos);
}

TEST(HtmlReport, EscapesNamesAndSaysWhichStageFailed) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "mlp" / "invert");
  write_image_grid((dir.path() / "mlp" / "invert" / "reconstructions.png").string(),
                   {torch::rand({2, 1, 8, 8})});
  render(dir.path().string(), fake_audit());
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

TEST(HtmlReport, ShowsTheVerbatimCopiesOfEachModelInvertedFromItsWeights) {
  testing::TempDir dir;
  auto audit = fake_audit();
  auto& summary = audit["architectures"][0]["invert"]["results"]["summary"];
  summary["verbatim_copies"] = 2;
  summary["copy_threshold_ssim"] = 0.912;
  audit["architectures"][0]["invert"]["results"]["reconstructions"] =
      nlohmann::json::array({{{"copy_of_train", true}, {"nearest_train_index", 4}},
                             {{"copy_of_train", true}, {"nearest_train_index", 9}},
                             {{"copy_of_train", false}, {"nearest_train_index", 1}}});
  render(dir.path().string(), audit);
  const std::string html = read_file(dir.path() / "index.html");
  EXPECT_NE(html.find("main model 2 / 3 (SSIM above 0.912)"), std::string::npos);
  // Results written before the count existed show none.
  EXPECT_EQ(html.find("cnn &lt;b&gt;&amp; 0 /"), std::string::npos);
  const auto records = audit::records_from_json(audit);
  const auto& inv = *records.architectures[0].run.invert.results;
  EXPECT_EQ(inv.verbatim_copies, 2);
  EXPECT_TRUE(inv.reconstructions[1].copy_of_train);
  EXPECT_EQ(inv.reconstructions[1].nearest_train_index, 9);
  EXPECT_FALSE(records.architectures[1].run.invert.results->verbatim_copies.has_value());
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

// One smoke audit of both architectures with the memorisation regime, shared by the suite's tests
// (it is most of their time): the page test reads it, the rerun test cuts it short and continues
// it, then repeats the MLP's part from scratch.
class SmokeAuditSlow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::have_fashion_mnist()) return;
    dir_ = new testing::TempDir();
    out_ = dir_->file("audit");
    const auto run = testing::run_cli(kCommand + out_);
    exit_code_ = run.exit_code;
    output_ = run.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    PRIVAUDIT_REQUIRE_FASHION_MNIST();
    ASSERT_EQ(exit_code_, 0) << output_;
  }
  static inline const std::string kCommand =
      "audit --profile smoke --archs mlp,cnn --memorization-sizes 3 --threads 1 --out ";
  static inline testing::TempDir* dir_ = nullptr;
  static inline std::string out_, output_;
  static inline int exit_code_ = -1;
};

TEST_F(SmokeAuditSlow, PageLoadsCleanlyInHeadlessChromium) {
  testing::TempDir dir;
  const auto& out = out_;
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
  // Membership inference: a table row per regime and architecture, each stage's ROC plot, and
  // the scorecard's rows.
  const auto membership = html.find("<h2>From the weights: membership inference</h2>");
  ASSERT_NE(membership, std::string::npos);
  const std::string membership_part =
      html.substr(membership, html.find("<h2>", membership + 4) - membership);
  for (const char* roc : {"mlp/membership/roc.svg", "cnn/membership/roc.svg",
                          "mlp/memorize-3/membership/roc.svg", "cnn/memorize-3/membership/roc.svg"})
    EXPECT_NE(membership_part.find(std::string("<img src=\"") + roc + "\""), std::string::npos)
        << roc;
  EXPECT_NE(html.find("data-surface=\"membership\" data-arch=\"cnn\""), std::string::npos);
  EXPECT_NE(html.find("data-surface=\"membership_memorize3\""), std::string::npos);
  // In the memorisation regime the most exposed images stand beside the group's nearest
  // reconstructions, with the figures in results.json.
  for (const char* grid : {"mlp/memorize-3/membership/exposed_vs_reconstructed.png",
                           "cnn/memorize-3/membership/exposed_vs_reconstructed.png"}) {
    EXPECT_NE(membership_part.find(std::string("<img src=\"") + grid + "\""), std::string::npos)
        << grid;
  }
  EXPECT_NE(membership_part.find("above the verbatim-copy threshold"), std::string::npos);
  const auto audit_results = nlohmann::json::parse(read_file(fs::path(out) / "results.json"));
  int with_exposed = 0;
  for (const auto& row : audit_results["ranking"]["membership"]) {
    if (!row.contains("most_exposed")) continue;
    ++with_exposed;
    EXPECT_EQ(row["per_class"], 3) << row;
    EXPECT_EQ(row["most_exposed"]["nearest_reconstruction_ssim"].size(), 16u) << row;
    EXPECT_TRUE(row["most_exposed"]["copy_threshold_ssim"].is_number()) << row;
  }
  EXPECT_EQ(with_exposed, 2);
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
  // The scorecard as the browser holds it equals results.json's.
  const auto results = nlohmann::json::parse(read_file(fs::path(out) / "results.json"));
  expect_scorecard_matches(dom, results.at("ranking"));
  EXPECT_FALSE(results["ranking"]["scorecard"].empty());
  if (const char* keep = std::getenv("PRIVAUDIT_KEEP_SCREENSHOT"))
    fs::copy_file(screenshot, keep, fs::copy_options::overwrite_existing);
}

}  // namespace
}  // namespace privaudit::report

namespace privaudit::report {
namespace {

// results.json without what depends on the clock (seconds, *_seconds, samples_per_second,
// images_per_second, peak memory), its folder's path written as OUT.
std::string without_timing(nlohmann::json json, const std::string& folder) {
  std::function<void(nlohmann::json&)> strip = [&](nlohmann::json& j) {
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end();) {
        const std::string& k = it.key();
        const bool timing = k == "seconds" || k == "samples_per_second" ||
                            k == "images_per_second" || k.rfind("peak_memory", 0) == 0 ||
                            (k.size() > 8 && k.compare(k.size() - 8, 8, "_seconds") == 0);
        if (timing) {
          it = j.erase(it);
        } else {
          strip(*it);
          ++it;
        }
      }
    } else if (j.is_array()) {
      for (auto& v : j) strip(v);
    } else if (j.is_string()) {
      auto s = j.get<std::string>();
      for (size_t at = s.find(folder); at != std::string::npos; at = s.find(folder, at))
        s.replace(at, folder.size(), "OUT");
      j = s;
    }
  };
  strip(json);
  return json.dump(1);
}

TEST_F(SmokeAuditSlow, RerunContinuesRepeatsAndOtherSettingsAreRefused) {
  testing::TempDir dir;
  const auto& out = out_;
  // Simulate a kill during the last stages: their results vanish, the training stage stays.
  std::filesystem::remove_all(std::filesystem::path(out) / "mlp" / "layers");
  const auto again = testing::run_cli(kCommand + out);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("mlp/train              already done"), std::string::npos)
      << again.output;
  EXPECT_EQ(again.output.find("mlp/train              done in"), std::string::npos) << again.output;
  EXPECT_TRUE(fs::exists(fs::path(out) / "mlp" / "layers" / "results.json"));
  // `info` describes every kind of model file the audit wrote, and refuses every other kind of
  // file in one line naming it (never a crash, never a JSON error): one file of each name (each
  // is a process loading LibTorch; 11 results.json alike would only repeat the first).
  int models = 0;
  std::set<std::string> seen;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(out)) {
    const auto extension = entry.path().extension();
    if (!entry.is_regular_file() || (extension != ".pt" && extension != ".json")) continue;
    if (!seen.insert(entry.path().filename().string()).second) continue;
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
  // Same command, same figures: the MLP's gradient and feature stages from scratch in another
  // folder write what the audit continued after the kill wrote, stage by stage and in the summary,
  // timings aside (the weights stages' figures are checked across process counts by
  // DistributedRun.AuditOnTwoProcessesMatchesOneAndContinuesAfterAKilledRank).
  const auto fresh = dir.file("fresh");
  const auto repeat = testing::run_cli(
      "audit --profile smoke --archs mlp --memorization-sizes 3 --threads 1 "
      "--surfaces gradients,features "
      "--quiet --out " +
      fresh);
  ASSERT_EQ(repeat.exit_code, 0) << repeat.output;
  int stages = 0;
  for (const auto& entry : fs::recursive_directory_iterator(fs::path(fresh) / "mlp")) {
    if (entry.path().filename() != "results.json") continue;
    const auto relative = fs::relative(entry.path(), fresh);
    const auto first =
        without_timing(nlohmann::json::parse(read_file(fs::path(out) / relative)), out);
    const auto second = without_timing(nlohmann::json::parse(read_file(entry.path())), fresh);
    EXPECT_TRUE(first == second) << relative << " differs beyond timings";
    ++stages;
  }
  EXPECT_EQ(stages, 5);  // train, gradients, federated, malicious, layers
  const auto mlp_of = [](const std::string& folder) {
    const auto results = nlohmann::json::parse(read_file(fs::path(folder) / "results.json"));
    for (const auto& arch : results.at("architectures")) {
      if (arch.at("name") == "mlp") return arch;
    }
    return nlohmann::json();
  };
  const auto whole = mlp_of(out), part = mlp_of(fresh);
  ASSERT_TRUE(part.is_object());
  int summaries = 0;
  for (const char* stage : {"train", "gradients", "federated", "malicious", "layers"}) {
    ASSERT_TRUE(part.contains(stage)) << stage;
    EXPECT_TRUE(without_timing(whole.at(stage), out) == without_timing(part.at(stage), fresh))
        << "the MLP's " << stage << " summaries differ beyond timings";
    summaries += part.at(stage).dump().size() > 1000;
  }
  EXPECT_EQ(summaries, 5);
  const auto other = testing::run_cli("audit --profile smoke --archs cnn --threads 1 --out " + out);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.output.find("was written with other settings (--archs mlp,cnn there, cnn now)"),
            std::string::npos)
      << other.output;
}

}  // namespace
}  // namespace privaudit::report
