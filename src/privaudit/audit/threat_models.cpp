#include "privaudit/audit/threat_models.h"

#include <algorithm>
#include <string>
#include <utility>

#include "privaudit/metrics/bootstrap.h"
#include "privaudit/metrics/statistics.h"

namespace privaudit::audit {
namespace {

std::string plural(int64_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// A row's figures from the strongest attack's per-target PSNRs; `images` the targets behind the
// view (an unscored target counts as not recovered).
ThreatModelRow row_of(ThreatModelRow row, const std::vector<double>& target_psnr) {
  if (row.images == 0) row.images = static_cast<int64_t>(target_psnr.size());
  if (target_psnr.empty()) return row;
  const auto interval = metrics::interval_of(metrics::Statistic::kMean, target_psnr);
  row.psnr = metrics::mean_of_finite(target_psnr);
  row.psnr_low = interval.low;
  row.psnr_high = interval.high;
  row.median_psnr = metrics::median_of_finite(target_psnr);
  const auto recovered = std::count_if(target_psnr.begin(), target_psnr.end(),
                                       [](double p) { return p >= kRecoveredPsnr; });
  row.recovered_fraction =
      static_cast<double>(recovered) / static_cast<double>(std::max<int64_t>(1, row.images));
  return row;
}

std::string most_wins(const StrongestAttack& s) {
  std::string best;
  int64_t most = 0;
  for (const auto& [name, n] : s.wins) {
    if (n > most) {
      most = n;
      best = name;
    }
  }
  return best;
}

void gradient_rows(const Architecture& arch, std::vector<ThreatModelRow>& rows) {
  const auto& stage = arch.run.gradients;
  if (!stage.results) return;
  for (const int64_t batch : {1, 8}) {
    const auto* s = stage.results->at(batch);
    if (s == nullptr) continue;
    ThreatModelRow row;
    row.arch = arch.name;
    row.threat_model = "one gradient of " + plural(batch, "image");
    row.server = "honest";
    row.sees = "gradient";
    row.clients = 1;
    row.images = s->targets_scored.value_or(0);
    row.strongest_attack = most_wins(*s);
    rows.push_back(row_of(row, s->target_psnr));
  }
}

void federated_rows(const Architecture& arch, std::vector<ThreatModelRow>& rows) {
  const auto& stage = arch.run.federated;
  if (!stage.results) return;
  for (const auto& s : stage.results->sweep) {
    if (s.clients == 1 && s.label == "clients1") continue;
    ThreatModelRow row;
    row.arch = arch.name;
    row.server = "honest";
    row.clients = s.clients;
    row.images = s.clients * s.images_per_client;
    row.strongest_attack = s.strongest_attack;
    if (s.secure_aggregation && s.clients > 1) {
      row.threat_model = "secure aggregate of " + plural(s.clients, "client") + " (" +
                         plural(s.images_per_client, "image") + " each)";
      row.sees = "aggregate";
    } else {
      row.threat_model = "FedAvg update: " + plural(s.local_steps, "local step") + " of " +
                         std::to_string(s.local_batch) + " (" +
                         plural(s.images_per_client, "image") + ")";
      row.sees = "update";
    }
    rows.push_back(row_of(row, s.target_psnr));
  }
}

void malicious_rows(const Architecture& arch, std::vector<ThreatModelRow>& rows) {
  const auto& stage = arch.run.malicious;
  if (!stage.results) return;
  const auto& r = *stage.results;
  for (const auto* name : {"aggregate", "client"}) {
    const auto* view = r.view(name);
    if (view == nullptr) continue;
    ThreatModelRow row;
    row.arch = arch.name;
    row.server = r.server;
    row.clients = r.clients;
    row.images = view->images;
    row.strongest_attack = view->strongest_attack;
    row.expected_fraction = view->expected_fraction;
    const std::string block = "malicious server (" + r.server + ", " + plural(r.bins, "bin") + ")";
    if (view->view == "aggregate") {
      row.threat_model = block + " through the secure aggregate of " + plural(r.clients, "client") +
                         " (" + plural(r.images_per_client, "image") + " each)";
      row.sees = "aggregate";
    } else {
      row.threat_model =
          block + ", every client's own update (" + plural(r.images_per_client, "image") + " each)";
      row.sees = "client updates";
    }
    rows.push_back(row_of(row, view->target_psnr));
  }
}

}  // namespace

std::vector<ThreatModelRow> threat_models(const std::vector<Architecture>& architectures) {
  std::vector<ThreatModelRow> rows;
  for (const auto& arch : architectures) {
    gradient_rows(arch, rows);
    federated_rows(arch, rows);
    malicious_rows(arch, rows);
  }
  return rows;
}

// NaN figures are written as null (nlohmann::json's dump).
nlohmann::json to_json(const std::vector<ThreatModelRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    out.push_back({{"arch", r.arch},
                   {"threat_model", r.threat_model},
                   {"server", r.server},
                   {"sees", r.sees},
                   {"clients", r.clients},
                   {"images", r.images},
                   {"strongest_attack", r.strongest_attack},
                   {"psnr",
                    {{"mean", r.psnr},
                     {"low", r.psnr_low},
                     {"high", r.psnr_high},
                     {"median", r.median_psnr}}},
                   {"recovered_psnr", kRecoveredPsnr},
                   {"recovered_fraction", r.recovered_fraction},
                   {"expected_fraction", r.expected_fraction}});
  }
  return out;
}

}  // namespace privaudit::audit
