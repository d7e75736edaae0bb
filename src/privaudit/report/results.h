// results.json: the one JSON object every command writes (shape in docs/design.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "privaudit/data/dataset.h"

namespace privaudit::report {

// {"tool":"privaudit","version":...,"command":...,"seed":...} — the command adds its own fields.
nlohmann::json results_envelope(const std::string& command, uint64_t seed);

// {"spec","source","train_size","test_size","classes","image_shape"} of loaded splits.
nlohmann::json dataset_json(const std::string& spec, const data::Splits& splits);

// A finite number as itself, NaN/inf as null (JSON has no NaN).
nlohmann::json number_or_null(double value);

// Peak resident memory of this process so far, in MiB (getrusage).
double peak_memory_mib();

// Writes DIR/results.json atomically (pretty-printed), with "peak_memory_mib" added when the
// object lacks it: the peak resident memory of the command that wrote it.
void write_results(const std::string& dir, const nlohmann::json& results);

}  // namespace privaudit::report
