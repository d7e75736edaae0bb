// The features threat model: a model split at a cut point (split learning, an exposed embedding)
// shows the attacker the output of the layers before the cut, never the images. The decoder
// attack (attacks/features/feature_decoder.h) trains on features of its own images and inverts
// the targets' features.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "privaudit/models/classifier.h"

namespace privaudit::attacks {

// Features of `images` at `cut`, eval mode, no gradients, in chunks (what the attacker observes).
torch::Tensor observe_features(models::Classifier& model, const std::string& cut,
                               const torch::Tensor& images, int64_t chunk = 512);

}  // namespace privaudit::attacks
