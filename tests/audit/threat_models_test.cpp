// The audit's threat models: one row per thing a server sees, per architecture, read from the
// gradients, federated and malicious stages, and read back from the audit's results.json.
#include "privaudit/audit/threat_models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace privaudit::audit {
namespace {

using Json = nlohmann::json;

// A "strongest" object as the experiments write it: per target `attack` and `psnr`.
Json strongest(const std::vector<std::pair<std::string, double>>& targets) {
  Json list = Json::array(), wins = Json::object();
  for (const auto& [attack, psnr] : targets) {
    list.push_back({{"attack", attack}, {"psnr", psnr}});
    wins[attack] = wins.value(attack, 0) + 1;
  }
  return {{"targets", list}, {"wins", wins}};
}

// One architecture with a gradients stage (batch 1 and 8), a federated sweep (steps5, clients1,
// clients4) and the malicious stage (4 clients of 2 images through secure aggregation).
Json gathered_vit() {
  Json arch = {{"name", "vit"}};
  auto b1 = strongest({{"positional", 120.0}, {"positional", 110.0}});
  b1["batch_size"] = 1;
  b1["targets_scored"] = 2;
  auto b8 = strongest({{"ig", 12.0}, {"ig", 14.0}, {"dlg", 16.0}, {"ig", 10.0}});
  b8["batch_size"] = 8;
  b8["targets_scored"] = 4;
  arch["gradients"]["results"]["strongest"] = {b1, b8};
  Json sweep = Json::array();
  sweep.push_back({{"label", "steps5"},
                   {"clients", 1},
                   {"images_per_client", 4},
                   {"training", {{"local_steps", 5}, {"local_batch", 4}}},
                   {"secure_aggregation", false},
                   {"strongest",
                    strongest({{"unrolled-ig", 20.0}, {"ig", 30.0}, {"ig", 50.0}, {"ig", 40.0}})}});
  sweep.push_back({{"label", "clients1"}, {"clients", 1}, {"images_per_client", 1}});
  sweep.push_back(
      {{"label", "clients4"},
       {"clients", 4},
       {"images_per_client", 1},
       {"training", {{"local_steps", 1}, {"local_batch", 1}}},
       {"secure_aggregation", true},
       {"strongest",
        strongest({{"ig", 11.0}, {"ig", 12.0}, {"ig", 13.0}, {"linear-layer", 14.0}})}});
  arch["federated"]["results"]["sweep"] = sweep;
  // imprint: 6 of the aggregate's 8 images exact (100 dB), two in shared bins; all 8 of the
  // clients' own updates.
  std::vector<std::pair<std::string, double>> shared(8, {"imprint", 100.0}), own = shared;
  shared[6].second = shared[7].second = 20.0;
  Json aggregate = {{"view", "aggregate"},
                    {"images", 8},
                    {"strongest", strongest(shared)},
                    {"recovered_fraction", 0.75},
                    {"expected_fraction", 0.8}};
  Json client = {
      {"view", "client"}, {"images", 8}, {"strongest", strongest(own)}, {"expected_fraction", 0.9}};
  arch["malicious"]["results"]["federated"] = {{"server", "imprint"},
                                               {"server_sees", "aggregate"},
                                               {"clients", 4},
                                               {"images_per_client", 2},
                                               {"bins", 16},
                                               {"secure_aggregation", true},
                                               {"views", {aggregate, client}}};
  return Json::array({arch});
}

TEST(ThreatModels, OneRowPerThreatModelWithItsStrongestAttack) {
  const auto rows = threat_models(architectures_from_json(gathered_vit()));
  // batch 1, batch 8, steps5, clients4 (clients1 left out), malicious aggregate and clients.
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].threat_model, "one gradient of 1 image");
  EXPECT_EQ(rows[0].strongest_attack, "positional");
  EXPECT_DOUBLE_EQ(rows[0].psnr, 115.0);
  EXPECT_DOUBLE_EQ(rows[0].recovered_fraction, 1.0);
  EXPECT_EQ(rows[1].strongest_attack, "ig");
  EXPECT_DOUBLE_EQ(rows[1].median_psnr, 13.0);
  EXPECT_LE(rows[1].psnr_low, rows[1].psnr);
  EXPECT_GE(rows[1].psnr_high, rows[1].psnr);
  EXPECT_EQ(rows[2].threat_model, "FedAvg update: 5 local steps of 4 (4 images)");
  EXPECT_EQ(rows[2].sees, "update");
  EXPECT_DOUBLE_EQ(rows[2].recovered_fraction, 0.5);  // 50 and 40 dB of 4
  EXPECT_EQ(rows[3].sees, "aggregate");
  EXPECT_EQ(rows[3].clients, 4);
  EXPECT_EQ(rows[3].server, "honest");
  EXPECT_EQ(rows[4].server, "imprint");
  EXPECT_EQ(rows[4].sees, "aggregate");
  EXPECT_EQ(rows[4].strongest_attack, "imprint");
  EXPECT_EQ(rows[4].images, 8);
  EXPECT_DOUBLE_EQ(rows[4].recovered_fraction, 0.75);
  EXPECT_DOUBLE_EQ(rows[4].expected_fraction, 0.8);
  EXPECT_EQ(rows[5].sees, "client updates");
  EXPECT_DOUBLE_EQ(rows[5].recovered_fraction, 1.0);
  EXPECT_TRUE(std::isnan(rows[2].expected_fraction));
}

TEST(ThreatModels, RowsAreReadBackFromTheAuditsResults) {
  const auto rows = threat_models(architectures_from_json(gathered_vit()));
  const Json audit = {{"threat_models", Json::parse(to_json(rows).dump())}};
  const auto back = records_from_json(audit).threat_models;
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(back[i].arch, "vit");
    EXPECT_EQ(back[i].threat_model, rows[i].threat_model);
    EXPECT_EQ(back[i].server, rows[i].server);
    EXPECT_EQ(back[i].sees, rows[i].sees);
    EXPECT_EQ(back[i].clients, rows[i].clients);
    EXPECT_EQ(back[i].images, rows[i].images);
    EXPECT_EQ(back[i].strongest_attack, rows[i].strongest_attack);
    EXPECT_DOUBLE_EQ(back[i].psnr, rows[i].psnr);
    EXPECT_DOUBLE_EQ(back[i].psnr_low, rows[i].psnr_low);
    EXPECT_DOUBLE_EQ(back[i].median_psnr, rows[i].median_psnr);
    EXPECT_DOUBLE_EQ(back[i].recovered_fraction, rows[i].recovered_fraction);
  }
  EXPECT_DOUBLE_EQ(back[4].expected_fraction, 0.8);
  EXPECT_TRUE(std::isnan(back[0].expected_fraction));  // null when no prediction
  // A stage that did not run gives no row; absent fields read as missing, never throw.
  EXPECT_TRUE(threat_models(architectures_from_json(Json::array({{{"name", "mlp"}}}))).empty());
  EXPECT_TRUE(threat_models_from_json(Json::array({Json::object()}))[0].threat_model == "?");
}

}  // namespace
}  // namespace privaudit::audit
