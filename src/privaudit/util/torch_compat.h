#pragma once
// What differs between the LibTorch versions the project builds against (Debian 12's 1.13 and a
// current 2.x, e.g. Python torch's; scripts/check_newer_libtorch.py compiles against the latter).

#include <torch/version.h>

#include <variant>

namespace privaudit {

// Module options hold alternatives (a convolution's padding) in a c10::variant before LibTorch 2
// and in a std::variant since: `variants::get_if` works on both.
#if TORCH_VERSION_MAJOR >= 2
namespace variants = std;
#else
namespace variants = c10;
#endif

}  // namespace privaudit
