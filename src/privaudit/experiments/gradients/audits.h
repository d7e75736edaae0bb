// The gradients experiment's audit part: the gradient audit
// (experiments/gradient_audit.h) per batch size, shared out among the ranks,
// never below the risk the run's strongest attack showed, and
// "audit_relation.svg". Internal to experiments/gradient_experiment.cpp.
#pragma once

#include "privaudit/data/dataset.h"
#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/distributed.h"

namespace privaudit::experiments::gradients {

// The audit is the defender's view: its own test images (labels included for
// the paths and pairs it measures); its probes know what every attack of the
// run knows. Each batch size's audit is one work item; the ranks share them out
// and exchange the results. Fills result.audits and raises result.risk; reads
// result.strongest.
void run_audits(models::Classifier &model, const data::Dataset &test,
                const GradientExperimentOptions &options, const Reporter &reporter,
                OutputSink &sink, const dist::World &world, GradientExperimentResult &result);

}  // namespace privaudit::experiments::gradients
