// CIFAR-10's binary version (Krizhevsky 2009): each record is one label byte then 3072 pixel
// bytes, 1024 red, 1024 green, 1024 blue, each plane row-major 32x32.
#pragma once

#include <torch/torch.h>

#include <string>

namespace privaudit::data {

constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarRecordBytes = 1 + 3 * kCifarSide * kCifarSide;  // 3073

struct CifarBatch {
  torch::Tensor images;  // N x 3 x 32 x 32, float32 in [0,1]
  torch::Tensor labels;  // N, int64 in 0..9
};

// Parses one batch file's bytes (the fuzz target's entry point). `name` is used in error
// messages. Throws Error for a length that is not a whole number of records ("truncated"), an
// empty batch, or a label above 9.
CifarBatch parse_cifar10_batch(const std::string& bytes, const std::string& name);

// Reads and parses one batch file; throws Error naming it when missing.
CifarBatch read_cifar10_batch(const std::string& path);

}  // namespace privaudit::data
