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
.claims td{text-align:left}dt{font-weight:bold;margin-top:0.6em}code{background:#f4f4f4;padding:0 0.2em})";

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

// The runs of an architecture: its own (the audit's seed) and its repeats (--repeats), each
// shaped alike ({"train": ..., "invert": ..., "memorization": [...]}).
std::vector<const nlohmann::json*> runs_of(const nlohmann::json& arch) {
  std::vector<const nlohmann::json*> runs = {&arch};
  const auto repeats = arch.find("repeats");
  if (repeats != arch.end() && repeats->is_array()) {
    for (const auto& run : *repeats) runs.push_back(&run);
  }
  return runs;
}

using ValuesOf = std::function<std::vector<double>(const nlohmann::json& run)>;

// An architecture's per-target values of one figure, pooled over its runs.
std::vector<double> pooled(const nlohmann::json& arch, const ValuesOf& of) {
  std::vector<double> values;
  for (const auto* run : runs_of(arch)) {
    const auto more = of(*run);
    values.insert(values.end(), more.begin(), more.end());
  }
  return values;
}

// The memorisation entry of `per_class` images per class in `run`, or null.
const nlohmann::json* memorization_entry(const nlohmann::json& run, int64_t per_class) {
  const auto sizes = run.find("memorization");
  if (sizes == run.end() || !sizes->is_array()) return nullptr;
  for (const auto& entry : *sizes) {
    if (entry.value("per_class", int64_t{0}) == per_class) return &entry;
  }
  return nullptr;
}

// Per reconstruction from an inversion's results: `key` ("nearer_to_train") or, with `minus`,
// key - minus (the train-minus-held-out SSIM gap).
std::vector<double> reconstruction_values(const nlohmann::json* results, const std::string& key,
                                          const std::string& minus = "") {
  std::vector<double> values;
  if (results == nullptr || !results->contains("reconstructions")) return values;
  for (const auto& r : results->at("reconstructions")) {
    const double v = json_number(r, key) - (minus.empty() ? 0.0 : json_number(r, minus));
    if (std::isfinite(v)) values.push_back(v);
  }
  return values;
}

std::vector<double> likeness_values(const nlohmann::json& run) {
  return reconstruction_values(stage_results(run, "invert"), "nearer_to_train");
}

ValuesOf memorized_likeness(int64_t per_class) {
  return [per_class](const nlohmann::json& run) {
    const auto* entry = memorization_entry(run, per_class);
    return entry ? likeness_values(*entry) : std::vector<double>{};
  };
}

ValuesOf gradient_values(int64_t batch) {
  return [batch](const nlohmann::json& run) {
    std::vector<double> values;
    const auto* entry = strongest_entry(run, static_cast<int>(batch));
    if (entry == nullptr || !entry->contains("targets")) return values;
    for (const auto& t : entry->at("targets")) {
      const double v = json_number(t, "psnr");
      if (std::isfinite(v)) values.push_back(v);
    }
    return values;
  };
}

// Per image, the decoder PSNR of the cut `which` of the run's layers: "exposed" (the cut of best
// mean PSNR, most_exposed_layer), "first" or "last" (by depth, among the cuts with per-image
// figures).
ValuesOf decoder_values(const std::string& which) {
  return [which](const nlohmann::json& run) {
    std::vector<double> values;
    const auto* results = stage_results(run, "layers");
    if (results == nullptr || !results->contains("layers")) return values;
    const std::string exposed = which == "exposed" ? most_exposed_layer(run).first : "";
    const nlohmann::json* chosen = nullptr;
    for (const auto& layer : results->at("layers")) {
      if (!layer.contains("decoder_psnr_per_image")) continue;
      if (which == "exposed" && layer.value("name", "") != exposed) continue;
      if (which == "first" && chosen != nullptr) continue;
      chosen = &layer;
    }
    if (chosen == nullptr) return values;
    for (const auto& v : chosen->at("decoder_psnr_per_image")) {
      if (v.is_number() && std::isfinite(v.get<double>())) values.push_back(v.get<double>());
    }
    return values;
  };
}

// The batch sizes of the run's strongest-attack entries, ascending.
std::vector<int64_t> gradient_batches(const nlohmann::json& architectures) {
  std::vector<int64_t> batches;
  for (const auto& arch : architectures) {
    const auto* results = stage_results(arch, "gradients");
    if (results == nullptr || !results->contains("strongest")) continue;
    for (const auto& entry : results->at("strongest")) {
      const auto b = entry.value("batch_size", int64_t{0});
      if (b > 0 && std::find(batches.begin(), batches.end(), b) == batches.end())
        batches.push_back(b);
    }
  }
  std::sort(batches.begin(), batches.end());
  return batches;
}

std::vector<int64_t> memorization_sizes(const nlohmann::json& architectures) {
  std::vector<int64_t> sizes;
  for (const auto& arch : architectures) {
    for (const auto* run : runs_of(arch)) {
      const auto entries = run->find("memorization");
      if (entries == run->end() || !entries->is_array()) continue;
      for (const auto& e : *entries) {
        const auto n = e.value("per_class", int64_t{0});
        if (n > 0 && std::find(sizes.begin(), sizes.end(), n) == sizes.end()) sizes.push_back(n);
      }
    }
  }
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

// Orders the architectures on one surface's per-target values (pooled over runs), with intervals
// and the decision for each neighbouring pair. `target` is the half-width the profile aims for:
// an interval wider than it is marked "wide".
nlohmann::json rank_surface(const nlohmann::json& architectures, const std::string& figure,
                            const std::string& meaning, double target, const ValuesOf& of) {
  struct Entry {
    std::string arch;
    std::vector<double> values;
    metrics::Interval interval;
  };
  std::vector<Entry> entries;
  for (const auto& arch : architectures) {
    auto values = pooled(arch, of);
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
                            {"target_half_width", target},
                            {"order", nlohmann::json::array()},
                            {"steps", nlohmann::json::array()}};
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const double half = (e.interval.high - e.interval.low) / 2;
    surface["order"].push_back({{"arch", e.arch},
                                {"value", e.interval.estimate},
                                {"low", e.interval.low},
                                {"high", e.interval.high},
                                {"half_width", half},
                                {"wide", e.interval.n < 2 || half > target},
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

const nlohmann::json* order_entry(const nlohmann::json& surface, const std::string& arch) {
  if (!surface.is_object() || !surface.contains("order")) return nullptr;
  for (const auto& entry : surface.at("order")) {
    if (entry.value("arch", "") == arch) return &entry;
  }
  return nullptr;
}

// " [0.43, 0.77]" (small) of `arch` on `surface`, or "".
std::string interval_suffix(const nlohmann::json& surface, const std::string& arch,
                            const char* format) {
  const auto* e = order_entry(surface, arch);
  if (e == nullptr) return "";
  return " <small>[" + fmt(json_number(*e, "low"), format) + ", " +
         fmt(json_number(*e, "high"), format) + "]</small>";
}

// "0.60 [0.43, 0.77]" of `arch` on `surface`; without an entry, `fallback` alone.
std::string with_interval(const nlohmann::json& surface, const std::string& arch,
                          const char* format, double fallback = NAN) {
  const auto* e = order_entry(surface, arch);
  if (e == nullptr) return fmt(fallback, format);
  return fmt(json_number(*e, "value"), format) + interval_suffix(surface, arch, format);
}

// "<b>From the weights</b> (...): mlp 0.60 [0.43, 0.77] = cnn ..." with the decisions.
std::string surface_verdict(const std::string& title, const nlohmann::json& surface,
                            const char* format, const std::string& baseline = "") {
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
  if (!baseline.empty()) line << " " << baseline;
  bool any_tie = false;
  for (const auto& step : surface.at("steps")) any_tie |= step.value("decision", "") != "ranked";
  if (any_tie) {
    line << " &asymp; marks architectures indistinguishable at this budget";
    if (!unsettled.empty())
      line << " (about " << unsettled << " more targets each would settle the first such pair)";
    line << ".";
  }
  std::string wide;
  for (const auto& entry : order) {
    if (entry.value("wide", false))
      wide += (wide.empty() ? "" : ", ") + escape_xml(entry.value("arch", "?"));
  }
  if (!wide.empty()) {
    line << " <i>Wider than the &plusmn;" << fmt(json_number(surface, "target_half_width"), "%g")
         << " this profile aims for: " << wide
         << " (more targets, <code>--repeats</code> or the paper profile narrow it).</i>";
  }
  return line.str();
}

// Per architecture on the memorisation regime: per size, the likeness interval, the training
// accuracy reached, and whether it leaks (interval above 0.5).
nlohmann::json memorization_ranking(const nlohmann::json& architectures) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto size : memorization_sizes(architectures)) {
    nlohmann::json entry = {{"per_class", size}};
    entry["surface"] =
        rank_surface(architectures, "training_likeness",
                     "training-likeness of images rebuilt from the weights of models trained on " +
                         std::to_string(size) + " images per class (0.5 = no leak)",
                     0.1, memorized_likeness(size));
    nlohmann::json archs = nlohmann::json::array();
    for (const auto& arch : architectures) {
      const std::string name = arch.value("name", "?");
      double accuracy_sum = 0;
      int trained = 0;
      for (const auto* run : runs_of(arch)) {
        const auto* m = memorization_entry(*run, size);
        const auto* train = m ? stage_results(*m, "train") : nullptr;
        if (train == nullptr) continue;
        accuracy_sum += json_number(*train, "train_accuracy");
        ++trained;
      }
      const auto* e = order_entry(entry["surface"], name);
      if (trained == 0 && e == nullptr) continue;
      archs.push_back({{"arch", name},
                       {"train_accuracy", trained ? accuracy_sum / trained : NAN},
                       {"leak", e != nullptr && json_number(*e, "low") > 0.5}});
    }
    entry["architectures"] = archs;
    out.push_back(entry);
  }
  return out;
}

// Images per class of the architecture's main model (its train stage), or 0.
int64_t main_per_class(const nlohmann::json& arch) {
  const auto* train = stage_results(arch, "train");
  if (train == nullptr || !train->contains("dataset")) return 0;
  const auto& dataset = train->at("dataset");
  const auto size = dataset.value("train_size", int64_t{0});
  const auto classes = dataset.contains("classes") && dataset["classes"].is_array()
                           ? static_cast<int64_t>(dataset["classes"].size())
                           : int64_t{0};
  return classes > 0 ? size / classes : 0;
}

// A claim of the seeds against this run: "reproduced", "not reproduced", "indistinguishable" or
// "not measured", with what was measured.
nlohmann::json claim(const std::string& source, const std::string& text, const std::string& verdict,
                     const std::string& measured) {
  return {{"source", source}, {"claim", text}, {"verdict", verdict}, {"measured", measured}};
}

// Whether `higher` exceeds `lower` on each pair (values of each side): all ranked the claimed
// way -> reproduced; any ranked the other way -> not reproduced; else indistinguishable.
std::string decide(const std::vector<std::pair<std::vector<double>, std::vector<double>>>& pairs,
                   std::string& measured, const std::vector<std::string>& labels) {
  if (pairs.empty()) return "not measured";
  int as_claimed = 0, against = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto c = metrics::compare_means(pairs[i].first, pairs[i].second);
    const auto& d = c.difference;
    measured += (measured.empty() ? "" : "; ") + labels[i] + " " + fmt(d.estimate, "%+.2f") + " [" +
                fmt(d.low, "%+.2f") + ", " + fmt(d.high, "%+.2f") + "]";
    as_claimed += c.ranked && d.low > 0;
    against += c.ranked && d.high < 0;
  }
  if (against > 0) return "not reproduced";
  if (as_claimed == static_cast<int>(pairs.size())) return "reproduced";
  return "indistinguishable";
}

nlohmann::json seed_claims(const nlohmann::json& architectures,
                           const nlohmann::json& memorization) {
  nlohmann::json claims = nlohmann::json::array();
  const auto find = [&](const std::string& name) -> const nlohmann::json* {
    for (const auto& arch : architectures) {
      if (arch.value("name", "") == name) return &arch;
    }
    return nullptr;
  };
  // Seed 000: MLP memorises most, CNN least, ViT between; on the smallest memorisation size (where
  // models memorise), else on the main models.
  {
    ValuesOf of = likeness_values;
    std::string where = "the main models";
    if (!memorization.empty()) {
      const auto size = memorization[0].value("per_class", int64_t{0});
      of = memorized_likeness(size);
      where = std::to_string(size) + " images per class";
    }
    std::vector<std::pair<std::vector<double>, std::vector<double>>> pairs;
    std::vector<std::string> labels;
    const std::pair<const char*, const char*> order[] = {{"mlp", "vit"}, {"vit", "cnn"}};
    for (const auto& [a, b] : order) {
      const auto* x = find(a);
      const auto* y = find(b);
      if (x == nullptr || y == nullptr) continue;
      auto va = pooled(*x, of), vb = pooled(*y, of);
      if (va.empty() || vb.empty()) continue;
      pairs.push_back({std::move(va), std::move(vb)});
      labels.push_back(std::string(a) + " - " + b);
    }
    std::string measured;
    const auto verdict = decide(pairs, measured, labels);
    claims.push_back(claim(
        "000 (Suhail & Sethi 2025)",
        "From the weights, MLPs leak their training data most, CNNs least, ViTs "
        "in between",
        verdict, "training-likeness at " + where + (measured.empty() ? "" : ": " + measured)));
  }
  // DLG / Inverting Gradients / seed 003: leakage falls with the batch size.
  {
    const auto batches = gradient_batches(architectures);
    std::vector<std::pair<std::vector<double>, std::vector<double>>> pairs;
    std::vector<std::string> labels;
    if (batches.size() >= 2) {
      for (const auto& arch : architectures) {
        auto small = pooled(arch, gradient_values(batches.front()));
        auto large = pooled(arch, gradient_values(batches.back()));
        if (small.empty() || large.empty()) continue;
        pairs.push_back({std::move(small), std::move(large)});
        labels.push_back(arch.value("name", "?"));
      }
    }
    std::string measured;
    const auto verdict = decide(pairs, measured, labels);
    claims.push_back(claim("003 (Huang et al. 2025), DLG, Inverting Gradients",
                           "Gradient leakage falls as the batch size grows", verdict,
                           batches.size() >= 2
                               ? "strongest attack's PSNR (dB), batch " +
                                     std::to_string(batches.front()) + " minus batch " +
                                     std::to_string(batches.back()) +
                                     (measured.empty() ? "" : ": " + measured)
                               : "one batch size only"));
  }
  // Seed 004: the leakage of intermediate features falls with depth.
  {
    std::vector<std::pair<std::vector<double>, std::vector<double>>> pairs;
    std::vector<std::string> labels;
    for (const auto& arch : architectures) {
      auto first = pooled(arch, decoder_values("first"));
      auto last = pooled(arch, decoder_values("last"));
      if (first.empty() || last.empty()) continue;
      pairs.push_back({std::move(first), std::move(last)});
      labels.push_back(arch.value("name", "?"));
    }
    std::string measured;
    const auto verdict = decide(pairs, measured, labels);
    claims.push_back(claim(
        "004 (Intermediate outputs, 2024)", "Intermediate features leak less the deeper the cut",
        verdict,
        "decoder PSNR (dB), first cut minus last cut" + (measured.empty() ? "" : ": " + measured)));
  }
  // Seed 002: the defense lowers the attack's PSNR at some cost in accuracy.
  {
    std::vector<std::pair<std::vector<double>, std::vector<double>>> pairs;
    std::vector<std::string> labels;
    std::string accuracy;
    for (const auto& arch : architectures) {
      const auto* defend = stage_results(arch, "defend");
      if (defend == nullptr || !defend->contains("points")) continue;
      const nlohmann::json *none = nullptr, *strongest = nullptr;
      for (const auto& p : defend->at("points")) {
        const double lambda = json_number(p, "lambda");
        if (lambda == 0) none = &p;
        if (lambda > 0 && (strongest == nullptr || lambda > json_number(*strongest, "lambda")))
          strongest = &p;
      }
      if (none == nullptr || strongest == nullptr) continue;
      const auto per_image = [](const nlohmann::json& p) {
        std::vector<double> v;
        for (const auto& x : p.value("attack_psnr_per_image", nlohmann::json::array())) {
          if (x.is_number()) v.push_back(x.get<double>());
        }
        return v;
      };
      auto a = per_image(*none), b = per_image(*strongest);
      if (a.empty() || b.empty()) continue;
      pairs.push_back({std::move(a), std::move(b)});
      labels.push_back("lambda 0 minus " + fmt(json_number(*strongest, "lambda"), "%g"));
      accuracy = "; test accuracy " + fmt(json_number(*none, "test_accuracy"), "%.3f") + " → " +
                 fmt(json_number(*strongest, "test_accuracy"), "%.3f");
    }
    std::string measured;
    const auto verdict = decide(pairs, measured, labels);
    claims.push_back(claim("002 (Xiao et al. 2020)",
                           "Adversarial reconstruction learning lowers the decoder's PSNR at a "
                           "small cost in accuracy",
                           verdict,
                           pairs.empty() ? "the defense did not run (audit --defend)"
                                         : "decoder PSNR (dB), " + measured + accuracy));
  }
  return claims;
}

// Per threat surface: what the figures say in plain words, and what to do about it. Each
// recommendation follows from the run's own figures; none claims safety a failed attack cannot
// prove.
nlohmann::json recommend(const nlohmann::json& architectures, const nlohmann::json& surfaces,
                         const nlohmann::json& memorization) {
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
  // Weights, the memorisation regime: per size, which architectures leak.
  for (const auto& size : memorization) {
    std::string leaking, safe;
    const auto& surface = size.at("surface");
    for (const auto& a : size.value("architectures", nlohmann::json::array())) {
      const std::string name = a.value("arch", "?");
      const auto* e = order_entry(surface, name);
      if (e == nullptr) continue;
      const std::string figure = name + " " + fmt(json_number(*e, "value"), "%.2f") + " [" +
                                 fmt(json_number(*e, "low"), "%.2f") + ", " +
                                 fmt(json_number(*e, "high"), "%.2f") + "]";
      auto& list = a.value("leak", false) ? leaking : safe;
      list += (list.empty() ? "" : ", ") + figure;
    }
    const std::string n = std::to_string(size.value("per_class", int64_t{0}));
    if (!leaking.empty()) {
      add("weights",
          "Trained on " + n + " images per class, these weights give back training images: " +
              leaking + " (training-likeness, interval above 0.5)" +
              (safe.empty() ? "" : "; not measurably: " + safe) + ".",
          "Do not publish weights of a model trained on this few images per class; train on more "
          "data or with the defense, and audit the model you will publish.");
    } else if (!safe.empty()) {
      add("weights",
          "Trained on " + n +
              " images per class, no architecture's weights gave back training "
              "images measurably (" +
              safe + ").",
          "A stronger inversion (the paper profile) may: this is what this budget reached, not a "
          "bound.");
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

// The memorisation regime: training-likeness against images per class, per architecture (the
// main models' point included), with intervals; writes memorization.svg in `out`.
std::string memorization_section(const fs::path& out, const nlohmann::json& architectures,
                                 const nlohmann::json& ranking) {
  const auto memorization = ranking.value("memorization", nlohmann::json::array());
  if (memorization.empty()) return "";
  const auto weights = ranking.value("surfaces", nlohmann::json::object())
                           .value("weights", nlohmann::json::object());
  // Sizes on the x axis: the memorisation sizes and each main model's.
  std::vector<int64_t> sizes;
  for (const auto& m : memorization) sizes.push_back(m.value("per_class", int64_t{0}));
  for (const auto& arch : architectures) {
    const auto n = main_per_class(arch);
    if (n > 0 && order_entry(weights, arch.value("name", "")) != nullptr &&
        std::find(sizes.begin(), sizes.end(), n) == sizes.end())
      sizes.push_back(n);
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
  for (const auto& arch : architectures) {
    const std::string name = arch.value("name", "?");
    Series series;
    series.name = name;
    series.points = true;
    table << "<tr><td>" << escape_xml(name) << "</td>";
    bool any = false;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const nlohmann::json* surface = nullptr;
      const nlohmann::json* info = nullptr;
      for (const auto& m : memorization) {
        if (m.value("per_class", int64_t{0}) != sizes[i]) continue;
        surface = &m.at("surface");
        if (!m.contains("architectures")) continue;
        for (const auto& a : m.at("architectures")) {  // a reference into `memorization`
          if (a.value("arch", "") == name) info = &a;
        }
      }
      if (surface == nullptr && main_per_class(arch) == sizes[i]) surface = &weights;
      const auto* e = surface ? order_entry(*surface, name) : nullptr;
      series.x.push_back(static_cast<double>(i));
      series.y.push_back(e ? json_number(*e, "value") : NAN);
      series.low.push_back(e ? json_number(*e, "low") : NAN);
      series.high.push_back(e ? json_number(*e, "high") : NAN);
      any |= e != nullptr;
      table << "<td>";
      if (e == nullptr) {
        table << "&ndash;";
      } else {
        table << with_interval(*surface, name, "%.2f");
        if (info != nullptr) {
          table << " <small>(train accuracy " << fmt(json_number(*info, "train_accuracy"), "%.2f")
                << ")</small>" << (info->value("leak", false) ? " <b>leaks</b>" : "");
        } else {
          table << " <small>(main model)</small>"
                << (json_number(*e, "low") > 0.5 ? " <b>leaks</b>" : "");
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
       << figure_block(out, ".", "memorization.svg",
                       "Training-likeness against training images per class (0.5 = no leak).")
       << table.str();
  return html.str();
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
        "training image (1 = an exact copy of a training image)";
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
      0.1, likeness_values);
  surfaces["weights_ssim_gap"] = rank_surface(
      architectures, "train_minus_heldout_ssim",
      "SSIM to the nearest training image minus SSIM to the nearest held-out image, per image "
      "rebuilt from the weights (0 = no leak)",
      0.05, [](const nlohmann::json& run) {
        return reconstruction_values(stage_results(run, "invert"), "nearest_train_ssim",
                                     "nearest_test_ssim");
      });
  surfaces["features"] = rank_surface(
      architectures, "most_exposed_layer_decoder_psnr",
      "PSNR (dB) of the decoder that rebuilds held-out images from the most exposed cut point's "
      "output",
      3.0, decoder_values("exposed"));
  for (const auto batch : gradient_batches(architectures)) {
    const std::string key = batch == 1 ? "gradients" : "gradients_batch" + std::to_string(batch);
    surfaces[key] = rank_surface(
        architectures, "strongest_attack_psnr_batch" + std::to_string(batch),
        "PSNR (dB) of the strongest gradient attack of the run on each image, " +
            (batch == 1 ? std::string("shared alone")
                        : "shared in batches of " + std::to_string(batch)) +
            " (closed-form attacks included; above ~30 dB the image is visually recovered)",
        3.0, gradient_values(batch));
  }
  if (!surfaces.contains("gradients")) {
    surfaces["gradients"] =
        rank_surface(architectures, "strongest_attack_psnr_batch1", "", 3.0, gradient_values(1));
  }
  ranking["memorization"] = memorization_ranking(architectures);
  ranking["claims"] = seed_claims(architectures, ranking["memorization"]);
  ranking["recommendations"] = recommend(architectures, surfaces, ranking["memorization"]);
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
       << escape_xml(audit.value("dataset", nlohmann::json::object())
                         .value("spec", audit.value("settings", nlohmann::json::object())
                                            .value("--data", std::string("?"))))
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
  // Where models memorise: per size, the architecture the data separate from the next.
  for (const auto& size : ranking.value("memorization", nlohmann::json::array())) {
    const auto& surface = size.at("surface");
    const auto& steps = surface.at("steps");
    if (steps.empty() || steps[0].value("decision", "") != "ranked") continue;
    html << "<br><b>Trained on " << size.value("per_class", int64_t{0})
         << " images per class, most reconstructable from its weights: "
         << escape_xml(surface.at("order")[0].value("arch", "?")) << ".</b>";
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
  // Baselines measured on the dataset in use, next to the figures they calibrate.
  const auto baselines = audit.value("baselines", nlohmann::json::object());
  const bool measured = baselines.contains("class_mean_psnr");
  const std::string psnr_baseline =
      measured ? "Baselines on this dataset: the class-mean image scores " +
                     fmt(json_number(baselines, "class_mean_psnr"), "%.1f") +
                     " dB against a target, an unrelated image " +
                     fmt(json_number(baselines, "unrelated_psnr"), "%.1f") + " dB."
               : "";
  const std::string ssim_baseline =
      measured
          ? " Baselines on this dataset: an image the model never saw scores " +
                fmt(json_number(baselines, "unseen_nearest_train_ssim"), "%.2f") +
                " against its nearest training image, the class-mean image " +
                fmt(json_number(baselines, "class_mean_ssim"), "%.2f") + ", an unrelated image " +
                fmt(json_number(baselines, "unrelated_ssim"), "%.2f") + "."
          : "";
  if (!order.empty() && ranking.value("figure", "") == "nearest_train_ssim") html << ssim_baseline;
  const auto memorization = ranking.value("memorization", nlohmann::json::array());
  if (surfaces.contains("weights")) {
    html << surface_verdict("From the weights", surfaces["weights"], "%.2f",
                            "0.5 is the no-leak baseline by construction (equal pools).");
  }
  for (const auto& size : memorization) {
    html << surface_verdict("From the weights, trained on " +
                                std::to_string(size.value("per_class", int64_t{0})) +
                                " images per class",
                            size.at("surface"), "%.2f");
  }
  for (const auto& [key, surface] : surfaces.items()) {
    if (key.rfind("gradients", 0) != 0) continue;
    const std::string title = key == "gradients"
                                  ? "From shared gradients"
                                  : "From shared gradients, batches of " +
                                        key.substr(std::string("gradients_batch").size());
    html << surface_verdict(title, surface, "%.1f", key == "gradients" ? psnr_baseline : "");
  }
  if (surfaces.contains("features")) {
    html << surface_verdict("From intermediate features", surfaces["features"], "%.1f",
                            psnr_baseline);
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

  // The seeds' claims against this run.
  const auto claims = ranking.value("claims", nlohmann::json::array());
  if (!claims.empty()) {
    html << "<h2>The papers' claims against this run</h2>\n<table class=\"claims\"><tr><th>Paper "
            "(seed)</th><th>Claim</th><th>This run (difference, 95% interval)</th><th>Verdict"
            "</th></tr>\n";
    for (const auto& c : claims) {
      html << "<tr><td>" << escape_xml(c.value("source", "")) << "</td><td>"
           << escape_xml(c.value("claim", "")) << "</td><td style=\"text-align:left\">"
           << escape_xml(c.value("measured", "")) << "</td><td><b>"
           << escape_xml(c.value("verdict", "")) << "</b></td></tr>\n";
    }
    html << "</table>\n<p class=\"note\">Reproduced: every comparison the claim makes is ranked "
            "its way (the 95% interval of the difference excludes 0). Not reproduced: one is "
            "ranked the other way. Indistinguishable: neither, at this budget.</p>\n";
  }

  // Comparison table, every leak figure with its 95% interval over targets.
  const auto surface_of = [&](const std::string& key) {
    return surfaces.value(key, nlohmann::json::object());
  };
  html << "<h2>Comparison</h2>\n<table><tr><th>Architecture</th><th>Test "
          "accuracy</th><th>Training-likeness</th><th>Train &minus; held-out SSIM</th>"
          "<th>Nearest-train SSIM</th><th>Gradient PSNR, batch 1 (strongest attack)</th><th>batch "
          "8</th><th>Recovered exactly (self-certified), batch 1</th><th>Gradient risk</th>"
          "<th>Most exposed layer (decoder PSNR)</th></tr>\n";
  for (const auto& arch : architectures) {
    const std::string name = arch.value("name", "?");
    const auto* train = stage_results(arch, "train");
    const auto* invert = stage_results(arch, "invert");
    const auto* gradients = stage_results(arch, "gradients");
    const auto layer = most_exposed_layer(arch);
    html << "<tr><td>" << escape_xml(name) << "</td><td>"
         << fmt(train ? json_number(*train, "test_accuracy") : NAN) << "</td><td>"
         << with_interval(surface_of("weights"), name, "%.2f",
                          invert ? json_number(*invert, "summary/training_likeness") : NAN)
         << "</td><td>" << with_interval(surface_of("weights_ssim_gap"), name, "%+.3f")
         << "</td><td>" << fmt(inversion_ssim(arch)) << "</td><td>"
         << with_interval(surface_of("gradients"), name, "%.1f", gradient_psnr(arch, 1))
         << "</td><td>"
         << with_interval(surface_of("gradients_batch8"), name, "%.1f", gradient_psnr(arch, 8))
         << "</td><td>" << gradient_exact(arch, 1) << "</td><td>"
         << fmt(gradients ? json_number(*gradients, "audit/risk") : NAN, "%.2f") << "</td><td>"
         << (layer.first.empty() ? "&ndash;"
                                 : escape_xml(layer.first) + " (" + fmt(layer.second, "%.1f dB") +
                                       ")" + interval_suffix(surface_of("features"), name, "%.1f"))
         << "</td></tr>\n";
  }
  html << "</table>\n<p class=\"note\">PSNR in dB; brackets: 95% bootstrap intervals over targets"
       << (psnr_baseline.empty() ? "" : ". " + psnr_baseline) << "</p>\n";
  html << memorization_section(out, architectures, ranking);
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
<dt>SSIM</dt><dd>Structural similarity of two images, from about 0 (unrelated) to 1 (identical). What unrelated images, the class-mean image and an unseen image's nearest training image score on the dataset in use is measured and shown beside the figures.</dd>
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
  // Rows of one run's stages (`label` names it: "cnn", "cnn/memorize-10", "seed-1/cnn").
  std::function<void(const nlohmann::json&, const std::string&)> stage_rows =
      [&](const nlohmann::json& run, const std::string& label) {
        for (const auto& [key, stage] : run.items()) {
          if (!stage.is_object() || !stage.contains("status")) continue;
          // A stage whose time budget stopped an attack says so: its figures are lower bounds.
          const bool stopped = stage.contains("results") && stage["results"].is_object() &&
                               stage["results"].value("stopped", "") == "budget";
          html << "<tr><td>" << escape_xml(label + "/" + key) << "</td><td>"
               << escape_xml(
                      stage.value("status", "") +
                      (stopped ? " (stopped by its time budget: figures are lower bounds)" : ""))
               << "</td><td>" << fmt(stage.value("seconds", NAN), "%.0f") << "</td><td>"
               << fmt(stage.contains("results") && stage["results"].is_object()
                          ? json_number(stage["results"], "peak_memory_mib")
                          : NAN,
                      "%.0f")
               << "</td><td style=\"text-align:left\"><code>"
               << escape_xml(stage.value("command", "")) << "</code></td></tr>\n";
        }
        for (const auto& m : run.value("memorization", nlohmann::json::array())) {
          stage_rows(m, label + "/memorize-" + std::to_string(m.value("per_class", int64_t{0})));
        }
      };
  for (const auto& arch : architectures) {
    const std::string name = arch.value("name", "?");
    stage_rows(arch, name);
    for (const auto& r : arch.value("repeats", nlohmann::json::array())) {
      stage_rows(r, "seed-" + std::to_string(r.value("seed", uint64_t{0})) + "/" + name);
    }
  }
  html << "</table>\n</body></html>\n";
  write_file_atomic(out / "index.html", html.str());
}

}  // namespace privaudit::report
