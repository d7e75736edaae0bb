// The report's longer sections, one function each (sections.cpp); html_report.cpp puts the page
// together. Each renders records and the verdict, and decides nothing.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "privaudit/audit/privacy_utility.h"
#include "privaudit/audit/records.h"
#include "privaudit/audit/verdict.h"
#include "privaudit/report/svg_plot.h"

namespace privaudit::report {

// The memorisation regime: training-likeness against images per class, per architecture (the
// main models' point included), with intervals; writes memorization.svg in `out`.
std::string memorization_section(const std::filesystem::path& out, const audit::Verdict& verdict);
// Membership inference from the weights: per regime and architecture the strongest attack's AUC,
// TPR at 0.1 % and 1 % FPR and epsilon lower bound with intervals, and each stage's ROC plot.
std::string membership_section(const std::filesystem::path& out, const audit::Verdict& verdict);
// One row per threat model and architecture (gradient, FedAvg update, secure aggregate, malicious
// server) with its strongest attack (threat_models_section.cpp).
std::string threat_models_section(const audit::Verdict& verdict);
// The federated stage's table: a row per FedAvg setting, a column per architecture.
std::string federated_section(const audit::Verdict& verdict);
// Per architecture, the images and plots its stages wrote.
std::string architecture_sections(const std::filesystem::path& out,
                                  const audit::AuditRecords& records);
// The defense's trade-off.
std::string defense_section(const std::filesystem::path& out, const audit::AuditRecords& records);
// --defend's privacy-utility view (privacy_utility_section.cpp): per architecture, its plots
// (privacy_utility_<arch>_*.svg in `out`) and its table; "" when the audit has none.
std::string privacy_utility_section(const std::filesystem::path& out,
                                    const audit::PrivacyUtility& table);
// One architecture's plots: test accuracy against the strongest reconstruction's median PSNR and
// against membership inference's TPR at 1 % FPR, a series per defense (and surface), each point
// with its interval; a row without a measured accuracy or leak is not drawn. Empty series are
// left out.
std::vector<Plot> privacy_utility_plots(const audit::PrivacyUtilityTable& arch);

// An <img> of `stage_dir/file` under `out_dir` with its caption; "" when the file is not there.
std::string figure(const std::filesystem::path& out_dir, const std::string& stage_dir,
                   const std::string& file, const std::string& caption);
// Versions, settings, and every stage's status, time, memory and command.
std::string settings_section(const audit::AuditRecords& records);

}  // namespace privaudit::report
