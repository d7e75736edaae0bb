#include "privaudit/audit/pooling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "privaudit/metrics/bootstrap.h"

namespace privaudit::audit {

Values pooled(const Architecture& arch, const ValuesOf& of) {
  Values out;
  int64_t position = 0;
  bool named = true;
  for (const auto* run : arch.runs()) {
    const auto more = of(*run);
    out.cut_short |= more.cut_short;
    out.values.insert(out.values.end(), more.values.begin(), more.values.end());
    named &= more.ids.size() == more.values.size();
    for (const auto& id : more.ids) out.ids.push_back(std::to_string(position) + ":" + id);
    for (size_t i = 0; i < more.values.size(); ++i) {
      out.certified.push_back(i < more.certified.size() && more.certified[i]);
      out.clusters.push_back(position);
    }
    ++position;
  }
  if (!named) out.ids.clear();
  return out;
}

metrics::Test compare_values(metrics::Statistic statistic, const Values& a, const Values& b) {
  const bool named = !a.ids.empty() && a.ids.size() == a.values.size() &&
                     b.ids.size() == b.values.size() && a.ids.size() == b.ids.size();
  if (named) {
    // Align b on a's targets; any target of a that b lacks (or a repeated id) means unpaired.
    std::map<std::string, double> of_b;
    for (size_t i = 0; i < b.ids.size(); ++i) of_b.emplace(b.ids[i], b.values[i]);
    std::vector<double> aligned;
    for (const auto& id : a.ids) {
      const auto it = of_b.find(id);
      if (it == of_b.end()) break;
      aligned.push_back(it->second);
    }
    if (aligned.size() == a.values.size() && of_b.size() == b.values.size())
      return metrics::compare_paired(statistic, a.values, aligned);
  }
  return metrics::compare_unpaired(statistic, a.values, b.values);
}

double exact_share(const Values& v) {
  if (v.values.empty()) return NAN;
  double exact = 0;
  for (size_t i = 0; i < v.values.size(); ++i)
    exact += (i < v.certified.size() && v.certified[i]) || v.values[i] >= 40;
  return exact / static_cast<double>(v.values.size());
}

namespace {

std::vector<double> inversion_values(const std::optional<InversionRecord>& results, bool gap) {
  std::vector<double> values;
  if (!results) return values;
  for (const auto& r : results->reconstructions) {
    const double v = gap ? r.nearest_train_ssim - r.nearest_test_ssim : r.nearer_to_train;
    if (std::isfinite(v)) values.push_back(v);
  }
  return values;
}

Values plain(std::vector<double> values, bool cut_short) {
  Values v;
  v.values = std::move(values);
  v.cut_short = cut_short;
  return v;
}

}  // namespace

Values likeness_values(const Run& run) {
  return plain(inversion_values(run.invert.results, false), run.invert.budget_stopped);
}

Values ssim_gap_values(const Run& run) {
  return plain(inversion_values(run.invert.results, true), run.invert.budget_stopped);
}

ValuesOf memorized_likeness(int64_t per_class) {
  return [per_class](const Run& run) {
    const auto* entry = run.memorized(per_class);
    if (entry == nullptr) return Values{};
    return plain(inversion_values(entry->invert.results, false), entry->invert.budget_stopped);
  };
}

ValuesOf gradient_values(int64_t batch) {
  return [batch](const Run& run) {
    const auto* entry = run.gradients.results ? run.gradients.results->at(batch) : nullptr;
    Values v;
    if (entry == nullptr) return v;
    v.values = entry->target_psnr;
    v.certified = entry->target_certified;
    v.cut_short = run.gradients.budget_stopped;
    if (entry->target_index.size() == v.values.size()) {
      for (const auto index : entry->target_index) v.ids.push_back(std::to_string(index));
    }
    return v;
  };
}

std::pair<std::string, double> most_exposed_layer(const Run& run) {
  std::pair<std::string, double> best{"", NAN};
  if (!run.layers.results) return best;
  for (const auto& layer : run.layers.results->layers) {
    const double psnr = layer.decoder_psnr;
    if (std::isfinite(psnr) && (!std::isfinite(best.second) || psnr > best.second))
      best = {layer.name, psnr};
  }
  return best;
}

ValuesOf decoder_values(const std::string& which) {
  return [which](const Run& run) {
    Values v;
    if (!run.layers.results) return v;
    const std::string exposed = which == "exposed" ? most_exposed_layer(run).first : "";
    const LayerRecord* chosen = nullptr;
    for (const auto& layer : run.layers.results->layers) {
      if (!layer.decoder_psnr_per_image) continue;
      if (which == "exposed" && layer.name != exposed) continue;
      if (which == "first" && chosen != nullptr) continue;
      chosen = &layer;
    }
    if (chosen == nullptr) return v;
    v.values = *chosen->decoder_psnr_per_image;
    v.cut_short = run.layers.budget_stopped;
    if (chosen->decoder_image_index.size() == v.values.size()) {
      for (const auto index : chosen->decoder_image_index) v.ids.push_back(std::to_string(index));
    }
    return v;
  };
}

double gradient_psnr(const Run& run, int64_t batch) {
  if (!run.gradients.results) return NAN;
  const auto& g = *run.gradients.results;
  if (const auto* entry = g.at(batch)) return entry->psnr;
  double best = NAN;
  for (const auto& r : g.runs) {
    if (r.batch_size != batch || !r.psnr) continue;
    if (!std::isfinite(best) || *r.psnr > best) best = *r.psnr;
  }
  return best;
}

std::vector<int64_t> gradient_batches(const std::vector<Architecture>& architectures) {
  std::vector<int64_t> batches;
  for (const auto& arch : architectures) {
    const auto& results = arch.run.gradients.results;
    if (!results || !results->has_strongest) continue;
    for (const auto& entry : results->strongest) {
      const auto b = entry.batch_size;
      if (b > 0 && std::find(batches.begin(), batches.end(), b) == batches.end())
        batches.push_back(b);
    }
  }
  std::sort(batches.begin(), batches.end());
  return batches;
}

std::vector<int64_t> memorization_sizes(const std::vector<Architecture>& architectures) {
  std::vector<int64_t> sizes;
  for (const auto& arch : architectures) {
    for (const auto* run : arch.runs()) {
      for (const auto& entry : run->memorization) {
        const auto n = entry.per_class;
        if (n > 0 && std::find(sizes.begin(), sizes.end(), n) == sizes.end()) sizes.push_back(n);
      }
    }
  }
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

SurfaceRanking rank_surface(const std::vector<Architecture>& architectures,
                            const std::string& figure, const std::string& meaning, double target,
                            const ValuesOf& of, metrics::Statistic statistic) {
  struct Entry {
    std::string arch;
    Values values;
    metrics::Interval interval;
    double exact = NAN;
  };
  const bool psnr = statistic == metrics::Statistic::kMedian;
  std::vector<Entry> entries;
  for (const auto& arch : architectures) {
    auto values = pooled(arch, of);
    if (values.values.empty()) continue;
    const auto interval = metrics::clustered_interval(statistic, values.values, values.clusters);
    const double exact = psnr ? exact_share(values) : NAN;
    entries.push_back({arch.name, std::move(values), interval, exact});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.interval.estimate != b.interval.estimate)
      return a.interval.estimate > b.interval.estimate;
    return std::isfinite(a.exact) && std::isfinite(b.exact) && a.exact > b.exact;
  });
  SurfaceRanking surface;
  surface.figure = figure;
  surface.meaning = meaning;
  surface.statistic = metrics::statistic_name(statistic);
  surface.target_half_width = target;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const double half = (e.interval.high - e.interval.low) / 2;
    RankedArchitecture ranked{e.arch,         e.interval.estimate,
                              e.interval.low, e.interval.high,
                              half,           e.interval.n < 2 || half > target,
                              e.interval.n};
    ranked.exact_share = e.exact;
    ranked.lower_bound = e.values.cut_short;
    surface.order.push_back(ranked);
    if (i + 1 == entries.size()) break;
    const auto c = compare_values(statistic, e.values, entries[i + 1].values);
    RankStep step{e.arch,           entries[i + 1].arch, c.difference.estimate,
                  c.difference.low, c.difference.high,   c.ranked,
                  c.more_needed};
    step.paired = c.paired;
    step.p_value = c.p_value;
    // A lower bound decides nothing: more work could move it past its neighbour.
    step.cut_short = e.values.cut_short || entries[i + 1].values.cut_short;
    if (step.cut_short) step.ranked = false;
    surface.steps.push_back(step);
  }
  return surface;
}

}  // namespace privaudit::audit
