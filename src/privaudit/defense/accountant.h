// The privacy accountant of DP-SGD: Rényi differential privacy (RDP) of the Poisson-subsampled
// Gaussian mechanism (Mironov, Talwar & Zhang 2019, "Rényi Differential Privacy of the Sampled
// Gaussian Mechanism", Sec. 3.3: integer orders by the binomial expansion, fractional orders by
// the two erfc series A0 + A1), composed over T steps (RDP adds up), then turned into (ε, δ).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace privaudit::defense {

// RDP -> (ε, δ). kImproved: Balle et al. 2020 (Hypothesis testing interpretations and Rényi DP,
// Thm. 21) / Canonne, Kamath & Steinke 2020, ε = rdp + log((α-1)/α) - (log δ + log α)/(α-1),
// what Opacus uses; kClassic: Mironov 2017, Prop. 3, ε = rdp - log δ / (α-1), what TF Privacy's
// compute_dp_sgd_privacy and the published tables of 2019-2020 used.
enum class Conversion { kImproved, kClassic };
std::string conversion_name(Conversion conversion);

// 1.1, 1.2, ..., 10.9, 12, 13, ..., 63, 64, 128, 256: TF Privacy's and Opacus's orders plus the
// three large ones, which decide ε when the noise is small.
std::vector<double> default_orders();

// RDP of one step at order α > 1: sampling rate q in [0, 1], noise multiplier σ > 0 (noise
// standard deviation over the clipping norm). q = 1 gives the Gaussian mechanism's α / (2σ²).
double sampled_gaussian_rdp(double q, double sigma, double order);

struct PrivacySpent {
  double epsilon = 0.0;
  double order = 0.0;  // the order that gave the smallest ε
};

// ε at δ of T steps, minimised over the orders (0 when q or T is 0). Throws Error on q outside [0,1], σ not positive,
// δ outside (0,1), negative steps.
PrivacySpent dp_sgd_epsilon(double q, double sigma, int64_t steps, double delta,
                            Conversion conversion = Conversion::kImproved,
                            const std::vector<double>& orders = default_orders());

// The smallest σ (to 0.1 %) whose ε over `steps` steps at rate q is at most target_epsilon, by
// bisection on the accountant. Throws Error when no σ up to 10^4 reaches the target (ε then stops
// falling: the conversion's own term is left).
double noise_for_epsilon(double target_epsilon, double q, int64_t steps, double delta,
                         Conversion conversion = Conversion::kImproved);

}  // namespace privaudit::defense
