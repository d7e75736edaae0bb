// `tensors:FILE`: both splits of a dataset as tensors in one LibTorch archive, the way the Python
// module hands a user's own tensors (or DataLoader) to the command line's stages.
#pragma once

#include <string>

#include "privaudit/data/dataset.h"

namespace privaudit::data {

// Writes train and test (images N x C x H x W float in [0,1], labels N int64) and the class
// names to `path` atomically. Throws Error naming the split when one is not a valid dataset.
void save_tensor_file(const std::string& path, const Dataset& train, const Dataset& test);

// Reads what save_tensor_file wrote; throws Error naming the file and the problem (not an
// archive, a missing or mistyped entry, shapes that disagree) and never returns half a dataset.
Splits load_tensor_file(const std::string& path);

}  // namespace privaudit::data
