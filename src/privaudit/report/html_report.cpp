#include "privaudit/report/html_report.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "privaudit/report/scorecard.h"
#include "privaudit/report/sections.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/files.h"
#include "privaudit/util/text.h"

namespace privaudit::report {
namespace fs = std::filesystem;
using audit::Architecture;
using audit::SurfaceRanking;
using audit::Verdict;

namespace {

const char* kStyle =
    R"(body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:0.2em}h2{border-bottom:1px solid #ccc;padding-bottom:0.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:0.35em 0.7em;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.verdict{background:#fff6e0;border-left:6px solid #e8a200;padding:0.8em 1.2em}
.note{color:#666;font-style:italic}figure{display:inline-block;margin:0.5em 1em 0.5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:0.9em;color:#444;max-width:640px}
.claims td{text-align:left}dt{font-weight:bold;margin-top:0.6em}code{background:#f4f4f4;padding:0 0.2em})";

// " [0.43, 0.77]" (small) of `arch` on `surface`, or "".
std::string interval_suffix(const SurfaceRanking* surface, const std::string& arch,
                            const char* format) {
  const auto* e = surface ? surface->entry(arch) : nullptr;
  if (e == nullptr) return "";
  return " <small>[" + format_number(e->low, format) + ", " + format_number(e->high, format) +
         "]</small>";
}

// "0.60 [0.43, 0.77]" of `arch` on `surface`; without an entry, `fallback` alone.
std::string with_interval(const SurfaceRanking* surface, const std::string& arch,
                          const char* format, double fallback = NAN) {
  const auto* e = surface ? surface->entry(arch) : nullptr;
  if (e == nullptr) return format_number(fallback, format);
  return format_number(e->value, format) + interval_suffix(surface, arch, format);
}

// "<b>From the weights</b> (...): mlp 0.60 [0.43, 0.77] = cnn ..." with the decisions.
std::string surface_verdict(const std::string& title, const SurfaceRanking& surface,
                            const char* format, const std::string& baseline = "") {
  if (surface.order.empty()) return "";
  std::ostringstream line;
  line << "<li><b>" << title << "</b> (" << escape_xml(surface.meaning)
       << "; 95% intervals over targets): ";
  std::string unsettled;
  for (size_t i = 0; i < surface.order.size(); ++i) {
    if (i > 0) {
      const auto& step = surface.steps[i - 1];
      line << (step.ranked ? " &gt; " : step.cut_short ? " ? " : " &asymp; ");
      if (!step.ranked && step.more_targets > 0 && unsettled.empty())
        unsettled = std::to_string(step.more_targets);
    }
    const auto& e = surface.order[i];
    line << escape_xml(e.arch) << " " << format_number(e.value, format) << " ["
         << format_number(e.low, format) << ", " << format_number(e.high, format) << "]";
  }
  line << ".";
  if (!baseline.empty()) line << " " << baseline;
  bool cut_short = false;
  for (const auto& step : surface.steps) cut_short |= step.cut_short;
  if (cut_short)
    line << " ? marks a comparison left undecided: --time-budget cut a stage short, so its figure "
            "is a lower bound that more work could raise.";
  if (surface.any_tie()) {
    line << " &asymp; marks architectures indistinguishable with this profile's work";
    if (!unsettled.empty())
      line << " (about " << unsettled << " more targets each would settle the first such pair)";
    line << ".";
  }
  std::string wide;
  for (const auto& e : surface.order) {
    if (e.wide) wide += (wide.empty() ? "" : ", ") + escape_xml(e.arch);
  }
  if (!wide.empty()) {
    line << " <i>Wider than the &plusmn;" << format_number(surface.target_half_width, "%g")
         << " this profile aims for: " << wide
         << " (more targets, <code>--repeats</code> or the paper profile narrow it).</i>";
  }
  line << "</li>\n";
  return line.str();
}

std::string psnr_baseline(const audit::Baselines& b) {
  if (!b.measured) return "";
  return "Baselines on this dataset: the class-mean image scores " +
         format_number(b.class_mean_psnr, "%.1f") + " dB against a target, an unrelated image " +
         format_number(b.unrelated_psnr, "%.1f") + " dB.";
}

std::string ssim_baseline(const audit::Baselines& b) {
  if (!b.measured) return "";
  return " Baselines on this dataset: an image the model never saw scores " +
         format_number(b.unseen_nearest_train_ssim, "%.2f") +
         " against its nearest training image, the class-mean image " +
         format_number(b.class_mean_ssim, "%.2f") + ", an unrelated image " +
         format_number(b.unrelated_ssim, "%.2f") + ".";
}

// The headline under the scorecard: which architecture the data single out, per surface.
std::string headline(const Verdict& v) {
  std::ostringstream html;
  const auto* weights = v.surface("weights");
  const size_t ranked = weights ? weights->order.size() : 0;
  if (v.order.empty() && ranked == 0) {
    html << "<p>No attack finished, so the architectures cannot be ranked yet.</p>\n";
  } else if (ranked >= 2 && weights->top_ranked()) {
    html << "<p><b>Most reconstructable from its weights: " << escape_xml(weights->order[0].arch)
         << ".</b></p>\n";
  } else if (ranked >= 2) {
    html << "<p><b>From the weights, no architecture leaks measurably more than the next with this "
            "profile's work (the main models; see the memorisation regime below).</b></p>\n";
  }
  for (const auto& size : v.memorization) {
    if (!size.surface.top_ranked()) continue;
    html << "<p><b>Trained on " << size.per_class
         << " images per class, most reconstructable from its weights: "
         << escape_xml(size.surface.order[0].arch) << ".</b></p>\n";
  }
  return html.str();
}

std::string recommendations(const Verdict& v) {
  if (v.recommendations.empty()) return "";
  std::ostringstream html;
  html << "<h2>What to do</h2>\n<ul class=\"advice\">";
  for (const auto& item : v.recommendations) {
    html << "<li><b>" << escape_xml(item.surface) << ":</b> " << escape_xml(item.finding)
         << " <i>What to do:</i> " << escape_xml(item.recommendation) << "</li>\n";
  }
  html << "</ul>\n";
  return html.str();
}

// Every surface's ranking in words, with the single first-version ranking and the baselines.
std::string rankings(const Verdict& v, const audit::Baselines& baselines) {
  std::ostringstream html;
  html << "<h2>The rankings in words</h2>\n<ul class=\"verdict\">\n";
  if (!v.order.empty()) {
    const bool ssim = v.figure == "nearest_train_ssim";
    html << "<li>"
         << (ssim ? "Similarity to the nearest training image (a class prototype scores well on "
                    "it too: not a leak figure on its own): "
                  : "Ranking, most to least: ");
    for (size_t i = 0; i < v.order.size(); ++i) {
      html << (i ? " &gt; " : "") << escape_xml(v.order[i].first) << " ("
           << format_number(v.order[i].second, ssim ? "%.3f" : "%.1f dB") << ")";
    }
    html << ". The figure is the " << escape_xml(v.meaning) << "."
         << (ssim ? ssim_baseline(baselines) : "") << "</li>\n";
  }
  if (const auto* s = v.surface("weights"))
    html << surface_verdict("From the weights", *s, "%.2f",
                            "0.5 is the no-leak baseline by construction (equal pools).");
  for (const auto& size : v.memorization) {
    html << surface_verdict(
        "From the weights, trained on " + std::to_string(size.per_class) + " images per class",
        size.surface, "%.2f");
  }
  for (const auto& [key, surface] : v.surfaces) {
    if (key.rfind("membership", 0) != 0) continue;
    const std::string regime = key == "membership"
                                   ? ""
                                   : ", trained on " +
                                         key.substr(std::string("membership_memorize").size()) +
                                         " images per class";
    html << surface_verdict("From the weights: membership" + regime, surface, "%.3f",
                            "0.01 is chance at 1 % FPR.");
  }
  for (const auto& [key, surface] : v.surfaces) {
    if (key.rfind("gradients", 0) != 0) continue;
    const std::string title = key == "gradients"
                                  ? "From shared gradients"
                                  : "From shared gradients, batches of " +
                                        key.substr(std::string("gradients_batch").size());
    html << surface_verdict(title, surface, "%.1f",
                            key == "gradients" ? psnr_baseline(baselines) : "");
  }
  if (const auto* s = v.surface("features"))
    html << surface_verdict("From intermediate features", *s, "%.1f", psnr_baseline(baselines));
  html << "</ul>\n";
  return html.str();
}

std::string claims_table(const Verdict& v) {
  if (v.claims.empty()) return "";
  std::ostringstream html;
  html << "<h2>The papers' claims against this run</h2>\n<table class=\"claims\"><tr><th>Paper "
          "(seed)</th><th>Claim</th><th>This run (difference, 95% interval)</th><th>Verdict"
          "</th></tr>\n";
  for (const auto& c : v.claims) {
    html << "<tr><td>" << escape_xml(c.source) << "</td><td>" << escape_xml(c.claim)
         << "</td><td style=\"text-align:left\">" << escape_xml(c.measured) << "</td><td><b>"
         << escape_xml(c.verdict) << "</b></td></tr>\n";
  }
  html << "</table>\n<p class=\"note\">Reproduced: every comparison the claim makes is ranked "
          "its way (the 95% interval of the difference excludes 0). Not reproduced: one is "
          "ranked the other way. Indistinguishable: neither, at this work. Undecided: budget: a "
          "comparison that would decide it rests on a stage --time-budget cut short.</p>\n";
  return html.str();
}

// "k / n (best: attack w, ...)" images recovered exactly (self-certified) at batch 1.
std::string exact_cell(const audit::ArchitectureFigures& f) {
  if (!f.batch1) return "&ndash;";
  const auto count = [](const std::optional<int64_t>& n) {
    return n ? std::to_string(*n) : std::string("?");
  };
  std::string winners;
  for (const auto& [name, n] : f.batch1->wins)
    winners += (winners.empty() ? "" : ", ") + name + " " + std::to_string(n);
  return count(f.batch1->exact) + " / " + count(f.batch1->targets_scored) +
         (winners.empty() ? "" : " <small>(best: " + escape_xml(winners) + ")</small>");
}

std::string comparison_table(const Verdict& v, const audit::Baselines& baselines) {
  std::ostringstream html;
  html << "<h2>Comparison</h2>\n<table><tr><th>Architecture</th><th>Test "
          "accuracy</th><th>Training-likeness</th><th>Train &minus; held-out SSIM</th>"
          "<th>Nearest-train SSIM</th><th>Gradient PSNR, batch 1 (strongest attack)</th><th>batch "
          "8</th><th>Recovered exactly (self-certified), batch 1</th><th>Gradient risk</th>"
          "<th>Most exposed layer (decoder PSNR)</th></tr>\n";
  const auto at = [](const audit::ArchitectureFigures& f, int64_t batch) {
    const auto it = f.gradient_psnr.find(batch);
    return it == f.gradient_psnr.end() ? NAN : it->second;
  };
  for (const auto& f : v.architectures) {
    html << "<tr><td>" << escape_xml(f.name) << "</td><td>" << format_number(f.test_accuracy)
         << "</td><td>" << with_interval(v.surface("weights"), f.name, "%.2f", f.training_likeness)
         << "</td><td>" << with_interval(v.surface("weights_ssim_gap"), f.name, "%+.3f")
         << "</td><td>" << format_number(f.nearest_train_ssim) << "</td><td>"
         << with_interval(v.surface("gradients"), f.name, "%.1f", at(f, 1)) << "</td><td>"
         << with_interval(v.surface("gradients_batch8"), f.name, "%.1f", at(f, 8)) << "</td><td>"
         << exact_cell(f) << "</td><td>" << format_number(f.gradient_risk, "%.2f") << "</td><td>"
         << (f.exposed_layer.empty() ? "&ndash;"
                                     : escape_xml(f.exposed_layer) + " (" +
                                           format_number(f.exposed_layer_psnr, "%.1f dB") + ")" +
                                           interval_suffix(v.surface("features"), f.name, "%.1f"))
         << "</td></tr>\n";
  }
  const auto baseline = psnr_baseline(baselines);
  html << "</table>\n<p class=\"note\">PSNR in dB; brackets: 95% bootstrap intervals over targets"
       << (baseline.empty() ? "" : ". " + baseline) << "</p>\n";
  return html.str();
}

}  // namespace

void write_html_report(const std::string& dir, const audit::AuditRecords& records,
                       const Verdict& verdict) {
  const fs::path out(dir);
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>privaudit "
          "report</title>\n<style>"
       << kStyle << "\n"
       << kScorecardStyle << "</style></head><body>\n";
  html << "<h1>How much of the training data leaks?</h1>\n<p>privaudit attacked each model the way "
          "an adversary would: from its <b>weights</b> (network inversion), from the "
          "<b>gradients</b> a federated-learning client shares, and from its <b>intermediate "
          "features</b> (split inference). Dataset: <code>"
       << escape_xml(records.dataset) << "</code>.</p>\n";
  html << scorecard_html(verdict.scorecard) << headline(verdict) << recommendations(verdict)
       << rankings(verdict, records.baselines) << claims_table(verdict)
       << comparison_table(verdict, records.baselines) << memorization_section(out, verdict)
       << membership_section(out, verdict) << threat_models_section(verdict)
       << federated_section(verdict)
       << architecture_sections(out, records) << defense_section(out, records)
       << privacy_utility_section(out, verdict.privacy_utility);
  html << R"(<h2>What the figures mean</h2><dl>
<dt>SSIM</dt><dd>Structural similarity of two images, from about 0 (unrelated) to 1 (identical). What unrelated images, the class-mean image and an unseen image's nearest training image score on the dataset in use is measured and shown beside the figures.</dd>
<dt>PSNR</dt><dd>How close two images are pixel by pixel, in decibels. Above about 30 dB a reconstruction looks like the original; below about 15 dB it does not.</dd>
<dt>Training-likeness</dt><dd>The share of images rebuilt from the weights that are closer to a training image than to any unseen image of the same class. 0.5 means the attack found the class but nothing specific to the training set; above 0.5 the weights give away the training data itself.</dd>
<dt>Gradient risk</dt><dd>A score in [0,1] from privaudit's gradient audit: how strongly a close match of gradients forces a close match of images for this model. High risk means gradient inversion attacks work well on it.</dd>
<dt>Decoder PSNR</dt><dd>How well an attacker who sees a layer's output (for example in split inference) can rebuild the input image after training a decoder on similar public images.</dd>
</dl>
)";
  html << settings_section(records) << "</body></html>\n";
  write_file_atomic(out / "index.html", html.str());
}

}  // namespace privaudit::report
