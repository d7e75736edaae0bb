// The budget an experiment gives a gradient attack: every registered attack (registry.h) takes it
// beside the model and what the threat model hands the attacker.
#pragma once

#include <cstdint>

namespace privaudit::attacks {

// Zeros and negatives mean the attack's own default.
struct AttackBudget {
  int iterations = 0;
  int restarts = 0;             // extra random starts; the best one is kept
  double total_variation = -1;  // Inverting Gradients' TV weight
  // Features-then-invert's further L-BFGS iterations (0: its default, 2,000).
  int feature_iterations = 0;
  uint64_t seed = 0;
};

}  // namespace privaudit::attacks
