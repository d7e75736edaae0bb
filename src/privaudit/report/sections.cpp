#include "privaudit/report/sections.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "privaudit/report/svg_plot.h"
#include "privaudit/util/text.h"

namespace privaudit::report {
namespace fs = std::filesystem;

std::string figure(const fs::path& out_dir, const std::string& stage_dir, const std::string& file,
                   const std::string& caption) {
  const std::string relative = stage_dir + "/" + file;
  if (!fs::exists(out_dir / relative)) return "";
  return "<figure><img src=\"" + escape_xml(relative) + "\" alt=\"" + escape_xml(caption) +
         "\"><figcaption>" + escape_xml(caption) + "</figcaption></figure>\n";
}

namespace {

std::vector<std::string> files_with_extension(const fs::path& dir, const std::string& extension) {
  std::vector<std::string> out;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return out;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_regular_file() && entry.path().extension() == extension)
      out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

template <class Results>
std::string note(const audit::Stage<Results>& stage, const std::string& what) {
  if (stage.status == "failed" || stage.status == "timed out")
    return "<p class=\"note\">" + escape_xml(what) + ": " + escape_xml(stage.status) + " (" +
           escape_xml(stage.message) + ").</p>\n";
  return "<p class=\"note\">" + escape_xml(what) + ": " + escape_xml(stage.status) + ".</p>\n";
}

template <class Results>
std::string dir_of(const audit::Stage<Results>& stage, const std::string& fallback) {
  return stage.dir.empty() ? fallback : stage.dir;
}

// "Verbatim copies of training images: k / n (SSIM above t)" for the models of an architecture
// inverted from their weights, from the stages' own counts.
std::string verbatim_copies_note(const audit::Run& run) {
  std::string cells;
  const auto add = [&cells](const audit::InversionRecord& r, const std::string& model) {
    if (!r.verbatim_copies) return;
    char cell[160];
    std::snprintf(cell, sizeof cell, "%s %lld / %zu (SSIM above %.3f)", model.c_str(),
                  static_cast<long long>(*r.verbatim_copies), r.reconstructions.size(),
                  r.copy_threshold_ssim);
    cells += (cells.empty() ? "" : "; ") + std::string(cell);
  };
  if (run.invert.results) add(*run.invert.results, "main model");
  for (const auto& m : run.memorization) {
    if (m.invert.results) add(*m.invert.results, std::to_string(m.per_class) + " per class");
  }
  if (cells.empty()) return "";
  return "<p>Verbatim copies of training images (nearest-train SSIM, over every training image "
         "of the class, above a threshold calibrated so that a held-out image passes it at most "
         "1% of the time): " +
         escape_xml(cells) + ".</p>\n";
}

}  // namespace

std::string memorization_section(const fs::path& out, const audit::Verdict& verdict) {
  if (verdict.memorization.empty()) return "";
  const auto* weights = verdict.surface("weights");
  // Sizes on the x axis: the memorisation sizes and each main model's.
  std::vector<int64_t> sizes;
  for (const auto& m : verdict.memorization) sizes.push_back(m.per_class);
  for (const auto& f : verdict.architectures) {
    if (f.main_per_class > 0 && weights && weights->entry(f.name) &&
        std::find(sizes.begin(), sizes.end(), f.main_per_class) == sizes.end())
      sizes.push_back(f.main_per_class);
  }
  std::sort(sizes.begin(), sizes.end());
  Plot plot;
  plot.title = "Training-likeness against training-set size";
  plot.x_label = "training images per class";
  plot.y_label = "training-likeness (95% interval)";
  plot.reference_y = 0.5;
  plot.reference_label = "0.5: no leak";
  for (const auto n : sizes) plot.x_categories.push_back(std::to_string(n));
  std::ostringstream table;
  table << "<table><tr><th>Architecture</th>";
  for (const auto n : sizes) table << "<th>" << n << " per class</th>";
  table << "</tr>\n";
  for (const auto& f : verdict.architectures) {
    Series series;
    series.name = f.name;
    series.points = true;
    table << "<tr><td>" << escape_xml(f.name) << "</td>";
    bool any = false;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const audit::SurfaceRanking* surface = nullptr;
      const audit::MemorizedArchitecture* info = nullptr;
      for (const auto& m : verdict.memorization) {
        if (m.per_class != sizes[i]) continue;
        surface = &m.surface;
        for (const auto& a : m.architectures) {
          if (a.arch == f.name) info = &a;
        }
      }
      if (surface == nullptr && f.main_per_class == sizes[i]) surface = weights;
      const auto* e = surface ? surface->entry(f.name) : nullptr;
      series.x.push_back(static_cast<double>(i));
      series.y.push_back(e ? e->value : NAN);
      series.low.push_back(e ? e->low : NAN);
      series.high.push_back(e ? e->high : NAN);
      any |= e != nullptr;
      table << "<td>";
      if (e == nullptr) {
        table << "&ndash;";
      } else {
        table << format_number(e->value, "%.2f") << " <small>[" << format_number(e->low, "%.2f")
              << ", " << format_number(e->high, "%.2f") << "]</small>";
        if (info != nullptr) {
          table << " <small>(train accuracy " << format_number(info->train_accuracy, "%.2f")
                << ")</small>" << (info->leak ? " <b>leaks</b>" : "");
        } else {
          table << " <small>(main model)</small>" << (f.weights_leak ? " <b>leaks</b>" : "");
        }
      }
      table << "</td>";
    }
    table << "</tr>\n";
    if (any) plot.series.push_back(series);
  }
  table << "</table>\n";
  write_svg((out / "memorization.svg").string(), plot);
  std::ostringstream html;
  html << "<h2>The memorisation regime: weights of models trained on few images</h2>\n<p>Each "
          "architecture is also trained on a few images per class to 100% training accuracy, "
          "where models memorise, and inverted from its weights like the main model. "
          "Training-likeness above 0.5 with its whole interval means the rebuilt images are "
          "nearer to the images it was trained on than to images of the same class it never saw: "
          "<b>leaks</b> marks those.</p>\n"
       << figure(out, ".", "memorization.svg",
                 "Training-likeness against training images per class (0.5 = no leak).")
       << table.str();
  return html.str();
}

std::string membership_section(const fs::path& out, const audit::Verdict& verdict) {
  if (verdict.membership.empty()) return "";
  const auto with = [](double value, double low, double high, const char* format) {
    return format_number(value, format) + " <small>[" + format_number(low, format) + ", " +
           format_number(high, format) + "]</small>";
  };
  std::ostringstream html;
  html << "<h2>From the weights: membership inference</h2>\n<p>K models of each architecture, "
          "each trained on a seeded random half of a pool; each in turn is the target and the "
          "others its reference models. An attack calls an image a member of the target's "
          "training set; the table gives the strongest attack (highest TPR at 1 % FPR) of LOSS, "
          "LiRA and RMIA. At 1 % FPR chance is a TPR of 0.01. Intervals are 95 % (DeLong for the "
          "AUC, Clopper-Pearson for the TPRs); &epsilon;&#770; is the lower bound on a DP "
          "training's &epsilon; (&delta; = 1e-5) that the decisions rule out. They treat the K x N "
          "decisions as independent, which they are not (docs/membership.md).</p>\n";
  html << "<table><tr><th>Regime</th><th>Architecture</th><th>Strongest attack</th><th>AUC</th>"
          "<th>TPR at 0.1 % FPR</th><th>TPR at 1 % FPR</th><th>&epsilon;&#770; &ge;</th>"
          "<th>Shuffled-label AUC</th><th>Models, decisions</th><th>Train / held-out "
          "accuracy</th></tr>\n";
  std::string plots;
  for (const auto& m : verdict.membership) {
    const auto& a = m.strongest;
    const auto regime = m.per_class == 0 ? std::string("main models' recipe")
                                         : std::to_string(m.per_class) + " per class";
    html << "<tr><td>" << escape_xml(regime) << "</td><td>" << escape_xml(m.arch) << "</td><td>"
         << escape_xml(a.attack) << "</td><td>" << with(a.auc, a.auc_low, a.auc_high, "%.3f")
         << "</td><td>" << with(a.tpr_0_1, a.tpr_0_1_low, a.tpr_0_1_high, "%.3f") << "</td><td>"
         << with(a.tpr_1, a.tpr_1_low, a.tpr_1_high, "%.3f") << "</td><td>"
         << format_number(a.epsilon, "%.2f") << "</td><td>" << format_number(a.null_auc, "%.3f")
         << "</td><td>" << m.models << ", " << m.decisions << "</td><td>"
         << format_number(m.train_accuracy, "%.3f") << " / "
         << format_number(m.held_out_accuracy, "%.3f") << "</td></tr>\n";
    if (!m.roc_plot.empty()) {
      const fs::path plot(m.roc_plot);
      plots += figure(out, plot.parent_path().string(), plot.filename().string(),
                      m.arch + ", " + regime +
                          ": ROC of every attack on log-log axes (the low-FPR "
                          "corner is where members are identified confidently)");
    }
    if (!m.exposed_plot.empty()) {
      const fs::path grid(m.exposed_plot);
      std::vector<double> sorted = m.exposed_ssim;
      std::sort(sorted.begin(), sorted.end());
      const double median = sorted.empty() ? NAN : sorted[sorted.size() / 2];
      std::string caption = m.arch + ", " + regime + ": the " +
                            std::to_string(m.exposed_ssim.size()) +
                            " images membership inference finds most exposed (top row) above "
                            "the reconstruction from the weights nearest to each (bottom row); "
                            "median SSIM " +
                            format_number(median, "%.2f");
      if (!std::isnan(m.copy_threshold_ssim)) {
        caption += ", " + std::to_string(m.exposed_copies()) +
                   " above the verbatim-copy threshold " +
                   format_number(m.copy_threshold_ssim, "%.2f");
      }
      plots += figure(out, grid.parent_path().string(), grid.filename().string(), caption);
    }
  }
  html << "</table>\n" << plots;
  return html.str();
}

std::string federated_section(const audit::Verdict& verdict) {
  const auto& t = verdict.federated;
  if (t.architectures.empty()) return "";
  std::string attacks;
  for (const auto& a : t.attacks) attacks += (attacks.empty() ? "" : ", ") + a;
  std::ostringstream html;
  html << "<h2>From federated updates (FedAvg)</h2>\n<p>Each client trains the shared model on its "
          "own images for a few local SGD steps and sends the parameter change; under secure "
          "aggregation the server sees only the mean over clients. Each cell: the strongest "
          "attack's mean PSNR over the images behind what the server sees (median; share rebuilt "
          "at &ge; 40 dB). Attacks run: "
       << escape_xml(attacks)
       << " (gradient attacks on the update read as one gradient; unrolled-ig replays the local "
          "steps).</p>\n<table><tr><th>Setting</th>";
  for (const auto& name : t.architectures) html << "<th>" << escape_xml(name) << "</th>";
  html << "</tr>\n";
  const auto plural = [](int64_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
  };
  for (const auto& row : t.rows) {
    const auto& s = row.setting;
    html << "<tr><td>" << escape_xml(s.label) << ": " << plural(s.clients, "client") << " &times; "
         << plural(s.images_per_client, "image") << ", " << plural(s.local_steps, "local step")
         << " of " << s.local_batch << (s.secure_aggregation ? ", secure aggregation" : "")
         << "</td>";
    for (const auto& cell : row.cells) {
      if (!cell.measured) {
        html << "<td>&ndash;</td>";
      } else if (cell.from_gradients_stage) {
        html << "<td>" << format_number(cell.psnr, "%.1f dB")
             << " <small>(gradients stage, batch 1: its attacks include features-then-invert)"
                "</small></td>";
      } else {
        html << "<td>" << format_number(cell.psnr, "%.1f dB") << " <small>(median "
             << format_number(cell.median_psnr, "%.1f") << "; "
             << format_number(cell.recovered_fraction, "%.2f") << ")</small></td>";
      }
    }
    html << "</tr>\n";
  }
  html << "</table>\n";
  return html.str();
}

std::string architecture_sections(const fs::path& out, const audit::AuditRecords& records) {
  std::ostringstream html;
  for (const auto& arch : records.architectures) {
    const std::string& name = arch.name;
    if (name == "defense") continue;
    const auto& run = arch.run;
    html << "<h2>" << escape_xml(name) << "</h2>\n<h3>From the weights: network inversion</h3>\n";
    if (run.invert.results) {
      html << figure(out, dir_of(run.invert, name + "/invert"), "reconstructions.png",
                     "Images rebuilt from the weights (left of each pair) beside the nearest "
                     "training image (right).");
    } else {
      html << note(run.invert, "Network inversion");
    }
    html << verbatim_copies_note(run);
    html << "<h3>From shared gradients</h3>\n";
    if (run.gradients.results) {
      const auto dir = dir_of(run.gradients, name + "/gradients");
      for (const auto& file : files_with_extension(out / dir, ".png")) {
        html << figure(out, dir, file,
                       file + ": private images (top) and what the attack rebuilt (bottom).");
      }
      for (const auto& file : files_with_extension(out / dir, ".svg")) {
        html << figure(out, dir, file,
                       "Gradient similarity against image similarity (the audit's relation).");
      }
    } else {
      html << note(run.gradients, "The gradient attacks");
    }
    html << "<h3>From intermediate features</h3>\n";
    if (run.layers.results) {
      const auto dir = dir_of(run.layers, name + "/layers");
      html << figure(out, dir, "layers.svg", "Per-layer risk figures against depth.");
      html << figure(out, dir, "decoder_reconstructions.png",
                     "Targets (top row), then what a decoder rebuilt from each layer's output.");
    } else {
      html << note(run.layers, "The per-layer analysis");
    }
  }
  return html.str();
}

std::string defense_section(const fs::path& out, const audit::AuditRecords& records) {
  std::ostringstream html;
  // Each architecture's defend stage (audit --defend); an audit of before 2026-12-07 had one,
  // of the CNN, under the name "defense".
  for (const auto& arch : records.architectures) {
    const auto& stage = arch.run.defend;
    if (!stage.present) continue;
    const std::string name = arch.defended();
    html << "<h2>Defense: adversarial reconstruction learning (" << escape_xml(name) << ")</h2>\n";
    if (!stage.results) {
      html << note(stage, "The defense");
      continue;
    }
    const std::string d = dir_of(stage, arch.name + "/defend");
    html << "<p>Each point is a " << escape_xml(name)
         << " trained so that a decoder cannot rebuild its inputs from its "
            "features; lambda is how hard it tries. A fresh, stronger decoder then attacks each "
            "one; the last column says whether the defense also protects the gradients a client "
            "would share.</p>\n";
    html << figure(out, d, "tradeoff.svg",
                   "Test accuracy against the attack's PSNR: lower PSNR is more private.");
    html << figure(out, d, "reconstructions.png",
                   "The same targets rebuilt from each lambda's features.");
    if (!stage.results->has_points) continue;
    html << "<table><tr><th>lambda</th><th>loss</th><th>Test accuracy</th><th>Attack "
            "PSNR</th><th>Attack SSIM</th><th>Gradient attack PSNR (IG, batch 1)</th></tr>\n";
    for (const auto& p : stage.results->points) {
      html << "<tr><td>" << format_number(p.lambda, "%g") << "</td><td>" << escape_xml(p.loss)
           << "</td><td>" << format_number(p.test_accuracy) << "</td><td>"
           << format_number(p.attack_psnr, "%.1f dB") << "</td><td>" << format_number(p.attack_ssim)
           << "</td><td>" << format_number(p.gradient_psnr, "%.1f dB") << "</td></tr>\n";
    }
    html << "</table>\n";
  }
  return html.str();
}

namespace {

template <class Results>
void stage_row(std::ostringstream& html, const std::string& label,
               const audit::Stage<Results>& stage) {
  if (!stage.present) return;
  html << "<tr><td>" << escape_xml(label) << "</td><td>"
       << escape_xml(stage.status + (stage.budget_stopped
                                         ? " (stopped by its time budget: figures are lower bounds)"
                                         : ""))
       << "</td><td>" << format_number(stage.seconds, "%.0f") << "</td><td>"
       << format_number(stage.peak_memory_mib, "%.0f")
       << "</td><td style=\"text-align:left\"><code>" << escape_xml(stage.command)
       << "</code></td></tr>\n";
}

void run_rows(std::ostringstream& html, const audit::Run& run, const std::string& label) {
  stage_row(html, label + "/defend", run.defend);
  stage_row(html, label + "/federated", run.federated);
  stage_row(html, label + "/gradients", run.gradients);
  stage_row(html, label + "/invert", run.invert);
  stage_row(html, label + "/layers", run.layers);
  stage_row(html, label + "/train", run.train);
  for (const auto& m : run.memorization) {
    const auto prefix = label + "/memorize-" + std::to_string(m.per_class);
    stage_row(html, prefix + "/invert", m.invert);
    stage_row(html, prefix + "/train", m.train);
  }
}

}  // namespace

std::string settings_section(const audit::AuditRecords& records) {
  std::ostringstream html;
  html << "<h2>Settings, versions and time per stage</h2>\n<p>privaudit "
       << escape_xml(records.version) << ", LibTorch " << TORCH_VERSION << ", seed " << records.seed
       << ". Settings: <code>" << escape_xml(records.settings.dump()) << "</code>.</p>\n";
  html << "<table><tr><th>Stage</th><th>Status</th><th>Seconds</th><th>Peak memory "
          "(MiB)</th><th>Command to rerun it</th></tr>\n";
  for (const auto& arch : records.architectures) {
    run_rows(html, arch.run, arch.name);
    for (const auto& r : arch.repeats)
      run_rows(html, r, "seed-" + std::to_string(r.seed) + "/" + arch.name);
  }
  html << "</table>\n";
  return html.str();
}

}  // namespace privaudit::report
