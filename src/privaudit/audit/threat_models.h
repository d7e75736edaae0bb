// The audit's threat models, per architecture: what an honest-but-curious server sees (one
// gradient at batch 1 and 8, a FedAvg update, the secure aggregate of M clients) and what a
// malicious server (imprint, "Robbing the Fed") reads through secure aggregation and off each
// client's own update. One row each, from the gradients, federated and malicious stages, with the
// strongest attack per target over every client's targets: an audit never reports less than an
// attack achieved.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "privaudit/audit/records.h"

namespace privaudit::audit {

// A target counts as recovered at >= 40 dB (gradient_audit.h's "full recovery").
inline constexpr double kRecoveredPsnr = 40.0;

// Rows in architecture order: gradient batch 1, batch 8; each FedAvg setting of the sweep but
// "clients1" (the batch-1 gradient again, on fewer targets); the malicious server's aggregate and
// per-client views. Stages that did not run give no row.
std::vector<ThreatModelRow> threat_models(const std::vector<Architecture>& architectures);

// The audit's results.json "threat_models" (read back by threat_models_from_json).
nlohmann::json to_json(const std::vector<ThreatModelRow>& rows);

}  // namespace privaudit::audit
