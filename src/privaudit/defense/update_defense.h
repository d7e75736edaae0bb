// Defenses of a shared update, applied by the client before it sends its gradient (the gradients
// surface): clip the update's norm and add Gaussian noise (the Gaussian mechanism on one update, as
// DP-FedAvg does per client; McMahan et al. 2018), keep only the largest entries (gradient pruning,
// the defense Zhu et al. 2019 test against DLG in their Sec. 5), and quantise to a few levels.
// The attacks then run on the defended update as on any other.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "privaudit/threat/model_update.h"
#include "privaudit/threat/shared_update.h"

namespace privaudit::defense {

struct UpdateDefense {
  double clip_norm = 0.0;    // > 0: the whole update scaled to L2 norm at most this
  double noise_sigma = 0.0;  // noise std: sigma * clip_norm when clipping, sigma otherwise
  double keep_fraction =
      1.0;                    // (0, 1]: of every tensor keep the largest |g| entries, zero the rest
  int quantization_bits = 0;  // > 0: every tensor rounded to 2^(bits-1) - 1 levels each side of 0
  uint64_t seed = 0;          // the noise's generator

  bool active() const;
  nlohmann::json to_json() const;
};

// Throws UsageError naming the setting (negative clip or noise, a keep fraction outside (0, 1],
// bits outside 0..16).
void check_update_defense(const UpdateDefense& defense);
// The same checks, each message naming the command-line flag (--defend-clip, --defend-noise,
// --defend-keep, --defend-bits) that `gradients` and `federated` share.
void check_defend_flags(const UpdateDefense& defense);

// The update as the defended client sends it: clip, then prune, then quantise, then add noise.
attacks::SharedUpdate defend_update(const attacks::SharedUpdate& update,
                                    const UpdateDefense& defense);
// The same on a FedAvg client's delta (theta_local - theta_server) before it is sent: clipped and
// noised, the client's Gaussian mechanism of DP-FedAvg (McMahan et al. 2018); a secure aggregate
// is then the mean of defended deltas.
attacks::ModelUpdate defend_update(const attacks::ModelUpdate& update,
                                   const UpdateDefense& defense);

}  // namespace privaudit::defense
