#include "privaudit/audit/pooling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "privaudit/metrics/bootstrap.h"

namespace privaudit::audit {

std::vector<double> pooled(const Architecture& arch, const ValuesOf& of) {
  std::vector<double> values;
  for (const auto* run : arch.runs()) {
    const auto more = of(*run);
    values.insert(values.end(), more.begin(), more.end());
  }
  return values;
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

}  // namespace

std::vector<double> likeness_values(const Run& run) {
  return inversion_values(run.invert.results, false);
}

std::vector<double> ssim_gap_values(const Run& run) {
  return inversion_values(run.invert.results, true);
}

ValuesOf memorized_likeness(int64_t per_class) {
  return [per_class](const Run& run) {
    const auto* entry = run.memorized(per_class);
    return entry ? inversion_values(entry->invert.results, false) : std::vector<double>{};
  };
}

ValuesOf gradient_values(int64_t batch) {
  return [batch](const Run& run) {
    const auto* entry = run.gradients.results ? run.gradients.results->at(batch) : nullptr;
    return entry ? entry->target_psnr : std::vector<double>{};
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
    if (!run.layers.results) return std::vector<double>{};
    const std::string exposed = which == "exposed" ? most_exposed_layer(run).first : "";
    const LayerRecord* chosen = nullptr;
    for (const auto& layer : run.layers.results->layers) {
      if (!layer.decoder_psnr_per_image) continue;
      if (which == "exposed" && layer.name != exposed) continue;
      if (which == "first" && chosen != nullptr) continue;
      chosen = &layer;
    }
    return chosen ? *chosen->decoder_psnr_per_image : std::vector<double>{};
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
                            const ValuesOf& of) {
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
    entries.push_back({arch.name, std::move(values), interval});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.interval.estimate > b.interval.estimate;
  });
  SurfaceRanking surface;
  surface.figure = figure;
  surface.meaning = meaning;
  surface.target_half_width = target;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const double half = (e.interval.high - e.interval.low) / 2;
    surface.order.push_back({e.arch, e.interval.estimate, e.interval.low, e.interval.high, half,
                             e.interval.n < 2 || half > target, e.interval.n});
    if (i + 1 == entries.size()) break;
    const auto c = metrics::compare_means(e.values, entries[i + 1].values);
    surface.steps.push_back({e.arch, entries[i + 1].arch, c.difference.estimate, c.difference.low,
                             c.difference.high, c.ranked, c.more_needed});
  }
  return surface;
}

}  // namespace privaudit::audit
