// Precompiled header: the heavy third-party headers every translation unit includes.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>
