// The membership surface: TPR at 1 % FPR of the strongest membership-inference attack per
// architecture (docs/membership.md), ranked with Clopper-Pearson intervals and a test between
// neighbours that pairs the decisions where the architectures' models trained on the same halves.
#include <algorithm>
#include <cmath>
#include <set>

#include "privaudit/audit/pooling.h"
#include "privaudit/metrics/membership_metrics.h"

namespace privaudit::audit {
namespace {

// Intervals narrower than this are what the profiles aim for (a TPR of 0.05 told from 0.10).
constexpr double kTargetHalfWidth = 0.025;

const Stage<MembershipRecord>* membership_stage(const Run& run, int64_t per_class) {
  if (per_class == 0) return &run.membership;
  const auto* m = run.memorized(per_class);
  return m == nullptr ? nullptr : &m->membership;
}

// The p-value of a two-sided test and the Wald interval of a difference.
metrics::Test finish(double difference, double standard_error, double p_value, int64_t n,
                     bool paired, double level) {
  metrics::Test t;
  const double z = metrics::normal_quantile(0.5 + level / 2);
  t.difference = {difference, difference - z * standard_error, difference + z * standard_error, n};
  t.p_value = std::clamp(p_value, 0.0, 1.0);
  t.paired = paired;
  t.ranked = t.p_value < 1 - level;
  const double half = z * standard_error;
  t.more_needed =
      t.ranked ? 0
      : difference == 0
          ? -1
          : static_cast<int64_t>(std::ceil(std::max(
                0.0, n * (half / std::abs(difference)) * (half / std::abs(difference)) - n)));
  return t;
}

}  // namespace

MembershipEvidence membership_evidence(const Architecture& arch, int64_t per_class) {
  MembershipEvidence e;
  int run_index = 0;
  for (const auto* run : arch.runs()) {
    const auto* stage = membership_stage(*run, per_class);
    const int index = run_index++;
    if (stage == nullptr || !stage->results) continue;
    const auto* best = stage->results->strongest();
    if (best == nullptr || stage->results->members() <= 0) continue;
    const int64_t members = stage->results->members();
    e.attacks = std::max<int64_t>(e.attacks, static_cast<int64_t>(stage->results->attacks.size()));
    e.members += members;
    e.design += std::to_string(index) + ":" + std::to_string(run->seed) + "," +
                std::to_string(stage->results->pool_size) + "," +
                std::to_string(stage->results->models) + ";";
    if (best->detected) {
      e.detected += static_cast<int64_t>(best->detected->size());
      for (const auto d : *best->detected)
        e.detected_ids.push_back(std::to_string(index) + "/" + std::to_string(d));
    } else {
      e.lists_detections = false;
      e.detected += static_cast<int64_t>(std::llround(best->tpr_1 * members));
    }
  }
  return e;
}

bool membership_leak(const MembershipEvidence& evidence, double level) {
  if (evidence.members <= 0) return false;
  const double alpha =
      (1 - level) / 2 / static_cast<double>(std::max<int64_t>(1, evidence.attacks));
  return metrics::clopper_pearson_lower(evidence.detected, evidence.members, 1 - alpha) > 0.01;
}

metrics::Test compare_membership(const MembershipEvidence& a, const MembershipEvidence& b,
                                 double level) {
  if (a.members <= 0 || b.members <= 0) return finish(NAN, NAN, NAN, 0, false, level);
  const double pa = a.share(), pb = b.share();
  if (a.lists_detections && b.lists_detections && a.design == b.design) {
    // McNemar's exact test: only members one architecture detects and the other misses count.
    const std::set<std::string> in_a(a.detected_ids.begin(), a.detected_ids.end());
    const std::set<std::string> in_b(b.detected_ids.begin(), b.detected_ids.end());
    int64_t only_a = 0, only_b = 0;
    for (const auto& id : in_a) only_a += in_b.count(id) == 0;
    for (const auto& id : in_b) only_b += in_a.count(id) == 0;
    const int64_t discordant = only_a + only_b;
    const int64_t fewer = std::min(only_a, only_b);
    const double p = discordant == 0 || only_a == only_b
                         ? 1.0
                         : 2 * metrics::incomplete_beta(static_cast<double>(discordant - fewer),
                                                        static_cast<double>(fewer + 1), 0.5);
    const double n = static_cast<double>(a.members);
    const double d = static_cast<double>(only_a - only_b) / n;
    const double variance = (static_cast<double>(discordant) - n * d * d) / (n * n);
    return finish(d, std::sqrt(std::max(0.0, variance)), p, a.members, true, level);
  }
  // Unpaired: the pooled two-proportion z test.
  const double na = static_cast<double>(a.members), nb = static_cast<double>(b.members);
  const double pooled = static_cast<double>(a.detected + b.detected) / (na + nb);
  const double null_se = std::sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb));
  const double p = null_se > 0 ? 2 * (1 - metrics::normal_cdf(std::abs(pa - pb) / null_se)) : 1.0;
  const double se = std::sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb);
  return finish(pa - pb, se, p, std::min(a.members, b.members), false, level);
}

SurfaceRanking rank_membership(const std::vector<Architecture>& architectures, int64_t per_class) {
  SurfaceRanking surface;
  surface.figure = "membership_tpr_at_1_percent_fpr";
  surface.meaning =
      "share of the training images (member decisions) that the strongest membership-inference "
      "attack identifies at 1 % false positives, over K models on random halves of a pool" +
      std::string(per_class > 0
                      ? ", each on about " + std::to_string(per_class) + " images per class"
                      : ", with the main models' recipe") +
      " (0.01 = chance)";
  surface.statistic = "share";
  surface.target_half_width = kTargetHalfWidth;
  std::vector<std::pair<const Architecture*, MembershipEvidence>> measured;
  for (const auto& arch : architectures) {
    auto e = membership_evidence(arch, per_class);
    if (e.members > 0) measured.push_back({&arch, std::move(e)});
  }
  std::stable_sort(measured.begin(), measured.end(), [](const auto& a, const auto& b) {
    return a.second.share() > b.second.share();
  });
  for (const auto& [arch, e] : measured) {
    const auto interval = metrics::clopper_pearson(e.detected, e.members, surface.level);
    RankedArchitecture r;
    r.arch = arch->name;
    r.value = e.share();
    r.low = interval.low;
    r.high = interval.high;
    r.half_width = (interval.high - interval.low) / 2;
    r.wide = r.half_width > kTargetHalfWidth;
    r.n = e.members;
    surface.order.push_back(r);
  }
  for (size_t i = 0; i + 1 < measured.size(); ++i) {
    const auto test = compare_membership(measured[i].second, measured[i + 1].second, surface.level);
    RankStep step;
    step.higher = measured[i].first->name;
    step.lower = measured[i + 1].first->name;
    step.difference = test.difference.estimate;
    step.low = test.difference.low;
    step.high = test.difference.high;
    step.ranked = test.ranked;
    step.more_targets = test.more_needed;
    step.paired = test.paired;
    step.p_value = test.p_value;
    surface.steps.push_back(step);
  }
  return surface;
}

std::vector<int64_t> membership_sizes(const std::vector<Architecture>& architectures) {
  std::set<int64_t> sizes;
  for (const auto& arch : architectures) {
    for (const auto& m : arch.run.memorization) {
      if (m.membership.results) sizes.insert(m.per_class);
    }
  }
  return {sizes.begin(), sizes.end()};
}

}  // namespace privaudit::audit
