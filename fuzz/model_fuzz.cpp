// libFuzzer target for the model loader (privaudit checkpoints and TorchScript archives): any
// input must either load or raise privaudit::Error; anything else (a crash, an ASan report, a
// c10::Error or other exception escaping) is a bug. load_model reads only from a named file, so
// each input is written to a scratch file first. LibTorch itself is not instrumented (Debian's
// build), so this checks our use of it and whatever ASan sees at its boundary.
//
// PRIVAUDIT_WRITE_SEED_CHECKPOINT=PATH model_fuzz writes a small valid checkpoint to PATH and
// exits: the one seed fuzz/make_seeds.py cannot write from Python.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "privaudit/models/checkpoint.h"
#include "privaudit/util/error.h"
#include "scratch_file.h"

namespace {

void write_seed_checkpoint(const std::string& path) {
  torch::manual_seed(0);
  auto config = privaudit::models::default_config("mlp", {1, 4, 4}, 3);
  config.widths = {6};
  privaudit::models::BuiltinClassifier model(config);
  privaudit::models::save_checkpoint(path, model, {{"dataset", "fuzz seed"}});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  torch::set_num_threads(1);
  if (const char* seed = std::getenv("PRIVAUDIT_WRITE_SEED_CHECKPOINT")) {
    write_seed_checkpoint(seed);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!privaudit::fuzz::write_scratch(data, size)) return 0;
  try {
    privaudit::models::load_model(privaudit::fuzz::scratch_path());
  } catch (const privaudit::Error&) {
  }
  return 0;
}
