// The audit's typed verdict (audit/verdict.h) as Python classes: privaudit.audit runs the command
// line's audit and returns what audit::analyse concludes from its results.json, the same objects
// the HTML report renders, not a re-derivation in Python. Read-only attributes; NaN where the
// audit has no figure.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "privaudit/audit/analysis.h"
#include "privaudit/audit/privacy_utility.h"
#include "privaudit/audit/records.h"
#include "privaudit/audit/verdict.h"
#include "privaudit/util/error.h"

namespace py = pybind11;

namespace privaudit::python {
namespace {

std::string cell_repr(const audit::ScoreCell& c) {
  std::ostringstream text;
  text << "<ScoreCell " << c.arch << ": " << audit::severity_text(c.severity) << ", " << c.value
       << " [" << c.low << ", " << c.high << "] n=" << c.n << ">";
  return text.str();
}

}  // namespace

void bind_verdict(py::module_& m) {
  using namespace audit;
  py::class_<RankedArchitecture>(m, "RankedArchitecture",
                                 "One architecture on a surface: its statistic and interval.")
      .def_readonly("arch", &RankedArchitecture::arch)
      .def_readonly("value", &RankedArchitecture::value)
      .def_readonly("low", &RankedArchitecture::low)
      .def_readonly("high", &RankedArchitecture::high)
      .def_readonly("n", &RankedArchitecture::n)
      .def_readonly("wide", &RankedArchitecture::wide)
      .def_readonly("exact_share", &RankedArchitecture::exact_share)
      .def_readonly("lower_bound", &RankedArchitecture::lower_bound);
  py::class_<RankStep>(m, "RankStep", "The decision between two neighbours of a ranking.")
      .def_readonly("higher", &RankStep::higher)
      .def_readonly("lower", &RankStep::lower)
      .def_readonly("difference", &RankStep::difference)
      .def_readonly("low", &RankStep::low)
      .def_readonly("high", &RankStep::high)
      .def_readonly("ranked", &RankStep::ranked)
      .def_readonly("p_value", &RankStep::p_value)
      .def_readonly("paired", &RankStep::paired)
      .def_readonly("more_targets", &RankStep::more_targets)
      .def_readonly("cut_short", &RankStep::cut_short);
  py::class_<SurfaceRanking>(m, "SurfaceRanking",
                             "A threat surface's ranking: most leaking first, with the steps.")
      .def_readonly("figure", &SurfaceRanking::figure)
      .def_readonly("meaning", &SurfaceRanking::meaning)
      .def_readonly("statistic", &SurfaceRanking::statistic)
      .def_readonly("level", &SurfaceRanking::level)
      .def_readonly("order", &SurfaceRanking::order)
      .def_readonly("steps", &SurfaceRanking::steps);
  py::class_<ScoreCell>(m, "ScoreCell", "One architecture's cell of a scorecard row.")
      .def_readonly("arch", &ScoreCell::arch)
      .def_property_readonly("severity",
                             [](const ScoreCell& c) { return std::string(severity_name(c.severity)); })
      .def_property_readonly("text",
                             [](const ScoreCell& c) { return std::string(severity_text(c.severity)); })
      .def_readonly("value", &ScoreCell::value)
      .def_readonly("low", &ScoreCell::low)
      .def_readonly("high", &ScoreCell::high)
      .def_readonly("n", &ScoreCell::n)
      .def_readonly("statistic", &ScoreCell::statistic)
      .def_readonly("exact_share", &ScoreCell::exact_share)
      .def_readonly("exact", &ScoreCell::exact)
      .def_readonly("lower_bound", &ScoreCell::lower_bound)
      .def("__repr__", &cell_repr);
  py::class_<ScoreRow>(m, "ScoreRow", "One threat surface of the report's first screen.")
      .def_readonly("surface", &ScoreRow::surface)
      .def_readonly("title", &ScoreRow::title)
      .def_readonly("unit", &ScoreRow::unit)
      .def_readonly("figure", &ScoreRow::figure)
      .def_readonly("cells", &ScoreRow::cells);
  py::class_<Claim>(m, "Claim", "A paper's claim checked against this run.")
      .def_readonly("source", &Claim::source)
      .def_readonly("claim", &Claim::claim)
      .def_readonly("verdict", &Claim::verdict)
      .def_readonly("measured", &Claim::measured)
      .def_readonly("p_values", &Claim::p_values)
      .def_readonly("adjusted_p_values", &Claim::adjusted_p_values);
  py::class_<Recommendation>(m, "Recommendation", "What to do about one surface's finding.")
      .def_readonly("surface", &Recommendation::surface)
      .def_readonly("finding", &Recommendation::finding)
      .def_readonly("recommendation", &Recommendation::recommendation);
  py::class_<MembershipAttackRecord>(m, "MembershipAttack",
                                     "One membership-inference attack's figures.")
      .def_readonly("attack", &MembershipAttackRecord::attack)
      .def_readonly("auc", &MembershipAttackRecord::auc)
      .def_readonly("tpr_1", &MembershipAttackRecord::tpr_1)
      .def_readonly("tpr_1_low", &MembershipAttackRecord::tpr_1_low)
      .def_readonly("tpr_1_high", &MembershipAttackRecord::tpr_1_high)
      .def_readonly("tpr_0_1", &MembershipAttackRecord::tpr_0_1)
      .def_readonly("epsilon", &MembershipAttackRecord::epsilon);
  py::class_<MembershipRow>(m, "MembershipRow",
                            "One architecture's membership inference: the strongest attack.")
      .def_readonly("arch", &MembershipRow::arch)
      .def_readonly("per_class", &MembershipRow::per_class)
      .def_readonly("strongest", &MembershipRow::strongest)
      .def_readonly("models", &MembershipRow::models)
      .def_readonly("decisions", &MembershipRow::decisions)
      .def_readonly("train_accuracy", &MembershipRow::train_accuracy)
      .def_readonly("held_out_accuracy", &MembershipRow::held_out_accuracy);
  py::class_<ThreatModelRow>(m, "ThreatModelRow",
                             "What one server learns from gradients or updates.")
      .def_readonly("arch", &ThreatModelRow::arch)
      .def_readonly("threat_model", &ThreatModelRow::threat_model)
      .def_readonly("server", &ThreatModelRow::server)
      .def_readonly("sees", &ThreatModelRow::sees)
      .def_readonly("clients", &ThreatModelRow::clients)
      .def_readonly("images", &ThreatModelRow::images)
      .def_readonly("strongest_attack", &ThreatModelRow::strongest_attack)
      .def_readonly("psnr", &ThreatModelRow::psnr)
      .def_readonly("psnr_low", &ThreatModelRow::psnr_low)
      .def_readonly("psnr_high", &ThreatModelRow::psnr_high)
      .def_readonly("median_psnr", &ThreatModelRow::median_psnr)
      .def_readonly("recovered_fraction", &ThreatModelRow::recovered_fraction)
      .def_readonly("expected_fraction", &ThreatModelRow::expected_fraction);
  py::class_<Verdict>(m, "Verdict",
                      "What the audit concludes (audit/verdict.h): per surface a ranking, the "
                      "scorecard, the claims, the recommendations, the membership rows.")
      .def_readonly("figure", &Verdict::figure)
      .def_readonly("meaning", &Verdict::meaning)
      .def_readonly("surfaces", &Verdict::surfaces)
      .def_readonly("membership", &Verdict::membership)
      .def_readonly("claims", &Verdict::claims)
      .def_readonly("recommendations", &Verdict::recommendations)
      .def_readonly("scorecard", &Verdict::scorecard)
      .def_readonly("threat_models", &Verdict::threat_models)
      .def("to_dict",
           [](const Verdict& v) {
             const auto text = to_json(v).dump();
             return py::module_::import("json").attr("loads")(text);
           },
           "results.json's \"ranking\" object, as Python dicts and lists.");

  m.def(
      "analyse",
      [](const std::string& results_path) {
        std::ifstream in(results_path);
        if (!in) throw Error(results_path + ": cannot read this file");
        auto results = nlohmann::json::parse(in, nullptr, false);
        if (results.is_discarded() || !results.is_object() || !results.contains("architectures"))
          throw Error(results_path + ": not the results.json of privaudit audit");
        Verdict verdict;
        {
          py::gil_scoped_release release;
          verdict = analyse(records_from_json(results));
          verdict.privacy_utility = privacy_utility(results["architectures"]);
        }
        return verdict;
      },
      "The typed Verdict of an audit's results.json (audit::records_from_json + audit::analyse).",
      py::arg("results_path"));
}

}  // namespace privaudit::python
