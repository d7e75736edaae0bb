#include "privaudit/defense/update_defense.h"

#include <array>
#include <cmath>
#include <string>

#include "privaudit/util/error.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"

namespace privaudit::defense {

bool UpdateDefense::active() const {
  return clip_norm > 0 || noise_sigma > 0 || keep_fraction < 1.0 || quantization_bits > 0;
}

nlohmann::json UpdateDefense::to_json() const {
  return {{"clip_norm", clip_norm},
          {"noise_sigma", noise_sigma},
          {"keep_fraction", keep_fraction},
          {"quantization_bits", quantization_bits},
          {"seed", seed}};
}

namespace {

// The checks, each message naming its setting as `names` says (clip, noise, keep, bits).
void check_settings(const UpdateDefense& d, const std::array<const char*, 4>& names) {
  const auto fail = [](const char* name, const char* rule) {
    throw UsageError(std::string(name) + " must " + rule);
  };
  if (!(d.clip_norm >= 0) || !std::isfinite(d.clip_norm)) fail(names[0], "not be negative");
  if (!(d.noise_sigma >= 0) || !std::isfinite(d.noise_sigma)) fail(names[1], "not be negative");
  if (!(d.keep_fraction > 0 && d.keep_fraction <= 1)) fail(names[2], "be in (0, 1]");
  if (d.quantization_bits < 0 || d.quantization_bits == 1 || d.quantization_bits > 16)
    fail(names[3], "be 0 (off) or 2..16");
}

}  // namespace

void check_update_defense(const UpdateDefense& defense) {
  check_settings(defense, {"update defense: clip norm", "update defense: noise sigma",
                           "update defense: keep fraction", "update defense: quantisation bits"});
}

void check_defend_flags(const UpdateDefense& defense) {
  check_settings(defense, {"--defend-clip", "--defend-noise", "--defend-keep", "--defend-bits"});
}

namespace {

// Clip, prune, quantise, then add noise, tensor list as a whole (the clip) and tensor by tensor.
attacks::Gradients defend_tensors(attacks::Gradients gradients, const UpdateDefense& defense) {
  check_update_defense(defense);
  torch::NoGradGuard no_grad;
  if (defense.clip_norm > 0) {
    double squared = 0.0;
    for (const auto& g : gradients)
      if (g.defined()) squared += g.to(torch::kDouble).pow(2).sum().item<double>();
    const double scale = std::min(1.0, defense.clip_norm / (std::sqrt(squared) + 1e-12));
    for (auto& g : gradients)
      if (g.defined()) g = g * scale;
  }
  if (defense.keep_fraction < 1.0) {
    for (auto& g : gradients) {
      if (!g.defined() || g.numel() == 0) continue;
      const auto keep = std::max<int64_t>(
          1, static_cast<int64_t>(std::ceil(defense.keep_fraction * double(g.numel()))));
      const auto magnitudes = g.abs().flatten();
      const auto threshold = std::get<0>(magnitudes.topk(keep)).min();
      g = g * (g.abs() >= threshold).to(g.dtype());
    }
  }
  if (defense.quantization_bits > 0) {
    const double levels = std::pow(2.0, defense.quantization_bits - 1) - 1.0;
    for (auto& g : gradients) {
      if (!g.defined() || g.numel() == 0) continue;
      const double top = g.abs().max().item<double>();
      if (top > 0) g = (g / top * levels).round() * (top / levels);
    }
  }
  if (defense.noise_sigma > 0) {
    const double noise_std =
        defense.noise_sigma * (defense.clip_norm > 0 ? defense.clip_norm : 1.0);
    auto generator = make_generator(defense.seed);
    for (auto& g : gradients) {
      if (g.defined()) g = g + noise_std * randn_on(g.sizes(), generator, g.device()).to(g.dtype());
    }
  }
  return gradients;
}

}  // namespace

attacks::SharedUpdate defend_update(const attacks::SharedUpdate& update,
                                    const UpdateDefense& defense) {
  attacks::SharedUpdate out = update;
  out.gradients = defend_tensors(update.gradients, defense);
  return out;
}

attacks::ModelUpdate defend_update(const attacks::ModelUpdate& update,
                                   const UpdateDefense& defense) {
  attacks::ModelUpdate out = update;
  out.delta = defend_tensors(update.delta, defense);
  return out;
}

}  // namespace privaudit::defense
