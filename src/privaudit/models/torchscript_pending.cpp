#include "privaudit/models/torchscript.h"
#include "privaudit/util/error.h"

namespace privaudit::models {
std::unique_ptr<Classifier> load_torchscript(const std::string& path, std::optional<InputShape>,
                                             std::optional<int64_t>, torch::Device) {
  throw Error(path + ": TorchScript models are not supported yet");
}
}  // namespace privaudit::models
