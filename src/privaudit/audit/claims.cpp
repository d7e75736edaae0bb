// The seeds' claims checked against the run, and one finding and recommendation per threat
// surface, each following from the run's own figures; none claims a safety that a failed attack
// cannot prove.
#include <cmath>
#include <functional>

#include "privaudit/audit/pooling.h"
#include "privaudit/metrics/bootstrap.h"
#include "privaudit/util/text.h"

namespace privaudit::audit {
namespace {

using Pairs = std::vector<std::pair<Values, Values>>;

// A claim's comparisons before the family's Holm adjustment: each first of a pair is claimed to
// exceed its second.
struct Tested {
  Claim claim;
  std::vector<metrics::Test> tests;
  std::vector<bool> cut_short;  // per test: a side is a lower bound (a time budget cut it short)
  std::vector<std::string> labels;
  std::function<std::string(const std::string& measured)> text;  // the claim's measured text
};

Tested test_pairs(const Pairs& pairs, std::vector<std::string> labels,
                  metrics::Statistic statistic) {
  Tested t;
  for (const auto& [a, b] : pairs) {
    t.tests.push_back(compare_values(statistic, a, b));
    t.cut_short.push_back(a.cut_short || b.cut_short);
  }
  t.labels = std::move(labels);
  return t;
}

// All ranked the claimed way at Holm-adjusted p < 0.05 -> reproduced; any ranked the other way ->
// not reproduced; else indistinguishable. A comparison on a figure a time budget cut short ranks
// nothing; where such a one stands between the claim and a decision: "undecided: budget".
void decide(Tested& t, const std::vector<double>& adjusted) {
  auto& claim = t.claim;
  std::string measured;
  if (t.tests.empty()) {
    claim.verdict = "not measured";
    claim.measured = t.text(measured);
    return;
  }
  int as_claimed = 0, against = 0, cut_short = 0;
  for (size_t i = 0; i < t.tests.size(); ++i) {
    const auto& c = t.tests[i];
    const auto& d = c.difference;
    const bool ranked = d.estimate != 0 && adjusted[i] < 0.05 && !t.cut_short[i];
    cut_short += t.cut_short[i] ? 1 : 0;
    measured += (measured.empty() ? "" : "; ") + t.labels[i] + " " +
                format_number(d.estimate, "%+.2f") + " [" + format_number(d.low, "%+.2f") + ", " +
                format_number(d.high, "%+.2f") + "] (" + (c.paired ? "paired" : "unpaired") +
                ", p " + format_number(c.p_value, "%.3g") + ", Holm " +
                format_number(adjusted[i], "%.3g") + (t.cut_short[i] ? ", cut short" : "") + ")";
    as_claimed += ranked && d.estimate > 0;
    against += ranked && d.estimate < 0;
    claim.p_values.push_back(c.p_value);
    claim.adjusted_p_values.push_back(adjusted[i]);
    claim.paired.push_back(c.paired);
  }
  claim.measured = t.text(measured);
  if (against > 0) {
    claim.verdict = "not reproduced";
  } else {
    claim.verdict = as_claimed == static_cast<int>(t.tests.size()) ? "reproduced"
                    : cut_short > 0                                 ? "undecided: budget"
                                                                    : "indistinguishable";
  }
}

std::string with_measured(const std::string& what, const std::string& measured) {
  return what + (measured.empty() ? "" : ": " + measured);
}

const Architecture* find_arch(const std::vector<Architecture>& architectures,
                              const std::string& name) {
  for (const auto& arch : architectures) {
    if (arch.name == name) return &arch;
  }
  return nullptr;
}

// Seed 000: MLP memorises most, CNN least, ViT between; on the smallest memorisation size (where
// models memorise), else on the main models.
Tested weights_claim(const std::vector<Architecture>& architectures,
                     const std::vector<MemorizationVerdict>& memorization) {
  ValuesOf of = likeness_values;
  std::string where = "the main models";
  if (!memorization.empty()) {
    of = memorized_likeness(memorization[0].per_class);
    where = std::to_string(memorization[0].per_class) + " images per class";
  }
  Pairs pairs;
  std::vector<std::string> labels;
  const std::pair<const char*, const char*> order[] = {{"mlp", "vit"}, {"vit", "cnn"}};
  for (const auto& [a, b] : order) {
    const auto* x = find_arch(architectures, a);
    const auto* y = find_arch(architectures, b);
    if (x == nullptr || y == nullptr) continue;
    auto va = pooled(*x, of), vb = pooled(*y, of);
    if (va.values.empty() || vb.values.empty()) continue;
    pairs.push_back({std::move(va), std::move(vb)});
    labels.push_back(std::string(a) + " - " + b);
  }
  auto t = test_pairs(pairs, std::move(labels), metrics::Statistic::kShare);
  // Membership inference decides it as well: TPR at 1 % FPR in the same regime where both
  // architectures of a pair ran it there, else on the main models' recipe.
  const int64_t size = memorization.empty() ? 0 : memorization[0].per_class;
  std::string membership_where;
  for (const auto& [a, b] : order) {
    const auto* x = find_arch(architectures, a);
    const auto* y = find_arch(architectures, b);
    if (x == nullptr || y == nullptr) continue;
    int64_t regime = size;
    auto ea = membership_evidence(*x, regime), eb = membership_evidence(*y, regime);
    if ((ea.members == 0 || eb.members == 0) && regime > 0) {
      regime = 0;
      ea = membership_evidence(*x, regime);
      eb = membership_evidence(*y, regime);
    }
    if (ea.members == 0 || eb.members == 0) continue;
    t.tests.push_back(compare_membership(ea, eb));
    t.cut_short.push_back(false);
    t.labels.push_back("membership " + std::string(a) + " - " + b);
    const auto here =
        regime > 0 ? std::to_string(regime) + " images per class" : std::string("the main models");
    if (membership_where.find(here) == std::string::npos)
      membership_where += (membership_where.empty() ? "" : " and ") + here;
  }
  t.claim = {"000 (Suhail & Sethi 2025)",
             "From the weights, MLPs leak their training data most, CNNs least, ViTs in between",
             "", "", {}, {}, {}};
  t.text = [where, membership_where](const std::string& measured) {
    return with_measured(
        "training-likeness at " + where +
            (membership_where.empty() ? "" : ", membership TPR at 1 % FPR at " + membership_where),
        measured);
  };
  return t;
}

// DLG / Inverting Gradients / seed 003: leakage falls with the batch size.
Tested batch_claim(const std::vector<Architecture>& architectures) {
  const auto batches = gradient_batches(architectures);
  Pairs pairs;
  std::vector<std::string> labels;
  if (batches.size() >= 2) {
    for (const auto& arch : architectures) {
      auto small = pooled(arch, gradient_values(batches.front()));
      auto large = pooled(arch, gradient_values(batches.back()));
      if (small.values.empty() || large.values.empty()) continue;
      pairs.push_back({std::move(small), std::move(large)});
      labels.push_back(arch.name);
    }
  }
  auto t = test_pairs(pairs, std::move(labels), metrics::Statistic::kMedian);
  t.claim = {"003 (Huang et al. 2025), DLG, Inverting Gradients",
             "Gradient leakage falls as the batch size grows", "", "", {}, {}, {}};
  t.text = [batches](const std::string& measured) {
    return batches.size() >= 2 ? with_measured("strongest attack's median PSNR (dB), batch " +
                                                   std::to_string(batches.front()) +
                                                   " minus batch " + std::to_string(batches.back()),
                                               measured)
                               : std::string("one batch size only");
  };
  return t;
}

// Seed 004: the leakage of intermediate features falls with depth.
Tested depth_claim(const std::vector<Architecture>& architectures) {
  Pairs pairs;
  std::vector<std::string> labels;
  for (const auto& arch : architectures) {
    auto first = pooled(arch, decoder_values("first"));
    auto last = pooled(arch, decoder_values("last"));
    if (first.values.empty() || last.values.empty()) continue;
    pairs.push_back({std::move(first), std::move(last)});
    labels.push_back(arch.name);
  }
  auto t = test_pairs(pairs, std::move(labels), metrics::Statistic::kMedian);
  t.claim = {"004 (Intermediate outputs, 2024)",
             "Intermediate features leak less the deeper the cut", "", "", {}, {}, {}};
  t.text = [](const std::string& measured) {
    return with_measured("decoder's median PSNR (dB), first cut minus last cut", measured);
  };
  return t;
}

// Seed 002: the defense lowers the attack's PSNR at some cost in accuracy.
Tested defense_claim(const std::vector<Architecture>& architectures) {
  Pairs pairs;
  std::vector<std::string> labels;
  std::string accuracy;
  for (const auto& arch : architectures) {
    const auto& defend = arch.run.defend.results;
    if (!defend || !defend->has_points) continue;
    const DefensePoint *none = nullptr, *strongest = nullptr;
    for (const auto& p : defend->points) {
      if (p.lambda == 0) none = &p;
      if (p.lambda > 0 && (strongest == nullptr || p.lambda > strongest->lambda)) strongest = &p;
    }
    if (none == nullptr || strongest == nullptr) continue;
    if (none->attack_psnr_per_image.empty() || strongest->attack_psnr_per_image.empty()) continue;
    Values before, after;
    before.values = none->attack_psnr_per_image;
    after.values = strongest->attack_psnr_per_image;
    pairs.push_back({std::move(before), std::move(after)});
    const std::string name = arch.defended();
    labels.push_back(name + ": lambda 0 minus " + format_number(strongest->lambda, "%g"));
    accuracy += (accuracy.empty() ? "; test accuracy " : ", ") + name + " " +
                format_number(none->test_accuracy, "%.3f") + " → " +
                format_number(strongest->test_accuracy, "%.3f");
  }
  const bool ran = !pairs.empty();
  auto t = test_pairs(pairs, std::move(labels), metrics::Statistic::kMedian);
  t.claim = {"002 (Xiao et al. 2020)",
             "Adversarial reconstruction learning lowers the decoder's PSNR at a small cost in "
             "accuracy",
             "", "", {}, {}, {}};
  t.text = [ran, accuracy](const std::string& measured) {
    return ran ? "decoder's median PSNR (dB), " + measured + accuracy
               : std::string("the defense did not run (audit --defend)");
  };
  return t;
}

}  // namespace

std::vector<Claim> seed_claims(const std::vector<Architecture>& architectures,
                               const std::vector<MemorizationVerdict>& memorization) {
  std::vector<Tested> tested = {weights_claim(architectures, memorization),
                                batch_claim(architectures), depth_claim(architectures),
                                defense_claim(architectures)};
  // Holm across every comparison of every claim: the family-wise error stays at 5 %.
  std::vector<double> p_values;
  for (const auto& t : tested) {
    for (const auto& c : t.tests) p_values.push_back(c.p_value);
  }
  const auto adjusted = metrics::holm_adjust(p_values);
  std::vector<Claim> claims;
  size_t next = 0;
  for (auto& t : tested) {
    const std::vector<double> own(adjusted.begin() + static_cast<long>(next),
                                  adjusted.begin() + static_cast<long>(next + t.tests.size()));
    next += t.tests.size();
    decide(t, own);
    claims.push_back(std::move(t.claim));
  }
  return claims;
}

namespace {

void recommend_gradients(const std::vector<Architecture>& architectures, const Verdict& verdict,
                         std::vector<Recommendation>& out) {
  std::string exact, batch8;
  bool every = true;  // every scored target of every architecture listed was exact
  for (const auto& arch : architectures) {
    const auto& g = arch.run.gradients.results;
    const auto* entry = g ? g->at(1) : nullptr;
    if (entry != nullptr && entry->exact.value_or(0) > 0) {
      exact += (exact.empty() ? "" : ", ") + arch.name + " (" + std::to_string(*entry->exact) +
               "/" + std::to_string(entry->targets_scored.value_or(0)) + ")";
      every &= *entry->exact == entry->targets_scored.value_or(0);
    }
  }
  // At batch 8, the same figure as the scorecard's: the median over the targets (never a mean
  // over the 100 dB cap of an exact recovery) and the share rebuilt exactly.
  if (const auto* at8 = verdict.surface("gradients_batch8")) {
    for (const auto& entry : at8->order) {
      if (!std::isfinite(entry.value)) continue;
      batch8 += (batch8.empty() ? "" : ", ") + entry.arch + " median " +
                format_number(entry.value, "%.1f dB");
      if (std::isfinite(entry.exact_share) && entry.exact_share > 0)
        batch8 += " (" + format_number(100 * entry.exact_share, "%.0f") + "% exact)";
    }
  }
  const auto* surface = verdict.surface("gradients");
  if (!exact.empty()) {
    out.push_back({"gradients",
                   std::string(every ? "Every image shared alone was" : "Some images shared alone were") +
                       " rebuilt exactly from the gradient of " + exact +
                       " (closed-form attacks, self-certified without the original).",
                   "Do not share per-example gradients of these models: aggregate over larger "
                   "batches (at batch 8 the strongest attack reached " +
                       (batch8.empty() ? std::string("-") : batch8) +
                       ") or use secure aggregation, and audit again at the batch size you "
                       "deploy."});
  } else if (surface != nullptr && !surface->order.empty()) {
    const double best = surface->order[0].value;
    const std::string& who = surface->order[0].arch;
    if (best >= 30) {
      out.push_back({"gradients",
                     "The gradient of one image gives the image back recognisably for " + who +
                         " (" + format_number(best, "%.1f dB") + ").",
                     "Do not share per-example gradients: aggregate over batches and audit "
                     "again."});
    } else {
      out.push_back({"gradients",
                     "No attack of this run rebuilt a single image recognisably (best " + who +
                         ", " + format_number(best, "%.1f dB") + ").",
                     "This is what these attacks reached, not a bound: keep batches large and "
                     "audit again with more work (`--profile paper`)."});
    }
  }
}

void recommend_weights(const Verdict& verdict, std::vector<Recommendation>& out) {
  const auto* surface = verdict.surface("weights");
  if (surface != nullptr && !surface->order.empty()) {
    const auto& top = surface->order[0];
    if (top.low > 0.5) {
      out.push_back({"weights",
                     "Images rebuilt from " + top.arch +
                         "'s weights are nearer to its training images than to held-out ones "
                         "(training-likeness " +
                         format_number(top.value, "%.2f") + ", interval above 0.5).",
                     "Treat these weights as training data: do not publish them, or train on more "
                     "data or with the defense, and audit again."});
    } else {
      out.push_back({"weights",
                     "No architecture's weights give back training images measurably with "
                     "this profile's work (every training-likeness interval reaches 0.5 or below).",
                     "This does not prove the weights safe: models trained on small sets "
                     "memorise. Audit the model you will publish with its real training-set "
                     "size."});
    }
  }
  for (const auto& size : verdict.memorization) {
    std::string leaking, safe;
    for (const auto& a : size.architectures) {
      const auto* e = size.surface.entry(a.arch);
      if (e == nullptr) continue;
      const std::string figure = a.arch + " " + format_number(e->value, "%.2f") + " [" +
                                 format_number(e->low, "%.2f") + ", " +
                                 format_number(e->high, "%.2f") + "]";
      auto& list = a.leak ? leaking : safe;
      list += (list.empty() ? "" : ", ") + figure;
    }
    const std::string n = std::to_string(size.per_class);
    if (!leaking.empty()) {
      out.push_back({"weights",
                     "Trained on " + n +
                         " images per class, these weights give back training "
                         "images: " +
                         leaking + " (training-likeness, interval above 0.5)" +
                         (safe.empty() ? "" : "; not measurably: " + safe) + ".",
                     "Do not publish weights of a model trained on this few images per class; "
                     "train on more data or with the defense, and audit the model you will "
                     "publish."});
    } else if (!safe.empty()) {
      out.push_back({"weights",
                     "Trained on " + n +
                         " images per class, no architecture's weights gave back training "
                         "images measurably (" +
                         safe + ").",
                     "A stronger inversion (the paper profile) may: this is what this profile's work "
                     "reached, not a bound."});
    }
  }
}

void recommend_features(const std::vector<Architecture>& architectures, const Verdict& verdict,
                        std::vector<Recommendation>& out) {
  const auto* surface = verdict.surface("features");
  if (surface == nullptr || surface->order.empty()) return;
  const auto& top = surface->order[0];
  std::string cut;
  for (const auto& arch : architectures) {
    if (arch.name == top.arch) cut = most_exposed_layer(arch.run).first;
  }
  if (top.value >= 20) {
    out.push_back({"features",
                   "A decoder trained on public data rebuilds held-out images from " + top.arch +
                       "'s cut '" + cut + "' at " + format_number(top.value, "%.1f dB") + ".",
                   "Do not send that cut's output in split inference: cut deeper, or train with "
                   "`privaudit defend`, and audit again."});
  } else {
    out.push_back({"features",
                   "Decoders rebuild no recognisable image from any cut (best " + top.arch + " '" +
                       cut + "', " + format_number(top.value, "%.1f dB") + ").",
                   "A stronger decoder (more data, more epochs) may do better: audit again "
                   "before relying on it."});
  }
}

}  // namespace

std::vector<Recommendation> recommend(const std::vector<Architecture>& architectures,
                                      const Verdict& verdict) {
  std::vector<Recommendation> out;
  recommend_gradients(architectures, verdict, out);
  recommend_weights(verdict, out);
  recommend_features(architectures, verdict, out);
  return out;
}

}  // namespace privaudit::audit
