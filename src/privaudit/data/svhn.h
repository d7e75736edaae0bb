// SVHN cropped digits (Netzer et al. 2011) as the MATLAB v5 files train_32x32.mat and
// test_32x32.mat: X is uint8 32x32x3xN in MATLAB's column-major order (row, column, channel,
// image), y is N x 1 labels 1..10 where 10 stands for the digit 0.
#pragma once

#include <torch/torch.h>

#include <string>

namespace privaudit::data {

struct SvhnPart {
  torch::Tensor images;  // N x 3 x 32 x 32, float32 in [0,1]
  torch::Tensor labels;  // N, int64 in 0..9 (digit d is label d)
};

// Reads one .mat file with libmatio (the fuzz target's entry point). Throws Error naming the file
// for a missing file, a file that is not a MAT file, a missing X or y, a wrong class, rank or size,
// image and label counts that differ, or a label outside 1..10.
SvhnPart read_svhn_mat(const std::string& path);

}  // namespace privaudit::data
