#include "privaudit/defense/update_defense.h"

#include <cmath>

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

void check_update_defense(const UpdateDefense& defense) {
  if (!(defense.clip_norm >= 0) || !std::isfinite(defense.clip_norm))
    throw UsageError("update defense: clip norm must not be negative");
  if (!(defense.noise_sigma >= 0) || !std::isfinite(defense.noise_sigma))
    throw UsageError("update defense: noise sigma must not be negative");
  if (!(defense.keep_fraction > 0 && defense.keep_fraction <= 1))
    throw UsageError("update defense: keep fraction must be in (0, 1]");
  if (defense.quantization_bits < 0 || defense.quantization_bits > 16 ||
      defense.quantization_bits == 1) {
    throw UsageError("update defense: quantisation bits must be 0 (off) or 2..16");
  }
}

attacks::SharedUpdate defend_update(const attacks::SharedUpdate& update,
                                    const UpdateDefense& defense) {
  check_update_defense(defense);
  torch::NoGradGuard no_grad;
  attacks::SharedUpdate out = update;
  auto& gradients = out.gradients;
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
  return out;
}

}  // namespace privaudit::defense
