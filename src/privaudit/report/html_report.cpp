#include "privaudit/report/html_report.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>

#include "privaudit/metrics/bootstrap.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/files.h"

namespace privaudit::report {
namespace fs = std::filesystem;

namespace {

std::string fmt(double value, const char* format = "%.3f") {
  if (!std::isfinite(value)) return "&ndash;";
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

const nlohmann::json* stage_results(const nlohmann::json& arch, const std::string& command) {
  if (!arch.contains(command)) return nullptr;
  const auto& stage = arch.at(command);
  if (!stage.contains("results") || !stage.at("results").is_object()) return nullptr;
  return &stage.at("results");
}

std::string stage_status(const nlohmann::json& arch, const std::string& command) {
  if (!arch.contains(command)) return "not run";
  return arch.at(command).value("status", "not run");
}

// The strongest attack's entry at `batch` (per target the best attack, averaged), or null.
const nlohmann::json* strongest_entry(const nlohmann::json& arch, int batch) {
  const auto* results = stage_results(arch, "gradients");
  if (results == nullptr || !results->contains("strongest")) return nullptr;
  for (const auto& entry : results->at("strongest")) {
    if (entry.value("batch_size", 0) == batch) return &entry;
  }
  return nullptr;
}

// The strongest attack's mean PSNR at `batch`; for results without it, the best attack's mean.
double gradient_psnr(const nlohmann::json& arch, int batch) {
  if (const auto* entry = strongest_entry(arch, batch)) return json_number(*entry, "psnr");
  const auto* results = stage_results(arch, "gradients");
  if (results == nullptr || !results->contains("runs")) return NAN;
  double best = NAN;
  for (const auto& run : results->at("runs")) {
    if (run.value("batch_size", 0) != batch || !run.contains("psnr") || !run["psnr"].is_number())
      continue;
    const double psnr = run["psnr"].get<double>();
    if (!std::isfinite(best) || psnr > best) best = psnr;
  }
  return best;
}

// "k / n" images recovered exactly (self-certified) at `batch`, with the attacks that won.
std::string gradient_exact(const nlohmann::json& arch, int batch) {
  const auto* entry = strongest_entry(arch, batch);
  if (entry == nullptr) return "&ndash;";
  const auto count = [](const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number() ? std::to_string(it->get<int64_t>()) : "?";
  };
  std::string winners;
  const auto wins = entry->find("wins");
  if (wins != entry->end() && wins->is_object()) {
    for (const auto& [name, n] : wins->items()) {
      if (n.is_number())
        winners += (winners.empty() ? "" : ", ") + name + " " + std::to_string(n.get<int64_t>());
    }
  }
  return count(*entry, "exact") + " / " + count(*entry, "targets_scored") +
         (winners.empty() ? "" : " <small>(best: " + escape_xml(winners) + ")</small>");
}

// The federated stage's table: one row per FedAvg setting, one column per architecture, each cell
// the strongest attack on what the server sees: mean PSNR, median, share recovered (>= 40 dB).
std::string federated_table(const nlohmann::json& architectures) {
  std::vector<std::string> labels;
  std::map<std::string, std::string> described;
  std::vector<const nlohmann::json*> columns, column_archs;
  std::vector<std::string> names;
  std::string attacks;
  for (const auto& arch : architectures) {
    const auto* results = stage_results(arch, "federated");
    if (results == nullptr || !results->contains("sweep")) continue;
    columns.push_back(results);
    column_archs.push_back(&arch);
    names.push_back(arch.value("name", "?"));
    if (attacks.empty() && results->contains("federated")) {
      for (const auto& a : results->at("federated").value("attacks", nlohmann::json::array()))
        attacks += (attacks.empty() ? "" : ", ") + a.get<std::string>();
    }
    for (const auto& row : results->at("sweep")) {
      const std::string label = row.value("label", "?");
      if (described.count(label)) continue;
      labels.push_back(label);
      const auto training = row.value("training", nlohmann::json::object());
      std::ostringstream text;
      text << row.value("clients", 0) << " client" << (row.value("clients", 0) == 1 ? "" : "s")
           << " &times; " << row.value("images_per_client", 0) << " image"
           << (row.value("images_per_client", 0) == 1 ? "" : "s") << ", "
           << training.value("local_steps", 0) << " local step"
           << (training.value("local_steps", 0) == 1 ? "" : "s") << " of "
           << training.value("local_batch", 0)
           << (row.value("secure_aggregation", false) ? ", secure aggregation" : "");
      described[label] = text.str();
    }
  }
  if (columns.empty()) return "";
  std::ostringstream html;
  html << "<h2>From federated updates (FedAvg)</h2>\n<p>Each client trains the shared model on its "
          "own images for a few local SGD steps and sends the parameter change; under secure "
          "aggregation the server sees only the mean over clients. Each cell: the strongest "
          "attack's mean PSNR over the images behind what the server sees (median; share rebuilt "
          "at &ge; 40 dB). Attacks run: "
       << escape_xml(attacks)
       << " (gradient attacks on the update read as one gradient; unrolled-ig replays the local "
          "steps).</p>\n<table><tr><th>Setting</th>";
  for (const auto& name : names) html << "<th>" << escape_xml(name) << "</th>";
  html << "</tr>\n";
  for (const auto& label : labels) {
    html << "<tr><td>" << escape_xml(label) << ": " << described[label] << "</td>";
    for (size_t c = 0; c < columns.size(); ++c) {
      const auto* results = columns[c];
      const nlohmann::json* row = nullptr;
      for (const auto& r : results->at("sweep")) {
        if (r.value("label", "") == label) row = &r;
      }
      if (row == nullptr) {
        html << "<td>&ndash;</td>";
        continue;
      }
      // One image, one step is the batch-1 gradient: never less than the gradients stage's
      // strongest attack reached on that threat model.
      const double stage = label == "clients1" ? gradient_psnr(*column_archs[c], 1) : NAN;
      if (std::isfinite(stage) && !(stage <= json_number(*row, "psnr"))) {
        html << "<td>" << fmt(stage, "%.1f dB")
             << " <small>(gradients stage, batch 1: its attacks include features-then-invert)"
                "</small></td>";
        continue;
      }
      html << "<td>" << fmt(json_number(*row, "psnr"), "%.1f dB") << " <small>(median "
           << fmt(json_number(*row, "median_psnr"), "%.1f") << "; "
           << fmt(json_number(*row, "recovered_fraction"), "%.2f") << ")</small></td>";
    }
    html << "</tr>\n";
  }
  html << "</table>\n";
  return html.str();
}

double inversion_ssim(const nlohmann::json& arch) {
  const auto* results = stage_results(arch, "invert");
  return results ? json_number(*results, "summary/nearest_train_ssim") : NAN;
}

// The cut point whose decoder reconstructs best: {name, psnr}.
std::pair<std::string, double> most_exposed_layer(const nlohmann::json& arch) {
  const auto* results = stage_results(arch, "layers");
  std::pair<std::string, double> best{"", NAN};
  if (results == nullptr || !results->contains("layers")) return best;
  for (const auto& layer : results->at("layers")) {
    const double psnr = json_number(layer, "decoder_psnr");
    if (std::isfinite(psnr) && (!std::isfinite(best.second) || psnr > best.second)) {
      best = {layer.value("name", "?"), psnr};
    }
  }
  return best;
}

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

std::string figure_block(const fs::path& out_dir, const std::string& stage_dir,
                         const std::string& file, const std::string& caption) {
  const std::string relative = stage_dir + "/" + file;
  if (!fs::exists(out_dir / relative)) return "";
  return "<figure><img src=\"" + escape_xml(relative) + "\" alt=\"" + escape_xml(caption) +
         "\"><figcaption>" + escape_xml(caption) + "</figcaption></figure>\n";
}

std::string stage_note(const nlohmann::json& arch, const std::string& command,
                       const std::string& what) {
  const std::string status = stage_status(arch, command);
  std::string message;
  if (arch.contains(command)) message = arch.at(command).value("message", "");
  if (status == "failed")
    return "<p class=\"note\">" + escape_xml(what) + ": failed (" + escape_xml(message) +
           ").</p>\n";
  return "<p class=\"note\">" + escape_xml(what) + ": " + escape_xml(status) + ".</p>\n";
}

const char* kStyle =
    R"(body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:0.2em}h2{border-bottom:1px solid #ccc;padding-bottom:0.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:0.35em 0.7em;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.verdict{background:#fff6e0;border-left:6px solid #e8a200;padding:0.8em 1.2em;font-size:1.1em}
.note{color:#666;font-style:italic}figure{display:inline-block;margin:0.5em 1em 0.5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:0.9em;color:#444;max-width:640px}
dt{font-weight:bold;margin-top:0.6em}code{background:#f4f4f4;padding:0 0.2em})";

}  // namespace

double json_number(const nlohmann::json& json, const std::string& path) {
  const nlohmann::json* node = &json;
  std::stringstream stream(path);
  std::string key;
  while (std::getline(stream, key, '/')) {
    if (!node->is_object() || !node->contains(key)) return NAN;
    node = &node->at(key);
  }
  return node->is_number() ? node->get<double>() : NAN;
}

namespace {

// Orders the architectures on one surface's per-target values, with intervals and the decision
// for each neighbouring pair.
nlohmann::json rank_surface(const nlohmann::json& architectures, const std::string& figure,
                            const std::string& meaning,
                            const std::function<std::vector<double>(const nlohmann::json&)>& of) {
  struct Entry {
    std::string arch;
    std::vector<double> values;
    metrics::Interval interval;
  };
  std::vector<Entry> entries;
  for (const auto& arch : architectures) {
    auto values = of(arch);
    if (values.empty()) continue;
    const auto interval = metrics::bootstrap_mean(values);
    entries.push_back({arch.value("name", "?"), std::move(values), interval});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.interval.estimate > b.interval.estimate;
  });
  nlohmann::json surface = {{"figure", figure},
                            {"meaning", meaning},
                            {"level", 0.95},
                            {"order", nlohmann::json::array()},
                            {"steps", nlohmann::json::array()}};
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    surface["order"].push_back({{"arch", e.arch},
                                {"value", e.interval.estimate},
                                {"low", e.interval.low},
                                {"high", e.interval.high},
                                {"n", e.interval.n}});
    if (i + 1 == entries.size()) break;
    const auto c = metrics::compare_means(e.values, entries[i + 1].values);
    surface["steps"].push_back({{"higher", e.arch},
                                {"lower", entries[i + 1].arch},
                                {"difference", c.difference.estimate},
                                {"low", c.difference.low},
                                {"high", c.difference.high},
                                {"decision", c.ranked ? "ranked" : "indistinguishable"},
                                {"more_targets", c.more_needed}});
  }
  return surface;
}

// "<b>From the weights</b> (...): mlp 0.60 [0.43, 0.77] = cnn ..." with the decisions.
std::string surface_verdict(const std::string& title, const nlohmann::json& surface,
                            const char* format) {
  const auto& order = surface.at("order");
  if (order.empty()) return "";
  std::ostringstream line;
  line << "<br><b>" << title << "</b> (" << escape_xml(surface.value("meaning", ""))
       << "; 95% intervals over targets): ";
  std::string unsettled;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0) {
      const auto& step = surface.at("steps")[i - 1];
      const bool ranked = step.value("decision", "") == "ranked";
      line << (ranked ? " &gt; " : " &asymp; ");
      const auto more = step.value("more_targets", int64_t{0});
      if (!ranked && more > 0 && unsettled.empty()) unsettled = std::to_string(more);
    }
    line << escape_xml(order[i].value("arch", "?")) << " "
         << fmt(json_number(order[i], "value"), format) << " ["
         << fmt(json_number(order[i], "low"), format) << ", "
         << fmt(json_number(order[i], "high"), format) << "]";
  }
  line << ".";
  bool any_tie = false;
  for (const auto& step : surface.at("steps")) any_tie |= step.value("decision", "") != "ranked";
  if (any_tie) {
    line << " &asymp; marks architectures indistinguishable at this budget";
    if (!unsettled.empty())
      line << " (about " << unsettled << " more targets each would settle the first such pair)";
    line << ".";
  }
  return line.str();
}

// Per threat surface: what the figures say in plain words, and what to do about it. Each
// recommendation follows from the run's own figures; none claims safety a failed attack cannot
// prove.
nlohmann::json recommend(const nlohmann::json& architectures, const nlohmann::json& surfaces) {
  nlohmann::json out = nlohmann::json::array();
  const auto add = [&](const char* surface, const std::string& finding, const std::string& action) {
    out.push_back({{"surface", surface}, {"finding", finding}, {"recommendation", action}});
  };
  // Gradients.
  std::string exact, batch8;
  for (const auto& arch : architectures) {
    const auto* entry = strongest_entry(arch, 1);
    const std::string name = arch.value("name", "?");
    if (entry != nullptr && entry->value("exact", int64_t{0}) > 0) {
      exact += (exact.empty() ? "" : ", ") + name + " (" +
               std::to_string(entry->value("exact", int64_t{0})) + "/" +
               std::to_string(entry->value("targets_scored", int64_t{0})) + ")";
    }
    const double at8 = gradient_psnr(arch, 8);
    if (std::isfinite(at8))
      batch8 += (batch8.empty() ? "" : ", ") + name + " " + fmt(at8, "%.1f dB");
  }
  const auto& gradient_order = surfaces["gradients"]["order"];
  if (!exact.empty()) {
    add("gradients",
        "Any image shared alone is rebuilt exactly from the gradient of " + exact +
            " (closed-form attacks, self-certified without the original).",
        "Do not share per-example gradients of these models: aggregate over larger batches (at "
        "batch 8 the strongest attack reached " +
            (batch8.empty() ? std::string("-") : batch8) +
            ") or use secure aggregation, and audit again at the batch size you deploy.");
  } else if (!gradient_order.empty()) {
    const double best = json_number(gradient_order[0], "value");
    const std::string who = gradient_order[0].value("arch", "?");
    if (best >= 30) {
      add("gradients",
          "The gradient of one image gives the image back recognisably for " + who + " (" +
              fmt(best, "%.1f dB") + ").",
          "Do not share per-example gradients: aggregate over batches and audit again.");
    } else {
      add("gradients",
          "No attack of this run rebuilt a single image recognisably (best " + who + ", " +
              fmt(best, "%.1f dB") + ").",
          "This is what these attacks reached, not a bound: keep batches large and audit again "
          "with a larger budget.");
    }
  }
  // Weights.
  const auto& weight_order = surfaces["weights"]["order"];
  if (!weight_order.empty()) {
    const auto& top = weight_order[0];
    if (json_number(top, "low") > 0.5) {
      add("weights",
          "Images rebuilt from " + top.value("arch", std::string("?")) +
              "'s weights are nearer to its training images than to held-out ones "
              "(training-likeness " +
              fmt(json_number(top, "value"), "%.2f") + ", interval above 0.5).",
          "Treat these weights as training data: do not publish them, or train on more data or "
          "with the defense, and audit again.");
    } else {
      add("weights",
          "No architecture's weights give back training images measurably at this budget (every "
          "training-likeness interval reaches 0.5 or below).",
          "This does not prove the weights safe: models trained on small sets memorise. Audit the "
          "model you will publish with its real training-set size.");
    }
  }
  // Features.
  const auto& feature_order = surfaces["features"]["order"];
  if (!feature_order.empty()) {
    const auto& top = feature_order[0];
    const std::string who = top.value("arch", "?");
    std::string cut;
    for (const auto& arch : architectures) {
      if (arch.value("name", "") == who) cut = most_exposed_layer(arch).first;
    }
    const double psnr = json_number(top, "value");
    if (psnr >= 20) {
      add("features",
          "A decoder trained on public data rebuilds held-out images from " + who + "'s cut '" +
              cut + "' at " + fmt(psnr, "%.1f dB") + ".",
          "Do not send that cut's output in split inference: cut deeper, or train with "
          "`privaudit defend`, and audit again.");
    } else {
      add("features",
          "Decoders rebuild no recognisable image from any cut (best " + who + " '" + cut + "', " +
              fmt(psnr, "%.1f dB") + ").",
          "A stronger decoder (more data, more epochs) may do better: audit again before relying "
          "on it.");
    }
  }
  return out;
}

}  // namespace

nlohmann::json rank_architectures(const nlohmann::json& architectures) {
  bool have_inversion = false;
  for (const auto& arch : architectures) have_inversion |= std::isfinite(inversion_ssim(arch));
  nlohmann::json ranking;
  if (have_inversion) {
    ranking["figure"] = "nearest_train_ssim";
    ranking["meaning"] =
        "mean SSIM between images rebuilt from the model's weights alone and their nearest "
        "training image "
        "(1 = an exact copy of a training image, around 0.1 = unrelated images)";
  } else {
    ranking["figure"] = "gradient_psnr_batch1";
    ranking["meaning"] =
        "PSNR in dB of the best gradient attack on one shared image (above ~30 dB the image is "
        "visually "
        "recovered; below ~15 dB it is not)";
  }
  std::vector<std::pair<double, std::string>> values;
  for (const auto& arch : architectures) {
    const double value = have_inversion ? inversion_ssim(arch) : gradient_psnr(arch, 1);
    if (std::isfinite(value)) values.push_back({value, arch.value("name", "?")});
  }
  std::sort(values.begin(), values.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  ranking["order"] = nlohmann::json::array();
  for (const auto& [value, name] : values)
    ranking["order"].push_back({{"arch", name}, {"value", value}});
  // One ranking per threat surface, on a figure that measures leakage of training data or of
  // the private input, with 95% bootstrap intervals over targets: two architectures are ranked
  // apart only when the interval of their difference excludes zero.
  auto& surfaces = ranking["surfaces"];
  surfaces["weights"] = rank_surface(
      architectures, "training_likeness",
      "share of the images rebuilt from the weights that are nearer to a training image than to "
      "any held-out one (0.5 = no leak, 1 = every one is a training image)",
      [](const nlohmann::json& arch) {
        std::vector<double> values;
        const auto* results = stage_results(arch, "invert");
        if (results == nullptr || !results->contains("reconstructions")) return values;
        for (const auto& r : results->at("reconstructions")) {
          const double v = json_number(r, "nearer_to_train");
          if (std::isfinite(v)) values.push_back(v);
        }
        return values;
      });
  surfaces["features"] = rank_surface(
      architectures, "most_exposed_layer_decoder_psnr",
      "PSNR (dB) of the decoder that rebuilds held-out images from the most exposed cut point's "
      "output",
      [](const nlohmann::json& arch) {
        std::vector<double> values;
        const auto* results = stage_results(arch, "layers");
        const auto exposed = most_exposed_layer(arch);
        if (results == nullptr || exposed.first.empty()) return values;
        for (const auto& layer : results->value("layers", nlohmann::json::array())) {
          if (layer.value("name", "") != exposed.first || !layer.contains("decoder_psnr_per_image"))
            continue;
          for (const auto& v : layer["decoder_psnr_per_image"]) {
            if (v.is_number()) values.push_back(v.get<double>());
          }
        }
        return values;
      });
  surfaces["gradients"] = rank_surface(
      architectures, "strongest_attack_psnr_batch1",
      "PSNR (dB) of the strongest gradient attack of the run on each image shared alone "
      "(closed-form attacks included; above ~30 dB the image is visually recovered)",
      [](const nlohmann::json& arch) {
        std::vector<double> values;
        const auto* entry = strongest_entry(arch, 1);
        if (entry == nullptr || !entry->contains("targets")) return values;
        for (const auto& t : entry->at("targets")) {
          const double v = json_number(t, "psnr");
          if (std::isfinite(v)) values.push_back(v);
        }
        return values;
      });
  ranking["recommendations"] = recommend(architectures, surfaces);
  return ranking;
}

void write_html_report(const std::string& dir, const nlohmann::json& audit) {
  const fs::path out(dir);
  const auto& architectures = audit.at("architectures");
  const auto& ranking = audit.at("ranking");
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>privaudit "
          "report</title>\n<style>"
       << kStyle << "</style></head><body>\n";
  html << "<h1>How much of the training data leaks?</h1>\n<p>privaudit attacked each model the way "
          "an adversary "
          "would: from its <b>weights</b> (network inversion), from the <b>gradients</b> a "
          "federated-learning "
          "client shares, and from its <b>intermediate features</b> (split inference). Dataset: "
          "<code>"
       << escape_xml(audit.value("settings", nlohmann::json::object()).value("data", "?"))
       << "</code>.</p>\n";

  // Verdict: one ranking per threat surface, each on a leak figure with its interval; a name
  // is given as "most reconstructable" only when the data separate it from the next.
  html << "<div class=\"verdict\">";
  const auto& order = ranking.at("order");
  const auto surfaces = ranking.value("surfaces", nlohmann::json::object());
  const auto weights = surfaces.value("weights", nlohmann::json::object());
  const auto weight_order = weights.value("order", nlohmann::json::array());
  const auto weight_steps = weights.value("steps", nlohmann::json::array());
  if (order.empty() && weight_order.empty()) {
    html << "No attack finished, so the architectures cannot be ranked yet.";
  } else if (weight_order.size() >= 2 && weight_steps[0].value("decision", "") == "ranked") {
    html << "<b>Most reconstructable from its weights: "
         << escape_xml(weight_order[0].value("arch", "?")) << ".</b>";
  } else if (weight_order.size() >= 2) {
    html << "<b>From the weights, no architecture leaks measurably more than the next at this "
            "budget.</b>";
  }
  if (!order.empty()) {
    const bool ssim = ranking.value("figure", "") == "nearest_train_ssim";
    html << (weight_order.size() >= 2 ? "<br>" : "")
         << (ssim ? "Similarity to the nearest training image (a class prototype scores well on "
                    "it too: not a leak figure on its own): "
                  : "Ranking, most to least: ");
    for (size_t i = 0; i < order.size(); ++i) {
      html << (i ? " &gt; " : "") << escape_xml(order[i].value("arch", "?")) << " ("
           << fmt(order[i].value("value", NAN), ssim ? "%.3f" : "%.1f dB") << ")";
    }
    html << ". The figure is the " << escape_xml(ranking.value("meaning", "")) << ".";
  }
  if (surfaces.contains("weights")) {
    html << surface_verdict("From the weights", surfaces["weights"], "%.2f");
  }
  if (surfaces.contains("gradients")) {
    html << surface_verdict("From shared gradients", surfaces["gradients"], "%.1f");
  }
  if (surfaces.contains("features")) {
    html << surface_verdict("From intermediate features", surfaces["features"], "%.1f");
  }
  const auto advice = ranking.value("recommendations", nlohmann::json::array());
  if (!advice.empty()) {
    html << "<ul class=\"advice\">";
    for (const auto& item : advice) {
      html << "<li><b>" << escape_xml(item.value("surface", "?")) << ":</b> "
           << escape_xml(item.value("finding", "")) << " <i>What to do:</i> "
           << escape_xml(item.value("recommendation", "")) << "</li>";
    }
    html << "</ul>";
  }
  html << "</div>\n";

  // Comparison table.
  html << "<h2>Comparison</h2>\n<table><tr><th>Architecture</th><th>Test "
          "accuracy</th><th>Training-likeness</th>"
          "<th>Nearest-train SSIM</th><th>Gradient PSNR, batch 1 (strongest attack)</th><th>batch "
          "8</th><th>Recovered exactly (self-certified), batch 1</th><th>Gradient risk</th>"
          "<th>Most exposed layer (decoder PSNR)</th></tr>\n";
  for (const auto& arch : architectures) {
    const auto* train = stage_results(arch, "train");
    const auto* invert = stage_results(arch, "invert");
    const auto* gradients = stage_results(arch, "gradients");
    const auto layer = most_exposed_layer(arch);
    html << "<tr><td>" << escape_xml(arch.value("name", "?")) << "</td><td>"
         << fmt(train ? json_number(*train, "test_accuracy") : NAN) << "</td><td>"
         << fmt(invert ? json_number(*invert, "summary/training_likeness") : NAN, "%.2f")
         << "</td><td>" << fmt(inversion_ssim(arch)) << "</td><td>"
         << fmt(gradient_psnr(arch, 1), "%.1f dB") << "</td><td>"
         << fmt(gradient_psnr(arch, 8), "%.1f dB") << "</td><td>" << gradient_exact(arch, 1)
         << "</td><td>" << fmt(gradients ? json_number(*gradients, "audit/risk") : NAN, "%.2f")
         << "</td><td>"
         << (layer.first.empty()
                 ? "&ndash;"
                 : escape_xml(layer.first) + " (" + fmt(layer.second, "%.1f dB") + ")")
         << "</td></tr>\n";
  }
  html << "</table>\n";
  html << federated_table(architectures);

  // Per architecture.
  for (const auto& arch : architectures) {
    const std::string name = arch.value("name", "?");
    if (name == "defense") continue;
    html << "<h2>" << escape_xml(name) << "</h2>\n";
    const auto stage_dir = [&](const std::string& command) {
      return arch.contains(command) ? arch.at(command).value("dir", name + "/" + command)
                                    : name + "/" + command;
    };
    html << "<h3>From the weights: network inversion</h3>\n";
    if (stage_results(arch, "invert")) {
      html << figure_block(out, stage_dir("invert"), "reconstructions.png",
                           "Images rebuilt from the weights (left of each pair) beside the nearest "
                           "training image (right).");
    } else {
      html << stage_note(arch, "invert", "Network inversion");
    }
    html << "<h3>From shared gradients</h3>\n";
    if (stage_results(arch, "gradients")) {
      for (const auto& file : files_with_extension(out / stage_dir("gradients"), ".png")) {
        html << figure_block(out, stage_dir("gradients"), file,
                             file + ": private images (top) and what the attack rebuilt (bottom).");
      }
      for (const auto& file : files_with_extension(out / stage_dir("gradients"), ".svg")) {
        html << figure_block(
            out, stage_dir("gradients"), file,
            "Gradient similarity against image similarity (the audit's relation).");
      }
    } else {
      html << stage_note(arch, "gradients", "The gradient attacks");
    }
    html << "<h3>From intermediate features</h3>\n";
    if (stage_results(arch, "layers")) {
      html << figure_block(out, stage_dir("layers"), "layers.svg",
                           "Per-layer risk figures against depth.");
      html << figure_block(
          out, stage_dir("layers"), "decoder_reconstructions.png",
          "Targets (top row), then what a decoder rebuilt from each layer's output.");
    } else {
      html << stage_note(arch, "layers", "The per-layer analysis");
    }
  }

  // Defense.
  for (const auto& arch : architectures) {
    if (arch.value("name", "") != "defense") continue;
    html << "<h2>Defense: adversarial reconstruction learning</h2>\n";
    const auto* defend = stage_results(arch, "defend");
    if (defend == nullptr) {
      html << stage_note(arch, "defend", "The defense");
      continue;
    }
    const std::string d = arch.at("defend").value("dir", "defense/defend");
    html << "<p>Each point is a CNN trained so that a decoder cannot rebuild its inputs from its "
            "features; lambda is "
            "how hard it tries. A fresh, stronger decoder then attacks each one; "
            "the last column says whether the defense also protects the gradients a client would "
            "share.</p>\n";
    html << figure_block(out, d, "tradeoff.svg",
                         "Test accuracy against the attack's PSNR: lower PSNR is more private.");
    html << figure_block(out, d, "reconstructions.png",
                         "The same targets rebuilt from each lambda's features.");
    if (defend->contains("points")) {
      html << "<table><tr><th>lambda</th><th>loss</th><th>Test accuracy</th><th>Attack "
              "PSNR</th><th>Attack SSIM</th>"
              "<th>Gradient attack PSNR (IG, batch 1)</th></tr>\n";
      for (const auto& p : defend->at("points")) {
        html << "<tr><td>" << fmt(json_number(p, "lambda"), "%g") << "</td><td>"
             << escape_xml(p.value("loss", "?")) << "</td><td>"
             << fmt(json_number(p, "test_accuracy")) << "</td><td>"
             << fmt(json_number(p, "attack_psnr"), "%.1f dB") << "</td><td>"
             << fmt(json_number(p, "attack_ssim")) << "</td><td>"
             << fmt(json_number(p, "gradient_psnr"), "%.1f dB") << "</td></tr>\n";
      }
      html << "</table>\n";
    }
  }

  html << R"(<h2>What the figures mean</h2><dl>
<dt>SSIM</dt><dd>Structural similarity of two images, from about 0 (unrelated) to 1 (identical).</dd>
<dt>PSNR</dt><dd>How close two images are pixel by pixel, in decibels. Above about 30 dB a reconstruction looks like the original; below about 15 dB it does not.</dd>
<dt>Training-likeness</dt><dd>The share of images rebuilt from the weights that are closer to a training image than to any unseen image of the same class. 0.5 means the attack found the class but nothing specific to the training set; above 0.5 the weights give away the training data itself.</dd>
<dt>Gradient risk</dt><dd>A score in [0,1] from privaudit's gradient audit: how strongly a close match of gradients forces a close match of images for this model. High risk means gradient inversion attacks work well on it.</dd>
<dt>Decoder PSNR</dt><dd>How well an attacker who sees a layer's output (for example in split inference) can rebuild the input image after training a decoder on similar public images.</dd>
</dl>
)";

  // Settings and timings.
  html << "<h2>Settings, versions and time per stage</h2>\n<p>privaudit "
       << escape_xml(audit.value("version", "?")) << ", LibTorch " << TORCH_VERSION << ", seed "
       << audit.value("seed", 0) << ". Settings: <code>"
       << escape_xml(audit.value("settings", nlohmann::json::object()).dump()) << "</code>.</p>\n";
  html << "<table><tr><th>Stage</th><th>Status</th><th>Seconds</th><th>Peak memory "
          "(MiB)</th><th>Command to rerun it</th></tr>\n";
  for (const auto& arch : architectures) {
    for (const auto& [key, stage] : arch.items()) {
      if (!stage.is_object() || !stage.contains("status")) continue;
      // A stage whose time budget stopped an attack says so: its figures are lower bounds.
      const bool stopped = stage.contains("results") && stage["results"].is_object() &&
                           stage["results"].value("stopped", "") == "budget";
      html << "<tr><td>" << escape_xml(arch.value("name", "?") + "/" + key) << "</td><td>"
           << escape_xml(stage.value("status", "") +
                         (stopped ? " (stopped by its time budget: figures are lower bounds)" : ""))
           << "</td><td>" << fmt(stage.value("seconds", NAN), "%.0f") << "</td><td>"
           << fmt(stage.contains("results") && stage["results"].is_object()
                      ? json_number(stage["results"], "peak_memory_mib")
                      : NAN,
                  "%.0f")
           << "</td><td style=\"text-align:left\"><code>" << escape_xml(stage.value("command", ""))
           << "</code></td></tr>\n";
    }
  }
  html << "</table>\n</body></html>\n";
  write_file_atomic(out / "index.html", html.str());
}

}  // namespace privaudit::report
